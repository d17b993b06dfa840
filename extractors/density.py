"""Text-density choice of the article container (the density candidate).

One bottom-up pass sums, for every element, its characters, the characters inside links and the
punctuation outside links (CJK punctuation counted: Chinese sentences carry ，。、 where English
carries commas, which is what readability misses). The score rewards punctuated text and
punishes link text; among near-best elements the deepest wins, so we get the article's own
container rather than <body>.

What never wins, because on real portals it otherwise does:
* notices: a block whose text the genre's notice vocabulary matches (disclaimers, copyright, comment
  rules, ICP lines) is punctuated prose too, and beats a short article; its text counts for nothing;
* comment threads: elements whose class/id says comment or reply are invisible to the score;
* form controls (a <select> of 200 city names is "dense"): pruned before this runs (dom.ALWAYS_DROP);
* a small block (a sign-up form's blurb) beside an article whose sentences carry links: links inside a
  punctuated paragraph that is mostly its own text count as its text (inline links), not as link text;
* anchors that wrap block elements or long punctuated prose are not links (an unclosed <a> around
  the article would otherwise make the article look like a link list).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborNode

from extractors.lines import BLOCK_TAGS, CharCount, real_links
from extractors.regex import find_all_text

__all__ = ["best_container", "Candidate", "PUNCTUATION", "punctuation_marks", "describe"]

PUNCTUATION = frozenset("，。！？；：、“”‘’《》（）…,.!?;:\"'()")
punctuation_marks = CharCount(PUNCTUATION)
_LINK_WEIGHT = 3.0
_PUNCT_WEIGHT = 30.0
_NEAR_BEST = 0.93
_NOT_CANDIDATES = frozenset(("a", "span", "b", "strong", "em", "i", "font", "u", "small", "big", "label", "p"))
_NOTICE_MAX_CHARS = 600  # a notice is a short block; a long one is an article that mentions copyright
_ITEM_LINK_CHARS = 6  # a teaser-list item: a headline link of this size ...
_ITEM_LINK_SHARE = 0.07  # ... that is this much of the item's text ...
_ITEM_TEASER_CHARS = 20  # ... beside this much other text
_MIN_ITEMS = 3
_INLINE_OWN = 1.5  # a paragraph with this many times its link text of its own: its links are inline
_ITEMS_SHARE = 0.6


def _score(chars: int, links: int, puncts: int) -> float:
    """Punctuated text outside links, minus link text. Text without punctuation (keyword
    clouds, menus) counts for little: prose carries about one mark per 10-30 characters."""
    own = chars - links
    if own <= 0:
        return -_LINK_WEIGHT * links
    prose = min(1.0, _PUNCT_WEIGHT * puncts / own)
    return own * prose - _LINK_WEIGHT * links


@dataclass(frozen=True, slots=True)
class Candidate:
    node: LexborNode
    score: float
    chars: int
    link_chars: int
    punct_share: float = 0.0  # the candidate's share of the page's punctuation outside links
    notices: int = 0  # notice blocks that were not allowed to count
    page_nodes: int = 0  # elements on the page
    nodes_up: tuple[int, ...] = ()  # elements under the node, its parent, grandparent, ... (4 levels);
    # () when the page has no more than best_container's `count_above`
    discounted: frozenset[int] = frozenset()  # mem_ids of the notice and teaser-list blocks that did not count
    sizes: Any = None  # (root mem_id, mem_id -> index, characters before any discount): see size()

    def size(self, node: LexborNode) -> int | None:
        """Characters of the node's text as density counted them, or None for a node outside the
        root it walked. An element it did not keep holds no counted text: 0."""
        if self.sizes is None:
            return None
        root_id, index_of, chars = self.sizes
        index = index_of.get(node.mem_id)
        if index is not None:
            return chars[index]
        up = node.parent
        while up is not None:
            if up.mem_id == root_id:
                return 0
            up = up.parent
        return None


def describe(node: LexborNode) -> str:
    """tag#id.class, for traces."""
    attrs = node.attributes
    out = node.tag or "?"
    if attrs.get("id"):
        out += f"#{attrs['id']}"
    if attrs.get("class"):
        out += "." + ".".join((attrs["class"] or "").split())
    return out[:80]


