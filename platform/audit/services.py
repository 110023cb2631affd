"""Writing, verifying and exporting audit events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction

from audit.models import GLOBAL_CHAIN, AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "chain",
    "seq",
    "created_at",
    "tenant_id",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "before",
    "after",
    "request_id",
    "ip",
)


@dataclass(frozen=True)
class Actor:
    type: str
    id: str = ""
    label: str = ""

    @classmethod
    def system(cls, label: str = "system") -> Actor:
        return cls(AuditEvent.ActorType.SYSTEM, "", label)


@dataclass
class RequestContext:
    request_id: str = ""
    ip: str | None = None
    actor: Actor = field(default_factory=Actor.system)


def client_ip(request) -> str | None:
    # Behind the compose proxy the peer is the proxy; REMOTE_ADDR is rewritten by the server
    # config when a trusted proxy is configured, so we never trust X-Forwarded-For here.
    return request.META.get("REMOTE_ADDR") or None


def actor_from_request(request) -> Actor:
    from tenancy.models import ApiKey

    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiKey):
        return Actor(AuditEvent.ActorType.API_KEY, str(auth.pk), f"{auth.name} ({auth.masked})")
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor(AuditEvent.ActorType.USER, str(user.pk), user.get_username())
    return Actor(AuditEvent.ActorType.ANONYMOUS, "", "anonymous")


def context_from_request(request) -> RequestContext:
    return RequestContext(
        request_id=getattr(request, "request_id", ""),
        ip=client_ip(request),
        actor=actor_from_request(request),
    )


def _canonical(event_fields: dict) -> bytes:
    return json.dumps(event_fields, sort_keys=True, separators=(",", ":"), default=str).encode()


def compute_hash(prev_hash: str, event_fields: dict) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(event_fields)).hexdigest()


def _fields_of(event: AuditEvent) -> dict:
    values = {name: getattr(event, name) for name in HASHED_FIELDS}
    values["tenant_id"] = str(event.tenant_id) if event.tenant_id else None
    values["created_at"] = event.created_at.astimezone(UTC).isoformat()
    return values


def _jsonable(value):
    # Round-trip through JSON so what we hash is exactly what the database returns later.
    return None if value is None else json.loads(json.dumps(value, default=str))


def record(
    action: str,
    *,
    tenant=None,
    context: RequestContext | None = None,
    request=None,
    actor: Actor | None = None,
    target=None,
    target_type: str = "",
    target_id: str = "",
    target_repr: str = "",
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append one event to its tenant's chain. Runs inside the caller's transaction, so an
    action that rolls back leaves no event behind."""
    if context is None:
        context = context_from_request(request) if request is not None else RequestContext()
    if actor is not None:
        context = RequestContext(context.request_id, context.ip, actor)
    if target is not None:
        target_type = target_type or target._meta.label_lower
        target_id = target_id or str(target.pk)
        target_repr = target_repr or str(target)[:200]
    chain = str(tenant.pk) if tenant is not None else GLOBAL_CHAIN

    with transaction.atomic():
        AuditChainHead.objects.bulk_create([AuditChainHead(chain=chain)], ignore_conflicts=True)
        head = AuditChainHead.objects.select_for_update().get(chain=chain)
        event = AuditEvent(
            tenant=tenant,
            chain=chain,
            seq=head.seq + 1,
            created_at=datetime.now(UTC),
            actor_type=context.actor.type,
            actor_id=context.actor.id,
            actor_label=context.actor.label[:200],
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            target_repr=target_repr[:200],
            before=_jsonable(before),
            after=_jsonable(after),
            request_id=context.request_id,
            ip=context.ip,
            prev_hash=head.hash,
        )
        event.hash = compute_hash(head.hash, _fields_of(event))
        event.save(force_insert=True)
        head.seq, head.hash = event.seq, event.hash
        head.save(update_fields=["seq", "hash"])
    return event


@dataclass
class ChainProblem:
    chain: str
    seq: int | None
    event_id: int | None
    kind: str  # tampered | deleted | reordered | truncated
    detail: str

    def __str__(self) -> str:
        where = f"event id={self.event_id} seq={self.seq}" if self.event_id else f"seq={self.seq}"
        return f"[{self.chain}] {self.kind}: {where}: {self.detail}"


def verify_chain(chain: str) -> list[ChainProblem]:
    problems: list[ChainProblem] = []
    expected_seq, prev_hash = 1, GENESIS_HASH
    events = AuditEvent.dangerously_unscoped.filter(chain=chain).order_by("seq").iterator()
    for event in events:
        if event.seq > expected_seq:
            problems.append(
                ChainProblem(
                    chain,
                    expected_seq,
                    None,
                    "deleted",
                    f"events seq {expected_seq}..{event.seq - 1} are missing",
                )
            )
        elif event.seq < expected_seq:
            problems.append(
                ChainProblem(
                    chain,
                    event.seq,
                    event.pk,
                    "reordered",
                    "sequence number repeats or goes backwards",
                )
            )
        recomputed = compute_hash(event.prev_hash, _fields_of(event))
        if recomputed != event.hash:
            problems.append(
                ChainProblem(
                    chain, event.seq, event.pk, "tampered", "row content does not match its hash"
                )
            )
        elif event.prev_hash != prev_hash and event.seq == expected_seq:
            problems.append(
                ChainProblem(
                    chain,
                    event.seq,
                    event.pk,
                    "reordered",
                    "prev_hash does not link to the previous event",
                )
            )
        prev_hash, expected_seq = event.hash, max(expected_seq, event.seq) + 1
    head = AuditChainHead.objects.filter(chain=chain).first()
    last_seq = expected_seq - 1
    if head is not None and (head.seq != last_seq or (last_seq and head.hash != prev_hash)):
        problems.append(
            ChainProblem(
                chain,
                head.seq,
                None,
                "truncated",
                f"chain head says seq {head.seq}, last event found is seq {last_seq}",
            )
        )
    return problems


def all_chains() -> list[str]:
    chains = set(AuditChainHead.objects.values_list("chain", flat=True))
    chains |= set(AuditEvent.dangerously_unscoped.values_list("chain", flat=True).distinct())
    return sorted(chains)


# Exports carry every hashed field plus the chain links, so a copy can be verified offline.
# An event's public id is its `seq` in the tenant's chain: the global row id would let one
# tenant count everyone's activity.
EXPORT_FIELDS = [*(f for f in HASHED_FIELDS if f != "chain"), "prev_hash", "hash"]


def export_row(event: AuditEvent) -> dict:
    row = {name: getattr(event, name) for name in EXPORT_FIELDS}
    row["tenant_id"] = str(event.tenant_id) if event.tenant_id else None
    row["created_at"] = event.created_at.astimezone(UTC).isoformat()
    return row


def export_rows(tenant, events, fmt: str, *, filters: dict, context: RequestContext | None):
    """The rows of an export of `events` (in chain order), after recording who exported what:
    taking a copy of the audit log is itself audited, from the API and the console alike."""
    record(
        "audit.export", tenant=tenant, context=context, after={"format": fmt, "filters": filters}
    )
    return _rows(events.order_by("seq"))


def _rows(events) -> Iterator[dict]:
    for event in events.iterator():
        yield export_row(event)
