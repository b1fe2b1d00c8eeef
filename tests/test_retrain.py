"""The retrain entry point (model/retrain.py): the gate window, the gate on constructed cases,
the refit on every row, the climb through the stages with prod's approval, and the log."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from model.registry import FolderStore, PromotionRefused, Registry
from model.retrain import RetrainConfig, gate_window, retrain
from model.serving import load_folder
from model.train import TrainConfig
from tests.model_fixtures import BANK, NAME

TINY = {"candidates": ("logreg",), "feature_sets": ("stable",), "recency": ("none",), "cv_folds": 0}


# -- the gate window ----------------------------------------------------------------------------


def test_the_window_is_the_newest_half_of_the_rows_the_champion_never_saw() -> None:
    window = gate_window(10_000, 8_000, 0.2, 500)
    assert (window.start, window.end, window.clean) == (9_000, 10_000, True)  # 1,000 of 2,000 new
    assert "stand-in trained on the 1,000 before them" in window.why
    least = gate_window(10_000, 9_200, 0.2, 500)
    assert (least.start, least.clean) == (9_500, True)  # half of 800 is under the minimum of 500
    capped = gate_window(10_000, 2_000, 0.2, 500)
    assert (capped.start, capped.clean) == (8_000, True)  # at most 20 % of the rows


@given(
    rows=st.integers(1_000, 100_000),
    seen=st.floats(0.0, 1.0),
    fraction=st.floats(0.05, 0.5),
    least=st.integers(10, 500),
)
def test_a_clean_window_never_holds_a_row_the_champion_trained_on(rows, seen, fraction, least) -> None:
    champion_rows = int(rows * seen)
    try:
        window = gate_window(rows, champion_rows, fraction, least)
    except ValueError:
        return  # too few rows to hold any out: refused, not guessed
    assert 0 < window.start < window.end == rows
    assert window.end - window.start >= least
    if window.clean:
        assert window.start >= champion_rows  # nothing the champion saw
    else:
        assert rows - champion_rows < least  # overlap only when too little is new


def test_too_few_new_rows_overlap_the_champion_and_say_so() -> None:
    window = gate_window(10_000, 9_800, 0.2, 500)
    assert (window.start, window.clean) == (8_000, False)
    assert "partly trained on" in window.why
    unknown = gate_window(10_000, None, 0.2, 500)
    assert (unknown.start, unknown.clean) == (8_000, False)
    first = gate_window(10_000, None, 0.2, 500, champion=False)
    assert (first.start, first.clean) == (8_000, True)


@pytest.mark.parametrize("rows", [400, 500])
def test_a_window_that_would_leave_nothing_to_train_on_is_refused(rows: int) -> None:
    with pytest.raises(ValueError, match="too few"):
        gate_window(rows, None, 0.2, 500)


def test_the_gate_fraction_is_checked() -> None:
    with pytest.raises(ValueError, match="gate_fraction"):
        gate_window(10_000, None, 1.0, 500)


# -- the gate on constructed cases (a model fitted on shuffled labels vs a real one) --------------


def _registry_serving(tmp_path, folder) -> Registry:  # type: ignore[no-untyped-def]
    registry = Registry(FolderStore(tmp_path / "registry"))
    version = registry.register(folder, NAME)
    registry.promote(NAME, version, "dev", actor="test")
    return registry


def test_the_gate_refuses_a_worse_challenger_with_its_figures_in_the_log(tmp_path, models) -> None:
    registry = _registry_serving(tmp_path, models.good)
    worse = registry.register(models.bad, NAME)
    with pytest.raises(PromotionRefused, match="gate refused") as refused:
        registry.promote(
            NAME, worse, "dev", gate_data=models.gate, metric="roc_auc", evidence={"why": "test"}
        )
    comparison = refused.value.gate["comparison"]
    assert comparison["passed"] is False and comparison["checks"]["roc_auc"] is False
    assert comparison["roc_auc"]["high"] < 0  # the champion is better beyond the noise
    last = registry.decisions.read(NAME)[-1]
    assert last["kind"] == "refused" and last["evidence"] == {"why": "test"}
    assert last["gate"]["comparison"]["reasons"]
    assert registry.resolve(NAME, "dev") == "1"


def test_the_gate_promotes_a_better_challenger(tmp_path, models) -> None:
    registry = _registry_serving(tmp_path, models.bad)
    better = registry.register(models.good, NAME)
    record = registry.promote(NAME, better, "dev", gate_data=models.gate, metric="roc_auc")
    comparison = record["gate"]["comparison"]
    assert comparison["passed"] and comparison["significantly_better"]
    assert {s["segment"] for s in comparison["segments"]} == {"contact", "age_band"}
    assert registry.resolve(NAME, "dev") == better


def test_a_stand_in_scores_for_the_challenger(tmp_path, models) -> None:
    """The registered version is not what the gate scores when a stand-in is given (a retrain's
    fit before the window): the bad version passes as the good model, and the record says so."""
    registry = _registry_serving(tmp_path, models.bad)
    version = registry.register(models.bad, NAME)
    record = registry.promote(
        NAME, version, "dev", gate_data=models.gate, metric="roc_auc", stand_in=load_folder(models.good)
    )
    assert record["gate"]["stand_in"] is True and record["gate"]["comparison"]["passed"]


# -- one retrain end to end, on the shipped rows --------------------------------------------------


def test_a_retrain_gates_on_unseen_rows_refits_on_all_and_stops_at_prod_without_approval(
    tmp_path, models
) -> None:
    registry = _registry_serving(tmp_path, models.bad)  # a champion a real model beats
    config = RetrainConfig(
        train=TrainConfig(data=BANK, out=tmp_path / "work", sample=15_000, **TINY),
        promote_to=("dev", "preprod", "prod"),
        trigger={"fired": ["schedule"], "evidence": {"schedule": {"fired": True}}},
    )
    report = retrain(config, registry)
    version = report["version"]
    assert report["window"]["rows"] == 3_000 and report["window"]["last_row"] == 15_000  # 20 %
    assert not report["window"]["clean"]  # the fixture's champion records no training rows

    metadata = registry.show(NAME, version)
    assert metadata["training_data"]["rows"] == 15_000  # the refit saw every labelled row
    assert metadata["training_data"]["train_rows"] == 15_000
    assert metadata["retrain"]["gate_fit"]["rows"] == 12_000  # the gate's stand-in never saw the window
    gate_fit = json.loads((tmp_path / "work" / "gate-fit" / "metadata.json").read_text())
    assert gate_fit["training_data"]["rows"] == 12_000

    decisions = [(d["stage"], d["decision"]) for d in report["decisions"]]
    assert decisions == [("dev", "promoted"), ("preprod", "promoted"), ("prod", "refused")]
    assert "without an approval" in report["decisions"][-1]["reason"]
    logged = [d for d in registry.decisions.read(NAME) if d.get("version") == version]
    assert [(d["stage"], d["kind"]) for d in logged] == [
        ("dev", "promote"),
        ("preprod", "promote"),
        ("prod", "refused"),
    ]
    assert all(d["evidence"]["trigger"]["fired"] == ["schedule"] for d in logged)
    assert logged[0]["gate"]["stand_in"] is True

    registry.approve(NAME, version, "prod", by="ml-lead")
    assert registry.promote(NAME, version, "prod")["approval"]["by"] == "ml-lead"
