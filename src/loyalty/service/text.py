"""Words and phrases in comments, diacritics-aware for Vietnamese: "chậm" and "cham" are one word."""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def fold(text: str) -> str:
    """Lower case without diacritics: NFD, combining marks dropped, đ -> d."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d").replace("Đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# Function words that say nothing about a problem, compared after folding.
_STOP_VI = """
và là của có không được cho với các những này đó kia thì mà rất quá đã đang sẽ tôi mình em anh chị bạn
họ nó chúng ta một hai khi nhưng nên vì để ở tại trong ngoài ra vào lên xuống cũng lại hơn nhiều ít như
thế nào gì ai đâu rồi nữa vẫn chỉ từ đến bị bởi về theo sau trước hay hoặc nếu thật lắm luôn mọi người
cái con chiếc lần việc khá hết còn đều vậy ạ nhé nha ơi thôi đây cả đi làm
"""
_STOP_EN = """
a an the and or but if of to in on at for with from by is are was were be been it this that these those
i me my we our you your he she they them his her its not no very so too just also as than then there
have has had do does did will would can could should about into out up down all any some more most
"""
STOPWORDS = frozenset(fold(w) for w in (_STOP_VI + _STOP_EN).split())


def words(text: str) -> list[tuple[str, str]]:
    """(folded, original lower-case) for each word, stopwords and one-letter words kept out."""
    found = []
    for match in _WORD.finditer(text):
        original = match.group().lower()
        key = fold(original)
        found.append((key, original) if len(key) > 1 and key not in STOPWORDS else ("", original))
    return found


@dataclass
class Term:
    term: str
    count: int
    examples: list[str] = field(default_factory=list)


def top_terms(comments: Iterable[str], *, limit: int = 15, examples: int = 2) -> tuple[list[Term], list[Term]]:
    """The most frequent words and two-word phrases, each counted once per comment, with examples.

    A phrase is two neighbouring words that are both not stopwords. Terms are shown in their
    most common spelling ("chậm" rather than "cham" if most people wrote the accents).
    """
    word_count: Counter[str] = Counter()
    pair_count: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    seen_in: dict[str, list[str]] = defaultdict(list)
    for comment in comments:
        tokens = words(comment)
        keys = {key for key, _ in tokens if key}
        pairs = {f"{a[0]} {b[0]}" for a, b in itertools.pairwise(tokens) if a[0] and b[0]}
        for key, original in tokens:
            if key:
                spellings[key][original] += 1
        for a, b in itertools.pairwise(tokens):
            if a[0] and b[0]:
                spellings[f"{a[0]} {b[0]}"][f"{a[1]} {b[1]}"] += 1
        for term in keys | pairs:
            if len(seen_in[term]) < examples:
                seen_in[term].append(comment.strip()[:300])
        word_count.update(keys)
        pair_count.update(pairs)

    def ranked(counter: Counter[str], minimum: int) -> list[Term]:
        ordered = sorted((item for item in counter.items() if item[1] >= minimum), key=lambda kv: (-kv[1], kv[0]))
        return [Term(spellings[key].most_common(1)[0][0], n, seen_in[key]) for key, n in ordered[:limit]]

    return ranked(word_count, 1), ranked(pair_count, 2)
