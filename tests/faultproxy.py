"""A TCP fault proxy for the fault tests: sits in front of a real service port on loopback.

    with FaultProxy(azurite.blob_port) as proxy:          # listens on 127.0.0.1:proxy.port
        proxy.latency_s = 0.005                           # every forwarded chunk waits 5 ms
        proxy.arm(Fault("reset", "down", after_bytes=1_000_000))     # RST mid-download, once
        proxy.arm(Fault("stall", "up", match=b"comp=blocklist"))     # hold a commit request
        proxy.refuse("closed")                            # nothing listens: connection refused
        proxy.refuse("rst")                               # accept, then reset at once
        proxy.refuse(None)                                # back to normal

Faults, per connection unless `total=True` (bytes counted over all connections since arming):

- `reset`: forward `after_bytes` bytes in `direction` ("up" = client -> service, "down" = service
  -> client), then reset both sides (SO_LINGER 0: the peer gets ECONNRESET, not a clean EOF).
- `stall`: forward up to that point, then stop forwarding in that direction without closing, for
  `stall_s` seconds; then reset the connection (`then="reset"`) or go on (`then="resume"`).
- `outage`: reset every open connection and refuse new ones (accept-and-RST) from then on.

`match` (a byte string seen in the client's requests, e.g. a URL part) fires a fault at its
`occurrence`-th appearance instead of after a byte count; it then acts on that request (the
chunk holding it is not forwarded), whatever `direction` says.
`connections` is how many connections a fault hits (None: every one).

Only 127.0.0.1, and bounded: the proxy stops itself after `lifetime_s`, and `stop()` (or leaving
the `with` block) resets whatever is still open and joins its threads.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

LOOPBACK = "127.0.0.1"
Direction = Literal["up", "down"]
_CHUNK = 64 * 1024
_TICK = 0.05


@dataclass
class Fault:
    kind: Literal["reset", "stall", "outage"]
    direction: Direction = "down"
    after_bytes: int = 0
    match: bytes | None = None
    occurrence: int = 1
    connections: int | None = 1
    stall_s: float = 5.0
    then: Literal["reset", "resume"] = "reset"
    total: bool = False
    # bookkeeping
    hits: int = field(default=0, init=False)
    seen: int = field(default=0, init=False)  # occurrences of `match` so far
    moved: int = field(default=0, init=False)  # bytes in `direction` since arming (total=True)

    @property
    def spent(self) -> bool:
        return self.connections is not None and self.hits >= self.connections

    def describe(self) -> str:
        if self.match is not None:
            return f"{self.kind} up at {self.match!r} #{self.occurrence}"
        return f"{self.kind} {self.direction} after {self.after_bytes:,} bytes"


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), so the peer sees ECONNRESET."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Connection:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.bytes: dict[str, int] = {"up": 0, "down": 0}
        self.tail: dict[str, bytes] = {"up": b"", "down": b""}
        self.closed = threading.Event()
        self.pumps = 2
        self.hit_by: set[int] = set()  # ids of faults that fired on this connection

    def reset(self) -> None:
        if not self.closed.is_set():
            self.closed.set()
            _reset(self.client)
            _reset(self.upstream)


class FaultProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`target_port`, with the faults it is told to inject."""

    def __init__(self, target_port: int, lifetime_s: float = 90.0, connect_timeout_s: float = 2.0) -> None:
        self.target_port = target_port
        self.latency_s = 0.0
        self.stats: Counter[str] = Counter()
        self.fired: list[str] = []  # descriptions of the faults that fired, in order
        self.fired_event = threading.Event()
        self._lifetime_s = lifetime_s
        self._connect_timeout_s = connect_timeout_s
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._refusing: str | None = None
        self._connections: set[_Connection] = set()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._release = threading.Event()
        self._listener: socket.socket | None = self._listen(0)
        self.port = self._listener.getsockname()[1]

    # -------------------------------------------------------------------------- control

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, port))
        listener.listen(64)
        listener.settimeout(_TICK)
        return listener

    def start(self) -> FaultProxy:
        self._spawn(self._accept_loop, "faultproxy-accept")
        self._spawn(self._watchdog, "faultproxy-watchdog")
        return self

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def arm(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """No more faults, no latency, connections accepted again (open connections stay as they are)."""
        with self._lock:
            self._faults.clear()
            self.latency_s = 0.0
        self.refuse(None)

    def refuse(self, mode: Literal["closed", "rst"] | None, reset_open: bool = True) -> None:
        """`closed`: stop listening (ECONNREFUSED); `rst`: accept and reset at once; None: normal.

        Refusing also resets the connections already open (a client's pool would keep using them).
        """
        if mode is not None and reset_open:
            self.reset_all()
        with self._lock:
            self._refusing = mode
            if mode == "closed" and self._listener is not None:
                self._listener.close()
                self._listener = None
            elif mode != "closed" and self._listener is None and not self._stop.is_set():
                self._listener = self._listen(self.port)

    def release(self) -> None:
        """End the stalls in progress now (each then resets or resumes, as its fault says)."""
        self._release.set()

    def reset_all(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.reset()
        self.stats["reset_all"] += 1

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self.reset_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5)

    # -------------------------------------------------------------------------- plumbing

    def _spawn(self, target, name: str, *args: object) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _watchdog(self) -> None:
        if not self._stop.wait(self._lifetime_s):
            self.stats["expired"] += 1
            self.stop()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            listener = self._listener
            if listener is None:
                time.sleep(_TICK)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            self.stats["connections"] += 1
            if self._refusing == "rst":
                self.stats["refused"] += 1
                _reset(client)
                continue
            try:
                upstream = socket.create_connection((LOOPBACK, self.target_port), self._connect_timeout_s)
            except OSError:
                self.stats["upstream_unreachable"] += 1
                _reset(client)
                continue
            for sock in (client, upstream):
                sock.setblocking(True)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(client, upstream)
            with self._lock:
                self._connections.add(connection)
            self._spawn(self._pump, "faultproxy-up", connection, "up")
            self._spawn(self._pump, "faultproxy-down", connection, "down")

    def _decide(self, connection: _Connection, direction: str, data: bytes) -> tuple[int, Fault | None]:
        """How many bytes of `data` to forward, and the fault that fires after them (if any)."""
        with self._lock:
            for fault in self._faults:
                if fault.spent or (fault.direction != direction and fault.match is None):
                    continue
                if fault.match is not None:
                    if direction != "up" or id(fault) in connection.hit_by:
                        continue
                    keep = len(fault.match) - 1  # a match cut by the chunk boundary still counts, once
                    window = (connection.tail[direction][-keep:] if keep else b"") + data
                    found = window.count(fault.match)
                    if found and fault.seen + found >= fault.occurrence:
                        fault.seen = fault.occurrence
                        return 0, self._fire(fault, connection)
                    fault.seen += found
                    continue
                moved = fault.moved if fault.total else connection.bytes[direction]
                if fault.total:
                    fault.moved += len(data)
                elif id(fault) in connection.hit_by:
                    continue
                if moved + len(data) > fault.after_bytes:
                    return max(0, fault.after_bytes - moved), self._fire(fault, connection)
        return len(data), None

    def _fire(self, fault: Fault, connection: _Connection) -> Fault:
        fault.hits += 1
        connection.hit_by.add(id(fault))
        self.fired.append(fault.describe())
        self.stats[fault.kind] += 1
        self.fired_event.set()
        return fault

    def _pump(self, connection: _Connection, direction: str) -> None:
        source, target = connection.client, connection.upstream
        if direction == "down":
            source, target = target, source
        try:
            while not (self._stop.is_set() or connection.closed.is_set()):
                readable, _, _ = select.select([source], [], [], _TICK)
                if not readable:
                    continue
                data = source.recv(_CHUNK)
                if not data:
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                    return
                count, fault = self._decide(connection, direction, data)
                if self.latency_s:
                    self.stats["delays"] += 1
                    time.sleep(self.latency_s)
                if count:
                    target.sendall(data[:count])
                connection.bytes[direction] += count
                self.stats[f"bytes_{direction}"] += count
                connection.tail[direction] = data[-256:]
                if fault is None:
                    continue
                if fault.kind == "outage":
                    self.refuse("rst")
                    return
                if fault.kind == "stall":
                    deadline = time.monotonic() + fault.stall_s
                    while time.monotonic() < deadline and not (
                        self._stop.is_set() or connection.closed.is_set() or self._release.is_set()
                    ):
                        time.sleep(_TICK)
                    if fault.then == "resume" and not connection.closed.is_set():
                        target.sendall(data[count:])
                        connection.bytes[direction] += len(data) - count
                        continue
                connection.reset()
                return
        except OSError:
            connection.reset()
        finally:
            with self._lock:
                connection.pumps -= 1
                done = connection.pumps == 0
                if done:
                    self._connections.discard(connection)
            if done and not connection.closed.is_set():  # both sides said goodbye: a normal close
                connection.closed.set()
                connection.client.close()
                connection.upstream.close()


def azurite_via(blob_port: int, queue_port: int) -> str:
    """An Azurite connection string whose endpoints are the given ports (a proxy's, or Azurite's)."""
    from devstack.azurite import connection_string

    return connection_string(blob_port, queue_port)


def odbc_with_port(odbc: str, port: int) -> str:
    """The PostgreSQL ODBC connection string of devstack/postgres.py with another Port."""
    parts = [p for p in odbc.split(";") if p and not p.lower().startswith("port=")]
    return ";".join([*parts, f"Port={port}"]) + ";"
