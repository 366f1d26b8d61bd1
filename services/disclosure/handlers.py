"""Disclosure's handlers: keep the subscriber store, act on approvals."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from warden.contract.envelope import EventRejected, now
from warden.authorities import AuthorityState, usable_keys
from warden.contract.events import (
    DisclosureIssued, Instrument, NoticeDue, RequestApproved, RequestRejected, RequestWithdrawn,
    StatusReason, SubscriberAccountUpdated, SubscriberSessionObserved, status_events,
)
from warden.identifiers import case_id_for
from warden.provenance import request_key
from warden.identifiers import normalise_phone_number, normalise_username
from warden.runtime.service import BatchItem, Context

from disclosure import audit, metrics, store
from disclosure.keys import platform_private_key
from disclosure.package import (
    Session, build_package, certify, is_empty, new_nonce, redact, seal_for_authority,
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
    """Read from the environment once per batch (pydantic-settings is not free)."""
    state: DisclosureState = ctx.state
    if state.settings is None:
        state.settings = DisclosureSettings()
    return state.settings


async def platform_key(ctx: Context) -> str:
    """The platform's private key, read once per batch."""
    state: DisclosureState = ctx.state
    if state.platform_key is None:
        state.platform_key = await platform_private_key(ctx.conn, settings(ctx))
    return state.platform_key


async def act_on_decision(ctx: Context, decision: RequestApproved | RequestRejected) -> None:
    """Approvals traced to signed origins act, once per case; rejections were already told to the authority."""
    verify_signed_decision(ctx, settings(ctx))
    if not isinstance(decision, RequestApproved):
        return
    key_in_force = await verify_approval(ctx, decision)
    lookup = await lookup_suspect(ctx, decision)
    if lookup.acted:
        raise EventRejected("replayed_decision", "the case was already acted on: a decision acts once")
    if lookup.withdrawn:
        await cancel(ctx, decision, "withdrawn", "the authority withdrew the request before its package was built")
        return
    if not key_in_force:
        await cancel(ctx, decision, "authority_revoked", "the authority's key was revoked before disclosure")
        return
    account_id, reason = resolve_account(lookup.candidates)
    if account_id is None:
        await close_without_data(ctx, decision, reason)
    elif decision.kind == "preservation":
        await place_hold(ctx, decision, account_id)
    else:
        await disclose(ctx, decision, account_id, lookup)


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


def case_row(decision: RequestApproved, outcome: str, at: datetime, reason: str | None = None) -> tuple:
    return (decision.case_id, decision.request_id, decision.authority_id, decision.kind, outcome, reason, at)


def already_recorded() -> RuntimeError:
    # Another replica got here first: its effects stand, ours roll back.
    return RuntimeError("case already recorded")


def tell(ctx: Context, decision: RequestApproved, value: str, at: datetime, reasons: list[StatusReason] = ()
         ) -> None:
    """The case's status for its authority: in full on legal.requests.progress, shared on legal.requests.status."""
    for event in status_events(request_id=decision.request_id, authority_id=decision.authority_id,
                               case_id=decision.case_id, status=value, reasons=list(reasons), at=at):
        ctx.emit(event)


async def cancel(ctx: Context, decision: RequestApproved, reason: str, message: str) -> None:
    """Close the case without effect: no package, no hold, no notice."""
    at = now()
    if not await store.record_case(ctx.conn, case_row(decision, "cancelled", at, reason)):
        raise already_recorded()
    await audit.case_cancelled(ctx, decision, at, reason)
    tell(ctx, decision, "cancelled", at, [StatusReason(code=reason, message=message)])
    log.info("case cancelled", extra={"case_id": decision.case_id, "reason": reason})


async def close_without_data(ctx: Context, decision: RequestApproved, reason: str) -> None:
    at = now()
    if not await store.record_case(ctx.conn, case_row(decision, "no_data", at, reason)):
        raise already_recorded()
    await audit.closed_without_data(ctx, decision, at, reason)
    tell(ctx, decision, "no_data", at, [StatusReason(code=reason, message=NOT_FOUND[reason])])
    log.info("case closed without data", extra={"case_id": decision.case_id, "reason": reason})


