"""The authority API: authorities submit, follow, amend and withdraw their own requests over HTTP
(docs/authority-api.md).

Every call is signed by the authority (RFC 9421, services/intake/authentication.py);
a call that is not answers 401 with an application/problem+json reason. An
authority reads only its own requests: any other answers 404, as one that does
not exist.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from warden.authorities import find_authority
from warden.contract.envelope import now
from warden.contract.events import Clarification, LegalRequest, Period, RequestAmended, RequestWithdrawn, StatusReason
from warden.http_signatures import HttpMessage, SignatureRefused
from warden.provenance import request_key
from warden.runtime.outbox import Verbatim
from warden.runtime.service import ServiceContext
from warden.signing import signed_bytes, verify

from intake import authority_view
from intake.authentication import authenticate, unrevoked_keys

log = logging.getLogger(__name__)
SUBMITTED_TYPE = "warden.legal.request.submitted.v1"
AMENDED_TYPE = "warden.legal.request.amended.v1"
WITHDRAWN_TYPE = "warden.legal.request.withdrawn.v1"
PREFIX = "/authority/v1"


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is the stable reason (e.g. replayed_signature)."""
    type: str
    title: str
    status: int
    detail: str
    code: str


class Accepted(BaseModel):
    request_id: str
    status: str
    url: str


class StatusEntry(BaseModel):
    status: str
    case_id: str | None
    reasons: list[StatusReason]
    at: datetime
    deadline: datetime | None = Field(None, description="when the platform owes its next answer (pending_review)")
    clarification: Clarification | None = Field(None, description="the reviewer's question (needs_clarification)")


class RequestSummary(BaseModel):
    request_id: str
    authority_id: str
    case_id: str | None
    status: str
    submitted_at: datetime
    updated_at: datetime


class RequestDetail(RequestSummary):
    history: list[StatusEntry]
    clarification: Clarification | None = Field(
        None, description="the question waiting for the authority's answer (status needs_clarification): "
                          "answer it with POST .../clarification, naming its clarification_id")


class RequestPage(BaseModel):
    requests: list[RequestSummary]
    next_cursor: str | None


class SealedDisclosure(BaseModel):
    """A package as `warden disclosure open` and `warden authority-client fetch` open it."""
    case_id: str
    request_id: str
    authority_id: str
    generated_at: datetime
    period: Period
    sealed: str
    sha256: str
    signature: str


class ApiProblem(Exception):
    def __init__(self, status: int, code: str, detail: str):
        self.status, self.code, self.detail = status, code, detail


def problem_response(status: int, code: str, detail: str) -> JSONResponse:
    titles = {401: "Unauthenticated", 403: "Forbidden", 404: "Not found", 409: "Conflict",
              422: "Unprocessable request"}
    body = Problem(type=f"urn:warden:problem:{code}", title=titles.get(status, "Error"), status=status,
                   detail=detail, code=code)
    return JSONResponse(body.model_dump(), status_code=status, media_type="application/problem+json")


def _problem(status: int, description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {"application/problem+json": {}}}


ERRORS = {401: _problem(401, "not signed, or the signature is refused: wrong key, revoked or unknown authority, "
                             "replayed, stale or future `created`, body changed after signing, component missing"),
          503: {"description": "the database is unreachable: retry later"}}
NOT_FOUND = {404: _problem(404, "no such request of this authority (another authority's answers the same)")}
# Only for the OpenAPI document: the signature is checked by `signing_authority`, from every header it needs.
SIGNATURE_SCHEME = APIKeyHeader(
    name="Signature", scheme_name="HTTPMessageSignature", auto_error=False,
    description="RFC 9421 HTTP Message Signature by the authority's registered Ed25519 key: headers "
                "`Signature-Input` (label any, `keyid` = authority_id, `alg` ed25519, `created` within 5 minutes, "
                "a `nonce`; covering `@method`, `@target-uri` and, with a body, `content-digest`), `Signature`, and "
                "`Content-Digest` (RFC 9530, sha-256) with a body. Each signature is accepted once. "
                "`warden authority-client` signs for you; see docs/authority-api.md.")


