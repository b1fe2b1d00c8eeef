"""A local HTTP host for the app's HTTP-triggered functions, as `func start` serves them on port 7071.

Core Tools cannot be installed everywhere (it downloads a binary), so this host reads the app's own
registrations (`devstack.runner.index`), routes `/<routePrefix>/<route>` as the Functions host does
and calls the real user functions with a real `azure.functions.HttpRequest`: what the worker runs.
Function keys are not checked: locally Core Tools does not check them for the `function` (or
`admin`) auth level either; a `code=` query or `x-functions-key` header is just passed on.
"""

from __future__ import annotations

import asyncio
import http.server
import inspect
import ipaddress
import json
import logging
import re
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from devstack.runner import HostError, index

log = logging.getLogger(__name__)
HOST_JSON = Path(__file__).resolve().parent.parent / "functions" / "host.json"
DEFAULTS = ("GET", "POST")  # the methods of a trigger that names none
_TOKEN = re.compile(r"\{([^{}]+)\}")
_HOP_HEADERS = {"content-length", "connection", "transfer-encoding"}  # this host sets those
# Route constraints of ASP.NET routing that change what a segment matches; others match any segment.
_CONSTRAINTS = {
    "int": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?:true|false)",
    "guid": r"[0-9A-Fa-f-]{32,36}",
}


@dataclass
class HttpRoute:
    """One HTTP function: where it listens and how to call it."""

    name: str
    route: str
    methods: tuple[str, ...]
    auth_level: str
    user_function: Callable[..., Any]
    arg_name: str
    _params: list[tuple[str, str | None]] = field(default_factory=list, repr=False)
    _regex: re.Pattern[str] = field(default=re.compile("(?!)"), repr=False)  # matches nothing

    def path(self, prefix: str) -> str:
        """The URL path (no host) this function answers, e.g. `/api/score`."""
        return "/" + "/".join(p for p in (prefix.strip("/"), self.route.strip("/")) if p)

    def compile(self, prefix: str) -> None:
        """The route template as a regex: `{p}`, `{p?}`, `{p=default}`, `{p:int}`, `{*rest}`."""
        self._params, pattern = [], ""
        for segment in (s for s in f"{prefix}/{self.route}".split("/") if s):
            parts = _TOKEN.split(segment)  # literal, token, literal, ...
            regex = "".join(re.escape(x) if i % 2 == 0 else self._param(x) for i, x in enumerate(parts))
            optional = len(parts) == 3 and not parts[0] + parts[2] and re.match(r"\*|.*[?=]", parts[1])
            pattern += f"(?:/{regex})?" if optional else f"/{regex}"
        self._regex = re.compile(f"^{pattern or '/'}/?$", re.IGNORECASE)  # routes ignore case

    def _param(self, token: str) -> str:
        token, _, default = token.partition("=")
        name, *constraints = token.lstrip("*").rstrip("?").split(":")
        kinds = [c.partition("(")[0].lower() for c in constraints]
        regex = next((_CONSTRAINTS[c] for c in kinds if c in _CONSTRAINTS), "[^/]+")
        self._params.append((name.rstrip("?"), default or None))
        return f"(?P<p{len(self._params) - 1}>{'.+' if token.startswith('*') else regex})"

    def match(self, path: str) -> dict[str, str] | None:
        """The route params if `path` (still percent-encoded) is this route, else None."""
        if (found := self._regex.match(path)) is None:
            return None
        got = {name: found.group(f"p{i}") or default for i, (name, default) in enumerate(self._params)}
        return {name: urllib.parse.unquote(value) for name, value in got.items() if value is not None}


def http_functions(app: func.FunctionApp) -> list[HttpRoute]:
    """The app's HTTP-triggered functions with their binding metadata, as the host indexes them."""
    routes = []
    for function in index(app):
        binding, name = function.get_trigger().get_dict_repr(), function.get_function_name()
        if binding.get("type") == "httpTrigger":
            methods = tuple(str(getattr(m, "value", m)).upper() for m in binding.get("methods") or DEFAULTS)
            level = str(getattr(a := binding.get("authLevel", "function"), "value", a)).lower()
            route = binding.get("route") or name
            routes.append(
                HttpRoute(name, route, methods, level, function.get_user_function(), binding["name"])
            )
    return routes


def route_prefix(host_json: Path = HOST_JSON) -> str:
    """`extensions.http.routePrefix` of host.json (may be empty: no prefix), else `api`."""
    document = json.loads(host_json.read_text(encoding="utf-8")) if host_json.exists() else {}
    prefix = document.get("extensions", {}).get("http", {}).get("routePrefix")
    return "api" if prefix is None else str(prefix).strip("/")


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name other than localhost may resolve to anything
        return False


