"""Text-density choice of the article container, for when trafilatura finds too little.

One bottom-up pass sums, for every element, its characters, the characters inside links and the
punctuation outside links (CJK punctuation counted: Chinese sentences carry ，。、 where English
carries commas, which is what readability misses). The score rewards punctuated text and
punishes link text; among near-best elements the deepest wins, so we get the article's own
container rather than <body>.
"""
from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborNode

__all__ = ["best_container", "Candidate", "PUNCTUATION"]

PUNCTUATION = frozenset("，。！？；：、“”‘’《》（）…,.!?;:\"'()")
_DROP_PUNCTUATION = str.maketrans("", "", "".join(PUNCTUATION))
_LINK_WEIGHT = 3.0
_PUNCT_WEIGHT = 30.0
_NEAR_BEST = 0.93


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


def best_container(root: LexborNode) -> Candidate | None:
    """The element whose text is most article-like, or None when the page has no text."""
    elements: list[LexborNode] = []
    parents: list[int] = []
    depths: list[int] = []
    chars: list[int] = []
    links: list[int] = []
    puncts: list[int] = []
    in_link: list[bool] = []
    index_of: dict[int, int] = {}
    # lexbor walks the tree in document order (in C); each node finds its parent's index by id
    for node in root.traverse(include_text=True):
        if node.is_text_node:
            text = node.text_content
            if not text:
                continue
            count = len("".join(text.split()))
            parent = node.parent
            index = index_of.get(parent.mem_id) if (count and parent is not None) else None
            if index is None:
                continue
            chars[index] += count
            if in_link[index]:
                links[index] += count
            else:
                puncts[index] += len(text) - len(text.translate(_DROP_PUNCTUATION))
            continue
        if not node.is_element_node:
            continue
        parent_node = node.parent
        parent = index_of.get(parent_node.mem_id, -1) if parent_node is not None else -1
        index_of[node.mem_id] = len(elements)
        elements.append(node)
        parents.append(parent)
        depths.append(depths[parent] + 1 if parent >= 0 else 0)
        chars.append(0)
        links.append(0)
        puncts.append(0)
        in_link.append((parent >= 0 and in_link[parent]) or node.tag == "a")
    if not elements:
        return None
    # children always come after their parent in pre-order: sum upwards in reverse
    for index in range(len(elements) - 1, 0, -1):
        parent = parents[index]
        if parent >= 0:
            chars[parent] += chars[index]
            links[parent] += links[index]
            puncts[parent] += puncts[index]
    scores = [_score(chars[i], links[i], puncts[i]) for i in range(len(elements))]
    best = max(range(len(elements)), key=lambda i: scores[i])
    if scores[best] <= 0:
        return None
    threshold = scores[best] * _NEAR_BEST
    chosen = max(
        (i for i in range(len(elements)) if scores[i] >= threshold and elements[i].tag not in ("a", "span", "b", "strong", "em", "i", "font")),
        key=lambda i: (depths[i], scores[i]),
        default=best,
    )
    share = puncts[chosen] / puncts[0] if puncts[0] else 0.0
    return Candidate(elements[chosen], scores[chosen], chars[chosen], links[chosen], share)
