"""The monitor (functions/monitor/) on Azurite: real scored predictions, outcome exports arriving over days.

Each test serves the good model under a name of its own and reads an outcomes table of its own,
so the shared Azurite's other predictions and exports do not reach it. Labels are drawn from the
model's own probabilities (a calibrated world: the estimate must hold) or from their complement
(a concept shift: the estimate must be contradicted).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import uuid

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.monitor.job import run_monitor, window_start
from functions.monitor.sources import outcome_problem
from functions.scoring.job import score_input
from functions.settings import load_settings
from lake.contract import EXPORTS_CONTAINER, MONITORING_CONTAINER, PREDICTIONS_CONTAINER
from lake.paths import (
    OutputPaths,
    drift_path,
    export_csv_path,
    export_manifest_path,
    quality_path,
    retrain_verdict_path,
)
from tests.scoring_support import bank_csv, context, scoring_env, serve_model, unique, upload

pytestmark = pytest.mark.integration
CLIENTS = 3000


class World:
    """One model name, one outcomes table, one scored input: the monitor's whole view."""

    def __init__(self, azurite, blob_service, models) -> None:
        self.name = f"monitored-{uuid.uuid4().hex[:8]}"
        self.table = f"outcomes_{uuid.uuid4().hex[:8]}"
        self.version = serve_model(blob_service, models.good, self.name)
        self.env = scoring_env(
            azurite.connection_string,
            MODEL_NAME=self.name,
            SCORING_CHUNK_ROWS="1000",
            MONITOR_OUTCOMES_TABLE=self.table,
            EXPORT_TABLES=f"clients,{self.table}:contact_date",
        )
        self.service = blob_service
        self.ctx = context(
            azurite.connection_string, **{k: v for k, v in self.env.items() if k != "DataLake"}
        )
        self.input = unique("clients")
        outcome = score_input(self.ctx, upload(self.ctx, self.input, bank_csv(CLIENTS)))
        assert outcome.status == "scored"
        self.scored_on = dt.date.fromisoformat(outcome.manifest["scored_at"][:10])
        blob = OutputPaths(self.input, self.version).predictions
        data = blob_service.get_blob_client(PREDICTIONS_CONTAINER, blob).download_blob().readall()
        self.predictions = pd.read_csv(io.BytesIO(data))

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return load_settings(self.env)

    def export(self, day: dt.date, rows: pd.DataFrame) -> None:
        """One day's export of the outcomes table, complete (its manifest written last)."""
        exports = self.service.get_container_client(EXPORTS_CONTAINER)
        if not exports.exists():
            exports.create_container()
        exports.upload_blob(
            export_csv_path(self.table, day), rows.to_csv(index=False).encode(), overwrite=True
        )
        exports.upload_blob(
            export_manifest_path(self.table, day), b'{"rows": %d}' % len(rows), overwrite=True
        )

    def quality(self, period: str) -> dict:
        path = quality_path(self.name, period)
        return json.loads(self.service.get_blob_client(MONITORING_CONTAINER, path).download_blob().readall())


def _outcomes(predictions: pd.DataFrame, day: dt.date, labels: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {"client_id": predictions["client_id"], "contact_date": day.isoformat(), "subscribed": labels}
    )


def _noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(12), dt.UTC)


def test_outcomes_arriving_over_days_raise_coverage_and_match_the_estimate(
    azurite, blob_service, models, caplog
) -> None:
    world = World(azurite, blob_service, models)
    p = world.predictions["probability"].to_numpy()
    labels = (np.random.default_rng(11).random(len(p)) < p).astype(int)  # calibrated: the estimate holds
    thirds = np.array_split(np.arange(len(p)), 3)
    coverage, documents = [], []
    for offset, rows in enumerate(thirds):
        day = world.scored_on + dt.timedelta(days=offset)
        world.export(day, _outcomes(world.predictions.iloc[rows], day, labels[rows]))
        with caplog.at_level(logging.INFO):
            report = run_monitor(world.settings, now=_noon(day))
        assert report.predictions == CLIENTS and len(report.periods) == 1
        document = world.quality(report.periods[0])
        record = document["versions"][world.version]
        coverage.append(record["coverage"])
        documents.append(document)
    assert coverage == pytest.approx([1 / 3, 2 / 3, 1.0], abs=1e-3)  # rising as the outcomes arrive

    record = documents[-1]["versions"][world.version]
    assert record["status"] == "ok" and record["counts"]["labelled"] == CLIENTS
    assert record["base_rate"] == pytest.approx(labels.mean())
    assert record["baseline"] == {"roc_auc": 0.5}  # the registered validation ROC AUC (model_fixtures)
    comparison = record["estimate_vs_realised"]
    assert comparison["status"] == "ok" and comparison["rows"] == CLIENTS
    assert comparison["gap_outside_interval"] is False
    assert report.retrain is not None and report.retrain["retrain"] is False  # calibrated: nothing fires
    (evaluated,) = _events(caplog, "retrain_evaluated")[-1:]
    assert evaluated.retrain == "false" and evaluated.model_version == world.version
    auc = comparison["figures"]["roc_auc"]
    assert auc["low"] <= record["metrics"]["roc_auc"]["value"] <= auc["high"]

    events = [r for r in caplog.records if getattr(r, "event", None) == "quality_measured"]
    assert len(events) == 3 and {e.model_version for e in events} == {world.version}
    assert events[-1].status == "ok" and events[-1].estimate_gap == "false"
    assert float(events[-1].coverage) == pytest.approx(1.0)
    assert float(events[-1].baseline_roc_auc) == pytest.approx(0.5)

    # A re-run writes the same document: nothing appended, intervals seeded.
    again = run_monitor(world.settings, now=_noon(world.scored_on + dt.timedelta(days=2)))
    repeated = world.quality(again.periods[0])
    assert {k: v for k, v in repeated.items() if k != "computed_at"} == {
        k: v for k, v in documents[-1].items() if k != "computed_at"
    }


