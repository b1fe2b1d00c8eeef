"""`scripts/smoke.py --stack NAME`: the post-deploy smoke test, locally or against a deployed stack.

A deploy that went through can still be broken where only real traffic shows it (a stage pointer
at a version that is gone, an Event Grid subscription that delivers nothing, a key that does not
work), so each step drives the real path once and checks what it left: **export** (the
`daily_export` timer; every EXPORT_TABLES manifest of today written by this run), **scoring** (a
few bank rows uploaded as `smoke-{UTC}-{hex}.csv`, scored with the version MODEL_STAGE points at,
one prediction per row, or the rejection's code and message), **http** (2 rows to `score`, and
`ready`). Locally the app's functions run in this process (as `python -m devstack host`); in
Azure the Functions host does the work and this script only triggers and reads.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
from azure.storage.blob import BlobServiceClient

from devstack import azurite, http_host, local_settings, runner
from devstack.bank_rows import BANK_CSV
from functions.blob_io import read_text
from lake import clients
from lake.contract import (
    DATA_LAKE,
    EXPORTS_CONTAINER,
    MODELS_CONTAINER,
    PREDICTIONS_CONTAINER,
    REJECTED_CONTAINER,
    SCORING_INPUT_CONTAINER,
)
from lake.paths import OutputPaths, RejectedPaths, export_manifest_path
from model.registry import BlobStore, NotFoundError, Registry

STEPS = ("export", "scoring", "http")
SAMPLE_ROWS = 5  # a few rows: the smoke test proves the path, not throughput
HTTP_ROWS = 2
CLOCK_SLACK = dt.timedelta(seconds=60)  # the Functions host's clock against ours
GAVE_UP = "the host gave up"  # a delivery reason that ends the wait: nothing will be retried
T = TypeVar("T")


class SmokeFailed(Exception):  # noqa: N818 - an outcome of the run, named as the report says it
    """One step failed: `step` is its name, the message says what was expected and what was found."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass(frozen=True)
class Endpoint:
    """Where the HTTP step calls: the score and ready URLs, and the function key (None locally)."""

    score_url: str
    ready_url: str
    key: str | None


@dataclass
class Result:
    """What a run found per step (for the report and the tests), its timings, and the failure."""

    stack: str
    found: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    failure: SmokeFailed | None = None

    @property
    def code(self) -> int:
        return 0 if self.failure is None else 1

    def summary(self) -> str:
        if self.failure is not None:
            return f"smoke {self.stack}: FAILED at {self.failure.step}: {self.failure}"
        timings = ", ".join(f"{step} {s:.1f} s" for step, s in self.seconds.items())
        scoring = self.found.get("scoring")
        what = f" ({scoring['input']} scored by version {scoring['version']})" if scoring else ""
        skipped = f"; skipped {', '.join(self.skipped)}" if self.skipped else ""
        return f"smoke {self.stack}: OK in {sum(self.seconds.values()):.1f} s: {timings}{what}{skipped}"


class Target:
    """What the steps need from a stack; LocalTarget runs the app here, AzureTarget calls Azure."""

    stack = "local"
    default_timeout = 60.0
    poll_every = 0.2
    read_only = False  # prod: no test files, no test traffic in the request log
    service: BlobServiceClient
    model_name: str
    model_stage: str
    tables: list[str]

    def trigger_export(self) -> None:
        raise NotImplementedError

    def deliver(self, blob_name: str) -> str | None:
        """Give the app a chance to score new blobs; why `blob_name` failed, if it is known."""
        return None

    @contextmanager
    def http(self) -> Iterator[Endpoint | None]:
        yield None


# ------------------------------------------------------------------------------------- the steps


def sample_frame(rows: int = SAMPLE_ROWS) -> pd.DataFrame:
    """`rows` shipped bank clients shaped like the `clients` export: client_id first, no label."""
    frame = pd.read_csv(BANK_CSV, sep=";", nrows=rows).drop(columns=["y", "duration"])
    frame.insert(0, "client_id", range(1, len(frame) + 1))
    return frame


