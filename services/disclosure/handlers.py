"""Disclosure's handlers: keep the subscriber store, act on approvals."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from warden.contract.envelope import EventRejected, UnknownYet, now
from warden.authorities import AuthorityState, usable_keys
from warden.contract.events import (
    DisclosureIssued, Instrument, NoticeDue, RequestApproved, RequestRejected, RequestWithdrawn,
    StatusReason, SubscriberAccountUpdated, SubscriberSessionObserved, status_events,
)
from warden.identifiers import case_id_for
from warden.provenance import request_key
from warden.identifiers import normalise_phone_number, normalise_username
from warden.runtime.service import BatchItem, Context
from warden.runtime.settings import from_environment

from disclosure import audit, metrics, store
from disclosure.keys import platform_private_key
from disclosure.package import (
    SealedPackage, Session, build_package, certify, is_empty, new_nonce, redact, seal_for_authority,
)
from disclosure.provenance import verify_approval, verify_signed_decision
from disclosure.settings import DisclosureSettings
from disclosure.subscribers import normalise_ip, notice_due_at, resolve_account

log = logging.getLogger(__name__)
NOT_FOUND = {
    "suspect_not_found": "no account matches the suspect's identifiers during the period",
    "suspect_ambiguous": "the suspect's identifiers designate more than one account",
    "no_data_in_period": "the account has no data of the granted categories in the period",
}


# --- subscriber feed -----------------------------------------------------------------

async def record_subscriber_events(ctx: Context,
                                   items: list[BatchItem[SubscriberAccountUpdated | SubscriberSessionObserved]]) -> None:
    """Batch handler: the batch's sessions in one statement, its account updates in three.

    An unusable IP address or phone number rejects the call; the runtime then replays the
    batch one event per call, and only that event is dead-lettered."""
    events = [item.event for item in items]
    forget_lookups(ctx)
    sessions = [Session(e.account_id, normalise_ip(e.ip), e.observed_at)
                for e in events if isinstance(e, SubscriberSessionObserved)]
    updates = [(e, normalise_username(e.username) if e.username else None,
                normalise_phone_number(e.phone_number) if e.phone_number else None)
               for e in events if isinstance(e, SubscriberAccountUpdated)]
    if sessions:
        await store.record_sessions(ctx.conn, sessions)
    if updates:
        await store.record_account_updates(ctx.conn, updates)


# --- decisions -----------------------------------------------------------------------

@dataclass
class DisclosureState(AuthorityState):
    """What disclosure's handlers learn once per transaction: its settings and the platform's key, the
    batch's prefetched suspect lookups (by case id, each used once), the audit chain's tail."""

    settings: DisclosureSettings | None = None
    platform_key: str | None = None
    lookups: dict[str, store.SuspectLookup] = field(default_factory=dict)
    chain: audit.Chain = field(default_factory=audit.Chain)


def settings(ctx: Context) -> DisclosureSettings:
    """Read from the environment once per batch, parsed once per distinct environment."""
    state: DisclosureState = ctx.state
    if state.settings is None:
        state.settings = from_environment(DisclosureSettings)
    return state.settings


async def platform_key(ctx: Context) -> str:
    """The platform's private key, read once per batch."""
    state: DisclosureState = ctx.state
    if state.platform_key is None:
        state.platform_key = await platform_private_key(ctx.conn, settings(ctx))
    return state.platform_key


@dataclass
class Effect:
    """What one approval does, decided before anything is written: the call writes its effects set-based."""
    item: BatchItem[RequestApproved]
    outcome: str  # cancelled | no_data | preserved | disclosed
    at: datetime
    reason: str | None = None  # cancelled, no_data
    message: str | None = None
    account_id: str | None = None  # preserved, disclosed
    hold_until: datetime | None = None  # preserved
    sealed: SealedPackage | None = None  # disclosed
    redacted: dict | None = None
    due_at: datetime | None = None  # disclosed: the user notice's due date (None: the authority informs)
    emitted_at: datetime | None = None  # the notice goes with the package

    @property
    def decision(self) -> RequestApproved:
        return self.item.event


async def act_on_decisions(ctx: Context, items: list[BatchItem[RequestApproved | RequestRejected]]) -> None:
    """Batch handler: approvals traced to signed origins act, once per case; rejections were already told to
    the authority. Each approval's effect is decided in turn (its provenance, its lookup, its package built and
    sealed); then the call's cases, packages, holds and notices are written in one statement and its audit
    entries in one more. An approval that fails a check is refused alone, its batch-mates go on."""
    effects: list[Effect] = []
    acting: set[str] = set()
    for item in items:
        try:
            with item.traced():
                effect = await decide(ctx, item)
        except EventRejected as exc:
            item.reject(exc)
            continue
        if effect is None:
            continue
        if effect.decision.case_id in acting:
            item.reject("replayed_decision", "the case was already acted on: a decision acts once")
            continue
        acting.add(effect.decision.case_id)
        effects.append(effect)
    if not effects:
        return
    if len(await store.record_effects(ctx.conn, [written(e) for e in effects])) < len(effects):
        raise already_recorded()
    await audit.record_effects(ctx, effects)
    for effect in effects:
        with effect.item.traced():
            announce(ctx, effect)


