"""Signed, hash-chained audit logs, anchored outside the database by signed checkpoints.

Legal review and disclosure each keep one chain, a table `audit_log` in their own schema,
with one row `audit_chain` naming it (a random `chain_id`, created with the schema):
- an entry's **hash** is the SHA-256 of the RFC 8785 canonical JSON of (seq, case_id, action,
  actor, at, detail, prev_hash): changing, removing or reordering an entry breaks the links;
- an entry's **signature** is Ed25519, by the audit key (`WARDEN_AUDIT_PRIVATE_KEY`), over
  {service, chain_id, seq, hash}; `key_id` names the key. The key is not in the database, so
  whoever can write the tables can recompute hashes but cannot sign what they rewrote. The last
  entry of each statement that appends is signed; an entry written before it in the same statement
  names the key and leaves its signature to that last one, whose hash chains back through it
  (`key_id` set, `signature` NULL: *covered*). A covered entry with no signed entry or checkpoint
  after it is a break: the entry that closed it was removed;
- a **checkpoint** {service, chain_id, seq, head, at, key_id, signature}, signed by the same key,
  is published on `legal.audit.checkpoints`: legal review with each transaction that decides a case,
  disclosure with each transaction that issues a package (one per consumer batch, at the head the
  batch reached), both every `WARDEN_AUDIT_CHECKPOINT_INTERVAL_S` when the head moved. A chain that no
  longer reaches the latest checkpoint's seq with its head was truncated or rewritten.

`ChainWalk` (pure) checks entries one by one and names the first break, `anchor_of` picks the
checkpoint a chain is held to; `warden audit verify` reads the checkpoints from Kafka and walks
each chain with `verify_chain`.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import asyncpg
from nacl.signing import SigningKey
import orjson
from prometheus_client import Gauge
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from warden.contract.envelope import now
from warden.contract.events import AuditCheckpoint
from warden.keys import key_id, public_keys
from warden.runtime.jobs import every
from warden.runtime.settings import ConfigurationError
from warden.signing import b64, canonical, decode_key, verify

if TYPE_CHECKING:
    from warden.runtime.service import Context
    from warden.runtime.unit_of_work import UnitOfWork

HEAD_CHECKPOINTED = Gauge(
    "warden_audit_head_checkpointed_timestamp_seconds",
    "When the periodic job last saw the audit chain's head checkpointed (one written to the outbox, or none "
    "needed); stale: the chain grows unanchored")
GENESIS = "0" * 64
CHECKPOINT_TOPIC = "legal.audit.checkpoints"
CHECKPOINT = "warden.legal.audit.checkpoint.v1"
PRIVATE_KEY_ENV = "WARDEN_AUDIT_PRIVATE_KEY"
PUBLIC_KEYS_ENV = "WARDEN_AUDIT_PUBLIC_KEYS"


# --- entries -------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditEntry:
    seq: int
    case_id: str | None
    action: str
    actor: str
    at: datetime
    detail: dict[str, Any]
    prev_hash: str
    hash: str = ""
    key_id: str | None = None
    signature: str | None = None


def entry_hash(entry: AuditEntry) -> str:
    return _hash(entry.seq, entry.case_id, entry.action, entry.actor, entry.at, entry.detail, entry.prev_hash)


def _hash(seq: int, case_id: str | None, action: str, actor: str, at: datetime, detail: dict[str, Any],
          prev_hash: str) -> str:
    document = {
        "seq": seq,
        "case_id": case_id,
        "action": action,
        "actor": actor,
        "at": at.astimezone(timezone.utc).isoformat(),
        "detail": detail,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical(document)).hexdigest()


def signed_entry_bytes(service: str, chain_id: str, seq: int, hash_: str) -> bytes:
    """What the audit key signs of an entry: its hash, bound to its place in its service's chain."""
    return canonical({"service": service, "chain_id": chain_id, "seq": seq, "hash": hash_})


def checkpoint_bytes(checkpoint: AuditCheckpoint) -> bytes:
    """What the audit key signs of a checkpoint: all of it as published, but the signature."""
    return canonical(checkpoint.model_dump(mode="json", exclude={"signature"}))


