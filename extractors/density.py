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
* anchors that wrap block elements or long punctuated prose are not links (an unclosed <a> around
  the article would otherwise make the article look like a link list).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from selectolax.lexbor import LexborNode

from extractors.lines import BLOCK_TAGS, real_links

__all__ = ["best_container", "Candidate", "PUNCTUATION", "describe"]

PUNCTUATION = frozenset("，。！？；：、“”‘’《》（）…,.!?;:\"'()")
_DROP_PUNCTUATION = str.maketrans("", "", "".join(PUNCTUATION))
_LINK_WEIGHT = 3.0
_PUNCT_WEIGHT = 30.0
_NEAR_BEST = 0.93
_NOT_CANDIDATES = frozenset(("a", "span", "b", "strong", "em", "i", "font", "u", "small", "big", "label", "p"))
_NOTICE_MAX_CHARS = 600      # a notice is a short block; a long one is an article that mentions copyright
_ITEM_LINK_CHARS = 6         # a teaser-list item: a headline link of this size ...
_ITEM_LINK_SHARE = 0.07      # ... that is this much of the item's text ...
_ITEM_TEASER_CHARS = 20      # ... beside this much other text
_MIN_ITEMS = 3
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
    notices: int = 0          # notice blocks that were not allowed to count
    page_nodes: int = 0       # elements on the page
    nodes_up: tuple[int, ...] = ()  # elements under the node, its parent, grandparent, ... (4 levels)
    discounted: frozenset[int] = frozenset()   # mem_ids of the notice and teaser-list blocks that did not count
    sizes: Any = None         # mem_id -> characters (before any discount), for every element: see size()

    def size(self, node: LexborNode) -> int | None:
        """Characters of the node's text as density counted them, or None for a node it did not see."""
        if self.sizes is None:
            return None
        index_of, chars = self.sizes
        index = index_of.get(node.mem_id)
        return chars[index] if index is not None else None


def describe(node: LexborNode) -> str:
    """tag#id.class, for traces."""
    attrs = node.attributes
    out = node.tag or "?"
    if attrs.get("id"):
        out += f"#{attrs['id']}"
    if attrs.get("class"):
        out += "." + ".".join((attrs["class"] or "").split())
    return out[:80]