def _poll(check: Callable[[], T | None], timeout: float, every: float, tick: Callable[[], None]) -> T | None:
    deadline = time.monotonic() + timeout
    while True:
        tick()
        if (found := check()) is not None or time.monotonic() >= deadline:
            return found
        time.sleep(every)


def _read_json(service: BlobServiceClient, container: str, path: str) -> dict[str, Any] | None:
    text = read_text(service.get_container_client(container), path)  # one request; None if absent
    return None if text is None else json.loads(text)


def _finished(manifest: dict[str, Any] | None) -> dt.datetime | None:
    stamp = (manifest or {}).get("finished_at")
    when = dt.datetime.fromisoformat(stamp) if stamp else None
    return when.replace(tzinfo=when.tzinfo or dt.UTC) if when else None


def step_export(target: Target, timeout: float) -> dict[str, Any]:
    """Run the export once; every table's manifest of today must be finished after the trigger."""
    triggered = dt.datetime.now(dt.UTC)
    target.trigger_export()
    day = triggered.date()
    seen: dict[str, dict[str, Any] | None] = {}
    since = triggered - CLOCK_SLACK

    def fresh(table: str) -> bool:
        when = _finished(seen.get(table))
        return when is not None and when >= since

    def stale() -> list[str]:
        for table in target.tables:
            if not fresh(table):
                seen[table] = _read_json(target.service, EXPORTS_CONTAINER, export_manifest_path(table, day))
        return [t for t in target.tables if not fresh(t)]

    _poll(lambda: None if stale() else True, timeout, target.poll_every, lambda: None)
    if left := stale():
        found = "; ".join(
            f"{EXPORTS_CONTAINER}/{export_manifest_path(t, day)}: "
            + (f"finished {seen[t].get('finished_at')}, before the trigger" if seen[t] else "absent")
            for t in left
        )
        raise SmokeFailed(
            "export",
            f"expected a manifest of {day} finished after {triggered:%H:%M:%S} UTC for each of "
            f"{', '.join(target.tables)} within {timeout:.0f} s; found {found}",
        )
    return {"date": day.isoformat(), "rows": {t: int(seen[t]["rows"]) for t in target.tables}}  # type: ignore[index]


def step_scoring(target: Target, timeout: float, uploaded: list[str]) -> dict[str, Any]:
    """Upload a sample; wait for its predictions (one per row) with the served version, or a rejection."""
    registry = Registry(BlobStore(target.service.get_container_client(MODELS_CONTAINER)))
    try:
        version = registry.resolve(target.model_name, target.model_stage)
    except NotFoundError as error:
        raise SmokeFailed("scoring", f"no model to score with: {error}") from None
    frame = sample_frame()
    name = f"smoke-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M}-{secrets.token_hex(2)}"
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\r\n")  # comma-separated, CRLF: as the exports
    blob = target.service.get_blob_client(SCORING_INPUT_CONTAINER, f"{name}.csv")
    etag = blob.upload_blob(buffer.getvalue().encode(), overwrite=False)["etag"]
    uploaded.append(blob.blob_name)
    paths, rejected = OutputPaths(name, version), RejectedPaths(name, etag)
    reasons: list[str] = []

    def outcome() -> tuple[str, dict[str, Any]] | None:
        if (manifest := _read_json(target.service, PREDICTIONS_CONTAINER, paths.manifest)) is not None:
            return "scored", manifest
        if (error := _read_json(target.service, REJECTED_CONTAINER, rejected.error)) is not None:
            return "refused", error
        return ("gave up", {}) if reasons and reasons[-1].startswith(GAVE_UP) else None

    def tick() -> None:
        if (reason := target.deliver(blob.blob_name)) is not None:
            reasons.append(reason)

    kind, document = _poll(outcome, timeout, target.poll_every, tick) or ("timeout", {})
    if kind in ("timeout", "gave up"):
        when = f"after {timeout:.0f} s" if kind == "timeout" else "and none will come"
        raise SmokeFailed(
            "scoring",
            f"no {PREDICTIONS_CONTAINER}/{paths.manifest} (version {version} is at {target.model_stage}) "
            f"nor {REJECTED_CONTAINER}/{rejected.error} {when}" + (f"; {reasons[-1]}" if reasons else ""),
        )
    if kind == "refused":
        raise SmokeFailed(
            "scoring",
            f"expected {PREDICTIONS_CONTAINER}/{paths.manifest}, found {REJECTED_CONTAINER}/"
            f"{rejected.error}, which says: {document.get('code')}: {document.get('message')}",
        )
    data = target.service.get_blob_client(PREDICTIONS_CONTAINER, paths.predictions).download_blob().readall()
    predicted = len(pd.read_csv(io.BytesIO(data)))
    if predicted != len(frame) or document["rows"]["scored"] != len(frame):
        raise SmokeFailed(
            "scoring",
            f"{PREDICTIONS_CONTAINER}/{paths.predictions} has {predicted} rows for {len(frame)} input rows "
            f"(manifest: {document['rows']})",
        )
    manifest = f"{PREDICTIONS_CONTAINER}/{paths.manifest}"
    return {"input": name, "version": version, "rows": predicted, "manifest": manifest}