def _encode(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of what the function returned, as the Python worker encodes it.

    A Content-Type header the function set wins; otherwise the mimetype (with the charset for
    text/*) is the Content-Type. Anything but an HttpResponse is the function's error (a 500).
    """
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"the function returned {type(result).__name__}, not an HttpResponse")
    headers = {k: v for k, v in result.headers.items() if k.lower() not in _HOP_HEADERS}
    if not any(k.lower() == "content-type" for k in headers):
        mimetype = result.mimetype or "text/plain"
        text = mimetype.startswith("text/") and result.charset
        headers["Content-Type"] = f"{mimetype}; charset={result.charset}" if text else mimetype
    return result.status_code, headers, result.get_body() or b""


class _Handler(http.server.BaseHTTPRequestHandler):
    """Routes one connection's requests to the functions; HTTP/1.1 so clients can keep it alive."""

    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: an answer goes out in two writes (headers, body); with Nagle's algorithm on, the
    # body waits for the client's delayed ACK, about 40 ms per request on Linux (bench/http_bench.py).
    disable_nagle_algorithm = True
    timeout = 120  # an idle keep-alive connection releases its thread after this
    server: FunctionsHttpServer

    def _handle(self) -> None:
        started = time.perf_counter()
        status, path = self._dispatch(), self.path.partition("?")[0]
        log.info("%s %s %d %.1fms", self.command, path, status, (time.perf_counter() - started) * 1000)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle  # noqa: N815 - dispatch names

    def _dispatch(self) -> int:
        path, _, query = self.path.partition("?")
        matches = [(r, p) for r in self.server.routes if (p := r.match(path)) is not None]
        if not matches:
            return self._send(404, {"Content-Type": "application/json"}, _error(f"no function at {path}"))
        allowed = [(r, p) for r, p in matches if self.command in r.methods]
        if not allowed:
            allow = ", ".join(sorted({m for r, _ in matches for m in r.methods}))
            body = _error(f"{self.command} not allowed at {path}")
            return self._send(405, {"Allow": allow, "Content-Type": "application/json"}, body)
        route, route_params = allowed[0]
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit() or "Transfer-Encoding" in self.headers:  # the host always sees a length
            self.close_connection = True
            return self._send(400, {"Content-Type": "application/json"}, _error("needs a Content-Length"))
        body = self.rfile.read(int(length))
        headers = {k: ", ".join(self.headers.get_all(k, [])) for k in self.headers}  # repeats joined
        request = func.HttpRequest(
            method=self.command,
            url=f"http://{self.headers.get('Host') or self.server.base_url[7:]}{self.path}",
            headers=headers,
            params=dict(urllib.parse.parse_qsl(query, keep_blank_values=True)),  # last value wins
            route_params=route_params,
            body=body,
        )
        try:
            result = route.user_function(**{route.arg_name: request})
            if inspect.isawaitable(result):
                result = asyncio.run(result)  # type: ignore[arg-type]
            return self._send(*_encode(result))
        except Exception:
            log.exception("Executed 'Functions.%s' (Failed)", route.name)
            text = f"Exception while executing function: Functions.{route.name}\n".encode()
            return self._send(500, {"Content-Type": "text/plain; charset=utf-8"}, text)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> int:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return status

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)  # one INFO line per request comes from _handle instead


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


class FunctionsHttpServer(http.server.ThreadingHTTPServer):
    """Serves `routes` under `prefix`; one daemon thread per connection, so Ctrl-C never hangs."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], routes: list[HttpRoute], prefix: str) -> None:
        self.routes, self.prefix = routes, prefix
        for route in routes:
            route.compile(prefix)
        super().__init__(address, _Handler)
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return "http://{}:{}".format(*self.server_address[:2])

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        """A client that hangs up on a kept-alive connection is normal, not a traceback on stderr."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s:%s closed the connection", *client_address[:2])
            return
        super().handle_error(request, client_address)

    def stop(self) -> None:
        """Stop serving (if started in a thread) and close the listening socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5)
        self.server_close()


def serve(
    app: func.FunctionApp,
    host: str = "127.0.0.1",
    port: int = 7071,
    *,
    host_json: Path = HOST_JSON,
    allow_remote: bool = False,
) -> FunctionsHttpServer:
    """A bound, not started server for the app's HTTP functions (then `serve_forever()`).

    Loopback only unless `allow_remote`: keys are not checked, so whoever reaches the port may call.
    """
    if not allow_remote and not _is_loopback(host):
        raise HostError(f"refusing to listen on {host}: not loopback (pass allow_remote=True to mean it)")
    return FunctionsHttpServer((host, port), http_functions(app), route_prefix(host_json))


def start_in_thread(
    app: func.FunctionApp, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> tuple[FunctionsHttpServer, str]:
    """Serve in a daemon thread (port 0: a free port): (server, base URL); `.stop()` the server."""
    server = serve(app, host, port, **options)
    server._thread = threading.Thread(target=server.serve_forever, name="http-host", daemon=True)
    server._thread.start()
    return server, server.base_url
