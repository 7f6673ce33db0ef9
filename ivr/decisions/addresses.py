"""Which words of an answer to "where is the problem?" are a street's name.

"Gun Club Road", "Shooting Star Lane", "Hangman's Way": a street's name may hold words the
crisis screen listens for. When an answer looks like an address, the name's words are left out
of screening, and only they: "1400 Gun Club Road, a man there has a gun" still reaches 911.

An answer looks like an address when a street type ("road", "lane", "calle") comes with a house
number right before its name ("1400 Gun Club Road", "calle Pistola 12"), or when the answer is
nothing but one or two streets ("Gun Club Road", "on Gun Club Rd and Main Street"). A name is
at most `MAX_NAME_WORDS` words, never a number, never a word like "and", "on" or "my".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ivr.language.text import Utterance

MAX_NAME_WORDS = 3
"""Words a street's name may have ("Gun Club", "Martin Luther King")."""

NUMBER_WORDS = frozenset(
    """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred thousand
    cero dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince
    veinte treinta cuarenta cincuenta sesenta setenta ochenta noventa cien ciento mil
    """.split()
)
"""House numbers said as words ("fourteen hundred Gun Club Road"); not "una", "uno" or "oh",
which are mostly articles and fillers."""

LEAD_WORDS = frozenset(
    """
    it is its on at by near the off of in corner it s between and y en la el de del por cerca
    esquina entre es esta numero number
    """.split()
)
"""Words that may stand around streets in an answer that is nothing but streets."""

NOT_A_NAME = frozenset(
    """
    a an the and or on at by of in to my his her our their your this that there here is are
    was were has have had he she they we i me you it with from for near off
    y o en la el los las de del al mi mis su sus un una es esta hay con que por para
    """.split()
)
"""Words that end a street's name when reading back from its type."""


def _is_number(word: str) -> bool:
    return word.isdigit() or word in NUMBER_WORDS


def street_name_positions(
    utterance: Utterance, street_types: Mapping[str, Collection[str]]
) -> frozenset[int]:
    """Positions of the words that name a street, when the answer looks like an address."""
    found = utterance.words
    before = set(street_types.get("en", ()))  # English: the type after the name
    after = set(street_types.get("es", ()))  # Spanish: the type before the name
    names: list[tuple[int, int, bool]] = []  # (first, last, numbered) of each name found
    for index, word in enumerate(found):
        if word in before:
            first = index
            while (
                first > 0
                and index - first < MAX_NAME_WORDS
                and found[first - 1] not in NOT_A_NAME
                and not _is_number(found[first - 1])
                and found[first - 1] not in before
            ):
                first -= 1
            if first < index:
                numbered = first > 0 and _is_number(found[first - 1])
                names.append((first, index - 1, numbered))
        if word in after:
            last = index
            while (
                last + 1 < len(found)
                and last - index < MAX_NAME_WORDS
                and found[last + 1] not in NOT_A_NAME
                and not _is_number(found[last + 1])
                and found[last + 1] not in after
            ):
                last += 1
            if last > index:
                numbered = last + 1 < len(found) and _is_number(found[last + 1])
                numbered = numbered or (index > 0 and _is_number(found[index - 1]))
                names.append((index + 1, last, numbered))
    if not names:
        return frozenset()
    covered = {p for first, last, _ in names for p in range(first, last + 1)}
    types = {i for i, w in enumerate(found) if w in before or w in after}
    only_streets = all(
        i in covered or i in types or w in LEAD_WORDS or _is_number(w) for i, w in enumerate(found)
    )
    return frozenset(
        p
        for first, last, numbered in names
        if numbered or only_streets
        for p in range(first, last + 1)
    )