async def place_hold(ctx: Context, decision: RequestApproved, account_id: str) -> None:
    at = now()
    hold_until = decision.hold_until or at + timedelta(days=settings(ctx).default_hold_days)
    if not await store.record_hold(ctx.conn, case_row(decision, "preserved", at), account_id, hold_until):
        raise already_recorded()
    await audit.hold_placed(ctx, decision, at, hold_until)
    tell(ctx, decision, "preserved", at, [StatusReason(code="hold_placed",
                                                       message=f"held until {hold_until.isoformat()}")])
    log.info("preservation hold placed", extra={"case_id": decision.case_id, "hold_until": hold_until.isoformat()})


def instrument_of(decision: RequestApproved) -> Instrument:
    """The signed request's instrument (verify_approval has checked the signed request)."""
    return Instrument.model_validate((decision.signed_request or {})["instrument"])


def instrument_expires_at(decision: RequestApproved) -> datetime | None:
    """The signed instrument's expiry."""
    instrument = (decision.signed_request or {}).get("instrument") or {}
    return Instrument.model_validate(instrument).expires_at if instrument else None


async def disclose(ctx: Context, decision: RequestApproved, account_id: str, lookup: store.SuspectLookup) -> None:
    at = now()
    expires_at = instrument_expires_at(decision)
    if expires_at is not None and expires_at <= at:  # the order must be in force when the data leaves
        await cancel(ctx, decision, "instrument_expired", "the instrument expired before the package was built")
        return
    package = build_package(decision, account_id, lookup.phone_changes, lookup.sessions, at, new_nonce())
    if is_empty(package):
        await close_without_data(ctx, decision, "no_data_in_period")
        return
    package = certify(package, instrument_of(decision), await platform_key(ctx))
    # Sealed to the key that verified the request (pinned to the case), whatever the registry says now.
    sealed = seal_for_authority(package, decision.authority_key, await platform_key(ctx))
    # The user notice: due now, emitted with the package; later, the notice job emits it (the row is durable);
    # none when the issuing authority informs the person (the jurisdiction's rule, carried by the approval).
    notice = decision.user_notice
    due_at = None if notice is not None and notice.by == "authority" else notice_due_at(
        at, decision.nondisclosure_until, notice.not_before if notice else None)
    emitted_at = at if due_at is not None and due_at <= at else None
    if not await store.record_disclosure(ctx.conn, case_row(decision, "disclosed", at), account_id, sealed.sealed,
                                         sealed.sha256, sealed.signature, due_at, emitted_at):
        raise already_recorded()
    await audit.package_issued(ctx, decision, at, sealed.sha256, due_at, emitted_at is not None)
    ctx.emit(DisclosureIssued(
        case_id=decision.case_id, request_id=decision.request_id, authority_id=decision.authority_id,
        account_id=account_id, period=decision.period, generated_at=at, redacted=redact(package),
        sealed=sealed.sealed, sha256=sealed.sha256, signature=sealed.signature))
    tell(ctx, decision, "disclosed", at)
    if emitted_at is not None:
        ctx.emit(NoticeDue(case_id=decision.case_id, account_id=account_id,
                                                         due_at=due_at))
    if decision.decided_at is not None:
        waited = (at - decision.decided_at).total_seconds()
        ctx.on_commit(lambda: metrics.APPROVED_TO_DISCLOSED.observe(max(waited, 0.0)))
    log.info("disclosure package issued", extra={"case_id": decision.case_id, "sha256": sealed.sha256})


# --- withdrawals ---------------------------------------------------------------------

async def record_withdrawal(ctx: Context, withdrawn: RequestWithdrawn) -> None:
    """The authority's signed withdrawal, checked against disclosure's own registry copy: no package will be
    built for the case (an approval that comes later cancels it). Too late once the case was acted on."""
    assert ctx.envelope is not None
    if request_key(ctx.envelope.data, await usable_keys(ctx, withdrawn.authority_id)) is None:
        raise EventRejected("bad_signature", f"the withdrawal does not verify with a registered key of "
                                             f"{withdrawn.authority_id!r}")
    case_id = case_id_for(withdrawn.authority_id, withdrawn.request_id)
    forget_lookups(ctx)
    recorded, acted = await store.record_withdrawal(ctx.conn, case_id, withdrawn.request_id, withdrawn.authority_id,
                                                    withdrawn.withdrawn_at, now())
    if not recorded:
        raise EventRejected("replayed_withdrawal", "this request's withdrawal was already recorded")
    log.info("withdrawal recorded", extra={"case_id": case_id, "too_late": acted})
