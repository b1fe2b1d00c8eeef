"""The real-time endpoint end to end: the app's own HTTP and timer functions (`get_user_function()`)
with real `func.HttpRequest` objects, the registry and request log in Azurite, and over loopback HTTP
through the local host that `make serve` runs."""

from __future__ import annotations

import datetime as dt
import gc
import http.client
import json
import weakref
from collections import Counter

import pytest
from azure.functions.timer import TimerRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lake.contract import MODELS_CONTAINER, MONITORING_CONTAINER
from lake.paths import rollback_state_path
from model.realtime import errors
from model.registry.deployments import DEPLOYMENT_KIND
from tests.realtime_support import app_stack, http_request, records

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(azurite, blob_service, models):  # type: ignore[no-untyped-def]
    with app_stack(azurite.connection_string, blob_service, models, HTTP_MAX_ROWS="50") as built:
        yield built


def _lines(blob_service, name: str) -> list[dict]:  # type: ignore[no-untyped-def]
    from functions.realtime.request_log import read_lines

    return read_lines(blob_service.get_container_client(MONITORING_CONTAINER), f"{name}/requests/")


def test_every_payload_form_answers_with_one_prediction_per_row(stack, models) -> None:  # type: ignore[no-untyped-def]
    rows = records(models, 3)
    columns = list(rows[0])
    raw = list(stack.service().live.current().checkers["blue"].schema.raw_columns)
    forms = [
        {"records": rows},
        {"dataframe_records": rows},
        {"dataframe_split": {"columns": columns, "data": [[r[c] for c in columns] for r in rows]}},
        {
            "input_data": {
                "columns": columns,
                "index": [0, 1, 2],
                "data": [[r[c] for c in columns] for r in rows],
            }
        },
        {"data": [[r[c] for c in raw] for r in rows], "ids": [1, 2, 3]},
    ]
    answers = []
    for body in forms:
        response = stack.functions["score"](http_request(body, headers={"x-request-id": "req-7"}))
        assert response.status_code == 200 and response.mimetype == "application/json"
        answer = json.loads(response.get_body())
        assert answer["request_id"] == "req-7" == response.headers["x-request-id"]
        assert answer["model"] == {"name": stack.name, "version": stack.good}
        assert answer["deployment"] == "blue" == response.headers["x-model-deployment"]
        answers.append(answer["predictions"])
    assert [p["id"] for p in answers[0]] == [1, 2, 3]
    assert all(0 <= p["probability"] <= 1 and p["decision"] in (0, 1) for p in answers[0])
    assert all(a == answers[0] for a in answers)


def test_every_error_status(stack, models) -> None:  # type: ignore[no-untyped-def]
    score = stack.functions["score"]
    bad_rows = records(models, 2)
    bad_rows[1]["age"] = 150
    status, body = stack.score({"records": bad_rows})
    assert status == 400 and body["error"]["code"] == "invalid_rows"
    assert body["error"]["problems"] == [
        {"row": 2, "column": "age", "reason": "age: 150 is outside [18, 120]"}
    ]
    assert stack.score({"rows": []})[0] == 400
    status, body = stack.score({"records": records(models, 51)})
    assert status == 413 and body["error"]["code"] == "too_many_rows"
    big = http_request(raw=b'{"records": [' + b" " * (1 << 20) + b"]}")
    assert score(big).status_code == 413
    assert score(http_request(raw=b"age;job\n30;admin.")).status_code == 415
    csv = http_request(raw=b"{}", headers={"content-type": "text/csv"})
    assert json.loads(score(csv).get_body())["error"]["code"] == "unsupported_media_type"
    status, body = stack.score({"records": records(models, 1)}, **{"x-model-deployment": "purple"})
    assert status == 400 and body["error"]["code"] == "bad_deployment"


def test_a_stage_on_a_missing_version_is_503(azurite, blob_service, models) -> None:  # type: ignore[no-untyped-def]
    with app_stack(azurite.connection_string, blob_service, models) as empty:
        models_container = blob_service.get_container_client(MODELS_CONTAINER)
        models_container.upload_blob(f"{empty.name}/stages/dev.json", b'{"version": "99"}', overwrite=True)
        status, body = empty.score({"records": records(models, 1)})
    assert status == 503 and body["error"]["code"] == "no_model" and "99" in body["error"]["message"]


def test_no_model_deployed_is_503_with_the_reason(azurite, blob_service, models) -> None:  # type: ignore[no-untyped-def]
    with app_stack(azurite.connection_string, blob_service, models) as built:
        blob_service.get_container_client(MODELS_CONTAINER).delete_blob(f"{built.name}/stages/dev.json")
        status, body = built.score({"records": records(models, 1)})
        assert status == 503 and body["error"]["code"] == "no_model"
        assert "promote a version to dev" in body["error"]["message"]
        assert built.call("ready").status_code == 503
        assert built.call("health").status_code == 200


