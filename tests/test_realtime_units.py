"""The real-time endpoint's pure parts: payload forms, row checks (against batch scoring's own
`validate`), routing, the rollback rules, and deployments.json on a folder registry."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.realtime import errors
from model.realtime.health import RollbackPolicy, check_green, ks_distance, next_streak
from model.realtime.payload import Table, check_content_type, parse_body
from model.realtime.routing import BUCKETS, RoutingError, bucket_of, route
from model.realtime.rows import RowChecker
from model.registry import FolderStore, Registry
from model.registry.deployments import DEPLOYMENT_KIND, DeploymentError, Deployments, DeploymentState
from model.schema import validate
from model.serving import load_folder
from tests.model_fixtures import Models
from tests.realtime_support import frame_of, records


@pytest.fixture(scope="module")
def checker(models: Models) -> RowChecker:
    return RowChecker(load_folder(models.good))


def _table(rows: list[dict[str, Any]]) -> Table:
    return parse_body(json.dumps({"records": rows}).encode(), (), 1 << 24, 10_000)


# --- payload forms ------------------------------------------------------------------------------


def test_every_form_reads_the_same_rows(models: Models, checker: RowChecker) -> None:
    rows = records(models, 5)
    columns = list(rows[0])
    data_columns = checker.schema.raw_columns
    bodies = {
        "records": {"records": rows},
        "dataframe_records": {"dataframe_records": rows},
        "dataframe_split": {
            "dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}
        },
        "input_data": {
            "input_data": {
                "columns": columns,
                "index": [0, 1, 2, 3, 4],
                "data": [[r[c] for c in columns] for r in rows],
            }
        },
        "data": {"data": [[r[c] for c in data_columns] for r in rows], "ids": [r["client_id"] for r in rows]},
    }
    answers = {}
    for form, body in bodies.items():
        table = parse_body(json.dumps(body).encode(), data_columns, 1 << 20, 100)
        assert table.form == form
        scored = checker.score(table)
        answers[form] = (scored.ids, scored.probabilities.tolist())
    first = answers["records"]
    assert first[0] == [1, 2, 3, 4, 5]
    assert all(answer == first for answer in answers.values()), answers


def test_mlflow_serializer_payload_is_read_as_mlflow_reads_it(models: Models, checker: RowChecker) -> None:
    """Outside oracle: MLflow's own serving-input serializer writes the payload (NaN for a missing
    value, not valid RFC 8259 JSON) and its scoring server's parser reads it; our reader must see the
    same cells, and refuse the missing value with batch scoring's reason."""
    from mlflow.models.utils import convert_input_example_to_serving_input
    from mlflow.pyfunc.scoring_server import infer_and_parse_data

    frame = frame_of(models, 4)
    frame.loc[2, "job"] = None
    payload = convert_input_example_to_serving_input(frame)
    assert "NaN" in payload
    theirs = infer_and_parse_data(json.loads(payload))
    table = parse_body(payload.encode(), checker.schema.raw_columns, 1 << 20, 100)
    assert list(table.columns) == list(theirs.columns)
    for row, (_, expected) in zip(table.rows, theirs.iterrows(), strict=True):
        assert [None if pd.isna(v) else v for v in expected] == row
    with pytest.raises(errors.RequestRejected) as refused:
        checker.score(table)
    assert refused.value.code == errors.INVALID_ROWS
    assert [p.to_dict() for p in refused.value.problems] == [
        {"row": 3, "column": "job", "reason": "job: missing value"}
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"age,job\n30,admin.", errors.NOT_JSON),
        (b"\xff\xfe", errors.NOT_JSON),
        (b"[1, 2]", errors.BAD_PAYLOAD),
        (b'{"records": [], "data": []}', errors.BAD_PAYLOAD),
        (b'{"rows": []}', errors.BAD_PAYLOAD),
        (b'{"records": []}', errors.BAD_PAYLOAD),
        (b'{"records": [1, 2]}', errors.BAD_PAYLOAD),
        (b'{"records": [{"age": {"a": 1}}]}', errors.BAD_PAYLOAD),
        (b'{"data": [[1, 2]]}', errors.BAD_PAYLOAD),
        (b'{"data": [[1]], "ids": [1, 2]}', errors.BAD_PAYLOAD),
        (b'{"records": [{"a": 1}], "ids": [1]}', errors.BAD_PAYLOAD),
        (b'{"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}', errors.BAD_PAYLOAD),
        (b'{"input_data": {"data": [[1]]}}', errors.BAD_PAYLOAD),
        (b'{"data": [[1]], "ids": [[1]]}', errors.BAD_PAYLOAD),
        (b'{"records": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", errors.BAD_PAYLOAD),
        (b'{"data": [[' + b"9" * 5000 + b"]]}", errors.NOT_JSON),
        (b'{"data": [[1]]', errors.NOT_JSON),
        (b"", errors.NOT_JSON),
    ],
)
def test_bad_bodies_get_their_code(body: bytes, code: str) -> None:
    with pytest.raises(errors.RequestRejected) as refused:
        parse_body(body, ("a",), 1 << 21, 100)
    assert refused.value.code == code
    assert refused.value.status == errors.STATUS[code]


