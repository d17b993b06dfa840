"""Tree helpers on selectolax (lexbor) nodes: pruning genre chrome and turning a node into text.

Everything here is iterative (explicit stacks), never recursive: pages nested thousands of levels
deep must not hit Python's recursion limit.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator
from functools import lru_cache

from selectolax.lexbor import LexborHTMLParser, LexborNode

from extractors.lines import BLOCK_TAGS, node_text

__all__ = [
    "BLOCK_TAGS",
    "node_text",
    "prune",
    "class_words",
    "worded",
    "iter_elements",
    "text_len",
    "outermost",
    "ALWAYS_DROP",
]

_WORD_SPLIT = re.compile(r"[\s_\-:.]+|(?<=[a-z])(?=[A-Z])")


def iter_elements(root: LexborNode) -> Iterator[LexborNode]:
    """Element descendants of root in document order (root included), iteratively."""
    stack = [root]
    while stack:
        node = stack.pop()
        if not node.is_element_node:
            continue
        yield node
        children = list(node.iter(include_text=False))
        stack.extend(reversed(children))


def text_len(node: LexborNode) -> int:
    """Length of the node's text without whitespace (cheap: lexbor does the walk)."""
    return len("".join(node.text(deep=True).split()))


def class_words(node: LexborNode) -> frozenset[str]:
    """Lower-cased words of the node's class and id attributes (split on - _ space, camelCase)."""
    attrs = node.attributes
    return _split_words(f"{attrs.get('class') or ''} {attrs.get('id') or ''}")


@lru_cache(maxsize=4096)
def _split_words(raw: str) -> frozenset[str]:
    return frozenset(w.lower() for w in _WORD_SPLIT.split(raw) if w)


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def worded(root: LexborNode, words: frozenset[str]) -> list[LexborNode]:
    """Elements under root (root included) whose class/id words (class_words) include one of
    `words`, in document order.

    Read in Python from the elements that have a class or an id: lexbor testing a substring
    selector per word ([class*=w i],[id*=w i], 76 of them) on every element took 4x longer. Same
    result as those selectors plus the word test: the selectors fold ASCII case only, so an
    attribute with other characters (str.lower() turns the Kelvin sign into "k") must also hold
    a word as an ASCII-folded substring."""
    named = _names_a_word
    out = []
    for node in root.css(_CLASS_OR_ID):
        attrs = node.attributes  # a dict built in C: cheaper than two reads through node.attrs
        if named(attrs.get("class") or "", attrs.get("id") or "", words):
            out.append(node)
    return out


_CLASS_OR_ID = "[class],[id]:not([class])"  # each element once


@lru_cache(maxsize=16384)
def _names_a_word(cls: str, ident: str, words: frozenset[str]) -> bool:
    if not _split_words(f"{cls} {ident}") & words:
        return False
    if cls.isascii() and ident.isascii():
        return True
    cls, ident = cls.translate(_ASCII_LOWER), ident.translate(_ASCII_LOWER)
    return any(word in cls or word in ident for word in _minimal(words))


@lru_cache(maxsize=8)
def _minimal(words: frozenset[str]) -> tuple[str, ...]:
    """The words that contain no other listed word: a substring test for these is one for all."""
    return tuple(sorted(w for w in words if not any(o != w and o in w for o in words)))


def outermost(nodes: list[LexborNode]) -> list[LexborNode]:
    """Drop nodes that sit inside another node of the list (decomposing both would free twice)."""
    ids = {n.mem_id for n in nodes}
    keep: list[LexborNode] = []
    seen: set[int] = set()
    for node in nodes:
        if node.mem_id in seen:
            continue
        seen.add(node.mem_id)
        parent = node.parent
        nested = False
        while parent is not None:
            if parent.mem_id in ids:
                nested = True
                break
            parent = parent.parent
        if not nested:
            keep.append(node)
    return keep


# form controls too: a <select> of 200 city names is the "densest text" on some portals
ALWAYS_DROP = frozenset(
    "script style noscript template iframe svg canvas object embed select option textarea input button".split()
)
_ALWAYS_DROP_SELECTOR = ",".join(sorted(ALWAYS_DROP))


def prune(
    tree: LexborHTMLParser,
    selectors: tuple[str, ...],
    words: frozenset[str],
    keep: Callable[[LexborHTMLParser, list[LexborNode]], LexborNode | None] | None = None,
    on_remove: Callable[[str, LexborNode], None] | None = None,
    text_size: Callable[[LexborNode], int | None] | None = None,
) -> int:
    """Remove genre chrome in place.

    Non-content tags (script, style, ...) always go. Other selector matches and nodes whose
    class/id words name chrome (GNE's list) go unless they are a layout wrapper rather than
    chrome: they hold the <h1>, a WeChat body, most of the page's text, or the node `keep`
    picks (the densest text block, computed after the non-content tags are gone; `keep` also
    gets the nodes whose class/id words are in `words`, found once for both).
    `on_remove(rule, node)` hears of every selector or class-word removal (for traces);
    `text_size(node)` may know a node's text length already (density measured it), else None.
    Returns how many nodes were removed.
    """
    removed = outermost(tree.css(_ALWAYS_DROP_SELECTOR))
    for node in removed:
        node.decompose()
    count = len(removed)
    body = tree.body
    if body is None:
        return count
    marked = worded(body, words)
    anchor = keep(tree, marked) if keep is not None else None
    known = text_size(body) if text_size is not None else None  # density counted the body already
    total = (known if known is not None else text_len(body)) or 1
    protected_ids: set[int] = set()
    while anchor is not None:
        protected_ids.add(anchor.mem_id)
        anchor = anchor.parent

    # the title's and a WeChat body's ancestors, found once (not a subtree query per candidate)
    holders: set[int] = set()
    for held in body.css("h1, #js_content"):
        node_up: LexborNode | None = held
        while node_up is not None and node_up.mem_id not in holders:
            holders.add(node_up.mem_id)
            node_up = node_up.parent

    def is_wrapper(node: LexborNode) -> bool:
        mem_id = node.mem_id
        if mem_id in protected_ids or mem_id in holders or node.tag in ("html", "body"):
            return True
        size = text_size(node) if text_size is not None else None
        return (size if size is not None else text_len(node)) > 0.6 * total

    matched: list[LexborNode] = []
    selectors = tuple(s for s in selectors if s not in ALWAYS_DROP)
    try:  # one query for all: lexbor walks the tree once
        matched = tree.css(",".join(selectors)) if selectors else []
    except Exception:  # a bad selector from config: try them one by one, skipping the bad ones
        for selector in selectors:
            try:
                matched.extend(tree.css(selector))
            except Exception:
                continue
    doomed = [node for node in outermost(matched) if not is_wrapper(node)]
    gone: set[int] = set()  # marked nodes inside what goes now: freed, never to be touched again
    if marked:
        for node in doomed:
            gone.update(inner.mem_id for inner in node.css(_CLASS_OR_ID))
    for node in doomed:
        if on_remove is not None:
            on_remove("drop_selectors", node)
        node.decompose()
    count += len(doomed)
    # whole chrome words only ("share-bar" yes, "shareholders" no): see worded()
    chrome = [
        node for node in marked if node.mem_id not in gone and node.tag not in ("html", "body") and not is_wrapper(node)
    ]
    chrome = outermost(chrome)
    for node in chrome:
        if on_remove is not None:
            on_remove("class/id word " + ",".join(sorted(class_words(node) & words)), node)
        node.decompose()
    return count + len(chrome)