def best_container(
    root: LexborNode,
    notice: Any = None,
    hidden: frozenset[int] = frozenset(),
    real: frozenset[int] | None = None,
    text: str | None = None,
    count_above: int = 0,
) -> Candidate | None:
    """The element whose text is most article-like, or None when the page has no text.

    `notice` matches the genre's notice vocabulary; `hidden` are mem_ids of elements whose text
    must not count (comment threads); `real` are the mem_ids of real links (lines.real_links);
    `text` is root's text when the caller has it already. The candidate's `nodes_up` are
    counted only on a page of more than `count_above` elements.

    Only elements that hold text (and their ancestors) are kept, in document order: one without
    text scores 0 and can never win, and most elements of a page hold none. Each text node finds
    its element by id; the first one to reach an element not yet kept keeps it and the
    ancestors between it and a kept one."""
    if real is None:
        real = real_links(root)
    phrases = None  # the notice phrases this page holds, as one regex: a text node is tested in C
    shortest = 0
    if notice is not None:
        found = find_all_text(notice, text if text is not None else root.text(deep=True))
        if found:
            phrases = re.compile("|".join(map(re.escape, sorted(found, key=len, reverse=True))))
            shortest = min(map(len, found))
    elements: list[LexborNode] = [root]
    tags: list[str | None] = [root.tag]  # lexbor gives None for a node without a tag name
    parents: list[int] = [-1]
    depths: list[int] = [0]
    chars: list[int] = [0]
    links: list[int] = [0]
    puncts: list[int] = [0]
    in_link: list[bool] = [root.tag == "a" and root.mem_id in real]
    in_hidden: list[bool] = [root.mem_id in hidden]
    index_of: dict[int, int] = {root.mem_id: 0}
    index_get = index_of.get

    def keep(node: LexborNode) -> int:
        """Index of `node`, kept now with the ancestors up to a kept one (-1: not under root)."""
        chain = []
        up: LexborNode | None = node
        while up is not None:
            found = index_get(up.mem_id)
            if found is not None:
                break
            chain.append(up)
            up = up.parent
        else:
            return -1
        parent = found
        for element in reversed(chain):
            index = len(elements)
            mem_id = element.mem_id
            index_of[mem_id] = index
            tag = element.tag
            elements.append(element)
            tags.append(tag)
            parents.append(parent)
            depths.append(depths[parent] + 1)
            in_link.append(in_link[parent] or (tag == "a" and mem_id in real))
            in_hidden.append(in_hidden[parent] or mem_id in hidden)
            chars.append(0)
            links.append(0)
            puncts.append(0)
            parent = index
        return parent

    # lexbor walks the tree in document order (in C). The loop is the hot path of extraction:
    # an element costs a type test, a text node holding only spaces one more
    page_nodes = 0
    noticed: list[int] = []  # elements holding a text node with a notice phrase (their block is found after)
    for node in root.traverse(include_text=True):
        if not node.is_text_node:
            if node.is_element_node:
                page_nodes += 1
            continue
        text = node.text_content
        if not text or text.isspace():
            continue
        parent_node = node.parent
        index = index_get(parent_node.mem_id) if parent_node is not None else None
        if index is None:
            index = keep(parent_node) if parent_node is not None else -1
            if index < 0:
                continue
        if in_hidden[index]:
            continue
        count = len("".join(text.split()))
        chars[index] += count
        if in_link[index]:
            links[index] += count
        else:
            puncts[index] += punctuation_marks(text)
        if phrases is not None and len(text) >= shortest and phrases.search(text):
            noticed.append(index)
    notice_blocks: set[int] = set()
    for index in noticed:  # the nearest block element (itself when it is one) is the notice
        while index > 0 and tags[index] not in BLOCK_TAGS:
            index = parents[index]
        notice_blocks.add(index)
    # children always come after their parent in document order: sum upwards in reverse
    count = len(elements)
    for index in range(count - 1, 0, -1):
        parent = parents[index]
        chars[parent] += chars[index]
        links[parent] += links[index]
        puncts[parent] += puncts[index]
    raw_chars = chars[:]
    blocks = {i for i in notice_blocks if i > 0 and chars[i] - links[i] <= _NOTICE_MAX_CHARS}
    blocks |= _teaser_lists(tags, parents, chars, links)
    excluded, discounted = _discount(blocks, parents, chars, links, puncts)
    _inline_links_are_text(tags, parents, chars, links, puncts, excluded)
    discounted_ids = frozenset(elements[i].mem_id for i in blocks if i > 0 and not excluded[parents[i]])
    scores = list(map(_score, chars, links, puncts))
    allowed = [i for i in range(count) if not excluded[i] and not in_hidden[i]]
    if not allowed:
        return None
    best = max(allowed, key=scores.__getitem__)
    if scores[best] <= 0:
        return None
    threshold = scores[best] * _NEAR_BEST
    chosen = max(
        (i for i in allowed if scores[i] >= threshold and tags[i] not in _NOT_CANDIDATES),
        key=lambda i: (depths[i], scores[i]),
        default=best,
    )
    share = puncts[chosen] / puncts[0] if puncts[0] else 0.0
    nodes_up: list[int] = []
    if page_nodes > count_above:
        ancestor = chosen
        while ancestor >= 0 and len(nodes_up) < 4:
            nodes_up.append(len(elements[ancestor].css("*")))  # the element and every one under it
            ancestor = parents[ancestor]
    return Candidate(
        elements[chosen],
        scores[chosen],
        chars[chosen],
        links[chosen],
        share,
        discounted,
        page_nodes,
        tuple(nodes_up),
        discounted_ids,
        (root.mem_id, index_of, raw_chars),
    )


