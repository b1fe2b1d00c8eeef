"""The local HTTP host over real loopback HTTP: routing, the request the function sees, the response."""

from __future__ import annotations

import http.client
import json
import logging
import sys
import threading
import types
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest

from devstack import http_host
from devstack.runner import HostError

RAW = bytes(range(256)) + b"\xff\xfe not utf-8 \x80"


def make_app() -> func.FunctionApp:
    app = func.FunctionApp()

    @app.route(route="echo/{name}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
    def echo(req: func.HttpRequest) -> func.HttpResponse:
        seen = {
            "method": req.method,
            "url": req.url,
            "route": dict(req.route_params),
            "params": dict(req.params),
            "trace": req.headers.get("x-trace-id"),
            "body": req.get_body().hex(),
        }
        return func.HttpResponse(
            json.dumps(seen), status_code=201, headers={"X-Echo": "yes"}, mimetype="application/json"
        )

    @app.route(
        route="items/{id:int}/{kind?}",
        methods=["GET"],
        auth_level=func.AuthLevel.ANONYMOUS,
        trigger_arg_name="request",
    )
    def item(request: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(json.dumps(dict(request.route_params)), mimetype="application/json")

    @app.route(methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def health(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("ok")

    @app.route(route="boom")
    def boom(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("the model is missing")

    return app


@pytest.fixture
def base_url() -> Iterator[str]:
    server, url = http_host.start_in_thread(make_app(), port=0)
    try:
        yield url
    finally:
        server.stop()


def call(
    base_url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(base_url).netloc, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def test_http_functions_read_the_bindings() -> None:
    routes = {r.name: r for r in http_host.http_functions(make_app())}
    assert set(routes) == {"echo", "item", "health", "boom"}
    assert routes["echo"].methods == ("POST",)
    assert routes["echo"].auth_level == "function"
    assert routes["item"].arg_name == "request"
    assert routes["health"].route == "health"
    assert routes["boom"].methods == ("GET", "POST")
    assert routes["item"].auth_level == "anonymous"


def test_a_post_reaches_the_function_with_everything(base_url: str) -> None:
    response, body = call(
        base_url,
        "POST",
        "/api/echo/Ada%20L?x=1&x=2&empty=&code=secret",
        body=RAW,
        headers={"X-TRACE-ID": "t-42", "Content-Type": "application/octet-stream"},
    )
    assert response.status == 201
    assert response.getheader("X-Echo") == "yes"
    assert response.getheader("Content-Type") == "application/json"
    assert int(response.getheader("Content-Length")) == len(body)
    seen = json.loads(body)
    assert seen["method"] == "POST"
    assert seen["route"] == {"name": "Ada L"}
    assert seen["params"] == {"x": "2", "empty": "", "code": "secret"}  # last value wins; keys not checked
    assert seen["trace"] == "t-42"  # headers arrive, looked up case-insensitively
    assert bytes.fromhex(seen["body"]) == RAW
    assert seen["url"].startswith("http://127.0.0.1:") and seen["url"].endswith(
        "/api/echo/Ada%20L?x=1&x=2&empty=&code=secret"
    )


def test_route_constraints_and_optional_segments(base_url: str) -> None:
    response, body = call(base_url, "GET", "/api/items/7")
    assert (response.status, json.loads(body)) == (200, {"id": "7"})
    response, body = call(base_url, "GET", "/API/Items/7/big")  # routes ignore case
    assert (response.status, json.loads(body)) == (200, {"id": "7", "kind": "big"})
    response, _ = call(base_url, "GET", "/api/items/seven")
    assert response.status == 404


def test_text_response_has_mimetype_and_charset(base_url: str) -> None:
    response, body = call(base_url, "GET", "/api/health")
    assert (response.status, body) == (200, b"ok")
    assert response.getheader("Content-Type") == "text/plain; charset=utf-8"


def test_no_function_is_a_json_404(base_url: str) -> None:
    response, body = call(base_url, "GET", "/api/nothing/here?x=1")
    assert response.status == 404
    assert json.loads(body) == {"error": "no function at /api/nothing/here"}
    response, _ = call(base_url, "GET", "/health")  # without the prefix
    assert response.status == 404


def test_wrong_method_is_405_with_allow(base_url: str) -> None:
    response, _ = call(base_url, "GET", "/api/echo/x")
    assert response.status == 405
    assert response.getheader("Allow") == "POST"


def test_an_exception_is_a_500_and_logged(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="devstack.http_host"):
        response, body = call(base_url, "GET", "/api/boom")
        for _ in range(100):  # the access line is logged just after the response is written
            if any(r.getMessage().startswith("GET /api/boom 500 ") for r in caplog.records):
                break
            threading.Event().wait(0.02)
    assert response.status == 500
    assert b"Functions.boom" in body and b"the model is missing" not in body  # short, no details
    failure = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure and failure[0].exc_info and "the model is missing" in str(failure[0].exc_info[1])
    assert any(r.getMessage().startswith("GET /api/boom 500 ") for r in caplog.records)


def test_keep_alive_serves_two_requests_on_one_connection(base_url: str) -> None:
    conn = http.client.HTTPConnection(urllib.parse.urlsplit(base_url).netloc, timeout=10)
    try:
        conn.request("GET", "/api/health")
        first = conn.getresponse()
        assert first.read() == b"ok"
        sock = conn.sock
        conn.request("POST", "/api/echo/two", body=b"second")
        second = conn.getresponse()
        assert second.status == 201
        assert bytes.fromhex(json.loads(second.read())["body"]) == b"second"
        assert conn.sock is sock and sock is not None  # the same TCP connection
    finally:
        conn.close()


@pytest.mark.parametrize(("prefix", "path"), [("v1/fn", "/v1/fn/health"), ("", "/health")])
def test_route_prefix_from_host_json(tmp_path: Path, prefix: str, path: str) -> None:
    host_json = tmp_path / "host.json"
    host_json.write_text(json.dumps({"version": "2.0", "extensions": {"http": {"routePrefix": prefix}}}))
    assert http_host.route_prefix(host_json) == prefix
    server, url = http_host.start_in_thread(make_app(), host_json=host_json)
    try:
        assert call(url, "GET", path)[0].status == 200
        assert call(url, "GET", "/api/health")[0].status == 404
    finally:
        server.stop()


def test_the_repo_host_json_prefix_is_api() -> None:
    assert http_host.route_prefix() == "api"
    assert http_host.route_prefix(Path("/nonexistent/host.json")) == "api"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com"])  # noqa: S104 - refused, the point
def test_a_non_loopback_host_is_refused(host: str) -> None:
    with pytest.raises(HostError, match="not loopback"):
        http_host.serve(make_app(), host, 0)


def test_cli_serve_prints_routes_and_stops_cleanly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devstack import __main__ as cli
    from devstack import azurite, local_settings

    monkeypatch.setattr(azurite, "ensure_local", lambda: None)
    monkeypatch.setattr(local_settings, "apply", lambda: {})
    monkeypatch.setitem(sys.modules, "functions.function_app", types.SimpleNamespace(app=make_app()))
    started: list[http_host.FunctionsHttpServer] = []
    real_serve = http_host.serve

    def capture(*args, **kwargs):
        started.append(real_serve(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(http_host, "serve", capture)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(cli.main(["serve", "--port", "0"])))
    thread.start()
    for _ in range(200):
        if started:
            break
        threading.Event().wait(0.05)
    assert started, "the CLI did not start a server"
    assert call(started[0].base_url, "GET", "/api/health")[1] == b"ok"
    started[0].shutdown()
    thread.join(10)
    assert result == [0]
    out = capsys.readouterr().out
    assert f"echo: POST {started[0].base_url}/api/echo/{{name}}" in out
    assert f"boom: GET,POST {started[0].base_url}/api/boom" in out
