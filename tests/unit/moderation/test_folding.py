"""Text folding: the evasions sellers use fold to one form; genuine text in other scripts is left alone."""
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moderation.folding import fold


@pytest.mark.parametrize("written, folded", [
    # separator tricks
    ("c-o-c-a-i-n-e", "cocaine"),
    ("C.O.C.A.I.N.E", "cocaine"),
    ("c o c a i n e delivery", "cocaine delivery"),
    ("c_o_c_a_i_n_e", "cocaine"),
    ("c*o*c*a*i*n*e", "cocaine"),
    ("k.o.k.s k.a.u.f.e.n", "koks kaufen"),
    ("c - o - c - a - i - n - e", "cocaine"),
    ("co\u200bca\u200bi\u200dne", "cocaine"),          # zero-width space and joiner
    ("coca\u00adine", "cocaine"),                      # soft hyphen
    # homoglyphs: Cyrillic and Greek look-alikes inside Latin words
    ("Buy \u0441\u043e\u0441\u0430\u0456n\u0435 now", "buy cocaine now"),    # с о с а і (Cyrillic) + n + е
    ("\u0441-\u043e-\u0441-\u0430-\u0456-n-\u0435", "cocaine"),              # spaced and Cyrillic at once
    ("\u0412uy c\u043eke", "buy coke"),                                      # Cyrillic В and о
    ("\u0392UY \u039cDMA", "buy mdma"),                                      # Greek Β and Μ
    ("\u0441\u043e\u0441\u0430 for sale", "coca for sale"),                  # a whole look-alike word in Latin text
    # a Latin letter slipped into a Russian word goes back to Cyrillic
    ("\u043a\u043e\u043aa\u0438\u043d", "\u043a\u043e\u043a\u0430\u0438\u043d"),
    # leetspeak, without breaking model numbers
    ("c0caine h3r01n x4n4x m3th", "cocaine heroin xanax meth"),
    ("C0CA1NE 4 sale", "cocaine 4 sale"),
    ("buy ar15", "buy ar15"),
    ("AK47 and M4A1 and mp5", "ak47 and m4a1 and mp5"),
    ("Glock 19 for sale", "glock 19 for sale"),
    ("p1lls and c@ndy", "pills and candy"),
    # compatibility forms, case, marks
    ("\uff43\uff4f\uff43\uff41\uff49\uff4e\uff45", "cocaine"),             # full-width
    ("\U0001d41c\U0001d428\U0001d41c\U0001d41a\U0001d422\U0001d427\U0001d41e", "cocaine"),  # mathematical bold
    ("c\u0336o\u0336c\u0336a\u0336i\u0336n\u0336e\u0336", "cocaine"),      # strike-through overlay
    ("Achet\u00e9r  COCA\u00cfNE!!", "acheter cocaine"),
    ("Stra\u00dfe", "strasse"),
    # pictographs are kept as words
    ("\u2744\ufe0f delivery \U0001f48a", "\u2744 delivery \U0001f48a"),
])
def test_evasions_fold_to_plain_words(written, folded):
    assert fold(written) == folded


@pytest.mark.parametrize("genuine", [
    "кокаин купить",
    "Купить квартиру в Москве",
    "Продаю велосипед, почти новый",
    "Купити квартиру у Києві",
    "Το σπίτι μου είναι μεγάλο",
    "مواد مخدرة للبيع",
    "فروش ماشین دست دوم",
    "Satılık araba",
])
def test_genuine_text_keeps_its_script(genuine):
    folded = fold(genuine)
    scripts = {unicodedata.name(c).split()[0] for c in folded if c.isalpha()}
    original = {unicodedata.name(c).split()[0] for c in genuine if c.isalpha()}
    assert scripts == original


def test_issue_evasions_reach_the_words_a_list_or_model_knows():
    """The evasions listed in the moderation issue, folded."""
    assert "cocaine" in fold("c-o-c-a-i-n-e").split()
    assert fold("koks kaufen") == "koks kaufen"
    assert fold("кокаин купить") == "кокаин купить"
    assert fold("Glock 19 for sale") == "glock 19 for sale"
    assert fold("\u0421\u041e\u0421\u0410INE") == "cocaine"       # Cyrillic capitals С О С А + Latin INE
    assert "ar15" in fold("ar15 kit").split()


_cyrillic = st.text(alphabet=st.characters(min_codepoint=0x0430, max_codepoint=0x044f) | st.just(" "), max_size=40)
_any = st.text(max_size=60)


@given(_any)
@settings(max_examples=300, deadline=None)
def test_folding_twice_changes_nothing(text):
    assert fold(fold(text)) == fold(text)


@given(_any)
@settings(max_examples=300, deadline=None)
def test_folded_text_is_lower_case_single_spaced_and_visible(text):
    folded = fold(text)
    assert folded == folded.casefold()
    assert "  " not in folded and folded == folded.strip()
    assert not any(unicodedata.category(c) in ("Cf", "Mn") for c in folded)


@given(_cyrillic)
@settings(max_examples=300, deadline=None)
def test_plain_russian_text_is_never_turned_latin(text):
    folded = fold(text)
    assert all("CYRILLIC" in unicodedata.name(c) for c in folded if c.isalpha())


@given(st.text(alphabet=st.characters(min_codepoint=ord("a"), max_codepoint=ord("z")), min_size=4, max_size=20),
       st.lists(st.integers(min_value=0, max_value=19), max_size=5),
       st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"]))
def test_invisible_characters_change_nothing(word, positions, invisible):
    hidden = list(word)
    for p in sorted(positions, reverse=True):
        hidden.insert(min(p, len(hidden)), invisible)
    assert fold("".join(hidden)) == fold(word)