def test_limits_of_size_and_rows() -> None:
    body = json.dumps({"data": [[1]] * 11}).encode()
    with pytest.raises(errors.RequestRejected) as rows:
        parse_body(body, ("a",), 1 << 20, 10)
    assert rows.value.code == errors.TOO_MANY_ROWS and rows.value.status == 413
    with pytest.raises(errors.RequestRejected) as size:
        parse_body(body, ("a",), len(body) - 1, 100)
    assert size.value.code == errors.BODY_TOO_LARGE and size.value.status == 413
    assert len(parse_body(body, ("a",), len(body), 11).rows) == 11


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-www-form-urlencoded", "text/plain"])
def test_a_content_type_that_is_not_json_is_415(content_type: str) -> None:
    with pytest.raises(errors.RequestRejected) as refused:
        check_content_type(content_type)
    assert refused.value.status == 415
    for fine in (None, "", "application/json", "application/json; charset=utf-8", "application/vnd.api+json"):
        check_content_type(fine)


# --- rows: the same verdicts as batch scoring -------------------------------------------------------


def test_row_problems_name_row_column_and_batch_reason(models: Models, checker: RowChecker) -> None:
    rows = records(models, 4)
    rows[1]["age"] = 17
    rows[2]["pdays"] = 2.5
    rows[3]["client_id"] = None
    with pytest.raises(errors.RequestRejected) as refused:
        checker.score(_table(rows))
    assert refused.value.status == 400
    assert [p.to_dict() for p in refused.value.problems] == [
        {"row": 2, "column": "age", "reason": "age: 17 is outside [18, 120]"},
        {"row": 3, "column": "pdays", "reason": "pdays: 2.5 is not a whole number"},
        {"row": 4, "column": "client_id", "reason": "client_id: missing value"},
    ]
    batch = validate(pd.DataFrame(rows), checker.schema)
    assert [(p.row, p.reason) for p in refused.value.problems] == batch.rejected


def test_missing_columns_are_named(checker: RowChecker) -> None:
    with pytest.raises(errors.RequestRejected) as refused:
        checker.score(_table([{"age": 30, "job": "admin."}]))
    assert refused.value.code == errors.MISSING_COLUMNS
    assert {p.column for p in refused.value.problems} == set(checker.schema.raw_columns) - {"age", "job"}


_NUMBER = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([18, 120, 121, 17, -1, 0, 1, 3.5, 1e39, -1e39]),
    st.none(),
)


