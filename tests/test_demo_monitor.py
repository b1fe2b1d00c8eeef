"""The demo's simulated calls (devstack/demo_monitor.py): who is called, their answers, the retrain note."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from devstack.bank_rows import read_bank_rows
from devstack.demo_monitor import CONTROL_SHARE, calls, submission_note

DAY = dt.date(2026, 12, 2)


def test_every_picked_client_and_a_tenth_of_the_others_are_called_with_their_real_answers() -> None:
    answers = {row.client_id: row.subscribed for row in read_bank_rows()}
    ids = np.arange(1, 20_001)
    decisions = (np.random.default_rng(1).random(len(ids)) < 0.3).astype(int)
    predictions = pd.DataFrame({"client_id": ids, "decision": decisions})
    called = calls(predictions, DAY)
    picked = set(ids[decisions == 1])
    assert picked <= set(called["client_id"])  # every client the model picked
    others = len(set(called["client_id"]) - picked) / int((decisions == 0).sum())
    assert abs(others - CONTROL_SHARE) < 0.01  # and a random control group of the rest
    assert called["client_id"].is_unique and (called["contact_date"] == DAY).all()
    assert [answers[c] for c in called["client_id"]] == called["subscribed"].tolist()
    assert calls(predictions, DAY).equals(called)  # the same day calls the same clients
    assert not calls(predictions, DAY + dt.timedelta(days=1))["client_id"].equals(called["client_id"])


def test_the_gap_note_says_which_way_the_subscribers_went() -> None:
    from devstack.demo_monitor import gap_note

    def record(expected: float, realised: float, outside: bool = True) -> dict:
        figures = {"subscribers": {"expected": expected, "realised": realised}}
        return {
            "model_version": "1",
            "period": "2026-W49",
            "estimate_vs_realised": {"gap_outside_interval": outside, "figures": figures},
        }

    assert "975 subscribed where the probabilities promised 2,358, fewer" in (
        gap_note(record(2358.1, 975)) or ""
    )
    assert "more than the model expects" in (gap_note(record(900, 1200)) or "")
    assert gap_note(record(900, 910, outside=False)) is None
    assert gap_note({"model_version": "1", "period": "W", "estimate_vs_realised": None}) is None


def test_the_submission_note_says_where_the_retrain_went_and_why() -> None:
    done = {
        "status": "succeeded",
        "version": "2",
        "outcomes": 36_000,
        "seconds": 47.2,
        "window": {"why": "the newest 7,200 rows, which the champion partly trained on"},
        "decisions": [{"stage": "dev", "decision": "refused", "reason": "gate refused version 2"}],
    }
    note = submission_note(done, "bank-marketing")
    assert "version 2 on 36,000 outcomes" in note and "dev refused (gate refused version 2" in note
    assert "partly trained on" in note and "models/bank-marketing/promotions.jsonl" in note
    failed = submission_note({"status": "failed", "why": "exit 2: error: bad"}, "bank-marketing")
    assert failed == "retrain failed: exit 2: error: bad"
