"""`make replay` on a short stretch: three months after the first two, a retrain on schedule."""

from __future__ import annotations

import json

from devstack.replay import main, run
from model.registry import FolderStore, Registry

TINY = {"candidates": ("logreg",), "feature_sets": ("stable",), "recency": ("none",), "cv_folds": 0}


def test_three_months_score_judge_retrain_and_record_every_decision(tmp_path, capsys) -> None:
    summary = run(tmp_path / "replay", initial_periods=2, schedule_every=2, train_options=TINY, limit=3)
    periods = summary["periods"]
    assert [p["period"] for p in periods] == ["2008-07", "2008-08", "2008-10"]
    assert [p["rows"] for p in periods] == [6_380, 5_215, 80]  # the shipped data's months
    first = periods[0]
    assert first["serving_version"] == "1" and first["stale_roc_auc"] == first["serving_roc_auc"]
    assert 0 <= first["drift_share"] <= 1

    scheduled = periods[1]
    assert "schedule" in scheduled["fired"]
    assert scheduled["retrain"]["version"] == "2"
    assert scheduled["decision"] in {"promoted v2", "refused v2"}
    assert scheduled["dev_after"] == ("2" if scheduled["decision"] == "promoted v2" else "1")
    assert periods[2]["serving_version"] == scheduled["dev_after"]  # the next month is served by it

    registry = Registry(FolderStore(tmp_path / "replay" / "registry"))
    logged = [d for d in registry.decisions.read("bank-marketing") if d.get("version") == "2"]
    assert len(logged) == 1 and logged[0]["kind"] in {"promote", "refused"}
    assert "schedule" in logged[0]["evidence"]["trigger"]["fired"]

    stored = json.loads((tmp_path / "replay" / "summary.json").read_text())
    assert stored["periods"] == json.loads(json.dumps(periods, default=str))
    page = (tmp_path / "replay" / "dashboard.html").read_text()
    assert "Promotions" in page and "2008-08" in page
    printed = capsys.readouterr().out
    assert printed.count("rows  served by v") == 3


def test_the_command_line_writes_the_summary_and_names_the_dashboard(tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    code = main(["--out", str(out), "--months", "1", "--candidates", "logreg", "--schedule-every", "0"])
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["periods"][0]["decision"] in {"kept", "promoted v2"}
    assert "dashboard: file://" in capsys.readouterr().out
