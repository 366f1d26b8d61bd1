"""DSA Art. 17 statements of reasons: pure builders, Transparency Database vocabulary."""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime

from warden.contract.envelope import random_id
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

# Where the decision started, in the Transparency Database's terms.
SOURCES = {"notice": "SOURCE_ARTICLE_16", "unknown_content": "SOURCE_ARTICLE_16",
           "trusted_flagger": "SOURCE_TRUSTED_FLAGGER", "proactive": "SOURCE_VOLUNTARY"}
# What each action does to the content's visibility: delisting demotes it out of search; the others restrict
# nothing (keep a notice's content, relist it, uphold a delisting already in force: named by its own statement).
VISIBILITY = {"delist": ["DECISION_VISIBILITY_CONTENT_DEMOTED"]}


@dataclass(frozen=True)
class Facts:
    """What the platform says of the content, as a statement of reasons needs it (none: not described)."""
    created_at: datetime | None = None
    has_media: bool = False
    described: bool = False

    def content_type(self) -> list[str]:
        if not self.described:
            return ["CONTENT_TYPE_OTHER"]
        return ["CONTENT_TYPE_TEXT", "CONTENT_TYPE_IMAGE"] if self.has_media else ["CONTENT_TYPE_TEXT"]

    def content_date(self) -> date | None:
        return self.created_at.date() if self.created_at else None


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months; the 31st becomes the month's last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def automation(automated_detection: bool, human: bool) -> str:
    if not human:
        return "FULLY"
    return "PARTIALLY" if automated_detection else "NOT_AUTOMATED"


def ground_explanation(action: str, reason: str, ground: str) -> str:
    what = reason.replace("_", " ")
    if action in ("keep", "relist"):
        return f"No violation found: the content was judged neither illegal nor against the terms as to {what}."
    if ground == "DECISION_GROUND_ILLEGAL_CONTENT":
        return (f"Illegal content ({what}) in the Member States of the territorial scope; public search is "
                "for finding people and news, not illegal goods and services.")
    return f"Incompatible with the platform's terms of service for public search ({what})."


def statement(*, content_id: str, action: str, reason: str, facts: str, automated_detection: bool,
              human: bool, decided_at: datetime, cfg: ModerationConfig, source: str = "notice",
              content: Facts = Facts()) -> ModerationDecision:
    """A statement of reasons with every Transparency Database field; puid is the decision's own id."""
    ground, category = GROUNDS.get(reason, GROUNDS["other"])
    decision_id = random_id()
    return ModerationDecision(
        decision_id=decision_id, content_id=content_id, action=action, ground=ground, category=category,
        automated_detection=automated_detection, automated_decision=automation(automated_detection, human),
        facts=facts, appealable_until=add_months(decided_at, 6), territorial_scope=list(cfg.territorial_scope),
        decision_visibility=list(VISIBILITY.get(action, [])), ground_explanation=ground_explanation(action, reason, ground),
        content_type=content.content_type(), source_type=SOURCES.get(source, "SOURCE_ARTICLE_16"),
        content_date=content.content_date(), puid=decision_id)


def appeal_refusal(*, decision_found: bool, owner_known: bool, owner_matches: bool, delisted: bool,
                   submitted_at: datetime, appealable_until: datetime | None) -> str | None:
    """Why an appeal cannot be heard, or None when it can (DSA Art. 20). The owner is the platform's word
    (platform.content): content with no known owner cannot be appealed by anyone."""
    if not decision_found:
        return "no_decision: there is no delisting decision on this content to appeal against"
    if not owner_known:
        return "no_owner: the platform names no owner for this content, so no one may appeal on its behalf"
    if not owner_matches:
        return "not_owner: only the owner of the content may appeal its delisting"
    if appealable_until is not None and submitted_at > appealable_until:
        return (f"window_closed: appeals were open until {appealable_until.date().isoformat()}"
                " (six months after the decision, DSA Art. 20)")
    if not delisted:
        return "not_delisted: the content is listed again; there is nothing to appeal"
    return None
