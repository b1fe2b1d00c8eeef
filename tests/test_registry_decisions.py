"""The promotion log (model/registry/decisions.py): every decision, refusals too, append-only.

On a folder and on Azurite, through the Registry's own promote and rollback, and under concurrent
writers: no line is lost, none is ever rewritten (every later content starts with every earlier one).
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from model.registry import BlobStore, DecisionLog, FolderStore, PromotionRefused, Registry, RegistryError
from model.registry.layout import decisions_file
from tests.model_fixtures import NAME, Models


@pytest.fixture(params=["folder", "blob"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "folder":
        return FolderStore(tmp_path / "registry")
    service: BlobServiceClient = request.getfixturevalue("blob_service")
    return BlobStore(service.get_container_client(f"models-{uuid.uuid4().hex[:12]}"), ensure=True)


def test_every_decision_is_logged_with_its_evidence(store, models: Models) -> None:
    registry = Registry(store)
    good = registry.register(models.good)
    bad = registry.register(models.bad)
    registry.promote(NAME, good, "dev", actor="ana")
    with pytest.raises(PromotionRefused):  # the gate: the shuffled-label model is worse
        registry.promote(NAME, bad, "dev", gate_data=models.gate, actor="ben")
    with pytest.raises(PromotionRefused):  # the order: prod before preprod
        registry.promote(NAME, good, "prod", actor="ana")
    registry.promote(NAME, bad, "dev", override_reason="trying the new campaign", actor="cy")
    registry.rollback(NAME, "dev", reason="worse on the first day", actor="cy")

    log = registry.decisions.read(NAME)
    assert [(d["kind"], d["stage"], d["version"], d["actor"]) for d in log] == [
        ("promote", "dev", good, "ana"),
        ("refused", "dev", bad, "ben"),
        ("refused", "prod", good, "ana"),
        ("promote", "dev", bad, "cy"),
        ("rollback", "dev", good, "cy"),
    ]
    gate = log[1]["gate"]
    assert gate["passed"] is False and gate["challenger"] < gate["champion"] and gate["rows"] > 0
    assert "gate refused" in log[1]["reason"] and log[1]["previous"] == good
    assert "cannot go to prod" in log[2]["reason"] and log[2]["gate"] is None
    assert log[3]["override"] == {"reason": "trying the new campaign"}
    assert all("logged_at" in d and "history" not in d for d in log)


def test_appends_never_rewrite_a_line(store) -> None:
    decisions = DecisionLog(store)
    seen = b""
    for i in range(6):
        decisions.append("m", {"kind": "promote", "version": str(i), "note": "line\nbreak and ünïcode"})
        now = store.read(decisions_file("m")) or b""
        assert now.startswith(seen) and now.count(b"\n") == i + 1
        seen = now
    assert [d["version"] for d in decisions.read("m")] == [str(i) for i in range(6)]
    assert decisions.read("other") == []


def test_concurrent_writers_lose_nothing(store) -> None:
    decisions = DecisionLog(store)
    writers, each = 4, 5
    errors: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for i in range(each):
                decisions.append("m", {"writer": writer, "i": i})
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    entries = decisions.read("m")
    assert sorted((d["writer"], d["i"]) for d in entries) == [
        (w, i) for w in range(writers) for i in range(each)
    ]
    for writer in range(writers):  # each writer's own lines stay in its order
        assert [d["i"] for d in entries if d["writer"] == writer] == list(range(each))


def test_a_log_with_a_torn_last_line_is_not_appended_to(store) -> None:
    store.replace(decisions_file("m"), json.dumps({"kind": "promote"}).encode(), None)  # no newline
    with pytest.raises(RegistryError, match="does not end with a complete line"):
        DecisionLog(store).append("m", {"kind": "promote"})


def test_the_dashboard_lists_the_logged_decisions_refusals_included(
    store, models: Models, tmp_path: Path
) -> None:
    from model.monitoring.collect import collect
    from model.monitoring.dashboard import render_dashboard

    registry = Registry(store)
    good, bad = registry.register(models.good), registry.register(models.bad)
    registry.promote(NAME, good, "dev", actor="ana")
    with pytest.raises(PromotionRefused):
        registry.promote(NAME, bad, "dev", gate_data=models.gate, actor="ben")
    data = collect(FolderStore(tmp_path / "monitoring"), NAME, registry)
    assert [(p.kind, p.version, p.actor) for p in data.promotions] == [
        ("promote", good, "ana"),
        ("refused", bad, "ben"),
    ]
    page = render_dashboard(data, stack="dev", generated_at="2026-12-02T07:00:00+00:00")
    assert ">refused<" in page and ">ben<" in page
