"""Stage pointers on real storage (a local folder and blob storage on a real Azurite): the stage
order, the promotion gate, overrides, rollbacks, the capped history, and promotions that race.

The model folders are tests/model_fixtures.py's "good" and "bad" logistic regressions (the bad one
fitted on shuffled labels), so the gate has a real, large difference to detect on the same rows.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from model.registry import (
    STAGES,
    BlobStore,
    ConcurrentUpdateError,
    FolderStore,
    NotFoundError,
    PromotionRefused,
    Registry,
    RegistryError,
)
from tests.model_fixtures import NAME, Models


@pytest.fixture(autouse=True)
def _known_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "tester")  # the default actor of stage records


@pytest.fixture(params=["folder", "blob"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Registry:
    if request.param == "folder":
        return Registry(FolderStore(tmp_path / "registry"))
    service: BlobServiceClient = request.getfixturevalue("blob_service")
    return Registry(BlobStore(service.get_container_client(f"models-{uuid.uuid4().hex[:12]}"), ensure=True))


def _stage_file(registry: Registry, stage: str) -> dict:
    raw = registry.store.read(f"{NAME}/stages/{stage}.json")  # the stored layout, spelled out on purpose
    assert raw is not None
    return json.loads(raw)


def _to_prod(registry: Registry, version: str, **gate: object) -> None:
    registry.approve(NAME, version, "prod", by="release-manager")
    for stage in STAGES:
        registry.promote(NAME, version, stage, **gate)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------- promotion


def test_stage_order_is_enforced(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    with pytest.raises(PromotionRefused, match=r"dev -> preprod -> prod.*dev serves nothing"):
        registry.promote(NAME, "1", "preprod")
    with pytest.raises(PromotionRefused, match=r"preprod serves nothing.*override_reason"):
        registry.promote(NAME, "1", "prod")
    assert registry.promote(NAME, "1", "dev")["actor"] == "tester"  # $USER when no actor is given
    with pytest.raises(PromotionRefused, match="preprod serves nothing"):
        registry.promote(NAME, "1", "prod")
    registry.promote(NAME, "1", "preprod")
    registry.approve(NAME, "1", "prod", by="erin", note="reviewed the model card")
    record = registry.promote(NAME, "1", "prod", actor="alice")
    assert (record["version"], record["actor"], record["gate"], record["override"]) == (
        "1",
        "alice",
        None,
        None,
    )
    assert record["approval"]["by"] == "erin" and record["approval"]["at"]
    assert record["previous"] is None and record["history"] == []
    assert record == _stage_file(registry, "prod")
    assert registry.promote(NAME, "1", "prod") == record  # already there: nothing changes

    registry.register(models.good)
    with pytest.raises(PromotionRefused, match="preprod serves 1, not 2"):
        registry.promote(NAME, "2", "prod")


def test_prod_needs_an_approval_of_that_version(registry: Registry, models: Models) -> None:
    for folder in (models.good, models.good):
        registry.register(folder)
    registry.promote(NAME, "1", "dev")
    registry.promote(NAME, "1", "preprod")
    with pytest.raises(PromotionRefused, match=r"cannot go to prod without an approval.*approve 1 prod --by"):
        registry.promote(NAME, "1", "prod")
    registry.approve(NAME, "2", "prod", by="erin")  # another version's approval does not count
    registry.approve(NAME, "1", "preprod", by="erin")  # nor another stage's
    with pytest.raises(PromotionRefused, match="without an approval"):
        registry.promote(NAME, "1", "prod")
    assert registry.stage(NAME, "prod") is None
    with pytest.raises(RegistryError, match="names who approves"):
        registry.approve(NAME, "1", "prod", by="  ")
    registry.approve(NAME, "latest", "prod", by="erin")  # a reference resolves: latest is version 2
    registry.approve(NAME, "1", "prod", by="frank")
    assert registry.promote(NAME, "1", "prod")["approval"]["by"] == "frank"
    kinds = [(d["kind"], d["stage"], d["version"]) for d in registry.decisions.read(NAME)]
    assert kinds.count(("refused", "prod", "1")) == 2 and kinds[-1] == ("promote", "prod", "1")
    # a stack whose policy asks no approval (a Registry built with approval_stages=())
    relaxed = Registry(registry.store, approval_stages=())
    registry.register(models.good)
    for stage in STAGES:
        relaxed.promote(NAME, "3", stage, override_reason=None, gate_data=models.gate)
    assert relaxed.stage(NAME, "prod")["version"] == "3" and "approval" not in relaxed.stage(NAME, "prod")
    with pytest.raises(NotFoundError, match="no version '7'"):
        registry.promote(NAME, "7", "dev")


def test_gate_refuses_worse_challenger_on_the_same_rows(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    registry.register(models.bad)
    _to_prod(registry, "1")
    before = _stage_file(registry, "dev")
    with pytest.raises(PromotionRefused, match=r"serves version 1.*needs gate_data.*override_reason"):
        registry.promote(NAME, "2", "dev")
    with pytest.raises(PromotionRefused) as refused:
        registry.promote(NAME, "2", "dev", gate_data=models.gate)
    gate = refused.value.gate
    assert gate is not None and gate["rows"] == 2000 and not gate["passed"]
    assert gate["challenger"] < gate["champion"] - 0.01
    message = str(refused.value)
    for text in (f"{gate['challenger']:.4f}", f"{gate['champion']:.4f}", "tolerance 0.01", "override_reason"):
        assert text in message
    assert _stage_file(registry, "dev") == before  # nothing written

    with pytest.raises(PromotionRefused, match="roc_auc"):
        registry.promote(NAME, "2", "dev", gate_data=models.gate, metric="roc_auc")


def test_gate_accepts_better_challenger_and_records_it(registry: Registry, models: Models) -> None:
    registry.register(models.bad)
    registry.register(models.good)
    _to_prod(registry, "1")
    gate_data = models.gate.assign(y=(models.gate["y"] == "yes").astype(int))  # 0/1 labels work too
    record = registry.promote(NAME, "2", "dev", gate_data=gate_data, actor="bob")
    gate = record["gate"]
    assert (
        gate["passed"] and gate["metric"] == "pr_auc" and gate["rows"] == 2000 and gate["tolerance"] == 0.01
    )
    assert gate["challenger"] > gate["champion"]
    assert (record["version"], record["previous"], record["override"]) == ("2", "1", None)
    assert [h["version"] for h in record["history"]] == ["1"]
    assert record == _stage_file(registry, "dev")
    assert registry.promote(NAME, "2", "preprod", gate_data=models.gate)["gate"]["passed"]


def test_override_skips_order_and_gate_and_is_recorded(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    registry.register(models.bad)
    _to_prod(registry, "1")
    with pytest.raises(RegistryError, match="must say why"):
        registry.promote(NAME, "2", "prod", override_reason="  ")
    record = registry.promote(NAME, "2", "prod", override_reason="incident 42: hotfix", actor="carol")
    stored = _stage_file(registry, "prod")
    assert stored == record
    assert stored["override"] == {"reason": "incident 42: hotfix"}
    assert (stored["version"], stored["previous"], stored["gate"], stored["actor"]) == (
        "2",
        "1",
        None,
        "carol",
    )
    assert stored["history"][-1]["version"] == "1"


def test_rollback_restores_previous_and_records_history(registry: Registry, models: Models) -> None:
    registry.register(models.bad)
    registry.register(models.good)
    registry.promote(NAME, "1", "dev")
    with pytest.raises(RegistryError, match="no previous version"):
        registry.rollback(NAME, "dev", reason="nothing to undo")
    with pytest.raises(NotFoundError, match="points at no version"):
        registry.rollback(NAME, "prod", reason="x")
    registry.promote(NAME, "2", "dev", gate_data=models.gate)

    record = registry.rollback(NAME, "dev", actor="dave", reason="latency regression")
    assert (record["version"], record["kind"], record["reason"], record["actor"]) == (
        "1", "rollback", "latency regression", "dave",
    )  # fmt: skip
    assert record["previous"] == "2"
    assert [(h["version"], h["kind"]) for h in record["history"]] == [("1", "promote"), ("2", "promote")]
    assert _stage_file(registry, "dev") == record
    assert registry.load(NAME, "dev").version == "1"
    # Rolling back the rollback returns to 2; the rollback itself is now in the history.
    again = registry.rollback(NAME, "dev", reason="false alarm")
    assert again["version"] == "2"
    assert again["history"][-1]["kind"] == "rollback"
    assert again["history"][-1]["reason"] == "latency regression"


def test_history_is_capped(registry: Registry, models: Models) -> None:
    registry.register(models.good)
    registry.register(models.good)
    for i in range(27):
        registry.promote(NAME, str(1 + i % 2), "dev", override_reason=f"flip {i}")
    history = _stage_file(registry, "dev")["history"]
    assert len(history) == 26
    for i in range(27, 56):
        registry.promote(NAME, str(1 + i % 2), "dev", override_reason=f"flip {i}")
    history = _stage_file(registry, "dev")["history"]
    assert len(history) == 50
    assert history[-1]["override"]["reason"] == "flip 54" and history[0]["override"]["reason"] == "flip 5"
    assert all("history" not in h for h in history)


def test_promotion_racing_another_promotion_fails_cleanly(
    registry: Registry, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry.register(models.bad)
    registry.register(models.good)
    registry.register(models.good)
    registry.promote(NAME, "1", "dev")
    other = Registry(registry.store)  # a colleague, same registry
    original_load = registry.load

    def load_while_someone_promotes(*args, **kwargs):  # type: ignore[no-untyped-def]
        if other.stage(NAME, "dev")["version"] == "1":  # type: ignore[index]
            other.promote(NAME, "3", "dev", override_reason="their hotfix")
        return original_load(*args, **kwargs)

    monkeypatch.setattr(registry, "load", load_while_someone_promotes)
    with pytest.raises(ConcurrentUpdateError, match="changed while"):
        registry.promote(NAME, "2", "dev", gate_data=models.gate)
    assert registry.stage(NAME, "dev")["version"] == "3"  # type: ignore[index]
