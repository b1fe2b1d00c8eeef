"""Policy rules of Azure Monitor log search alerts: schedules Azure accepts, queries it can run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from infra.components.alert_queries import FORBIDDEN_IN_QUERY, minutes, schedule_problem
from infra.policy_base import ALERT, Props, lookup, rule

AGO = re.compile(r"\bago\(\s*(\d+(?:\.\d+)?)\s*(d|h|m|min|s)\s*\)")
KQL_UNIT_MINUTES = {"d": 1440.0, "h": 60.0, "m": 1.0, "min": 1.0, "s": 1 / 60}
LOG_ALERTS = "Azure Monitor log search alert rules"


def _conditions(props: Props) -> list[Mapping[str, Any]]:
    return [c for c in lookup(props, "criteria.allOf") or [] if isinstance(c, Mapping)]


def _evaluation_periods(props: Props) -> int:
    return max(
        (int(lookup(c, "failingPeriods.numberOfEvaluationPeriods") or 1) for c in _conditions(props)),
        default=1,
    )


@rule("alert-has-action", ALERT, "Every alert notifies somebody through an action group")
def _alert_action(props: Props) -> str | None:
    return None if lookup(props, "actions.actionGroups") else "actions.actionGroups must name an action group"


@rule("alert-schedule-allowed", ALERT, "Alert schedules are ones Azure accepts and reads in full", LOG_ALERTS)
def _alert_schedule(props: Props) -> str | None:
    return schedule_problem(
        str(props.get("evaluationFrequency") or ""),
        str(props.get("windowSize") or ""),
        evaluation_periods=_evaluation_periods(props),
        mute=props.get("muteActionsDuration"),
        auto_mitigate=props.get("autoMitigate"),
        override_range=props.get("overrideQueryTimeRange"),
        severity=props.get("severity"),
    )


@rule(
    "alert-query-supported",
    ALERT,
    "Alert queries look back no further than the alert reads and use nothing alerts refuse",
    LOG_ALERTS,
)
def _alert_query(props: Props) -> str | None:
    """Azure scans only the rule's time range, whatever `ago()` asks for: a longer ago() is a bug."""
    window = minutes(str(props.get("overrideQueryTimeRange") or props.get("windowSize") or "")) or 0
    reads = window * (1 if props.get("overrideQueryTimeRange") else _evaluation_periods(props))
    for condition in _conditions(props):
        query = str(condition.get("query") or "")
        if found := [word for word in FORBIDDEN_IN_QUERY if word in query]:
            return f"the query uses {', '.join(found)}, which log search alerts refuse"
        for amount, unit in AGO.findall(query):
            if float(amount) * KQL_UNIT_MINUTES[unit] > reads:
                return f"ago({amount}{unit}) reaches past the {reads} minutes the alert reads"
    return None


ALERT_RULES = ("alert-has-action", "alert-schedule-allowed", "alert-query-supported")  # registered above
