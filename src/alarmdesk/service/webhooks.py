"""Signed webhooks: subscriptions (actions with their audit entries) and the deliverer.

The deliverer reads committed events from the events table — the same outbox the live stream
replays from — after each subscription's cursor, and POSTs each event the subscription wants,
signed (``domain/webhooks.py``). One subscription delivers one event at a time, in event id
order, so the order of one incident's events is kept; a failed delivery is retried with
exponential backoff up to ``[webhooks] max_attempts``, then given up on and counted. Every
attempt is in the delivery log; each delivered event is a disclosure in the audit log.

The alarm path never waits on it: it runs in its own tasks, reads in worker threads, and
writes its log and cursors through the writer like any other action (a batch of them per
transaction). A dead endpoint costs its own subscription's time only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import sqlalchemy as sa

from alarmdesk.domain.errors import AlarmdeskError, InvalidField, NotFound
from alarmdesk.domain.purpose import screen
from alarmdesk.domain.webhooks import WebhookSpec, backoff, body_of, check, headers, new_secret
from alarmdesk.domain.webhooks import wants as subscription_wants
from alarmdesk.safeguards.audit import Actor, AuditEvent, Operation, Outcome
from alarmdesk.service.actions import Action
from alarmdesk.service.audit_policy import configure_entry
from alarmdesk.store import repository as repo
from alarmdesk.store import webhooks as store

__all__ = [
    "Created",
    "Deliverer",
    "DelivererSettings",
    "check_spec",
    "create",
    "deliveries",
    "list_webhooks",
    "remove",
]

log = logging.getLogger(__name__)

BATCH = 200  # events read per query


@dataclass(frozen=True, slots=True)
class Created:
    id: int
    secret: str  # shown once, to the one who created it


def _host(url: str) -> str:
    """The URL's host for the audit entry ("" for a URL ``check`` refused as not a URL: its
    refusal is recorded, not a ValueError raised from the audit entry)."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _recipient(hook: Mapping[str, Any]) -> str:
    """Who received a delivery, as the transparency report names it: the subscription's
    description and the receiver's host (``County CAD (cad.example.org)``), or the host alone
    when it has no description. Never the URL's path or query (a key of the receiver's)."""
    host = _host(hook["url"]) or "unknown host"
    description = str(hook.get("description") or "").strip()
    return f"{description} ({host})" if description else host


class _Unsendable(Exception):
    """No request can be built for a subscription's URL (its reason as the message)."""


def _reason(exc: BaseException) -> str:
    """An exception as one printable line: its type and the first line of its message."""
    lines = str(exc).splitlines() or [""]
    text = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in lines[0])
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _unsendable(url: str) -> str | None:
    """Why no request can be made to ``url`` (None: it can be), by httpx's own rules: the URL
    is built and its host encoded and decoded as IDNA, as every request does. A host httpx
    cannot encode (a zero-width space, malformed punycode such as ``xn--zz``) fails here, not
    in the middle of a delivery; so does a URL stored before ``domain.webhooks.check``
    refused control characters."""
    try:
        request = httpx.Request("POST", url)
        _ = request.url.host  # decodes an IDNA host: raises for malformed punycode
    except Exception as exc:  # httpx raises InvalidURL, UnicodeError, IndexError...
        return _reason(exc)
    return None


def check_spec(spec: WebhookSpec) -> None:
    """The one check of a subscription, for the API and the command line alike (both go
    through :func:`create`): ``domain.webhooks.check`` (scheme, host, no credentials, no
    control characters or spaces, known events), then whether an HTTP request can be made to
    the URL at all (its host encodable by the IDNA rules httpx applies).

    Raises:
        InvalidField: with the field that is wrong (``url``: ``invalid_value``).
    """
    check(spec)
    reason = _unsendable(spec.url)
    if reason is not None:
        raise InvalidField(
            f"url: no HTTP request can be made to it ({reason}); the host must be a valid "
            "domain name (internationalised names are encoded as IDNA) or an IP address",
            field="url",
            code="invalid_value",
        )