def test_traffic_and_rollback_reach_a_running_worker(stack, models) -> None:  # type: ignore[no-untyped-def]
    one = {"records": records(models, 1)}
    assert stack.score(one)[1]["deployment"] == "blue"
    stack.deployments.set(stack.bad, "green")
    stack.deployments.traffic(green=100)
    status, body = stack.score(one)
    assert status == 200 and body["deployment"] == "green" and body["model"]["version"] == stack.bad
    stack.deployments.rollback(reason="test")
    assert stack.score(one)[1]["deployment"] == "blue"
    forced = stack.score(one, **{"x-model-deployment": "green"})[1]
    assert forced["deployment"] == "green"


def test_sticky_callers_over_the_function(stack, models) -> None:  # type: ignore[no-untyped-def]
    stack.deployments.set(stack.bad, "green")
    stack.deployments.traffic(green=30)
    one = {"records": records(models, 1)}
    first = {k: stack.score(one, **{"x-caller-key": f"user-{k}"})[1]["deployment"] for k in range(200)}
    again = {k: stack.score(one, **{"x-caller-key": f"user-{k}"})[1]["deployment"] for k in range(200)}
    assert first == again
    assert 0.2 < Counter(first.values())["green"] / 200 < 0.4
    stack.deployments.traffic(green=60)
    later = {k: stack.score(one, **{"x-caller-key": f"user-{k}"})[1]["deployment"] for k in range(200)}
    assert all(later[k] == "green" for k, colour in first.items() if colour == "green")


def test_a_corrupted_version_is_refused_and_the_other_colour_serves(stack, models, blob_service) -> None:  # type: ignore[no-untyped-def]
    models_container = blob_service.get_container_client(MODELS_CONTAINER)
    onnx = f"{stack.name}/{stack.bad}/model.onnx"
    data = models_container.download_blob(onnx).readall()
    models_container.upload_blob(onnx, data[:-8] + b"tampered", overwrite=True)
    document = {
        "format": 1,
        "model": stack.name,
        "deployments": {
            "blue": {"version": stack.good, "traffic": 50},
            "green": {"version": stack.bad, "traffic": 50},
            "shadow": 0,
        },
    }
    models_container.upload_blob(f"{stack.name}/deployments.json", json.dumps(document), overwrite=True)
    served = Counter(stack.score({"records": records(models, 1)})[1]["deployment"] for _ in range(30))
    assert served == {"blue": 30}
    ready = json.loads(stack.call("ready").get_body())
    assert "green" in ready["broken"] and "sha256" in ready["broken"]["green"]
    status, body = stack.score({"records": records(models, 1)}, **{"x-model-deployment": "green"})
    assert status == 503 and "cannot be loaded" in body["error"]["message"]


def test_old_sessions_are_released(stack) -> None:  # type: ignore[no-untyped-def]
    live = stack.service().live
    stack.deployments.set(stack.bad, "green")
    session = weakref.ref(live.current().checkers["green"].model.session)
    stack.deployments.set(stack.good, "green")
    assert live.current().checkers["green"].model.version == stack.good
    gc.collect()
    assert session() is None, "the session of a version no colour names is still alive"


def test_shadow_and_the_request_log(stack, models, blob_service) -> None:  # type: ignore[no-untyped-def]
    stack.deployments.set(stack.bad, "green")
    stack.deployments.traffic(shadow=100)
    ids = []
    for i in range(5):
        status, body = stack.score({"records": records(models, 2, first=i * 2)}, **{"x-caller-key": f"k{i}"})
        assert status == 200 and body["deployment"] == "blue"
        ids.append(body["request_id"])
    stack.score({"records": [{"age": 1}]})  # a refusal is logged too
    assert stack.service().log.flush() == 11
    lines = _lines(blob_service, stack.name)
    answered = [line for line in lines if not line["shadow"]]
    shadows = [line for line in lines if line["shadow"]]
    assert sorted(line["request_id"] for line in answered if line["status"] == 200) == sorted(ids)
    assert sorted(line["shadow_of"] for line in shadows) == sorted(ids)
    assert {line["deployment"] for line in shadows} == {"green"} and {s["version"] for s in shadows} == {
        stack.bad
    }
    first = next(line for line in answered if line["request_id"] == ids[0])
    assert first["route"] == "sticky" and isinstance(first["bucket"], int) and first["rows"] == 2
    assert [o["id"] for o in first["outputs"]] == [1, 2] and first["inputs"]["age"] == [
        r["age"] for r in records(models, 2)
    ]
    refused = next(line for line in answered if line["status"] == 400)
    assert refused["code"] == "missing_columns" and refused["outputs"] == []
    assert all(dt.datetime.fromisoformat(line["at"]).tzinfo is not None for line in lines)


