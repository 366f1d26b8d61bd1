"""Text folding against evasion: pure functions, no I/O.

`fold(text)` turns the spellings people use to slip past lists and models into
one canonical form, so that banks and the classifier see `cocaine` whether the
seller wrote `C-O-C-A-I-N-E`, `c0caine`, `с о с а і n е` (Cyrillic look-alikes),
`ｃｏｃａｉｎｅ` or `co\u200bcaine`. Steps, in order:

1. NFKC: full-width, mathematical, circled and other compatibility letters
   become plain ones.
2. Invisible characters (zero-width spaces and joiners, soft hyphens, bidi
   controls: Unicode category Cf) are dropped.
3. Spaced-out letters (`c-o-c-a-i-n-e`, `c.o.c.a.i.n.e`, `c o c a i n e`): a run
   of three or more single characters separated by spaces or punctuation is
   joined into one word.
4. Homoglyphs, per word, from Unicode's confusables table (the pinned
   `confusable-homoglyphs` package): a word that mixes Latin with Cyrillic or
   Greek letters is written in one script, the one its unambiguous letters
   belong to (`сoсaine` -> `cocaine`, `кокaин` with a Latin `a` -> `кокаин`). A
   word wholly of Cyrillic/Greek look-alikes becomes Latin only where the text
   around it is Latin. A genuine Russian or Ukrainian word is never touched.
5. Case folding and removal of combining marks (accents, strike-through and
   other overlays).
6. Leetspeak: digits and `@ $ !` between letters become the letters they stand
   for (`c0caine`, `h3r01n`, `x4n4x`), but a word shaped like a model number
   (`ar15`, `ak47`, `m4a1`, `g17`, `mp5`) and digits standing alone
   (`glock 19`) are kept as they are.
7. Punctuation becomes spacing; pictographs (💊 ❄ 🔫) are kept as words of
   their own, since sellers use them as code.
"""
from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache

from confusable_homoglyphs import categories, confusables

_SEPARATORS = r"[\s\-._*·•/|~+=]+"
_CHAR = r"[^\W_]"
# A single character, then two or more (separator, single character): c-o-c-a-i-n-e, c . o . c, c o c a
_SPACED = re.compile(rf"(?<!{_CHAR}){_CHAR}(?:{_SEPARATORS}{_CHAR}(?!{_CHAR})){{2,}}")
_SEPARATOR = re.compile(_SEPARATORS)
_BARE_SPACE = re.compile(r"(?<=[^\W_])\s+(?=[^\W_])")
_LETTER = r"[^\W\d_]"
_LEET_RUN = re.compile(rf"(?<={_LETTER})[0134578@$!]{{1,2}}(?={_LETTER})")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b",
                       "@": "a", "$": "s", "!": "i"})
# A short letter prefix and digits, perhaps one more letter and digits: ar15, ak47, m4a1, g17, mp5, b2b.
_MODEL_NUMBER = re.compile(r"[^\W\d_]{1,3}\d+(?:[^\W\d_]\d*)?")
_WORD = re.compile(r"\S+")
# Words, and pictographs (Miscellaneous Symbols, Dingbats, emoji) as words of their own.
_WORD_OR_PICTOGRAPH = re.compile(r"[^\W_]+|[\u2600-\u27bf\U0001f000-\U0001faff]")
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


@lru_cache(maxsize=1)
def _category_patterns() -> tuple[re.Pattern, re.Pattern]:
    """Regexes for every invisible format character (Cf) and every combining mark (Mn, Me) Python knows.

    Read from unicodedata once, so a newer Unicode in a newer Python is covered without a hand-kept list.
    """
    ranges: dict[str, list[list[int]]] = {"Cf": [], "M": []}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        key = "Cf" if category == "Cf" else "M" if category in ("Mn", "Me") else None
        if key:
            spans = ranges[key]
            if spans and spans[-1][1] == code - 1:
                spans[-1][1] = code
            else:
                spans.append([code, code])

    def char_class(spans: list[list[int]]) -> re.Pattern:
        return re.compile("[" + "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in spans) + "]+")
    return char_class(ranges["Cf"]), char_class(ranges["M"])


