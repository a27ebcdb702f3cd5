"""One event reader per process, fanning out to bounded per-client queues (live streams and waits).

Why: a Redis connection and a full decode per client made 200 SSE clients cost more than the work they
watched. Here one asyncio task reads the event stream with ``XREAD BLOCK`` (on a connection whose read timeout
is longer than the block, so a quiet period is never an error) and hands each entry to the subscribers that
want it. Filtering uses the correlation id and type read from the encoded envelope, so nothing is decoded for
a client that does not want it, and the SSE data (the envelope plus its ``id``) is built once per event, not
once per client.

A subscriber that cannot keep up (its queue is full) gets a final ``OVERFLOW`` item naming the last event it
was given, and is dropped: one slow client never slows the reader or anyone else. After a batch the reader
waits ``batch_ms`` before reading again, so under load each client gets one write per window, not per event.
``close()`` (process shutdown) hands every subscriber ``CLOSED`` at once, so streams and waits end instead of
holding the exit up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orchestrator import keys
from orchestrator.errors import RedisUnavailableError, TooManyStreamsError
from orchestrator.state.events import correlation_of, type_matches, type_of

log = logging.getLogger(__name__)
SHORT_READS = 32  # concurrent short reads (run state, catch-up) on this process's async connection pool
READ_COUNT = 1000  # events per XREAD; a full read is followed at once by the next


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as handed to subscribers: its stream id, type, the envelope JSON with ``id``, and the whole SSE
    frame, encoded once for every client that receives it."""

    stream_id: str
    event_type: str
    data: str
    frame: bytes


def sse_frame(stream_id: str | None, event_type: str, data: str) -> bytes:
    """One Server-Sent Events message (``data`` is one line of JSON)."""
    head = f"id: {stream_id}\n" if stream_id else ""
    return f"{head}event: {event_type}\ndata: {data}\n\n".encode()


def delivery(stream_id: str, raw: str, event_type: str | None = None) -> Delivery:
    event_type = event_type if event_type is not None else type_of(raw)
    data = with_id(raw, stream_id)
    return Delivery(stream_id, event_type, data, sse_frame(stream_id, event_type, data))


OVERFLOW = "overflow"
CLOSED = "closed"
Item = Delivery | str


def with_id(raw: str, stream_id: str) -> str:
    """The envelope JSON with ``"id"`` added last (the public shape), without decoding it."""
    if raw.endswith("}") and raw != "{}":
        return f'{raw[:-1]},"id":"{stream_id}"}}'
    data = json.loads(raw) if raw else {}
    data["id"] = stream_id
    return json.dumps(data)


class Subscription:
    """A client's view of the bus: a bounded buffer of ``Delivery`` items, then maybe ``OVERFLOW``/``CLOSED``.

    A deque and one wake-up flag rather than an ``asyncio.Queue``: the reader appends a whole batch of events
    and wakes the consumer once, and the consumer takes everything waiting in one go (``drain``).
    """

    def __init__(self, run_id: str | None, types: list[str] | None, size: int, principal: str | None) -> None:
        self.run_id = run_id
        self.types = types
        self.principal = principal
        self.items: deque[Item] = deque()
        self.size = size
        self.ended = False
        self._wake = asyncio.Event()

    def offer_many(self, items: list[Delivery]) -> None:
        """Append what this subscriber wants of a batch and wake it once (``OVERFLOW`` when it would not fit)."""
        if self.types:
            items = [item for item in items if type_matches(item.event_type, self.types)]
        if self.ended or not items:
            return
        if len(self.items) + len(items) > self.size:
            self.end(OVERFLOW)
            return
        self.items.extend(items)
        self._wake.set()

    def end(self, marker: str) -> None:
        """Stop delivering; the consumer gets ``marker`` after what it already has (``CLOSED`` jumps the queue)."""
        if self.ended:
            return
        self.ended = True
        if marker == CLOSED:
            self.items.clear()
        self.items.append(marker)
        self._wake.set()

    async def drain(self, timeout: float) -> list[Item]:
        """Everything waiting, oldest first, once there is something; ``[]`` after ``timeout`` seconds of nothing."""
        if not self.items:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return []
        taken = list(self.items)
        self.items.clear()
        return taken