async def decide(ctx: Context, item: BatchItem[RequestApproved | RequestRejected]) -> Effect | None:
    """The approval's effect (None for a rejection), or EventRejected when it cannot be traced to its signed
    origins or was acted on already."""
    verify_signed_decision(item.envelope, settings(ctx))
    decision = item.event
    if not isinstance(decision, RequestApproved):
        return None
    key_in_force = await verify_approval(ctx, decision)
    lookup = await lookup_suspect(ctx, decision)
    if lookup.acted:
        raise EventRejected("replayed_decision", "the case was already acted on: a decision acts once")
    at = now()
    if lookup.withdrawn:
        return cancelled(item, at, "withdrawn", "the authority withdrew the request before its package was built")
    if not key_in_force:
        return cancelled(item, at, "authority_revoked", "the authority's key was revoked before disclosure")
    account_id, reason = resolve_account(lookup.candidates)
    if account_id is None:
        return Effect(item, "no_data", at, reason, NOT_FOUND[reason])
    if decision.kind == "preservation":
        hold_until = decision.hold_until or at + timedelta(days=settings(ctx).default_hold_days)
        return Effect(item, "preserved", at, account_id=account_id, hold_until=hold_until)
    return await disclosure_of(ctx, item, account_id, lookup, at)


def cancelled(item: BatchItem[RequestApproved], at: datetime, reason: str, message: str) -> Effect:
    """Closed without effect: no package, no hold, no notice."""
    return Effect(item, "cancelled", at, reason, message)


def suspect_of(decision: RequestApproved) -> store.Suspect:
    """What the store is asked: the suspect's identifiers, normalised, over the decision's period."""
    suspect = decision.suspect
    account_id = suspect.account_id.strip() if suspect.account_id else None
    number = name = None
    unusable: set[str] = set()
    if suspect.phone_number:
        try:
            number = normalise_phone_number(suspect.phone_number)
        except EventRejected:
            unusable.add("phone_number")
    if suspect.username:
        name = normalise_username(suspect.username)
        if not name:
            unusable.add("username")
    return store.Suspect(decision.case_id, account_id, number, name, decision.period.start,
                         decision.period.end, frozenset(unusable))


async def look_up_suspects(ctx: Context, decisions: list[RequestApproved | RequestRejected]) -> None:
    """Subscription.prefetch: every approval's lookup of the batch in at most three statements, whatever its size."""
    suspects = [suspect_of(d) for d in decisions if isinstance(d, RequestApproved)]
    if not suspects:
        return
    state: DisclosureState = ctx.state
    for suspect, lookup in zip(suspects, await store.lookup_suspects(ctx.conn, suspects)):
        state.lookups[suspect.case_id] = lookup


def forget_lookups(ctx: Context) -> None:
    """The store changed: lookups read before it are stale."""
    ctx.state.lookups.clear()


async def lookup_suspect(ctx: Context, decision: RequestApproved) -> store.SuspectLookup:
    """The batch's prefetched lookup for this case (used once), or the store's answer now."""
    lookup = ctx.state.lookups.pop(decision.case_id, None)
    return lookup if lookup is not None else await store.lookup_suspect(ctx.conn, suspect_of(decision))


def written(effect: Effect) -> store.CaseEffect:
    decision = effect.decision
    sealed = effect.sealed
    return store.CaseEffect(
        decision.case_id, decision.request_id, decision.authority_id, decision.kind, effect.outcome, effect.reason,
        effect.at, effect.account_id, effect.hold_until, sealed.box if sealed else None,
        sealed.sha256 if sealed else None, sealed.signature if sealed else None, effect.due_at, effect.emitted_at)


def already_recorded() -> RuntimeError:
    # Another replica got here first: its effects stand, ours roll back.
    return RuntimeError("case already recorded")


def tell(item: BatchItem[RequestApproved], value: str, at: datetime, reasons: list[StatusReason] = ()) -> None:
    """The case's status for its authority: in full on legal.requests.progress, shared on legal.requests.status."""
    decision = item.event
    for event in status_events(request_id=decision.request_id, authority_id=decision.authority_id,
                               case_id=decision.case_id, status=value, reasons=list(reasons), at=at):
        item.emit(event)


