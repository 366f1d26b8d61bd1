"""Does an approval lie within the request the authority signed? Pure functions.

Legal review's signature says legal review decided; this says the decision answers the
signed request and grants nothing it did not ask for: same authority, request, case and
suspect; categories and period no wider; the kind the instrument calls for.
"""
from __future__ import annotations

from warden.contract.envelope import EventRejected
from warden.contract.events import InstrumentType, LegalRequest, RequestApproved
from warden.identifiers import case_id_for, normalise_suspect


def kind_for(request: LegalRequest) -> str:
    return "preservation" if request.instrument.type == InstrumentType.preservation_request else "disclosure"


def out_of_scope(approval: RequestApproved, request: LegalRequest) -> str | None:
    """What in the approval the signed request does not cover, or None."""
    if (approval.authority_id, approval.request_id) != (request.authority_id, request.request_id):
        return "authority_id or request_id differs from the signed request"
    if approval.case_id != case_id_for(request.authority_id, request.request_id):
        return "case_id is not the one derived from the signed request"
    try:
        suspect = normalise_suspect(request.suspect)
    except EventRejected as exc:
        return f"signed request: {exc.error}"
    if approval.suspect != suspect:
        return "suspect differs from the signed request's"
    wider = sorted(set(approval.data_categories) - set(request.data_categories))
    if wider:
        return f"data categories not requested: {', '.join(c[:64] for c in wider)}"
    if approval.period.start < request.period.start or approval.period.end > request.period.end:
        return "period wider than the signed request's"
    if approval.kind != kind_for(request):
        return f"kind {approval.kind} does not match the instrument ({request.instrument.type.value})"
    return None