def authority_routes(app: FastAPI, runtime: ServiceContext) -> None:
    """Mount the authority API on intake's app (Service.routes)."""

    @app.exception_handler(ApiProblem)
    async def api_problem(request: Request, exc: ApiProblem) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def not_found_as_missing_request(request: Request, exc: StarletteHTTPException):
        # A path no route takes (a request id with a line break) answers as a missing request does.
        if exc.status_code == 404 and request.url.path.startswith(PREFIX + "/"):
            return problem_response(404, "no_such_request", "no such request")
        return await http_exception_handler(request, exc)

    def pool():
        if runtime.pool is None:
            raise HTTPException(503, "the database is not connected yet")
        return runtime.pool

    async def signing_authority(request: Request, _: str | None = Depends(SIGNATURE_SCHEME)) -> str:
        body = await request.body()
        message = HttpMessage(request.method, target_uri(request), dict(request.headers))
        try:
            return await authenticate(pool(), message, body, now())
        except SignatureRefused as refused:
            raise ApiProblem(401, refused.code, refused.message) from None

    router = APIRouter(prefix=PREFIX, tags=["authority API"], responses=ERRORS)

    @router.post("/requests", status_code=202, response_model=Accepted, responses={
        403: _problem(403, "the request names another authority than the one that signed the call"),
        422: {"description": "not a valid request (FastAPI's field errors), or its own signature does not verify "
                             "(problem+json `bad_request_signature`)"}})
    async def submit_request(request: Request, submitted: LegalRequest,
                             authority_id: str = Depends(signing_authority)) -> JSONResponse:
        """Submit a signed request, exactly as it would be published on `legal.requests.submitted`.

        Accepted for processing: its statuses then show at the returned URL.
        """
        data = parse_request(await request.body())  # published as signed, not as the model re-serialises it
        if data["authority_id"] != authority_id:
            raise ApiProblem(403, "foreign_authority", "authority_id in the request is not the signing authority")
        accepted = await publish_request(runtime, authority_id, data)
        return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": accepted.url})

    @router.get("/requests", response_model=RequestPage,
                responses={422: _problem(422, "not a cursor of this list")})
    async def list_requests(authority_id: str = Depends(signing_authority),
                            limit: int = Query(50, ge=1, le=200),
                            cursor: str | None = Query(None, max_length=512,
                                                       description="`next_cursor` of the previous page")
                            ) -> RequestPage:
        """The authority's own requests, newest first."""
        async with pool().acquire() as conn:
            try:
                page, next_cursor = await authority_view.requests_of(conn, authority_id, limit, cursor)
            except ValueError as exc:
                raise ApiProblem(422, "bad_cursor", str(exc)) from None
        return RequestPage(requests=[RequestSummary(**r) for r in page], next_cursor=next_cursor)

    # `:path`: a request id may hold a slash (sent as %2F, which the server decodes); the longer route first.
    @router.get("/requests/{request_id:path}/disclosures", response_model=list[SealedDisclosure], responses=NOT_FOUND)
    async def read_disclosures(request_id: str, authority_id: str = Depends(signing_authority)
                               ) -> list[SealedDisclosure]:
        """The request's sealed packages: open them with the authority's key (`warden authority-client fetch`)."""
        async with pool().acquire() as conn:
            if await authority_view.request_of(conn, authority_id, request_id) is None:
                raise ApiProblem(404, "no_such_request", "no such request")
            found = await authority_view.disclosures_of(conn, authority_id, request_id)
        return [SealedDisclosure(**d) for d in found]

    @router.post("/requests/{request_id:path}/clarification", status_code=202, response_model=Accepted, responses={
        **NOT_FOUND, 403: _problem(403, "the amendment names another authority than the one that signed the call"),
        409: _problem(409, "no question is open, the amendment answers another one, or it was answered already"),
        422: _problem(422, "not a valid amendment, one of another request, or its own signature does not verify")})
    async def answer_clarification(request_id: str, request: Request, amendment: RequestAmended,
                                   authority_id: str = Depends(signing_authority)) -> JSONResponse:
        """Answer the reviewer's question with a signed amendment of the request.

        The body is signed like a request (its `signature` over the RFC 8785 form of the rest, by the
        authority's key); it names the request and the `clarification_id` it answers, carries the `answer`
        and, to change them, `data_categories` and `period`. Published on `legal.requests.amended`;
        legal review analyses the amended request again.
        """
        data = parse_document(await request.body(), RequestAmended, authority_id, request_id)

        def check(found: dict) -> None:
            question = found["clarification"]
            if question is None or question["clarification_id"] != data["clarification_id"]:
                raise ApiProblem(409, "no_open_clarification",
                                 "no question with this clarification_id waits for an answer")
        accepted = await publish_document(runtime, authority_id, request_id, data, AMENDED_TYPE, "answer",
                                          data["clarification_id"], check)
        return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": accepted.url})

    @router.post("/requests/{request_id:path}/withdraw", status_code=202, response_model=Accepted, responses={
        **NOT_FOUND, 403: _problem(403, "the withdrawal names another authority than the one that signed the call"),
        409: _problem(409, "a package was already built (`package_built`), the request is closed or was "
                           "withdrawn already, or has not reached legal review yet (`request_in_transit`)"),
        422: _problem(422, "not a valid withdrawal, one of another request, or its own signature does not verify")})
    async def withdraw_request(request_id: str, request: Request, withdrawal: RequestWithdrawn,
                               authority_id: str = Depends(signing_authority)) -> JSONResponse:
        """Withdraw the request, until its package is built.

        The body is signed like a request: `{request_id, authority_id, reason?, withdrawn_at, signature}`.
        Published on `legal.requests.withdrawn`: legal review closes the case as `withdrawn`, and
        disclosure builds no package for it.
        """
        data = parse_document(await request.body(), RequestWithdrawn, authority_id, request_id)

        def check(found: dict) -> None:
            if found["packaged"]:
                raise ApiProblem(409, "package_built", "a package was built for this request: it can no longer "
                                                       "be withdrawn")
            if found["status"] in authority_view.CLOSED:
                raise ApiProblem(409, "request_closed", f"the request is {found['status']}: nothing to withdraw")
            if found["status"] in authority_view.IN_TRANSIT:
                raise ApiProblem(409, "request_in_transit", "the request has not reached legal review yet: "
                                                            "retry in a moment")
        accepted = await publish_document(runtime, authority_id, request_id, data, WITHDRAWN_TYPE, "withdraw", "",
                                          check)
        return JSONResponse(accepted.model_dump(), status_code=202, headers={"Location": accepted.url})

    @router.get("/requests/{request_id:path}", response_model=RequestDetail, responses=NOT_FOUND)
    async def read_request(request_id: str, authority_id: str = Depends(signing_authority)) -> RequestDetail:
        """The request's status history (received, pending_review, approved, disclosed...) with reasons."""
        async with pool().acquire() as conn:
            found = await authority_view.request_of(conn, authority_id, request_id)
        if found is None:
            raise ApiProblem(404, "no_such_request", "no such request")
        return RequestDetail(**found)

    app.include_router(router)


