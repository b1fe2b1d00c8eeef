"""The HTTP functions' logic: `POST /api/score`, `GET /api/health`, `/api/ready`, `/api/schema`.

The triggers in function_app.py only hand the request here. Per request: check the size and the
content type, read the payload form, route to a colour (model/realtime/routing.py), check and
score the rows with that colour's model, answer, and queue a request-log line (and, for the
shadow share, a scoring by the other colour) for the background writer. Nothing after the
answer is built runs on the request's thread.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from typing import Any

import azure.functions as func
from azure.storage.blob import BlobServiceClient

from functions.blob_io import ensure_container
from functions.realtime.live import LiveDeployments, Snapshot
from functions.realtime.request_log import RequestLog
from functions.settings import Settings
from lake.contract import JSON_CONTENT_TYPE, MODELS_CONTAINER, MONITORING_CONTAINER
from model.realtime.errors import BAD_DEPLOYMENT, INTERNAL, NO_MODEL, RequestRejected
from model.realtime.jsonschema import payload_schema
from model.realtime.payload import Table, check_content_type, parse_body
from model.realtime.routing import CALLER_KEY_HEADER, FORCE_HEADER, Route, RoutingError, route
from model.realtime.rows import RowChecker, Scored
from model.registry import BlobStore, Registry

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # a caller's id is echoed only if it is plain


def _request_id(req: func.HttpRequest) -> str:
    given = (req.headers.get(REQUEST_ID_HEADER) or "").strip()
    return given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _json(status: int, body: dict[str, Any], headers: dict[str, str]) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":")), status_code=status, mimetype=JSON_CONTENT_TYPE,
        charset="utf-8", headers=headers,
    )  # fmt: skip


def _predictions(scored: Scored) -> list[dict[str, Any]]:
    """One {id, probability, decision} per scored row: the answer's and the request log's outputs."""
    return [
        {"id": i, "probability": float(p), "decision": int(d)}
        for i, p, d in zip(scored.ids, scored.probabilities, scored.decisions, strict=True)
    ]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class RealtimeService:
    """One per worker process: the registry, both colours kept warm, the request log's writer."""

    def __init__(self, settings: Settings, service: BlobServiceClient) -> None:
        self.settings = settings
        self.options = settings.realtime
        self.model_name = settings.model_name
        monitoring = service.get_container_client(MONITORING_CONTAINER)
        if not settings.data_lake.identity_based:
            ensure_container(monitoring)  # locally; Pulumi provisions it in Azure
        local = not settings.data_lake.identity_based
        registry = Registry(BlobStore(service.get_container_client(MODELS_CONTAINER), ensure=local))
        self.live = LiveDeployments(registry, settings.model_name, settings.model_stage,
                                    self.options.refresh_seconds, settings.scoring.threads)  # fmt: skip
        self.log = RequestLog(monitoring, settings.model_name, self.options.flush_seconds)

    # ------------------------------------------------------------------ POST /api/score

    def score(self, req: func.HttpRequest) -> func.HttpResponse:
        started = time.perf_counter()
        request_id = _request_id(req)
        headers = {REQUEST_ID_HEADER: request_id}
        chosen: Route | None = None
        try:
            check_content_type(req.headers.get("content-type"))
            snapshot = self._snapshot()
            chosen = self._route(req, snapshot)
            checker = snapshot.checkers[chosen.colour]
            table = parse_body(req.get_body(), checker.schema.raw_columns, self.options.max_body_bytes,
                               self.options.max_rows)  # fmt: skip
            scored = checker.score(table)
        except RequestRejected as rejected:
            return self._refuse(rejected, request_id, headers, chosen, started)
        except Exception as error:  # answered as JSON, logged with its traceback, counted as a failure
            log.exception("score %s failed", request_id)
            rejected = RequestRejected(INTERNAL, f"the request could not be scored: {type(error).__name__}")
            return self._refuse(rejected, request_id, headers, chosen, started)
        body = self._answer(request_id, chosen, checker, scored)
        headers |= {FORCE_HEADER: chosen.colour, "x-model-version": chosen.version}
        response = _json(200, body, headers)
        latency = (time.perf_counter() - started) * 1000
        self.log.record(self._line(request_id, chosen, 200, None, latency, scored, body["predictions"]))
        if chosen.shadow is not None:
            self.log.later(lambda: self._shadow(request_id, chosen, snapshot, table))
        return response

    def _snapshot(self) -> Snapshot:
        try:
            return self.live.current()
        except Exception as error:
            log.exception("deployments of %s cannot be read", self.model_name)
            raise RequestRejected(NO_MODEL, f"the deployments cannot be read: {error}") from None

    def _route(self, req: func.HttpRequest, snapshot: Snapshot) -> Route:
        forced = req.headers.get(FORCE_HEADER)
        colour = (forced or "").strip().lower()
        if forced and colour in snapshot.broken:
            raise RequestRejected(NO_MODEL, f"deployment {colour}: {snapshot.broken[colour]}")
        try:
            return route(snapshot.routed, req.headers.get(CALLER_KEY_HEADER), forced)
        except RoutingError as error:
            if forced:
                raise RequestRejected(BAD_DEPLOYMENT, str(error)) from None
            reasons = "; ".join(f"{c}: {why}" for c, why in snapshot.broken.items())
            raise RequestRejected(
                NO_MODEL,
                f"no model is deployed for {self.model_name!r}: {error}"
                + (f" ({reasons})" if reasons else "")
                + f"; promote a version to {self.settings.model_stage} or "
                "`python -m model deployments set VERSION --slot blue`",
            ) from None

    def _answer(self, request_id: str, chosen: Route, checker: RowChecker, scored: Scored) -> dict[str, Any]:
        predictions = _predictions(scored)
        body: dict[str, Any] = {
            "request_id": request_id,
            "model": {"name": checker.model.name, "version": chosen.version},
            "deployment": chosen.colour,
            "threshold": checker.model.threshold,
            "predictions": predictions,
        }
        if scored.unseen:
            body["warnings"] = {"unseen_categories": scored.unseen}
        return body

    def _refuse(self, rejected: RequestRejected, request_id: str, headers: dict[str, str],
                chosen: Route | None, started: float) -> func.HttpResponse:  # fmt: skip
        if rejected.status >= 500:
            log.warning("score %s: %s %s", request_id, rejected.status, rejected.message)
        response = _json(rejected.status, {"request_id": request_id, "error": rejected.to_dict()}, headers)
        latency = (time.perf_counter() - started) * 1000
        self.log.record(self._line(request_id, chosen, rejected.status, rejected.code, latency, None, []))
        return response

    def _line(self, request_id: str, chosen: Route | None, status: int, code: str | None, latency: float,
              scored: Scored | None, outputs: list[dict[str, Any]],
              shadow_of: str | None = None) -> dict[str, Any]:  # fmt: skip
        line: dict[str, Any] = {
            "request_id": request_id,
            "at": _now(),
            "model": self.model_name,
            "deployment": None if chosen is None else (chosen.shadow if shadow_of else chosen.colour),
            "version": None,
            "route": None if chosen is None else chosen.how,
            "bucket": None if chosen is None else chosen.bucket,
            "status": status,
            "code": code,
            "latency_ms": round(latency, 4),
            "rows": len(outputs),
            "shadow": shadow_of is not None,
            "outputs": outputs,
        }
        if chosen is not None:
            line["version"] = chosen.version
        if shadow_of:
            line["shadow_of"] = shadow_of
        if scored is not None:
            line["ids_sent"] = scored.ids_sent
            if self.options.log_inputs and scored.features is not None:
                line["inputs"] = scored.features
        return line

    def _shadow(
        self, request_id: str, chosen: Route, snapshot: Snapshot, table: Table
    ) -> dict[str, Any] | None:
        """The other colour's scores for a request already answered (on the request log's thread)."""
        checker = None if chosen.shadow is None else snapshot.checkers.get(chosen.shadow)
        if checker is None:
            return None
        started = time.perf_counter()
        try:
            scored = checker.score(table)
            status, code = 200, None
        except RequestRejected as rejected:  # the other version's schema may refuse what this one took
            scored, status, code = None, rejected.status, rejected.code
        latency = (time.perf_counter() - started) * 1000
        outputs = [] if scored is None else _predictions(scored)
        line = self._line(request_id, chosen, status, code, latency, None, outputs, shadow_of=request_id)
        line["version"] = checker.model.version
        return line

    # ------------------------------------------------------------------ GET endpoints

    def health(self) -> func.HttpResponse:
        """Live: the worker runs and answers (no storage read)."""
        return _json(200, {"status": "alive", "model": self.model_name}, {})

    def ready(self) -> func.HttpResponse:
        """Ready: the deployments are read and at least one colour is loaded and takes traffic."""
        try:
            snapshot = self.live.current()
        except Exception as error:  # noqa: BLE001 - whatever stops the read, the answer is "not ready"
            return _json(503, {"status": "not ready", "reason": f"deployments cannot be read: {error}"}, {})
        body = {
            "status": "ready" if snapshot.routed.live else "not ready",
            "model": self.model_name,
            "deployments": snapshot.stored.describe(),
            "routed": snapshot.routed.describe(),
            "loaded": {c: ch.model.version for c, ch in snapshot.checkers.items()},
            "broken": snapshot.broken,
            "explicit": snapshot.stored.explicit,
        }
        if not snapshot.routed.live:
            body["reason"] = "no deployment takes traffic"
        return _json(200 if snapshot.routed.live else 503, body, {})

    def schema(self) -> func.HttpResponse:
        """The payload's JSON Schema for the version blue serves (else green's)."""
        try:
            snapshot = self.live.current()
        except Exception as error:  # noqa: BLE001 - whatever stops the read, there is no schema to give
            return _json(503, {"error": {"status": 503, "code": NO_MODEL, "message": str(error)}}, {})
        checker = snapshot.checkers.get("blue") or snapshot.checkers.get("green")
        if checker is None:
            message = f"no model is deployed for {self.model_name!r}"
            return _json(503, {"error": {"status": 503, "code": NO_MODEL, "message": message}}, {})
        model = {"name": checker.model.name, "version": checker.model.version}
        return _json(200, payload_schema(checker.schema, self.options.max_rows, model), {})
