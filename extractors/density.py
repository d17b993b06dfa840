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
    # iterative pre-order walk; stack holds (node, parent index, depth, inside a link)
    stack: list[tuple[LexborNode, int, int, bool]] = [(root, -1, 0, False)]
    while stack:
        node, parent, depth, in_link = stack.pop()
        if node.is_text_node:
            if parent < 0:
                continue
            text = node.text_content or ""
            count = len("".join(text.split()))
            if not count:
                continue
            chars[parent] += count
            if in_link:
                links[parent] += count
            else:
                puncts[parent] += len(text) - len(text.translate(_DROP_PUNCTUATION))
            continue
        if not node.is_element_node:
            continue
        index = len(elements)
        elements.append(node)
        parents.append(parent)
        depths.append(depth)
        chars.append(0)
        links.append(0)
        puncts.append(0)
        link_here = in_link or node.tag == "a"
        for child in node.iter(include_text=True):
            stack.append((child, index, depth + 1, link_here))
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