def create(actor: Actor, spec: WebhookSpec) -> Action:
    """Subscribes a URL to events; the result carries the signing secret, shown this once.
    The audit entry names the host, the events and the desks (never the secret or the path,
    which may carry a key of the receiver's)."""
    secret = new_secret()

    def run(conn: sa.Connection, now: datetime) -> Created:
        check_spec(spec)
        screen({"webhook description": [spec.description] if spec.description else []})
        repo.check_known_desks(conn, spec.desks)
        values = {
            "url": spec.url,
            "events": list(spec.events),
            "desks": list(spec.desks),
            "description": spec.description,
            "secret": secret,
            "created_by": actor.id,
        }
        return Created(store.insert(conn, values, now), secret)

    def audit_of(result: Created | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        detail = {"host": _host(spec.url), "events": spec.events, "desks": spec.desks}
        webhook_id = str(result.id if result else "")
        return [configure_entry(actor, "webhook", webhook_id, "webhook.create", error, detail)]

    return Action(run, audit_of)


def remove(actor: Actor, webhook_id: int) -> Action:
    """Stops a subscription; its delivery log stays."""

    def run(conn: sa.Connection, now: datetime) -> int:
        store.remove(conn, webhook_id, now)
        return webhook_id

    def audit_of(_: int | None, error: AlarmdeskError | None) -> list[AuditEvent]:
        return [configure_entry(actor, "webhook", str(webhook_id), "webhook.remove", error)]

    return Action(run, audit_of)


def list_webhooks(engine: sa.Engine, *, removed: bool = False) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return store.listing(conn, removed=removed)


def deliveries(engine: sa.Engine, webhook_id: int, *, limit: int = 100) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        if not any(w["id"] == webhook_id for w in store.listing(conn, removed=True)):
            raise NotFound(f"no webhook {webhook_id}", field="webhook_id")
        return store.deliveries(conn, webhook_id, limit)


# --------------------------------------------------------------------------- delivery


# The longest wait between two tries of a delivery round that failed (not a receiver's
# answer: those have their own backoff; the database down, say).
ROUND_RETRY_CAP_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class DelivererSettings:
    max_attempts: int = 8
    backoff_seconds: float = 5.0
    backoff_cap_seconds: float = 3600.0
    timeout_seconds: float = 10.0
    poll_seconds: float = 0.5


def _record(
    hook: Mapping[str, Any],
    event: Mapping[str, Any] | None,
    attempts: list[dict[str, Any]],
    cursor: int | None,
    *,
    delivered: bool = False,
    gave_up: bool = False,
) -> Action:
    """The delivery log rows of some attempts, the cursor moved past what was handled, and a
    disclosure entry for a delivered event — in one transaction."""
    actor = Actor(f"webhook:{hook['id']}", "system")

    def run(conn: sa.Connection, now: datetime) -> None:
        store.log_attempts(conn, attempts)
        if cursor is not None:
            store.advance(conn, hook["id"], cursor, failed=1 if gave_up else 0)

    def audit_of(_: Any, error: AlarmdeskError | None) -> list[AuditEvent]:
        if not delivered or event is None:
            return []
        return [
            AuditEvent(
                actor,
                Operation.DISCLOSE,
                "incident",
                str(event["incident_id"]),
                Outcome.ALLOWED,
                "webhook.delivered",
                detail={
                    "webhook": hook["id"],
                    "event": event["id"],
                    "host": _host(hook["url"]),
                    "recipient": _recipient(hook),
                },
            )
        ]

    return Action(run, audit_of)


def _attempt(
    hook: Mapping[str, Any],
    event: Mapping[str, Any],
    attempt: int,
    at: datetime,
    outcome: str,
    status: int | None,
    error: str | None,
    duration_ms: int,
) -> dict[str, Any]:
    """One row of the delivery log."""
    return {
        "webhook_id": hook["id"],
        "event_id": event["id"],
        "incident_id": event["incident_id"],
        "attempt": attempt,
        "at": at,
        "outcome": outcome,
        "status": status,
        "error": error,
        "duration_ms": duration_ms,
    }


class Deliverer:
    """Delivers events to every subscription in force, each in a task of its own.

    Args:
        engine: where events and subscriptions are read.
        runner: runs an action in the writer (``Writer.run``).
        clock: the time of the signatures and of the log.
    """

    def __init__(
        self,
        engine: sa.Engine,
        runner: Callable[[Action], Awaitable[Any]],
        clock: Callable[[], datetime],
        settings: DelivererSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.engine = engine
        self.runner = runner
        self.clock = clock
        self.settings = settings or DelivererSettings()
        self.transport = transport
        self.workers: dict[int, asyncio.Task[None]] = {}
        # Reads run in threads of its own: closing waits for them, so no query is left running
        # on a connection when the engine is disposed (it would be left open in the old pool).
        self._reads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhooks")
        self.delivered = 0
        self.attempts = 0
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._task = loop.create_task(self.run(), name="webhooks")

    async def aclose(self) -> None:
        """Stops every task and waits until no read is running (a delivery in flight is sent
        again after a restart: its cursor had not moved)."""
        tasks = [t for t in (self._task, *self.workers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.workers.clear()
        self._task = None
        await asyncio.to_thread(self._reads.shutdown, wait=True)

    def stop(self) -> None:
        """Cancels the tasks without waiting (a loop that is not running); reads end by
        themselves."""
        for task in (self._task, *self.workers.values()):
            if task is not None:
                task.cancel()
        self._reads.shutdown(wait=False)

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._reads, fn, *args)

    def _active(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return store.active(conn)

    def _events_after(self, cursor: int) -> list[Mapping[str, Any]]:
        with self.engine.connect() as conn:
            return [dict(r) for r in repo.events_after(conn, cursor, BATCH)]

    async def run(self) -> None:
        """Starts a worker per subscription in force and stops the workers of removed ones,
        checking every few polls."""
        while True:
            try:
                hooks = {h["id"]: h for h in await self._read(self._active)}
                for hook_id, task in list(self.workers.items()):
                    if hook_id not in hooks or task.done():
                        task.cancel()
                        del self.workers[hook_id]
                for hook_id, hook in hooks.items():
                    if hook_id not in self.workers:
                        self.workers[hook_id] = asyncio.get_running_loop().create_task(
                            self._worker(hook), name=f"webhook-{hook_id}"
                        )
            except Exception:
                log.exception("reading webhook subscriptions failed")
            await asyncio.sleep(self.settings.poll_seconds * 4)

    async def _worker(self, hook: Mapping[str, Any]) -> None:
        cursor = int(hook["cursor"])
        async with httpx.AsyncClient(
            timeout=self.settings.timeout_seconds,
            follow_redirects=False,  # a redirect could lead the data anywhere
            transport=self.transport,
        ) as client:
            failures = 0
            while True:
                try:
                    cursor = await self._round(client, hook, cursor)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    # The database down, say: the traceback once, then a line a try, each
                    # try later than the one before (it was a traceback every half second).
                    failures += 1
                    wait = min(self.settings.poll_seconds * 2**failures, ROUND_RETRY_CAP_SECONDS)
                    if failures == 1:
                        log.exception("webhook %s: delivery round failed; trying again", hook["id"])
                    else:
                        log.warning(
                            "webhook %s: delivery round failed again (%d in a row: %s); next "
                            "try in %.0f s",
                            *(hook["id"], failures, type(exc).__name__, wait),
                        )
                    await asyncio.sleep(wait)

    async def _round(self, client: httpx.AsyncClient, hook: Mapping[str, Any], cursor: int) -> int:
        events = await self._read(self._events_after, cursor)
        if not events:
            await asyncio.sleep(self.settings.poll_seconds)
            return cursor
        passed: int | None = None  # the last event not wanted, not yet recorded
        unsendable = _unsendable(hook["url"])
        given_up = 0
        for event in events:
            if not subscription_wants(hook["events"], hook["desks"], event["type"], event["desks"]):
                passed = int(event["id"])
                continue
            if unsendable is not None:  # no attempt could ever send it: given up at once
                attempts = [_attempt(hook, event, 1, self.clock(), "failed", None, "InvalidURL", 0)]
                delivered, given_up = False, given_up + 1
            else:
                try:
                    attempts, delivered = await self._deliver(client, hook, event)
                except _Unsendable as exc:  # as above: this event and the rest given up on
                    unsendable = str(exc)
                    attempts = [
                        _attempt(hook, event, 1, self.clock(), "failed", None, "InvalidURL", 0)
                    ]
                    delivered, given_up = False, given_up + 1
            await self.runner(
                _record(
                    hook,
                    event,
                    attempts,
                    int(event["id"]),
                    delivered=delivered,
                    gave_up=not delivered,
                )
            )
            cursor, passed = int(event["id"]), None
        if passed is not None:
            await self.runner(_record(hook, None, [], passed))
            cursor = passed
        if given_up:
            log.warning(
                "webhook %s: its URL cannot be sent (%s); gave up on %d events without trying "
                "(remove it and subscribe a valid URL)",
                hook["id"], unsendable, given_up,
            )  # fmt: skip
        return cursor

    async def _deliver(
        self, client: httpx.AsyncClient, hook: Mapping[str, Any], event: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], bool]:
        """POSTs one event until it is taken (2xx) or ``max_attempts`` have failed; the
        attempts not yet logged, and whether it was delivered. Failed attempts are logged as
        they happen, so the log shows a delivery that is still being retried.

        Raises:
            _Unsendable: no request could be built for the URL (no attempt was made).
        """
        s = self.settings
        body = body_of(event)
        for attempt in range(1, s.max_attempts + 1):
            now = self.clock()
            started = time.monotonic()
            status: int | None = None
            error: str | None = None
            signed = headers(hook["secret"], event["id"], int(now.timestamp()), body)
            try:
                request = client.build_request("POST", hook["url"], content=body, headers=signed)
            except Exception as exc:  # a stored URL no request can be built for
                raise _Unsendable(_reason(exc)) from None
            try:
                answer = await client.send(request)
                status = answer.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            self.attempts += 1
            last = attempt == s.max_attempts
            outcome = "delivered" if error is None else ("failed" if last else "retry")
            row = _attempt(
                hook, event, attempt, now, outcome, status, error,
                int((time.monotonic() - started) * 1000),
            )  # fmt: skip
            if error is None:
                self.delivered += 1
                return [row], True
            if last:
                log.warning(
                    "webhook %s: gave up on event %s after %d attempts (%s)",
                    hook["id"], event["id"], attempt, error,
                )  # fmt: skip
                return [row], False
            await self.runner(_record(hook, event, [row], None))
            await asyncio.sleep(backoff(attempt, s.backoff_seconds, s.backoff_cap_seconds))
        return [], False  # max_attempts < 1: nothing tried