def call(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, step: str = "http"
) -> tuple[int, Any]:
    """One request; (status, parsed JSON or text). Only https, or loopback (the local host, fakes)."""
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise SmokeFailed(step, f"refusing to call {url}: not https")
    data = None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=sent, method=method)  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - scheme checked above
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except urllib.error.URLError as error:
        raise SmokeFailed(step, f"{method} {url} did not answer: {error.reason}") from None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")[:300]


def _explain(answer: Any) -> str:
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        return f"{error.get('code')}: {error.get('message')}"
    return str(answer.get("reason", answer) if isinstance(answer, dict) else answer)[:300]


def step_http(target: Target) -> dict[str, Any] | None:
    """`score` answers 200 with one prediction per row sent; `ready` answers 200. None: no HTTP app."""
    with target.http() as endpoint:
        if endpoint is None:
            return None
        found: dict[str, Any] = {}
        if not target.read_only:
            records = json.loads(sample_frame(HTTP_ROWS).to_json(orient="records"))
            headers = {"x-request-id": f"smoke-{secrets.token_hex(4)}"}
            if endpoint.key:
                headers["x-functions-key"] = endpoint.key
            status, answer = call("POST", endpoint.score_url, {"records": records}, headers)
            try:
                predictions = answer["predictions"] if status == 200 else None
            except (TypeError, KeyError):  # not the answer's JSON shape
                predictions = None
            if predictions is None or len(predictions) != len(records):
                got = f"{len(predictions)} predictions" if predictions is not None else _explain(answer)
                raise SmokeFailed(
                    "http",
                    f"POST {endpoint.score_url} answered {status} {got} (expected 200 with {len(records)})",
                )
            found |= {"score": status, "predictions": len(predictions), "model": answer.get("model")}
        status, answer = call("GET", endpoint.ready_url)
        if status != 200:
            raise SmokeFailed("http", f"GET {endpoint.ready_url} answered {status}: {_explain(answer)}")
        return found | {"ready": status}