def announce(ctx: Context, effect: Effect) -> None:
    """What the recorded effect tells: the package and the user notice, and the case's status."""
    item, decision, at = effect.item, effect.decision, effect.at
    case_id = decision.case_id
    if effect.outcome in ("cancelled", "no_data"):
        tell(item, effect.outcome, at, [StatusReason(code=effect.reason, message=effect.message)])
        log.info("case cancelled" if effect.outcome == "cancelled" else "case closed without data",
                 extra={"case_id": case_id, "reason": effect.reason})
    elif effect.outcome == "preserved":
        tell(item, "preserved", at, [StatusReason(code="hold_placed",
                                                   message=f"held until {effect.hold_until.isoformat()}")])
        log.info("preservation hold placed", extra={"case_id": case_id, "hold_until": effect.hold_until.isoformat()})
    else:
        sealed = effect.sealed
        item.emit(DisclosureIssued(
            case_id=case_id, request_id=decision.request_id, authority_id=decision.authority_id,
            account_id=effect.account_id, period=decision.period, generated_at=at, redacted=effect.redacted,
            sealed=sealed.sealed, sha256=sealed.sha256, signature=sealed.signature))
        tell(item, "disclosed", at)
        if effect.emitted_at is not None:
            item.emit(NoticeDue(case_id=case_id, account_id=effect.account_id, due_at=effect.due_at))
        if decision.decided_at is not None:
            waited = (at - decision.decided_at).total_seconds()
            ctx.on_commit(lambda: metrics.APPROVED_TO_DISCLOSED.observe(max(waited, 0.0)))
        log.info("disclosure package issued", extra={"case_id": case_id, "sha256": sealed.sha256})


def instrument_of(decision: RequestApproved) -> Instrument:
    """The signed request's instrument (verify_approval has checked the signed request)."""
    return Instrument.model_validate((decision.signed_request or {})["instrument"])


def instrument_expires_at(decision: RequestApproved) -> datetime | None:
    """The signed instrument's expiry."""
    instrument = (decision.signed_request or {}).get("instrument") or {}
    return Instrument.model_validate(instrument).expires_at if instrument else None


async def disclosure_of(ctx: Context, item: BatchItem[RequestApproved], account_id: str,
                        lookup: store.SuspectLookup, at: datetime) -> Effect:
    """The package, built, certified and sealed; or why the case closes without one."""
    decision = item.event
    expires_at = instrument_expires_at(decision)
    if expires_at is not None and expires_at <= at:  # the order must be in force when the data leaves
        return cancelled(item, at, "instrument_expired", "the instrument expired before the package was built")
    package = build_package(decision, account_id, lookup.phone_changes, lookup.sessions, at, new_nonce())
    if is_empty(package):
        return Effect(item, "no_data", at, "no_data_in_period", NOT_FOUND["no_data_in_period"])
    package = certify(package, instrument_of(decision), await platform_key(ctx))
    # Sealed to the key that verified the request (pinned to the case), whatever the registry says now.
    sealed = seal_for_authority(package, decision.authority_key, await platform_key(ctx))
    # The user notice: due now, emitted with the package; later, the notice job emits it (the row is durable);
    # none when the issuing authority informs the person (the jurisdiction's rule, carried by the approval).
    notice = decision.user_notice
    due_at = None if notice is not None and notice.by == "authority" else notice_due_at(
        at, decision.nondisclosure_until, notice.not_before if notice else None)
    emitted_at = at if due_at is not None and due_at <= at else None
    return Effect(item, "disclosed", at, account_id=account_id, sealed=sealed, redacted=redact(package),
                  due_at=due_at, emitted_at=emitted_at)


# --- withdrawals ---------------------------------------------------------------------

async def record_withdrawal(ctx: Context, withdrawn: RequestWithdrawn) -> None:
    """The authority's signed withdrawal, checked against disclosure's own registry copy: no package will be
    built for the case (an approval that comes later cancels it). Too late once the case was acted on."""
    assert ctx.envelope is not None
    if request_key(ctx.envelope.data, await usable_keys(ctx, withdrawn.authority_id)) is None:
        raise UnknownYet("bad_signature", f"the withdrawal does not verify with a registered key of "
                                          f"{withdrawn.authority_id!r}")
    case_id = case_id_for(withdrawn.authority_id, withdrawn.request_id)
    forget_lookups(ctx)
    recorded, acted = await store.record_withdrawal(ctx.conn, case_id, withdrawn.request_id, withdrawn.authority_id,
                                                    withdrawn.withdrawn_at, now())
    if not recorded:
        raise EventRejected("replayed_withdrawal", "this request's withdrawal was already recorded")
    log.info("withdrawal recorded", extra={"case_id": case_id, "too_late": acted})