def target_uri(request: Request) -> str:
    """The URL as the caller sent and signed it: Starlette's `request.url` holds the path decoded (%20, %2F)."""
    raw_path = request.scope.get("raw_path")
    if raw_path is None:
        return str(request.url)
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{request.url.scheme}://{request.url.netloc}{raw_path.decode('latin-1')}" + (f"?{query}" if query else "")


def parse_request(body: bytes) -> dict[str, Any]:
    """The request's `data` as signed, validated against the contract; ApiProblem 422 otherwise."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(422, "invalid_request", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise ApiProblem(422, "invalid_request", "the body must be a JSON object: the request's data")
    try:
        LegalRequest.model_validate(data)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()[:10])
        raise ApiProblem(422, "invalid_request", f"not a valid request: check {fields}") from None
    return data


async def publish_request(runtime: ServiceContext, authority_id: str, data: dict[str, Any]) -> Accepted:
    """Check the request's own signature, then write it to the outbox for `legal.requests.submitted`.

    With the authority's current key, as intake's consumer checks it (handlers.receive_requests): a request
    it would refuse is refused here, at once.
    """
    async with runtime.unit_of_work() as uow:
        authority = await find_authority(uow.conn, authority_id)
        if authority is None or not verify(signed_bytes(data), data["signature"], authority.public_key):
            raise ApiProblem(422, "bad_request_signature",
                             "the request's signature does not verify with the authority's current registered key")
        uow.emit(Verbatim(SUBMITTED_TYPE, data))  # byte for byte what the authority signed
        await authority_view.record_submission(uow.conn, authority_id, data["request_id"], now())
    log.info("request submitted over the authority API", extra={"authority_id": authority_id})
    return Accepted(request_id=data["request_id"], status=authority_view.SUBMITTED,
                    url=f"{PREFIX}/requests/{quote(data['request_id'], safe='')}")


def parse_document(body: bytes, model: type, authority_id: str, request_id: str) -> dict[str, Any]:
    """An amendment's or withdrawal's data as signed, validated, of this request and the signing authority."""
    try:
        data = json.loads(body)
        model.model_validate(data)
    except (ValueError, UnicodeDecodeError, ValidationError):
        raise ApiProblem(422, "invalid_document", f"the body is not a valid {model.__name__}") from None
    if data["authority_id"] != authority_id:
        raise ApiProblem(403, "foreign_authority", "authority_id in the body is not the signing authority")
    if data["request_id"] != request_id:
        raise ApiProblem(422, "request_mismatch", "request_id in the body is not the request of the URL")
    return data


async def publish_document(runtime: ServiceContext, authority_id: str, request_id: str, data: dict[str, Any],
                           event_type: str, action: str, reference: str, check) -> Accepted:
    """Publish the authority's signed amendment or withdrawal as signed, once, if `check` allows it now."""
    async with runtime.unit_of_work() as uow:
        found = await authority_view.request_of(uow.conn, authority_id, request_id)
        if found is None:
            raise ApiProblem(404, "no_such_request", "no such request")
        if request_key(data, await unrevoked_keys(uow.conn, authority_id)) is None:
            raise ApiProblem(422, "bad_document_signature",
                             "the body's signature does not verify with the authority's registered keys")
        check(found)
        if not await authority_view.record_sent(uow.conn, authority_id, request_id, action, reference, now()):
            raise ApiProblem(409, "already_sent", f"this {action} was already sent")
        uow.emit(Verbatim(event_type, data))  # byte for byte what the authority signed
    log.info("authority document published", extra={"authority_id": authority_id, "action": action})
    return Accepted(request_id=request_id, status=authority_view.SENT[action],
                    url=f"{PREFIX}/requests/{quote(request_id, safe='')}")