def test_a_concept_shift_shows_as_a_gap_between_estimate_and_realised(azurite, blob_service, models) -> None:
    world = World(azurite, blob_service, models)
    p = world.predictions["probability"].to_numpy()
    labels = (np.random.default_rng(12).random(len(p)) < 1 - p).astype(int)  # the world turned around
    world.export(world.scored_on, _outcomes(world.predictions, world.scored_on, labels))
    report = run_monitor(world.settings, now=_noon(world.scored_on))
    record = world.quality(report.periods[0])["versions"][world.version]
    comparison = record["estimate_vs_realised"]
    assert comparison["gap_outside_interval"] is True
    assert comparison["figures"]["roc_auc"]["outside"] and comparison["figures"]["roc_auc"]["gap"] < -0.1
    assert comparison["figures"]["subscribers"]["outside"]
    # the retraining rules see it: the serving version dropped far under its registered baseline (0.5)
    verdict = report.retrain
    assert verdict is not None and verdict["retrain"] is True and "quality_drop" in verdict["fired"]
    assert verdict["model_version"] == world.version and verdict["stage"] == "dev"
    drop = verdict["evidence"]["quality_drop"]
    assert drop["roc_auc"] < drop["baseline_roc_auc"] - 0.05 and drop["labelled"] == CLIENTS
    stored = blob_service.get_blob_client(
        MONITORING_CONTAINER, retrain_verdict_path(world.name, world.scored_on.isoformat())
    ).download_blob()
    assert json.loads(stored.readall())["fired"] == verdict["fired"]


def test_outcomes_before_the_scoring_day_and_old_exports_judge_nothing(azurite, blob_service, models) -> None:
    world = World(azurite, blob_service, models)
    before = world.scored_on - dt.timedelta(days=1)
    world.export(before, _outcomes(world.predictions, before, np.ones(CLIENTS, dtype=int)))
    report = run_monitor(world.settings, now=_noon(world.scored_on))
    record = world.quality(report.periods[0])["versions"][world.version]
    assert record["counts"]["labelled"] == 0 and record["coverage"] == 0.0
    assert record["status"] == "insufficient" and record["metrics"] is None
    assert record["estimate_vs_realised"] is None


def test_no_outcomes_export_yet_writes_the_pending_period_and_says_so(
    azurite, blob_service, models, caplog
) -> None:
    world = World(azurite, blob_service, models)
    with caplog.at_level(logging.WARNING):
        report = run_monitor(world.settings, now=_noon(world.scored_on))
    assert report.outcomes == 0 and any("no complete export" in r.message for r in caplog.records)
    record = world.quality(report.periods[0])["versions"][world.version]
    assert record["counts"]["pending"] == CLIENTS and record["coverage"] == 0.0


@pytest.mark.parametrize(
    ("now", "period", "start"),
    [
        ("2026-12-02T05:00:00+00:00", "week", "2026-10-19"),  # 42 days back: Mon 2026-10-21 -> its Monday
        ("2026-12-02T05:00:00+00:00", "month", "2026-10-01"),
        ("2026-12-02T05:00:00+00:00", "day", "2026-10-21"),
    ],
)
def test_the_window_starts_on_a_period_boundary(now: str, period: str, start: str) -> None:
    got = window_start(dt.datetime.fromisoformat(now), 42, period)
    assert got == dt.datetime.combine(dt.date.fromisoformat(start), dt.time(), dt.UTC)


# ------------------------------------------------------------- the events the alerts are built on