class AuditSigner:
    """The audit private key, parsed once."""

    def __init__(self, private_key_b64: str):
        self._key = SigningKey(decode_key(private_key_b64))
        self.public_key = b64(bytes(self._key.verify_key))
        self.key_id = key_id(self.public_key)

    def sign(self, message: bytes) -> str:
        return b64(self._key.sign(message).signature)


@lru_cache(maxsize=4)
def _signer(private_key_b64: str) -> AuditSigner:
    return AuditSigner(private_key_b64)


def current_signer() -> AuditSigner:
    """The signer of WARDEN_AUDIT_PRIVATE_KEY (services check it at startup: require_audit_key)."""
    configured = os.environ.get(PRIVATE_KEY_ENV, "").strip()
    if not configured:
        raise RuntimeError(f"{PRIVATE_KEY_ENV} is not set: audit entries cannot be signed")
    return _signer(configured)


class AuditSettings(BaseSettings):
    """The settings of a service that writes an audit chain (legal review, disclosure), and only theirs."""

    model_config = SettingsConfigDict(env_prefix="WARDEN_", extra="ignore")

    # Signs audit entries and checkpoints; never stored in the database (docs/deployment.md, "Audit key").
    audit_private_key: SecretStr | None = None
    # The public halves `warden audit verify` accepts; when set on a service, its key must be among them.
    audit_public_keys: str = ""
    # How often the chain's head is published on legal.audit.checkpoints, when it moved.
    audit_checkpoint_interval_s: float = Field(default=60.0, gt=0)


def require_audit_key(_runtime_settings=None, settings: AuditSettings | None = None) -> None:
    """Startup check of every service that writes audit entries."""
    settings = settings or AuditSettings()
    if settings.audit_private_key is None or not settings.audit_private_key.get_secret_value().strip():
        raise ConfigurationError(
            f"{PRIVATE_KEY_ENV} is not set: audit entries and checkpoints are signed with it "
            "(docs/deployment.md, 'Audit key'); `warden up` sets a development key")
    try:
        signer = AuditSigner(settings.audit_private_key.get_secret_value().strip())
        verifying = public_keys(settings.audit_public_keys)
    except ValueError as exc:
        raise ConfigurationError(f"audit key not usable: {exc}") from None
    if verifying and signer.key_id not in verifying:
        raise ConfigurationError(
            f"{PRIVATE_KEY_ENV} (key id {signer.key_id}) is not among {PUBLIC_KEYS_ENV}: "
            "what this service signs would not verify")


# --- verification (pure) -------------------------------------------------------------

@dataclass(frozen=True)
class Break:
    seq: int
    case_id: str | None
    problem: str


def covered(entry: AuditEntry) -> bool:
    """Written with the audit key but left to the signature of a later entry of its statement."""
    return bool(entry.key_id) and not entry.signature


def signature_problem(entry: AuditEntry, service: str, chain_id: str, keys: dict[str, str]) -> str | None:
    """What is wrong with the entry's signature, or with the key a covered entry names; None if nothing."""
    if not entry.key_id:
        return "entry is not signed (written without the audit key)"
    key = keys.get(entry.key_id)
    if key is None:
        return (f"signed by key {entry.key_id}, which is not a configured audit key "
                f"({PUBLIC_KEYS_ENV}): entry forged")
    if covered(entry):
        return None
    if not verify(signed_entry_bytes(service, chain_id, entry.seq, entry.hash), entry.signature, key):
        return "signature does not match the entry (entry rewritten and its hashes recomputed)"
    return None


def check_entry(entry: AuditEntry, expected_seq: int, expected_prev: str) -> Break | None:
    """One link of the chain: in sequence, pointing at the previous hash, and unaltered."""
    if entry.seq != expected_seq:
        return Break(entry.seq, entry.case_id,
                     f"sequence gap: expected entry {expected_seq}, found {entry.seq} (entries removed)")
    if entry.prev_hash != expected_prev:
        return Break(entry.seq, entry.case_id, "prev_hash does not match the previous entry's hash")
    if entry_hash(entry) != entry.hash:
        return Break(entry.seq, entry.case_id, "hash does not match the entry's content (entry altered)")
    return None


