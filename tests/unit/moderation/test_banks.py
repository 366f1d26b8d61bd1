"""Banks of known-bad content and the default rule-based scorer."""
import pytest

from moderation.banks import BankScorer, load_banks, normalise, parse_banks
from moderation.config import ModerationConfig
from datetime import datetime, timezone

from warden.contract.events import ContentUpdated

SCORER = BankScorer(load_banks(ModerationConfig().banks_file))


def item(title=None, text=None):
    """Banks only ever see the platform's facts (platform.content), never a report's claim."""
    at = datetime(2026, 6, 1, tzinfo=timezone.utc)
    return ContentUpdated(content_id="c1", kind="channel", owner_account_id=None, title=title, text=text,
                          public_in_search=True, created_at=at, updated_at=at)


@pytest.mark.parametrize("raw, expected", [
    ("Achetér  COCAÏNE!!", "acheter cocaine"),
    ("C0CA1NE 4 sale", "cocaine 4 sale"),      # leetspeak in words, numbers kept
    ("known_abuse-sample 0002", "known abuse sample 0002"),
    ("Купить   КОКАИН", "купить кокаин"),
])
def test_normalise(raw, expected):
    assert normalise(raw) == expected


@pytest.mark.parametrize("title, text, bank, how, high", [
    ("KNOWN-ABUSE-SAMPLE-0001", None, "known-abuse-material", "exact", True),
    ("Known abuse sample 0002 !", None, "known-abuse-material", "normalised", True),
    (None, "KNOWN-TERROR-SAMPLE-0001", "known-terrorist-content", "exact", True),
    ("Best C0CAINE for s4le", None, "drugs-for-sale", "keyword:en", False),
    (None, "Kokain kaufen, schnell", "drugs-for-sale", "keyword:de", False),
    ("купить кокаин", None, "drugs-for-sale", "keyword:ru", False),
    ("Order AK-47 today", None, "weapons-for-sale", "regex:en", False),
])
def test_default_banks_match(title, text, bank, how, high):
    [found] = SCORER.detect(item(title, text))
    assert (found.bank_id, found.how, found.high_severity) == (bank, how, high)


@pytest.mark.parametrize("title, text, bank", [
    ("c-o-c-a-i-n-e for sale", None, "drugs-for-sale"),
    ("\u0412uy \u0441\u043e\u0441\u0430\u0456n\u0435 now", None, "drugs-for-sale"),     # Cyrillic look-alikes
    (None, "k.o.k.a.i.n k.a.u.f.e.n", "drugs-for-sale"),
    ("buy ar15 today", None, "weapons-for-sale"),                            # leetspeak folding keeps ar15
    ("ORDER AK47", None, "weapons-for-sale"),
])
def test_evasions_are_folded_before_banks_match(title, text, bank):
    assert [d.bank_id for d in SCORER.detect(item(title, text))] == [bank]


@pytest.mark.parametrize("title, text", [
    ("Weekend hiking group", None), (None, None), ("cocaine", None),  # a word alone is not a sale
    ("known abuse sample 00021", None),                               # normalised match is whole-text
])
def test_innocent_content_matches_nothing(title, text):
    assert SCORER.detect(item(title, text)) == []


def test_banks_are_configurable():
    banks = parse_banks({"banks": [{"id": "b", "category": "scam", "keywords": {"it": ["vinci subito"]}}]})
    [found] = BankScorer(banks).detect(item("VINCI  subito!"))
    assert (found.category, found.high_severity, found.how) == ("scam", False, "keyword:it")
