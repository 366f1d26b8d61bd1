from datetime import datetime, timezone

import pytest

from legal_review.transparency import quarter_bounds


@pytest.mark.parametrize("text, start, end", [
    ("2024Q3", datetime(2024, 7, 1), datetime(2024, 10, 1)),
    ("2024q1", datetime(2024, 1, 1), datetime(2024, 4, 1)),
    ("2024-Q4", datetime(2024, 10, 1), datetime(2025, 1, 1)),
])
def test_quarter_bounds(text, start, end):
    _, s, e = quarter_bounds(text)
    assert (s, e) == (start.replace(tzinfo=timezone.utc), end.replace(tzinfo=timezone.utc))


@pytest.mark.parametrize("text", ["2024Q5", "Q3", "2024-07"])
def test_bad_quarter(text):
    with pytest.raises(ValueError):
        quarter_bounds(text)