class ChainWalk:
    """Checks entries one by one in chain order; `checked` counts them.

    With `keys` (key id -> public key) every entry must also carry a valid signature by one of
    them; with a `checkpoint`, the chain must pass through its seq with its head, and `finish`
    says whether it reached that far.
    """

    def __init__(self, service: str = "", chain_id: str = "", keys: dict[str, str] | None = None,
                 checkpoint: AuditCheckpoint | None = None) -> None:
        self.expected_prev, self.expected_seq, self.checked = GENESIS, 1, 0
        self.service, self.chain_id, self.keys, self.checkpoint = service, chain_id, keys, checkpoint
        self.open_from: AuditEntry | None = None  # the first covered entry no signature has closed yet

    def step(self, entry: AuditEntry) -> Break | None:
        self.checked += 1
        broken = check_entry(entry, self.expected_seq, self.expected_prev)
        if broken is None and self.keys is not None:
            broken = self._signature(entry)
        cp = self.checkpoint
        if broken is None and cp is not None and entry.seq == cp.seq:
            if entry.hash != cp.head:
                broken = Break(entry.seq, entry.case_id,
                               f"hash differs from the head the checkpoint of {_when(cp)} published for this "
                               "entry (chain rewritten)")
            else:
                self.open_from = None  # the checkpoint's signature closes what was covered up to it
        if broken is None:
            self.expected_prev, self.expected_seq = entry.hash, entry.seq + 1
        return broken

    def _signature(self, entry: AuditEntry) -> Break | None:
        """A signed entry closes the covered entries before it: a signature that does not match may
        be of any of them."""
        opened = self.open_from
        if problem := signature_problem(entry, self.service, self.chain_id, self.keys):
            if opened is not None and entry.key_id in self.keys and not covered(entry):
                return Break(opened.seq, opened.case_id,
                             f"the signature of entry {entry.seq}, which covers entries {opened.seq}.."
                             f"{entry.seq}, does not match them (one of them rewritten and the hashes recomputed)")
            return Break(entry.seq, entry.case_id, problem)
        self.open_from = (opened or entry) if covered(entry) else None
        return None

    def finish(self) -> Break | None:
        """After the last entry: the chain must reach the checkpoint, and every covered entry be closed."""
        cp, last = self.checkpoint, self.expected_seq - 1
        if cp is not None and last < cp.seq:
            return Break(last + 1, None,
                         f"chain truncated: it ends at entry {last}, the checkpoint of {_when(cp)} reaches "
                         f"entry {cp.seq} (entries {last + 1}..{cp.seq} removed)")
        if self.open_from is not None:
            return Break(self.open_from.seq, self.open_from.case_id,
                         f"entries {self.open_from.seq}..{last} wait for a signature that no entry after them "
                         "carries (the signed entry of their statement removed, or its signature)")
        return None


def _when(checkpoint: AuditCheckpoint) -> str:
    return checkpoint.at.astimezone(timezone.utc).isoformat(timespec="seconds")


def first_break(entries: Iterable[AuditEntry], walk: ChainWalk | None = None) -> tuple[int, Break | None]:
    """Walk the chain in order: (entries checked, the first broken entry or None)."""
    walk = walk or ChainWalk()
    for entry in entries:
        if broken := walk.step(entry):
            return walk.checked, broken
    return walk.checked, walk.finish()


def checkpoint_problem(checkpoint: AuditCheckpoint, keys: dict[str, str]) -> str | None:
    key = keys.get(checkpoint.key_id)
    if key is None:
        return f"signed by key {checkpoint.key_id}, which is not a configured audit key: checkpoint forged"
    if not verify(checkpoint_bytes(checkpoint), checkpoint.signature, key):
        return "signature does not match the checkpoint: checkpoint forged"
    return None


@dataclass(frozen=True)
class Anchor:
    """What the published checkpoints say of one chain."""

    latest: AuditCheckpoint | None  # the validly signed checkpoint of highest seq
    forged: list[tuple[AuditCheckpoint, str]]  # checkpoints of this chain that do not verify, with why
    # Ids of the service's other chains with genuine checkpoints: a deployment has one chain per
    # service, so an empty, never checkpointed chain beside them is one that was replaced.
    other_chains: list[str]


def anchor_of(checkpoints: Iterable[AuditCheckpoint], service: str, chain_id: str,
              keys: dict[str, str]) -> Anchor:
    """Among published checkpoints, this chain's: the latest genuine one, and every forged one."""
    latest, forged, others = None, [], []
    for cp in checkpoints:
        if cp.service != service:
            continue
        problem = checkpoint_problem(cp, keys)
        if cp.chain_id != chain_id:
            if problem is None and cp.chain_id not in others:
                others.append(cp.chain_id)
        elif problem:
            forged.append((cp, problem))
        elif latest is None or cp.seq > latest.seq:
            latest = cp
    return Anchor(latest, forged, others)


