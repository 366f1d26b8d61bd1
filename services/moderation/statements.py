"""DSA Art. 17 statements of reasons: pure builders, Transparency Database vocabulary."""
from __future__ import annotations

import calendar
import uuid
from datetime import datetime

from warden.contract.events import ModerationDecision

from moderation.config import ModerationConfig

# Report reason -> (decision_ground, category) in the DSA Transparency Database's terms.
GROUNDS = {
    "child_abuse": ("DECISION_GROUND_ILLEGAL_CONTENT", "STATEMENT_CATEGORY_PROTECTION_OF_MINORS"),
    "terrorism": ("DECISION_GROUND_ILLEGAL_CONTENT", "STATEMENT_CATEGORY_RISK_FOR_PUBLIC_SECURITY"),
    "drugs": ("DECISION_GROUND_ILLEGAL_CONTENT", "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS"),
    "weapons": ("DECISION_GROUND_ILLEGAL_CONTENT", "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS"),
    "illegal_goods": ("DECISION_GROUND_ILLEGAL_CONTENT", "STATEMENT_CATEGORY_UNSAFE_AND_ILLEGAL_PRODUCTS"),
    "scam": ("DECISION_GROUND_ILLEGAL_CONTENT", "STATEMENT_CATEGORY_SCAMS_AND_FRAUD"),
    "violence": ("DECISION_GROUND_ILLEGAL_CONTENT", "STATEMENT_CATEGORY_VIOLENCE"),
    "copyright": ("DECISION_GROUND_ILLEGAL_CONTENT", "STATEMENT_CATEGORY_INTELLECTUAL_PROPERTY_INFRINGEMENTS"),
    "spam": ("DECISION_GROUND_INCOMPATIBLE_CONTENT", "STATEMENT_CATEGORY_SCOPE_OF_PLATFORM_SERVICE"),
    "other": ("DECISION_GROUND_INCOMPATIBLE_CONTENT", "STATEMENT_CATEGORY_OTHER_VIOLATION_TC"),
}
HIGH_SEVERITY = frozenset({"child_abuse", "terrorism"})


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months; the 31st becomes the month's last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def automation(automated_detection: bool, human: bool) -> str:
    if not human:
        return "FULLY"
    return "PARTIALLY" if automated_detection else "NOT_AUTOMATED"


def statement(*, content_id: str, action: str, reason: str, facts: str, automated_detection: bool,
              human: bool, decided_at: datetime, cfg: ModerationConfig) -> ModerationDecision:
    ground, category = GROUNDS.get(reason, GROUNDS["other"])
    return ModerationDecision(
        decision_id=str(uuid.uuid4()), content_id=content_id, action=action, ground=ground, category=category,
        automated_detection=automated_detection, automated_decision=automation(automated_detection, human),
        facts=facts, appealable_until=add_months(decided_at, 6), territorial_scope=list(cfg.territorial_scope))


def appeal_refusal(*, decision_found: bool, owner_matches: bool, delisted: bool, submitted_at: datetime,
                   appealable_until: datetime | None) -> str | None:
    """Why an appeal cannot be heard, or None when it can (DSA Art. 20)."""
    if not decision_found:
        return "no_decision: there is no delisting decision on this content to appeal against"
    if not owner_matches:
        return "not_owner: only the owner of the content may appeal its delisting"
    if appealable_until is not None and submitted_at > appealable_until:
        return (f"window_closed: appeals were open until {appealable_until.date().isoformat()}"
                " (six months after the decision, DSA Art. 20)")
    if not delisted:
        return "not_delisted: the content is listed again; there is nothing to appeal"
    return None