@lru_cache(maxsize=1)
def _homoglyph_tables() -> dict[str, dict[str, str]]:
    """For each script, the single-letter look-alikes of the other two scripts' letters, in that script.

    Built once from the confusables table: `tables["LATIN"]["с"] == "c"` (Cyrillic es),
    `tables["CYRILLIC"]["a"] == "а"`. Upper and lower case are kept apart because
    look-alikes differ by case (Cyrillic `В` looks like `B`, `в` like nothing Latin).
    """
    tables: dict[str, dict[str, str]] = {script: {} for script in _SCRIPTS}
    for char, glyphs in confusables.confusables_data.items():
        source = categories.alias(char) if len(char) == 1 else None
        if source not in _SCRIPTS or not char.isalpha():
            continue
        for glyph in glyphs:
            target_char = glyph["c"]
            if len(target_char) != 1 or not target_char.isalpha():
                continue
            target = categories.alias(target_char)
            if target in _SCRIPTS and target != source and "SMALL CAPITAL" not in glyph["n"]:
                # the first look-alike listed wins; later ones (rarer letters) never overwrite it
                tables[target].setdefault(char, target_char)
    return tables


@lru_cache(maxsize=8192)
def _script(char: str) -> str | None:
    if not char.isalpha():
        return None
    alias = categories.alias(char)
    return alias if alias in _SCRIPTS else None


@lru_cache(maxsize=8192)
def _unambiguous_script(char: str) -> str | None:
    """The script of a letter that has no look-alike in another script, else None."""
    script = _script(char)
    tables = _homoglyph_tables()
    if script and not any(char in tables[other] for other in _SCRIPTS if other != script):
        return script
    return None


def _unambiguous_counts(text: str) -> dict[str, int]:
    """Letters per script that have no look-alike in another script: the evidence of what a word is written in."""
    counts = dict.fromkeys(_SCRIPTS, 0)
    for char in text:
        script = _unambiguous_script(char)
        if script:
            counts[script] += 1
    return counts


def _in_script(word: str, script: str) -> str:
    table = _homoglyph_tables()[script]
    return "".join(table.get(c, c) for c in word)


def _fold_homoglyphs(text: str) -> str:
    if text.isascii():
        return text
    text_counts = _unambiguous_counts(text)
    text_script = "LATIN" if text_counts["LATIN"] >= max(text_counts["CYRILLIC"], text_counts["GREEK"]) else None
    words = []
    for word in text.split(" "):
        scripts = {s for s in map(_script, word) if s}
        if len(scripts) > 1:
            counts = _unambiguous_counts(word)
            majority = max(_SCRIPTS, key=lambda s: (counts[s], s == "LATIN"))
            word = _in_script(word, majority)
        elif scripts and scripts != {"LATIN"} and text_script == "LATIN" and text_counts["LATIN"]:
            latin = _in_script(word, "LATIN")
            if all(_script(c) in (None, "LATIN") for c in latin):  # every letter had a Latin look-alike
                word = latin
        words.append(word)
    return " ".join(words)


def _join_spaced(match: re.Match) -> str:
    """`c-o-c-a` -> `coca`; where the letters are joined by punctuation, a bare space still parts words
    (`k.o.k.s k.a.u.f.e.n` -> `koks kaufen`)."""
    run = match.group(0)
    gaps = _SEPARATOR.findall(run)
    if all(gap.isspace() for gap in gaps):
        return _SEPARATOR.sub("", run)
    return " ".join(_SEPARATOR.sub("", word) for word in _BARE_SPACE.split(run))


def _fold_leet(word: str) -> str:
    if _MODEL_NUMBER.fullmatch(word):
        return word
    return _LEET_RUN.sub(lambda m: m.group(0).translate(_LEET), word)


def _strip_marks(text: str) -> str:
    if text.isascii():
        return text
    marks = _category_patterns()[1]
    return unicodedata.normalize("NFC", marks.sub("", unicodedata.normalize("NFD", text)))


def _fold_once(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    if not text.isascii():
        text = _category_patterns()[0].sub("", text)
    text = " ".join(text.split())
    text = _SPACED.sub(_join_spaced, text)
    text = _fold_homoglyphs(text)
    text = _strip_marks(text.casefold())
    words = [_fold_leet(w) for w in _WORD.findall(text)]
    return " ".join(w for word in words for w in _WORD_OR_PICTOGRAPH.findall(word))


def fold(text: str) -> str:
    """The canonical form of `text` for matching and classification (see the module's docstring).

    One pass can expose a new evasion (`c:o:c` becomes `c o c`, which spells a
    word once joined), so passes repeat until nothing changes; folded text
    folds to itself.
    """
    folded = _fold_once(text)
    for _ in range(3):
        again = _fold_once(folded)
        if again == folded:
            break
        folded = again
    return folded