def run(
    target: Target,
    steps: tuple[str, ...] = STEPS,
    timeout: float | None = None,
    out: Callable[[str], object] = print,
) -> Result:
    """Run the steps in order, stopping at the first failure; always remove the uploaded input."""
    timeout = target.default_timeout if timeout is None else timeout
    result, uploaded = Result(target.stack), []
    out(f"smoke {target.stack}: model {target.model_name}@{target.model_stage}, steps {', '.join(steps)}")
    step = steps[0]
    try:
        for step in steps:
            started = time.perf_counter()
            if step == "export":
                found = step_export(target, timeout)
            else:
                found = step_scoring(target, timeout, uploaded) if step == "scoring" else step_http(target)
            result.seconds[step] = time.perf_counter() - started
            if found is None:
                result.skipped[step] = "the app has no HTTP function"
                out(f"  {step}: skipped ({result.skipped[step]})")
                continue
            result.found[step] = found
            out(f"  {step}: ok in {result.seconds[step]:.1f} s {json.dumps(found, default=str)}")
    except SmokeFailed as failure:
        result.failure = failure
    except Exception as error:  # noqa: BLE001 - storage, network (a 403: a missing grant): one line
        first = (str(error).strip().splitlines() or [""])[0][:400]
        late = getattr(error, "status_code", None) == 403  # new role assignments take up to 10 minutes
        hint = " (a role assignment is missing, or new and not yet in effect)" if late else ""
        result.failure = SmokeFailed(step, f"{type(error).__name__}: {first}{hint}")
    finally:
        for name in uploaded:
            try:
                target.service.get_blob_client(SCORING_INPUT_CONTAINER, name).delete_blob()
                out(f"  cleanup: deleted {SCORING_INPUT_CONTAINER}/{name} (outputs stay, labelled smoke-)")
            except Exception as error:  # noqa: BLE001 - reported, never hiding the step's own verdict
                out(f"  cleanup: could not delete {SCORING_INPUT_CONTAINER}/{name}: {type(error).__name__}")
    return result


# ------------------------------------------------------------------------------------- local


class LocalTarget(Target):
    """The app of this process, bound to the settings in its environment, on Azurite."""

    def __init__(self) -> None:
        from functions import function_app  # once the settings are in the environment: it reads them
        from functions.settings import get_settings

        settings = get_settings()
        self.app = function_app.app
        self.functions = runner.discover(self.app)
        self.model_name, self.model_stage = settings.model_name, settings.model_stage
        self.tables = [spec.name for spec in settings.export.tables]
        self.service = clients.blob_service(settings.data_lake)
        connection = settings.data_lake.connection_string
        self.triggers = local_settings.trigger_host({DATA_LAKE: connection or ""})

    def trigger_export(self) -> None:
        (timer,) = [f for f in self.functions if f.name == "daily_export"]
        try:
            runner.fire_timer(timer, dt.datetime.now(dt.UTC))
        except Exception as error:  # noqa: BLE001 - the invocation's failure is the step's finding
            raise SmokeFailed("export", f"daily_export failed: {error}") from None

    def deliver(self, blob_name: str) -> str | None:
        """Deliver as the local host does; the last error the invocations for `blob_name` raised."""
        errors: list[str] = []

        class Catch(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.exc_info and blob_name in record.getMessage() and record.exc_info[1]:
                    errors.append(f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}")

        logger, handler = logging.getLogger("devstack.triggers"), Catch(logging.ERROR)
        logger.addHandler(handler)
        try:
            delivered = self.triggers.run_until_idle(self.functions)
        finally:
            logger.removeHandler(handler)
        if errors and delivered.counts.get("score_blob: poisoned"):
            return f"{GAVE_UP}: score_blob failed 5 times, the input is in the poison queue: {errors[-1]}"
        return f"score_blob failed: {errors[-1]}" if errors else None

    @contextmanager
    def http(self) -> Iterator[Endpoint | None]:
        server, base = http_host.start_in_thread(self.app, port=0)
        try:
            paths = {route.name: route.path(server.prefix) for route in server.routes}
            if "score" not in paths or "ready" not in paths:
                yield None
            else:
                yield Endpoint(base + paths["score"], base + paths["ready"], None)
        finally:
            server.stop()


def prepare_local() -> None:
    """The demo's Azurite and settings, as `python -m devstack host` starts (before the app loads)."""
    azurite.ensure_local()
    local_settings.apply()
