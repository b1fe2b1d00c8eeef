"""The automatic rollback timer's work: judge green on the recent request log; roll it back when the
rules fail ROLLBACK_FAILED_CHECKS times in a row (model/realtime/health.py holds the rules).

Each run reads the request log of the last ROLLBACK_WINDOW_MINUTES (the hour folders it spans),
checks green, and records the check with the failed-check streak in
`monitoring/{model}/rollback/state.json` (the last CHECKS_KEPT checks). The timer runs as a
singleton (the Functions host holds a lock per timer), so that file has one writer. A rollback
goes through the registry's Deployments (conditional write, promotion log with the check's figures)
and is emitted as `deployment_rolled_back`, which the stack's alert watches.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

from azure.storage.blob import BlobServiceClient

from functions.blob_io import ensure_container, read_text, write_json
from functions.realtime.request_log import read_lines
from functions.settings import Settings
from functions.telemetry.emit import emit
from functions.telemetry.events import DEPLOYMENT_CHECKED, DEPLOYMENT_ROLLED_BACK
from lake.contract import MODELS_CONTAINER, MONITORING_CONTAINER
from lake.paths import request_log_hour, rollback_state_path
from model.realtime.health import Check, check_green, next_streak
from model.registry import BlobStore, Registry
from model.registry.deployments import COLOURS, GREEN, Deployments, DeploymentState

log = logging.getLogger(__name__)

CHECKS_KEPT = 100
ROLLBACK_ACTOR = "automatic-rollback"


@dataclass
class RollbackReport:
    state: DeploymentState
    check: Check
    streak: int
    rolled_back: bool
    records: int


def window_records(
    service: BlobServiceClient, model: str, now: dt.datetime, minutes: int
) -> list[dict[str, Any]]:
    """Request-log lines of both colours whose `at` falls in the last `minutes` before `now`."""
    container = service.get_container_client(MONITORING_CONTAINER)
    start = now - dt.timedelta(minutes=minutes)
    hour = start.replace(minute=0, second=0, microsecond=0)
    lines: list[dict[str, Any]] = []
    while hour <= now:
        for colour in COLOURS:
            lines.extend(read_lines(container, request_log_hour(model, colour, hour)))
        hour += dt.timedelta(hours=1)
    return [line for line in lines if start <= dt.datetime.fromisoformat(line["at"]) <= now]


def _state_file(service: BlobServiceClient, model: str) -> dict[str, Any]:
    text = read_text(service.get_container_client(MONITORING_CONTAINER), rollback_state_path(model))
    return {"streak": 0, "checks": []} if text is None else json.loads(text)


def run_rollback_check(
    settings: Settings, service: BlobServiceClient, now: dt.datetime | None = None
) -> RollbackReport:
    """One check of green; rolls it back (green 0 %, shadow 0) when the streak reaches the policy's count."""
    now = now or dt.datetime.now(dt.UTC)
    policy = settings.realtime.rollback
    model = settings.model_name
    local = not settings.data_lake.identity_based  # Azurite: create what Pulumi provisions in Azure
    if local:
        ensure_container(service.get_container_client(MONITORING_CONTAINER))
    registry = Registry(BlobStore(service.get_container_client(MODELS_CONTAINER), ensure=local))
    deployments = Deployments(registry, model, settings.model_stage)
    state = deployments.read()
    records = window_records(service, model, now, policy.window_minutes)
    check = check_green(state, records, policy)
    saved = _state_file(service, model)
    # A streak belongs to one green version at one weight: a change of green starts it again.
    same_green = saved.get("green") == {"version": state.green, "traffic": state.green_weight}
    streak = next_streak(int(saved.get("streak", 0)) if same_green else 0, check)
    rolled_back = check.judged and streak >= policy.failed_checks
    entry = {
        "at": now.isoformat(timespec="seconds"),
        "streak": streak,
        "rolled_back": rolled_back,
    } | check.to_dict()
    failed = [f["rule"] for f in check.failures]
    green = check.figures.get(GREEN, {})
    emit(log, DEPLOYMENT_CHECKED, "rollback check of %s green v%s: %s (streak %d)", model, state.green,
         check.note, streak, model_name=model, green_version=state.green, green_traffic=state.green_weight,
         judged=check.judged, failed_rules=failed, streak=streak, requests=green.get("requests"),
         success=green.get("success"), p99_ms=green.get("p99_ms"), prediction_drift=check.drift)  # fmt: skip
    if rolled_back:
        reason = f"{streak} failed checks in a row: {check.note}"
        evidence = {"check": check.to_dict(), "policy": policy.__dict__, "window_records": len(records)}
        after = deployments.rollback(reason=reason, actor=ROLLBACK_ACTOR, evidence=evidence, automatic=True)
        emit(log, DEPLOYMENT_ROLLED_BACK, "rolled back %s green v%s: %s", model, state.green, reason,
             level=logging.WARNING, model_name=model, green_version=state.green, blue_version=after.blue,
             failed_rules=failed, streak=streak, reason=reason)  # fmt: skip
        streak = 0
    document = {
        "model": model,
        "green": {"version": state.green, "traffic": 0 if rolled_back else state.green_weight},
        "streak": streak,
        "checks": [*saved.get("checks", []), entry][-CHECKS_KEPT:],
    }
    write_json(service.get_container_client(MONITORING_CONTAINER), rollback_state_path(model), document)
    return RollbackReport(state, check, streak, rolled_back, len(records))