def _inline_links_are_text(
    tags: list[str | None],
    parents: list[int],
    chars: list[int],
    links: list[int],
    puncts: list[int],
    excluded: list[bool],
) -> None:
    """Links inside a punctuated paragraph that is mostly its own text (a linked name or term in a
    sentence, common in English articles) are the paragraph's text, not navigation: they leave the
    link sums of the paragraph and its ancestors. A headline link with a short caption stays a link."""
    for index in range(1, len(tags)):
        inline = links[index]
        if (
            tags[index] != "p"
            or not inline
            or excluded[index]
            or puncts[index] < 2
            or chars[index] - inline < _INLINE_OWN * inline
        ):
            continue
        while index >= 0:
            links[index] -= inline
            index = parents[index]


def _teaser_lists(tags: list[str | None], parents: list[int], chars: list[int], links: list[int]) -> set[int]:
    """Lists (<ul>, <ol>) whose items are mostly "headline link + teaser" (a related-news list with
    summaries): punctuated like prose, often more text than a short article, and not one. An item
    holds a link of headline size that is a real part of its text, and text besides (pure link
    lists need no help: link text already counts against them)."""
    items: dict[int, int] = {}
    linked: dict[int, int] = {}
    for index in range(1, len(parents)):
        if not chars[index] or tags[index] != "li":
            continue
        parent = parents[index]
        if parent < 0:
            continue
        items[parent] = items.get(parent, 0) + 1
        if (
            links[index] >= _ITEM_LINK_CHARS
            and links[index] >= _ITEM_LINK_SHARE * chars[index]
            and chars[index] - links[index] >= _ITEM_TEASER_CHARS
        ):
            linked[parent] = linked.get(parent, 0) + 1
    return {
        i for i, n in linked.items() if n >= _MIN_ITEMS and n >= _ITEMS_SHARE * items[i] and tags[i] in ("ul", "ol")
    }


def _discount(
    blocks: set[int], parents: list[int], chars: list[int], links: list[int], puncts: list[int]
) -> tuple[list[bool], int]:
    """Take each outermost block's text out of its ancestors' sums; the block and everything
    inside it can no longer be chosen."""
    excluded = [False] * len(parents)
    if not blocks:
        return excluded, 0
    discounted = 0
    for index in range(1, len(parents)):  # pre-order: a parent's flag is final before its children
        parent = parents[index]
        if index in blocks and not excluded[parent]:
            discounted += 1
            n_chars, n_links, n_puncts = chars[index], links[index], puncts[index]
            ancestor = parent
            while ancestor >= 0:
                chars[ancestor] -= n_chars
                links[ancestor] -= n_links
                puncts[ancestor] -= n_puncts
                ancestor = parents[ancestor]
        excluded[index] = excluded[parent] or index in blocks
    return excluded, discounted