def _category(column: str, known: tuple[str, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(known), st.text(max_size=50), st.none())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fast_rows_decide_exactly_as_batch_validate(
    data: st.DataObject, models: Models, checker: RowChecker
) -> None:
    """Generated JSON-native rows: the per-value checker and batch scoring's DataFrame `validate`
    accept the same rows, refuse the same rows with the same reasons, and give the same scores."""
    schema = checker.schema
    base = records(models, 1)[0]
    n = data.draw(st.integers(1, 6))
    rows = []
    for i in range(n):
        row = dict(base, client_id=i + 1)
        for column in data.draw(st.lists(st.sampled_from(schema.raw_columns), max_size=4, unique=True)):
            known = schema.categories.get(column)
            row[column] = data.draw(_category(column, known) if known else _NUMBER)
        rows.append(row)
    table = _table(rows)
    outcomes = []
    for path in (checker._rows, lambda t, _p: checker._frame(t)):
        try:
            scored = path(table, {c: i for i, c in enumerate(table.columns)})
            outcomes.append(("scored", scored.ids, scored.probabilities.tolist(), scored.unseen))
        except errors.RequestRejected as refused:
            outcomes.append(("refused", refused.code, [p.to_dict() for p in refused.problems]))
    assert outcomes[0] == outcomes[1]


def test_numbers_sent_as_text_take_batch_scorings_path(models: Models, checker: RowChecker) -> None:
    rows = records(models, 2)
    rows[0]["age"] = "41"
    scored = checker.score(_table(rows))
    assert scored.path == "frame" and scored.ids == [1, 2]
    rows[1]["age"] = "forty"
    with pytest.raises(errors.RequestRejected) as refused:
        checker.score(_table(rows))
    assert refused.value.problems[0].reason == "age: 'forty' is not a number"


def test_scores_match_the_batch_path_on_many_rows(models: Models, checker: RowChecker) -> None:
    rows = records(models, 300)
    fast = checker.score(_table(rows))
    model = checker.model
    batch, _ = model.predict(pd.DataFrame(rows))
    assert fast.path == "rows"
    np.testing.assert_array_equal(fast.probabilities.astype(float), batch["probability"].to_numpy())
    assert fast.ids == batch["client_id"].tolist()


# --- routing --------------------------------------------------------------------------------------


def test_weighted_routing_proportions_within_tolerance() -> None:
    state = DeploymentState("1", "2", green_weight=10)
    keys = [f"caller-{i}" for i in range(20_000)]
    share = sum(route(state, key).colour == "green" for key in keys) / len(keys)
    assert abs(share - 0.10) < 0.01
    rng = random.Random(3)
    unkeyed = sum(route(state, rng=rng).colour == "green" for _ in range(20_000)) / 20_000
    assert abs(unkeyed - 0.10) < 0.01


def test_a_caller_never_goes_back_while_green_ramps_up() -> None:
    keys = [f"caller-{i}" for i in range(5_000)]
    on_green: set[str] = set()
    for weight in (0, 1, 5, 10, 25, 50, 75, 99, 100):
        state = DeploymentState("1", "2", green_weight=weight)
        now_green = {k for k in keys if route(state, k).colour == "green"}
        assert on_green <= now_green, "a caller went back from green to blue"
        assert all(route(state, k).colour == ("green" if k in now_green else "blue") for k in keys[:200])
        on_green = now_green
    assert on_green == set(keys)
    assert all(0 <= bucket_of(k) < BUCKETS for k in keys)


def test_forced_header_and_its_refusals() -> None:
    state = DeploymentState("1", "2", green_weight=0)
    assert route(state, "anyone", forced="GREEN").version == "2"
    assert route(state, forced="blue").how == "forced"
    with pytest.raises(RoutingError, match="not a deployment"):
        route(state, forced="purple")
    with pytest.raises(RoutingError, match="serves no version"):
        route(DeploymentState("1", None), forced="green")
    with pytest.raises(RoutingError, match="no deployment takes traffic"):
        route(DeploymentState(None, None))


def test_shadow_share_is_drawn_per_request() -> None:
    rng = random.Random(5)
    state = DeploymentState("1", "2", green_weight=0, shadow=20)
    shadowed = [route(state, rng=rng).shadow for _ in range(10_000)]
    assert abs(shadowed.count("green") / 10_000 - 0.20) < 0.02
    assert set(shadowed) == {"green", None}
    assert route(DeploymentState("1", None, shadow=100)).shadow is None  # nothing to shadow with


# --- the rollback rules ------------------------------------------------------------------------


def _lines(colour: str, n: int, status: int = 200, latency: float = 1.0, p: float = 0.1) -> list[dict]:
    rng = np.random.default_rng(len(colour) + n)
    return [
        {
            "deployment": colour,
            "status": status,
            "latency_ms": latency,
            "shadow": False,
            "outputs": [{"probability": float(np.clip(p + rng.normal(0, 0.02), 0, 1))}],
        }
        for _ in range(n)
    ]


def test_ks_distance_agrees_with_scipy() -> None:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(1)
    for a, b in ((rng.normal(0, 1, 300), rng.normal(0.3, 1, 200)), (rng.random(50), rng.random(80))):
        assert ks_distance(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)


def test_green_is_judged_on_each_rule() -> None:
    policy = RollbackPolicy(min_requests=50)
    state = DeploymentState("1", "2", green_weight=20)
    healthy = check_green(state, _lines("blue", 200) + _lines("green", 60), policy)
    assert healthy.judged and not healthy.failed
    errors_ = check_green(state, _lines("blue", 200) + _lines("green", 55) + _lines("green", 5, 500), policy)
    assert [f["rule"] for f in errors_.failures] == ["success"]
    slow = check_green(state, _lines("blue", 200) + _lines("green", 60, latency=900), policy)
    assert [f["rule"] for f in slow.failures] == ["p99_latency"]
    drifted = check_green(state, _lines("blue", 200) + _lines("green", 60, p=0.6), policy)
    assert [f["rule"] for f in drifted.failures] == ["prediction_drift"] and drifted.drift > 0.9
    few = check_green(state, _lines("blue", 200) + _lines("green", 10, 500), policy)
    assert not few.judged and "10 of the 50" in few.note
    client_errors = check_green(state, _lines("blue", 200) + _lines("green", 60, 400), policy)
    assert not client_errors.failed  # a 400 is the caller's mistake
    assert not check_green(DeploymentState("1", "2", 0), _lines("green", 100, 500), policy).judged
    assert next_streak(1, drifted) == 2 and next_streak(1, healthy) == 0 and next_streak(1, few) == 1


# --- deployments.json ----------------------------------------------------------------------------


@pytest.fixture
def folder_registry(tmp_path: Path, models: Models) -> tuple[Registry, str, str]:
    registry = Registry(FolderStore(tmp_path / "registry"))
    good = registry.register(models.good, "m")
    bad = registry.register(models.bad, "m")
    registry.promote("m", good, "dev", override_reason="tests")
    return registry, good, bad


def test_deployments_lifecycle_and_log(folder_registry: tuple[Registry, str, str]) -> None:
    registry, good, bad = folder_registry
    deployments = Deployments(registry, "m", "dev")
    assert deployments.read() == DeploymentState(good, None, explicit=False)
    with pytest.raises(DeploymentError, match="serves no version"):
        deployments.traffic(green=10)
    deployments.set(bad, "green", actor="ana")
    deployments.traffic(green=10, shadow=5, actor="ana")
    assert deployments.read() == DeploymentState(good, bad, 10, 5)
    with pytest.raises(DeploymentError, match="swap once green takes all"):
        deployments.swap()
    deployments.traffic(blue=0)
    deployments.swap(actor="ana")
    assert deployments.read() == DeploymentState(bad, good, 0, 5)
    deployments.rollback(reason="undo the swap")
    assert deployments.read() == DeploymentState(good, bad, 0, 0)
    with pytest.raises(DeploymentError, match="nothing to roll back"):
        deployments.rollback(reason="again")
    deployments.traffic(green=30)
    deployments.rollback(reason="bad canary", actor="bob")
    assert deployments.read() == DeploymentState(good, bad, 0, 0)
    log = [d for d in registry.decisions.read("m") if d["kind"] == DEPLOYMENT_KIND]
    assert [d["action"] for d in log] == [
        "set",
        "traffic",
        "traffic",
        "swap",
        "rollback",
        "traffic",
        "rollback",
    ]
    assert log[-1]["reason"] == "bad canary" and log[-1]["actor"] == "bob"
    assert log[-1]["before"]["green"] == {"version": bad, "traffic": 30}
    assert log[-1]["deployments"]["green"] == {"version": bad, "traffic": 0}
    document = deployments.document()
    assert document is not None and len(document["history"]) == len(log) - 1


@pytest.mark.parametrize("bad_value", [-1, 101, 2.5, True, "10"])
def test_percentages_are_whole_numbers_0_to_100(folder_registry, bad_value) -> None:  # type: ignore[no-untyped-def]
    registry, _, bad = folder_registry
    deployments = Deployments(registry, "m", "dev")
    deployments.set(bad, "green")
    with pytest.raises(DeploymentError, match="percentage"):
        deployments.traffic(green=bad_value)
    with pytest.raises(DeploymentError, match="add up to 100"):
        deployments.traffic(green=10, blue=80)


def test_a_damaged_version_is_never_deployed(folder_registry, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from model.registry import IntegrityError

    registry, _, bad = folder_registry
    onnx = tmp_path / "registry" / "m" / bad / "model.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(IntegrityError):
        Deployments(registry, "m", "dev").set(bad, "green")
    assert registry.store.read("m/deployments.json") is None


def test_the_cli_moves_traffic(folder_registry, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from model.cli import main

    _, good, bad = folder_registry
    base = ["--registry", str(tmp_path / "registry"), "deployments", "--name", "m", "--stage", "dev"]
    assert main([*base, "show"]) == 0
    assert f"blue=v{good} 100%" in capsys.readouterr().out
    assert main([*base, "set", bad, "--slot", "green"]) == 0
    assert main([*base, "traffic", "green=25", "shadow=10"]) == 0
    assert f"green=v{bad} 25%, shadow 10%" in capsys.readouterr().out
    assert main([*base, "traffic", "green=x"]) == 2
    assert "whole number" in capsys.readouterr().err
    assert main([*base, "rollback", "--reason", "test"]) == 0
    assert "green=v2 0%" in capsys.readouterr().out
    assert main([*base, "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["change"]["action"] == "rollback"


def test_the_dashboard_lists_blue_green_changes(folder_registry) -> None:  # type: ignore[no-untyped-def]
    from model.monitoring.collect import promotions

    registry, good, bad = folder_registry
    deployments = Deployments(registry, "m", "dev")
    deployments.set(bad, "green")
    deployments.traffic(green=10, reason="canary")
    moves, skipped = promotions(registry, "m")
    assert not skipped
    http = [m for m in moves if m.stage == "http"]
    assert [m.kind for m in http] == ["http set", "http traffic"]
    assert http[-1].reason == f"canary; now blue v{good} 90 %, green v{bad} 10 %"
    assert [m.stage for m in moves if m.stage != "http"] == ["dev"]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("balance", True, "balance: true is not a value of this column"),
        ("age", False, "age: false is not a value of this column"),
        ("job", True, "job: true is not a value of this column"),
        ("job", 5, "job: 5 is a number; its values are text"),
        ("client_id", True, "client_id: true is not a value of this column"),
        ("job", "", "job: missing value"),  # an empty field, as batch scoring reads one
        ("age", "", "age: missing value"),
    ],
)
def test_json_values_no_csv_field_can_hold_are_refused(models: Models, checker: RowChecker, column: str,
                                                       value: object, reason: str) -> None:  # fmt: skip
    rows = records(models, 2)
    rows[1][column] = value
    with pytest.raises(errors.RequestRejected) as refused:
        checker.score(_table(rows))
    assert [p.to_dict() for p in refused.value.problems] == [{"row": 2, "column": column, "reason": reason}]