def _events(caplog, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def test_scoring_emits_batch_scored_and_input_rejected(azurite, served, caplog) -> None:
    ctx = context(azurite.connection_string, SCORING_CHUNK_ROWS="500")
    with caplog.at_level(logging.INFO):
        outcome = score_input(ctx, upload(ctx, unique("events"), bank_csv(1200)))
        again = score_input(ctx, upload(ctx, unique("bad"), b"client_id,nonsense\r\n1,2\r\n"))
    assert outcome.status == "scored" and again.status == "rejected"
    (scored,) = _events(caplog, "batch_scored")
    assert (scored.model_version, scored.rows_scored, scored.rows_rejected) == (served, "1200", "0")
    assert scored.drift_status in {"ok", "warn", "alert"} and scored.dataset_drifted in {"true", "false"}
    assert float(scored.expected_subscribers) == pytest.approx(
        outcome.manifest["expected_positives"], abs=1e-2
    )
    assert 0.0 <= float(scored.expected_roc_auc) <= 1.0 and scored.to_call == str(outcome.manifest["to_call"])
    (rejected,) = _events(caplog, "input_rejected")
    assert rejected.code and rejected.input.endswith(".csv") and rejected.levelno == logging.WARNING

    with caplog.at_level(logging.INFO):  # a second delivery publishes nothing: no second event
        caplog.clear()
        assert score_input(ctx, ctx.input_client(outcome.input.split("/", 1)[1])).status == "duplicate"
    assert _events(caplog, "batch_scored") == []


def test_the_monitor_counts_the_drift_streak_from_the_reports(azurite, blob_service, models, caplog) -> None:
    world = World(azurite, blob_service, models)  # one real batch, scored today: not drifted
    monitoring = blob_service.get_container_client(MONITORING_CONTAINER)
    later = world.scored_on + dt.timedelta(days=1)

    def report(name: str, hour: int, rows: int, drifted: bool) -> None:
        document = {
            "scored_at": f"{later.isoformat()}T{hour:02d}:00:00+00:00",
            "rows": rows,
            "drifted": drifted,
        }
        monitoring.upload_blob(
            drift_path(world.name, later.isoformat(), name), json.dumps(document), overwrite=True
        )

    report("a", 1, 500, False)  # ends whatever streak today's real batch began
    report("b", 2, 0, False)  # an empty batch says nothing
    report("c", 3, 800, True)
    report("e", 4, 700, True)
    monitoring.upload_blob(drift_path(world.name, later.isoformat(), "broken"), b"{not json", overwrite=True)
    with caplog.at_level(logging.INFO):
        result = run_monitor(world.settings, now=_noon(later))
    assert (result.batches, result.drift_streak) == (4, 2)  # the real batch, a, c, e
    assert result.skipped["unreadable drift report"] == 1
    (event,) = [r for r in caplog.records if getattr(r, "event", None) == "monitor_run"]
    assert (event.batches, event.drift_streak) == ("4", "2")

    report("d", 5, 900, False)  # a batch that did not drift ends the streak
    assert run_monitor(world.settings, now=_noon(later)).drift_streak == 0


# ------------------------------------------------------------------------- hostile outcome exports


def test_an_export_with_a_bad_value_is_left_out_whole_and_named(
    azurite, blob_service, models, caplog
) -> None:
    world = World(azurite, blob_service, models)
    day, rows = world.scored_on, world.predictions.iloc[:600]
    good = _outcomes(rows.iloc[:300], day, np.zeros(300, dtype=int))
    bad = _outcomes(rows.iloc[300:], day + dt.timedelta(days=1), np.ones(300, dtype=int)).astype(str)
    bad.loc[bad.index[7], "subscribed"] = "yes"
    world.export(day, good)
    world.export(day + dt.timedelta(days=1), bad)
    with caplog.at_level(logging.WARNING):
        report = run_monitor(world.settings, now=_noon(day + dt.timedelta(days=1)))
    (reason,) = [k for k in report.skipped if k.startswith(EXPORTS_CONTAINER)]
    assert f"{world.table}/{(day + dt.timedelta(days=1)).isoformat()}/" in reason
    assert "column subscribed holds 'yes' (data row 8)" in reason
    assert any("leaving out" in r.message and "subscribed" in r.message for r in caplog.records)
    record = world.quality(report.periods[0])["versions"][world.version]
    assert record["counts"]["labelled"] == 300  # the good export counted, none of the bad one


@settings(max_examples=60, deadline=None)
@given(
    column=st.sampled_from(["client_id", "contact_date", "subscribed"]),
    value=st.text(max_size=12),
    row=st.integers(0, 9),
)
def test_outcome_problem_names_the_column_of_any_bad_value(column: str, value: str, row: int) -> None:
    frame = pd.DataFrame(
        {
            "client_id": [str(i) for i in range(10)],
            "contact_date": ["2026-12-02"] * 10,
            "subscribed": ["1", "0"] * 5,
        }
    )
    frame.loc[row, column] = value
    accepted = {
        "client_id": value.strip() != "",
        "contact_date": not pd.isna(pd.to_datetime(pd.Series([value]), format="ISO8601", errors="coerce")[0]),
        "subscribed": value.strip() in {"0", "1", "0.0", "1.0", ""},
    }[column]
    problem = outcome_problem(frame)
    if accepted:
        assert problem is None
    else:
        assert (
            problem is not None
            and problem.startswith(f"column {column} holds")
            and f"data row {row + 1}" in problem
        )