def parse_checkpoints(events: Iterable[dict[str, Any]]) -> list[AuditCheckpoint]:
    """The checkpoints among CloudEvents read from the topic (anything else is skipped)."""
    found = []
    for event in events:
        if isinstance(event, dict) and event.get("type") == CHECKPOINT:
            try:
                found.append(AuditCheckpoint.model_validate(event.get("data")))
            except ValueError:
                continue
    return found


# --- writing -------------------------------------------------------------------------

class Chain:
    """The chain's tail as seen by a transaction that holds the append lock.

    Subclasses name the chain (`service`, and `lock`, the advisory lock of its appends). The
    first `next_entry` takes the lock and reads the tail; while the lock is held nobody else
    appends, so later entries chain on without asking again. Keep one per transaction (or per
    consumer savepoint: Context.state) and never past a rollback of the savepoint it learnt the
    tail in; `appended` only after the entry's INSERT succeeded.
    """

    service = ""
    lock = ""

    def __init__(self, signer: AuditSigner | None = None) -> None:
        self.seq: int | None = None
        self.hash = GENESIS
        self.chain_id = ""
        self.signer = signer

    async def lock_chain(self, conn: asyncpg.Connection) -> None:
        """Take the append lock for the rest of the transaction (re-entrant)."""
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.lock)

    async def next_entry(self, conn: asyncpg.Connection, case_id: str | None, action: str, actor: str,
                         at: datetime, detail: dict[str, Any], after: AuditEntry | None = None,
                         signed: bool = True) -> AuditEntry:
        """The entry that would come next (after `after`, itself not yet appended, when given), signed;
        the caller inserts it (COLUMNS, entry_values) in the same statement as `after`, then calls
        `appended`. `signed=False` leaves it covered: only for an entry that the same statement follows
        with a signed one."""
        if self.seq is None:
            await self.lock_chain(conn)
            self.chain_id, self.seq, self.hash = await read_head(conn)
        signer = self.signer = self.signer or current_signer()
        # Round-trip through JSON so the hash is over exactly what jsonb will give back.
        detail = orjson.loads(orjson.dumps(detail, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS))
        seq, prev_hash = (after.seq + 1, after.hash) if after is not None else (self.seq + 1, self.hash)
        hash_ = _hash(seq, case_id, action, actor, at, detail, prev_hash)
        signature = signer.sign(signed_entry_bytes(self.service, self.chain_id, seq, hash_)) if signed else None
        return AuditEntry(seq=seq, case_id=case_id, action=action, actor=actor, at=at, detail=detail,
                          prev_hash=prev_hash, hash=hash_, key_id=signer.key_id, signature=signature)

    def appended(self, entry: AuditEntry) -> None:
        self.seq, self.hash = entry.seq, entry.hash

    def checkpoint(self, at: datetime | None = None) -> AuditCheckpoint:
        """The signed checkpoint of the tail as this transaction has it."""
        assert self.seq is not None, "no entry appended in this transaction"
        return sign_checkpoint(self.signer or current_signer(), self.service, self.chain_id, self.seq,
                               self.hash, at or now())

    def checkpoint_at_commit(self, work: Context | UnitOfWork) -> None:
        """Publish the tail when `work`'s transaction commits: one checkpoint per transaction (a consumer
        batch, a review), at the head it reached, however many entries it appended."""
        work.emit_at_commit(("warden.audit.checkpoint", self.service),
                            lambda: self.checkpoint() if self.seq else None)


def sign_checkpoint(signer: AuditSigner, service: str, chain_id: str, seq: int, head: str,
                    at: datetime) -> AuditCheckpoint:
    unsigned = AuditCheckpoint(service=service, chain_id=chain_id, seq=seq, head=head, at=at,
                               key_id=signer.key_id, signature="-")
    return unsigned.model_copy(update={"signature": signer.sign(checkpoint_bytes(unsigned))})