def best_container(root: LexborNode, notice: Any = None, hidden: frozenset[int] = frozenset(),
                   real: frozenset[int] | None = None, text: str | None = None) -> Candidate | None:
    """The element whose text is most article-like, or None when the page has no text.

    `notice` matches the genre's notice vocabulary; `hidden` are mem_ids of elements whose text
    must not count (comment threads); `real` are the mem_ids of real links (lines.real_links);
    `text` is root's text when the caller has it already."""
    if real is None:
        real = real_links(root)
    phrases = None   # the notice phrases this page holds, as one regex: a text node is tested in C
    shortest = 0
    if notice is not None:
        found = {m.group(0) for m in notice.finditer(text if text is not None else root.text(deep=True))}
        if found:
            phrases = re.compile("|".join(map(re.escape, sorted(found, key=len, reverse=True))))
            shortest = min(map(len, found))
    elements: list[LexborNode] = []
    parents: list[int] = []
    depths: list[int] = []
    chars: list[int] = []
    links: list[int] = []
    puncts: list[int] = []
    in_link: list[bool] = []
    in_hidden: list[bool] = []
    notice_blocks: set[int] = set()
    index_of: dict[int, int] = {}
    # lexbor walks the tree in document order (in C); each node finds its parent's index by id.
    # The loop is the hot path of extraction: attribute reads and list methods are bound once.
    index_get = index_of.get
    add_element, add_parent, add_depth = elements.append, parents.append, depths.append
    add_chars, add_links, add_puncts = chars.append, links.append, puncts.append
    add_in_link, add_in_hidden = in_link.append, in_hidden.append
    noticed: list[int] = []      # elements holding a text node with a notice phrase (their block is found after)
    for node in root.traverse(include_text=True):
        if node.is_text_node:
            text = node.text_content
            if not text:
                continue
            parent_node = node.parent
            index = index_get(parent_node.mem_id) if parent_node is not None else None
            if index is None or in_hidden[index]:
                continue
            count = len("".join(text.split()))
            if not count:
                continue
            chars[index] += count
            if in_link[index]:
                links[index] += count
            else:
                puncts[index] += len(text) - len(text.translate(_DROP_PUNCTUATION))
            if phrases is not None and len(text) >= shortest and phrases.search(text):
                noticed.append(index)
            continue
        if not node.is_element_node:
            continue
        parent_node = node.parent
        parent = index_get(parent_node.mem_id, -1) if parent_node is not None else -1
        index = len(elements)
        mem_id = node.mem_id
        index_of[mem_id] = index
        add_element(node)
        add_parent(parent)
        add_chars(0)
        add_links(0)
        add_puncts(0)
        tag = node.tag
        if parent >= 0:
            add_depth(depths[parent] + 1)
            add_in_link(in_link[parent] or (tag == "a" and mem_id in real))
            add_in_hidden(in_hidden[parent] or mem_id in hidden)
        else:
            add_depth(0)
            add_in_link(tag == "a" and mem_id in real)
            add_in_hidden(mem_id in hidden)
    for index in noticed:        # the nearest block element (itself when it is one) is the notice
        while index > 0 and elements[index].tag not in BLOCK_TAGS:
            index = parents[index]
        notice_blocks.add(index)
    if not elements:
        return None
    # children always come after their parent in pre-order: sum upwards in reverse
    sizes = [1] * len(elements)
    for index in range(len(elements) - 1, 0, -1):
        parent = parents[index]
        if parent >= 0:
            chars[parent] += chars[index]
            links[parent] += links[index]
            puncts[parent] += puncts[index]
            sizes[parent] += sizes[index]
    raw_chars = chars[:]
    blocks = {i for i in notice_blocks if i > 0 and chars[i] - links[i] <= _NOTICE_MAX_CHARS}
    blocks |= _teaser_lists(elements, parents, chars, links)
    excluded, discounted = _discount(blocks, parents, chars, links, puncts)
    discounted_ids = frozenset(elements[i].mem_id for i in blocks if i > 0 and not excluded[parents[i]])
    scores = [_score(chars[i], links[i], puncts[i]) for i in range(len(elements))]
    allowed = [i for i in range(len(elements)) if not excluded[i] and not in_hidden[i]]
    if not allowed:
        return None
    best = max(allowed, key=lambda i: scores[i])
    if scores[best] <= 0:
        return None
    threshold = scores[best] * _NEAR_BEST
    chosen = max(
        (i for i in allowed if scores[i] >= threshold and elements[i].tag not in _NOT_CANDIDATES),
        key=lambda i: (depths[i], scores[i]),
        default=best,
    )
    share = puncts[chosen] / puncts[0] if puncts[0] else 0.0
    nodes_up = []
    ancestor = chosen
    while ancestor >= 0 and len(nodes_up) < 4:
        nodes_up.append(sizes[ancestor])
        ancestor = parents[ancestor]
    return Candidate(elements[chosen], scores[chosen], chars[chosen], links[chosen], share, discounted,
                     len(elements), tuple(nodes_up), discounted_ids, (index_of, raw_chars))


def _teaser_lists(elements: list[LexborNode], parents: list[int], chars: list[int], links: list[int]) -> set[int]:
    """Lists (<ul>, <ol>) whose items are mostly "headline link + teaser" (a related-news list with
    summaries): punctuated like prose, often more text than a short article, and not one. An item
    holds a link of headline size that is a real part of its text, and text besides (pure link
    lists need no help: link text already counts against them)."""
    items: dict[int, int] = {}
    linked: dict[int, int] = {}
    for index in range(1, len(parents)):
        if not chars[index] or elements[index].tag != "li":
            continue
        parent = parents[index]
        if parent < 0:
            continue
        items[parent] = items.get(parent, 0) + 1
        if links[index] >= _ITEM_LINK_CHARS and links[index] >= _ITEM_LINK_SHARE * chars[index] \
                and chars[index] - links[index] >= _ITEM_TEASER_CHARS:
            linked[parent] = linked.get(parent, 0) + 1
    return {i for i, n in linked.items()
            if n >= _MIN_ITEMS and n >= _ITEMS_SHARE * items[i] and elements[i].tag in ("ul", "ol")}


def _discount(blocks: set[int], parents: list[int], chars: list[int], links: list[int],
              puncts: list[int]) -> tuple[list[bool], int]:
    """Take each outermost block's text out of its ancestors' sums; the block and everything
    inside it can no longer be chosen."""
    excluded = [False] * len(parents)
    if not blocks:
        return excluded, 0
    discounted = 0
    for index in range(1, len(parents)):   # pre-order: a parent's flag is final before its children
        parent = parents[index]
        if index in blocks and not excluded[parent]:
            discounted += 1
            c, l, p = chars[index], links[index], puncts[index]
            ancestor = parent
            while ancestor >= 0:
                chars[ancestor] -= c
                links[ancestor] -= l
                puncts[ancestor] -= p
                ancestor = parents[ancestor]
        excluded[index] = excluded[parent] or index in blocks
    return excluded, discounted