def _check(stack, now: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    timer = TimerRequest(past_due=False, schedule_status={}, schedule={})
    from functions.realtime import rollback

    original = rollback.dt.datetime

    class Clock(original):  # type: ignore[misc, valid-type]
        @classmethod
        def now(cls, tz=None):  # type: ignore[no-untyped-def]
            return now

    rollback.dt.datetime = Clock  # type: ignore[misc]
    try:
        stack.functions["rollback_check"](timer)
    finally:
        rollback.dt.datetime = original  # type: ignore[misc]


def test_automatic_rollback_on_injected_errors(stack, models, blob_service, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stack.env.update(ROLLBACK_MIN_REQUESTS="20")
    monkeypatch.setenv("ROLLBACK_MIN_REQUESTS", "20")
    from functions.settings import get_settings

    get_settings.cache_clear()
    stack.deployments.set(stack.good, "green")
    stack.deployments.traffic(green=50)
    live = stack.service().live
    green = live.current().checkers["green"]
    monkeypatch.setattr(green, "score", lambda table: (_ for _ in ()).throw(RuntimeError("injected")))
    statuses = Counter(
        stack.score({"records": records(models, 1)}, **{"x-caller-key": f"c{i}"})[0] for i in range(80)
    )
    assert statuses[500] > 20 and statuses[200] > 20
    stack.service().log.flush()
    now = dt.datetime.now(dt.UTC)
    _check(stack, now)
    assert stack.deployments.read().green_weight == 50  # one failed check is not enough (2 by default)
    _check(stack, now + dt.timedelta(seconds=1))
    assert stack.deployments.read().green_weight == 0
    decision = [d for d in stack.registry.decisions.read(stack.name) if d["kind"] == DEPLOYMENT_KIND][-1]
    assert decision["action"] == "auto_rollback" and decision["actor"] == "automatic-rollback"
    assert [f["rule"] for f in decision["evidence"]["check"]["failures"]] == ["success"]
    state = json.loads(
        blob_service.get_blob_client(MONITORING_CONTAINER, rollback_state_path(stack.name))
        .download_blob()
        .readall()
    )
    assert [c["rolled_back"] for c in state["checks"]] == [False, True] and state["streak"] == 0


def test_automatic_rollback_on_a_drifted_green(stack, models, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("ROLLBACK_MIN_REQUESTS", "30")
    monkeypatch.setenv("ROLLBACK_FAILED_CHECKS", "1")
    from functions.settings import get_settings

    get_settings.cache_clear()
    stack.deployments.set(stack.bad, "green")  # fitted on shuffled labels: its scores sit apart
    stack.deployments.traffic(green=50)
    for i in range(120):
        assert stack.score({"records": records(models, 1, first=i)}, **{"x-caller-key": f"d{i}"})[0] == 200
    stack.service().log.flush()
    _check(stack, dt.datetime.now(dt.UTC))
    assert stack.deployments.read().green_weight == 0
    decision = [d for d in stack.registry.decisions.read(stack.name) if d["kind"] == DEPLOYMENT_KIND][-1]
    failures = decision["evidence"]["check"]["failures"]
    assert [f["rule"] for f in failures] == ["prediction_drift"] and failures[0]["value"] > 0.25


def test_over_loopback_http_and_the_schema(stack, models) -> None:  # type: ignore[no-untyped-def]
    import jsonschema

    from devstack import http_host
    from functions import function_app

    server, base = http_host.start_in_thread(function_app.app, port=0)
    try:
        connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=10)
        body = json.dumps({"records": records(models, 2)})
        connection.request("POST", "/api/score", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        assert answer.status == 200 and answer.getheader("x-model-deployment") == "blue"
        assert len(json.loads(answer.read())["predictions"]) == 2
        connection.request("GET", "/api/schema")
        schema = json.loads(connection.getresponse().read())
        connection.request("GET", "/api/ready")
        assert connection.getresponse().status == 200
    finally:
        server.stop()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    rows = records(models, 2)
    columns = schema["x-columns"]
    for good in (
        {"records": rows},
        {"dataframe_split": {"columns": list(rows[0]), "data": [list(r.values()) for r in rows]}},
        {"data": [[r[c] for c in columns] for r in rows]},
    ):
        validator.validate(good)
    for bad in ({"records": [dict(rows[0], age="old")]}, {"records": rows, "data": []}, {"data": [[1, 2]]}):
        assert not validator.is_valid(bad), bad


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_no_generated_body_gets_a_server_error(stack, models, data) -> None:  # type: ignore[no-untyped-def]
    """Hostile and random bodies: every answer is a coded 200/400/413/415, never a 500."""
    base = records(models, 1)[0]
    choice = data.draw(st.sampled_from(["bytes", "json", "form", "row"]))
    if choice == "bytes":
        raw = data.draw(st.binary(max_size=200))
    elif choice == "json":
        raw = json.dumps(data.draw(_JSON)).encode()
    elif choice == "form":
        form = data.draw(
            st.sampled_from(["data", "records", "dataframe_split", "dataframe_records", "input_data"])
        )
        raw = json.dumps({form: data.draw(_JSON)}).encode()
    else:
        row = dict(base)
        for column in data.draw(st.lists(st.sampled_from(sorted(base)), max_size=5, unique=True)):
            row[column] = data.draw(_JSON)
        raw = json.dumps({"records": [row]}).encode()
    response = stack.functions["score"](http_request(raw=raw))
    body = json.loads(response.get_body())
    assert response.status_code in (200, 400, 413, 415), body
    if response.status_code != 200:
        assert body["error"]["code"] in errors.STATUS and body["error"]["status"] == response.status_code
    else:
        assert len(body["predictions"]) == 1


def test_workers_revalidate_on_their_clock_with_conditional_reads(stack) -> None:  # type: ignore[no-untyped-def]
    """Within DEPLOYMENTS_REFRESH_SECONDS nothing is read; after it, an unchanged document costs one
    conditional read (no download, no reload); a change is seen at the next refresh."""
    from functions.realtime.live import LiveDeployments

    calls: Counter[str] = Counter()
    store = stack.registry.store

    class Counting:
        def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
            method = getattr(store, name)

            def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
                calls[name] += 1
                return method(*args, **kwargs)

            return counted

    stack.deployments.set(stack.bad, "green")  # the document exists: reads of it can be conditional
    now = [0.0]
    registry = type(stack.registry)(Counting())  # type: ignore[arg-type]
    live = LiveDeployments(registry, stack.name, "dev", refresh_seconds=2.0, clock=lambda: now[0])
    first = live.current()
    assert first.routed.blue == stack.good and calls["read_with_token"] == 1
    reads = dict(calls)
    now[0] = 1.9
    assert live.current() is first and dict(calls) == reads  # inside the interval: nothing read
    now[0] = 2.5
    second = live.current()
    assert calls["read_if_changed"] == 1 and second.checkers is first.checkers  # unchanged: not reloaded
    assert calls["read_with_token"] == reads["read_with_token"]  # no second full read
    stack.deployments.traffic(green=40)
    now[0] = 3.0
    assert live.current().routed.green_weight == 0  # still inside the interval
    now[0] = 5.0
    changed = live.current()
    assert changed.routed.green_weight == 40 and changed.checkers["green"].model.version == stack.bad
    assert changed.checkers["blue"] is first.checkers["blue"]  # blue's loaded model is kept, not reloaded


def test_a_fresh_lake_fires_every_timer_and_answers_not_ready(tmp_path, models) -> None:  # type: ignore[no-untyped-def]
    """A first `make demo` fires every timer on an empty Azurite, before any model exists: the
    rollback check must find nothing to judge (not fail on the missing `models` container), and the
    HTTP function must say "not ready" with its reason, not crash."""
    from devstack import azurite as azurite_mod
    from devstack import runner
    from functions.settings import get_settings
    from tests.scoring_support import scoring_env

    fresh = azurite_mod.start(tmp_path / "azurite")
    try:
        schedules = {f"{t}_SCHEDULE": "0 0 2 * * *" for t in ("EXPORT", "MONITOR", "RETRAIN", "ROLLBACK")}
        env = scoring_env(fresh.connection_string, MODEL_NAME="fresh", **schedules)
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            get_settings.cache_clear()
            from functions import function_app

            function_app.reset()
            hosted = {f.name: f for f in runner.discover(function_app.app, env)}
            runner.fire_timer(hosted["rollback_check"], dt.datetime.now(dt.UTC))  # raises on failure
            ready = hosted["ready"].user_function(http_request(method="GET", url="/api/ready"))
            assert ready.status_code == 503
            assert json.loads(ready.get_body())["reason"] == "no deployment takes traffic"
            status = hosted["score"].user_function(http_request({"records": records(models, 1)})).status_code
            assert status == 503
            function_app.reset()
        get_settings.cache_clear()
    finally:
        fresh.stop()