async def read_head(conn: asyncpg.Connection) -> tuple[str, int, str]:
    """(chain id, seq, hash) of the chain's last entry in the connection's schema; (id, 0, GENESIS) if empty."""
    row = await conn.fetchrow(
        "SELECT c.chain_id::text AS chain_id, t.seq, t.hash FROM audit_chain c"
        " LEFT JOIN LATERAL (SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) t ON true")
    if row is None:
        raise RuntimeError("audit_chain has no row: the audit migration did not run")
    return row["chain_id"], row["seq"] or 0, row["hash"] or GENESIS


COLUMNS = "seq, case_id, action, actor, at, detail, prev_hash, hash, key_id, signature"
WIDTH = len(COLUMNS.split(", "))
_DETAIL = COLUMNS.split(", ").index("detail")


def entry_values(entry: AuditEntry) -> tuple:
    """The values of COLUMNS, in order (detail as JSON text: cast it with ::jsonb)."""
    return (entry.seq, entry.case_id, entry.action, entry.actor, entry.at, orjson.dumps(entry.detail).decode(),
            entry.prev_hash, entry.hash, entry.key_id, entry.signature)


def placeholders(first: int) -> str:
    """`$first, …` for the values of COLUMNS, detail cast to jsonb (for INSERT … SELECT)."""
    return ", ".join(f"${first + i}" + ("::jsonb" if i == _DETAIL else "") for i in range(WIDTH))


INSERT = f"INSERT INTO audit_log ({COLUMNS}) VALUES ({placeholders(1)})"


async def append(conn: asyncpg.Connection, chain: Chain, case_id: str | None, action: str, actor: str,
                 at: datetime, detail: dict[str, Any]) -> AuditEntry:
    """Append in the caller's transaction; the advisory lock serialises writers until it commits."""
    entry = await chain.next_entry(conn, case_id, action, actor, at, detail)
    await conn.execute(INSERT, *entry_values(entry))
    chain.appended(entry)
    return entry


# --- reading -------------------------------------------------------------------------

def entry_of(row: asyncpg.Record) -> AuditEntry:
    return AuditEntry(seq=row["seq"], case_id=str(row["case_id"]) if row["case_id"] else None,
                      action=row["action"], actor=row["actor"], at=row["at"], detail=json.loads(row["detail"]),
                      prev_hash=row["prev_hash"], hash=row["hash"], key_id=row["key_id"],
                      signature=row["signature"])


async def chain_id_of(conn: asyncpg.Connection, schema: str) -> str:
    return await conn.fetchval(f'SELECT chain_id::text FROM "{schema}".audit_chain')


async def read_chain(conn: asyncpg.Connection, schema: str) -> AsyncIterator[AuditEntry]:
    """The whole chain in order, from one read-only snapshot."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        async for row in conn.cursor(f'SELECT * FROM "{schema}".audit_log ORDER BY seq', prefetch=1000):
            yield entry_of(row)


async def verify_chain(conn: asyncpg.Connection, schema: str, walk: ChainWalk) -> tuple[int, Break | None]:
    """Check the whole chain in one snapshot, streaming it: (entries checked, first break or None)."""
    async for entry in read_chain(conn, schema):
        if broken := walk.step(entry):
            return walk.checked, broken
    return walk.checked, walk.finish()


def configured_public_keys() -> dict[str, str]:
    """WARDEN_AUDIT_PUBLIC_KEYS, {key id: key}."""
    return public_keys(os.environ.get(PUBLIC_KEYS_ENV, ""))


# --- periodic checkpoints ------------------------------------------------------------

def checkpoint_publisher(chain_type: type[Chain]):
    """A background job: every WARDEN_AUDIT_CHECKPOINT_INTERVAL_S, the chain's head as a checkpoint,
    through the outbox, when it moved since this process last published one."""

    async def publish_checkpoints(runtime) -> None:
        interval = AuditSettings().audit_checkpoint_interval_s
        published: tuple[str, int] | None = None

        async def step() -> None:
            nonlocal published
            async with runtime.unit_of_work() as uow:
                chain_id, seq, head = await read_head(uow.conn)
                if seq and (chain_id, seq) != published:
                    uow.emit(sign_checkpoint(current_signer(), chain_type.service, chain_id, seq, head, now()))
            published = (chain_id, seq)
            HEAD_CHECKPOINTED.set_to_current_time()

        await every(runtime.stopping, interval, step, "audit_checkpoint")

    return publish_checkpoints