class EventHub:
    """The process's one event reader; subscribe from any coroutine, the reader starts on first use."""

    def __init__(
        self,
        url: str,
        *,
        block_ms: int = 5000,
        queue_events: int = 1000,
        max_streams_per_principal: int = 64,
        socket_timeout: float = 5.0,
        batch_ms: int = 100,
    ) -> None:
        self.url = url
        self.block_ms = block_ms
        self.queue_events = queue_events
        self.max_streams = max_streams_per_principal
        self.socket_timeout = socket_timeout
        self.batch_seconds = batch_ms / 1000
        self._by_run: dict[str, set[Subscription]] = defaultdict(set)
        self._all: set[Subscription] = set()
        self._streams: dict[str, int] = defaultdict(int)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None
        self._ready: asyncio.Event | None = None
        self._gate: asyncio.Semaphore | None = None
        self.closed = False
        self.cursor = "$"
        self.reads = 0  # XREAD calls that returned (an idle block counts too)

    # -- subscribing --------------------------------------------------------------------------------------------
    def subscribe(
        self,
        *,
        run_id: str | None = None,
        types: Iterable[str] | None = None,
        principal: str | None = None,
        size: int | None = None,
    ) -> Subscription:
        """A new subscription (counted against ``principal``'s stream cap when given); ORCH_8006 over the cap."""
        self._ensure_reader()
        if principal is not None:
            if self._streams[principal] >= self.max_streams:
                raise TooManyStreamsError(
                    f"'{principal}' already has {self._streams[principal]} live event streams (the limit is "
                    f"{self.max_streams}, ORCH_FRONTDOOR__MAX_STREAMS_PER_PRINCIPAL); close one and retry",
                    {"principal": principal, "limit": self.max_streams},
                )
            self._streams[principal] += 1
        sub = Subscription(run_id, list(types) if types else None, size or self.queue_events, principal)
        if self.closed:
            sub.end(CLOSED)
        elif run_id:
            self._by_run[run_id].add(sub)
        else:
            self._all.add(sub)
        return sub

    async def open(
        self,
        *,
        run_id: str | None = None,
        types: Iterable[str] | None = None,
        principal: str | None = None,
        size: int | None = None,
        ready_timeout: float = 5.0,
    ) -> Subscription:
        """``subscribe``, then wait until the reader has its starting point: every event published after this
        returns is delivered (earlier ones are the caller's catch-up). ORCH_8009 when Redis does not answer."""
        sub = self.subscribe(run_id=run_id, types=types, principal=principal, size=size)
        ready = self._ready
        if ready is not None and not ready.is_set():
            try:
                await asyncio.wait_for(ready.wait(), ready_timeout)
            except TimeoutError:
                self.unsubscribe(sub)
                raise RedisUnavailableError(
                    f"Redis did not answer within {ready_timeout:g}s; retry later", {"what": "event stream"}
                ) from None
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub.run_id:
            subs = self._by_run.get(sub.run_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._by_run[sub.run_id]
        else:
            self._all.discard(sub)
        if sub.principal is not None and self._streams.get(sub.principal, 0) > 0:
            self._streams[sub.principal] -= 1
            if not self._streams[sub.principal]:
                del self._streams[sub.principal]
        sub.ended = True

    @property
    def subscribers(self) -> int:
        return len(self._all) + sum(len(s) for s in self._by_run.values())

    # -- the reader ---------------------------------------------------------------------------------------------
    def _ensure_reader(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests make one per client): start over on it
            self._by_run.clear()
            self._all.clear()
            self._streams.clear()
            self._loop, self._task, self._client = loop, None, None
            self._ready = asyncio.Event()
            self._gate = asyncio.Semaphore(SHORT_READS)
            self.cursor = "$"
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._read(), name="orch-event-reader")

    @property
    def gate(self) -> asyncio.Semaphore:
        """Hold it around each use of ``client()``: at most ``SHORT_READS`` connections, however many waits read
        at once (the async pool refuses a request beyond its size instead of queueing it)."""
        if self._gate is None:
            self._ensure_reader()
        assert self._gate is not None
        return self._gate

    def client(self) -> Any:
        """This loop's async client for short reads (run state for waits); not the reader's connection."""
        if self._client is None:
            self._client = aioredis.Redis.from_url(
                self.url, decode_responses=True, socket_timeout=self.socket_timeout, socket_connect_timeout=2.0
            )
        return self._client

    async def _read(self) -> None:
        reader: Any = aioredis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_timeout=self.block_ms / 1000 + self.socket_timeout,  # longer than the block: idle is no error
            socket_connect_timeout=2.0,
        )
        backoff = 0.05
        try:
            while not self.closed:
                try:
                    if self.cursor == "$":  # start after the newest event: what follows is live
                        newest = await reader.xrevrange(keys.EVENTS_STREAM, count=1)
                        self.cursor = str(newest[0][0]) if newest else "0-0"
                    if self._ready is not None:
                        self._ready.set()
                    batch = await reader.xread({keys.EVENTS_STREAM: self.cursor}, count=READ_COUNT, block=self.block_ms)
                except (RedisError, OSError) as exc:
                    log.warning("event reader: %s; retrying in %.1fs", type(exc).__name__, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                backoff = 0.05
                self.reads += 1
                full = False
                for _stream, entries in batch or ():
                    full = full or len(entries) >= READ_COUNT
                    if entries:
                        self.cursor = entries[-1][0]
                        self._fan_out_batch([(stream_id, fields.get("e", "")) for stream_id, fields in entries])
                if batch and self.batch_seconds and not full:
                    # A burst: let the next events gather, so each client gets one write per window rather than
                    # one per event (the first event after a quiet period still goes out at once). A full read
                    # means more is already waiting: read it at once, or the window would cap the rate at
                    # READ_COUNT events per window.
                    await asyncio.sleep(self.batch_seconds)
        finally:
            with contextlib.suppress(Exception):
                await reader.aclose()

    def _fan_out(self, stream_id: str, raw: str) -> None:
        self._fan_out_batch([(stream_id, raw)])

    def _fan_out_batch(self, entries: list[tuple[str, str]]) -> None:
        """Hand one XREAD batch to every subscriber that wants some of it: one append of a list and one wake-up
        per subscriber and batch; each event is encoded once, and only if somebody wants it."""
        if not self._all and not self._by_run:
            return
        by_run: dict[str, list[Delivery]] = defaultdict(list)
        every: list[Delivery] = []
        for stream_id, raw in entries:
            run_id = correlation_of(raw) or ""
            if not self._all and run_id not in self._by_run:
                continue
            item = delivery(stream_id, raw)
            every.append(item)
            if run_id in self._by_run:
                by_run[run_id].append(item)
        for sub in self._all:
            sub.offer_many(every)
        for run_id, items in by_run.items():
            for sub in self._by_run.get(run_id, ()):
                sub.offer_many(items)

    # -- shutdown -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """End every subscription now (``CLOSED``) and stop the reader; safe from any thread or a signal handler."""
        self.closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._close_now()
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._close_now)

    def _close_now(self) -> None:
        for sub in (*self._all, *(s for subs in self._by_run.values() for s in subs)):
            sub.end(CLOSED)
        if self._task is not None:
            self._task.cancel()
