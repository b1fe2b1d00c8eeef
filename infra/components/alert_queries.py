"""The model-monitoring alerts' KQL, and what Azure lets a log search alert's schedule do.

The queries read the structured events of the telemetry contract (`functions/telemetry/events.py`):
each event is a `traces` row whose `customDimensions.event` names it and whose other
customDimensions are its dimensions, all as text. Every event and dimension name below comes from
that module through `_field` / `_reads`, which refuse an undeclared name, so a renamed dimension
breaks `pulumi preview` (and the tests) instead of silently matching nothing in Azure.

Azure runs a log search alert's query over at most two days of data, whatever the query's own
`ago()` says (ALERT_RULES_URL below). So no query here looks back further than its window: the
quality rules rely on the monitor re-emitting `quality_measured` for every (version, period) of its
MONITOR_LOOKBACK_DAYS on each daily run, so the last two days hold the latest verdict of every
period; "no quality for M days" is computed from the periods' own dates, not from old rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from functions.telemetry.events import (
    DEPLOYMENT_ROLLED_BACK,
    EVENT_KEY,
    MONITOR_RUN,
    QUALITY_MEASURED,
    Event,
)

# --- what Azure allows (each pinned with its source in tests/test_infra_alerts.py) --------------
ALERT_RULES_URL = "https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-create-log-alert-rule"
MAX_QUERY_RANGE = "P2D"  # "The alert time range is limited to a maximum of two days", even with ago(7d)
# evaluationFrequency: one minute to one day; windowSize: the service's "supported granularities"
# (5 ... 2880 minutes, PT1M only with a one-minute frequency).
FREQUENCIES = (
    *("PT1M", "PT5M", "PT10M", "PT15M", "PT30M", "PT45M"),
    *("PT1H", "PT2H", "PT3H", "PT4H", "PT5H", "PT6H", "P1D"),
)
WINDOWS = (*FREQUENCIES[1:], "P2D")
MUTE_DURATIONS = WINDOWS
SEVERITIES = (0, 1, 2, 3, 4)
MAX_DESCRIPTION = 4096  # characters, log search alerts (Azure Monitor service limits)
# Not allowed in a log search alert's query (ALERT_RULES_URL): a reserved word and three plugins.
FORBIDDEN_IN_QUERY = ("AggregatedValue", "bag_unpack", "pivot(", "narrow(")

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def minutes(duration: str) -> int | None:
    """An ISO 8601 duration of days, hours and minutes (`P2D`, `PT15M`) in minutes; None if not one."""
    match = _DURATION.match(duration or "")
    if not match or duration in ("P", "PT") or duration.endswith("T"):
        return None
    days, hours, mins = (int(part or 0) for part in match.groups())
    return days * 1440 + hours * 60 + mins


def schedule_problem(
    frequency: str,
    window: str,
    *,
    evaluation_periods: int = 1,
    mute: str | None = None,
    auto_mitigate: bool | None = None,
    override_range: str | None = None,
    severity: float | None = None,
) -> str | None:
    """Why Azure would refuse (or silently shorten) this schedule; None when it is allowed.

    One check for the Alerts component (at `preview`) and the policy rule `alert-schedule-allowed`.
    """
    if frequency not in FREQUENCIES:
        return f"evaluationFrequency {frequency!r} is not one of {', '.join(FREQUENCIES)}"
    if window not in WINDOWS and not (window == "PT1M" and frequency == "PT1M"):
        return f"windowSize {window!r} is not one of {', '.join(WINDOWS)}"
    lookback = (minutes(window) or 0) * evaluation_periods
    if lookback > (minutes(MAX_QUERY_RANGE) or 0):
        return f"windowSize x numberOfEvaluationPeriods is {lookback} minutes, over the 2-day maximum"
    if (minutes(frequency) or 0) > lookback:
        return f"evaluationFrequency {frequency} exceeds the lookback ({lookback} minutes): data goes unread"
    if override_range is not None:
        override = minutes(override_range)
        if override is None or override > (minutes(MAX_QUERY_RANGE) or 0) or override < lookback:
            return f"overrideQueryTimeRange {override_range!r} must lie between the lookback and P2D"
    if mute is not None:
        if mute not in MUTE_DURATIONS:
            return f"muteActionsDuration {mute!r} is not one of {', '.join(MUTE_DURATIONS)}"
        if (minutes(mute) or 0) < (minutes(frequency) or 0):
            return f"muteActionsDuration {mute} is shorter than evaluationFrequency {frequency}"
        if auto_mitigate:
            return "muteActionsDuration and autoMitigate cannot both be set"
    if severity is not None and severity not in SEVERITIES:
        return f"severity must be one of {SEVERITIES}, is {severity!r}"
    return None


# --- thresholds (from stack config, infra/config.py) ---------------------------------------------
@dataclass(frozen=True)
class MonitoringThresholds:
    """When the model-monitoring alerts fire; each stack may set its own (Pulumi.<stack>.yaml).

    drift_batches: the last N scored batches of a model all drifted, as the daily monitor counts them
      from the drift reports (not from two days of telemetry, so N is not bounded by the window).
    quality_tolerance: realised ROC AUC this far under the registered baseline (test ROC AUC).
    estimate_gap_periods: the realised figures left the estimate's interval in K measured periods
      in a row (one period is flagged ~11 % of the time by chance, docs/monitoring.md).
    quality_stale_days: the newest period with realised quality ended more than M days ago.
    """

    drift_batches: int = 3
    quality_tolerance: float = 0.05
    estimate_gap_periods: int = 2
    quality_stale_days: int = 14


# --- query builders -----------------------------------------------------------------------------
CUSTOM_DIMENSIONS = "customDimensions"
_BY_MODEL = "prev(model_name) != model_name"
_BY_VERSION = "prev(model_name) != model_name or prev(model_version) != model_version"


def _field(event: Event, name: str, conversion: str = "tostring") -> str:
    """`<conversion>(customDimensions.<name>)` for a dimension `event` declares (else ValueError)."""
    if name not in event.dimensions:
        raise ValueError(f"{name!r} is not a dimension of the {event.name!r} event")
    return f"{conversion}({CUSTOM_DIMENSIONS}.{name})"


def _reads(event: Event) -> str:
    """`traces` narrowed to one event's own rows (the host's plain copies carry no dimensions)."""
    return f'traces\n| where tostring({CUSTOM_DIMENSIONS}.{EVENT_KEY}) == "{event.name}"\n'


def _texts(event: Event, *names: str) -> str:
    """`| extend <name> = tostring(customDimensions.<name>), ...`: columns named as the dimensions."""
    return "| extend " + ", ".join(f"{name} = {_field(event, name)}" for name in names) + "\n"


def drift_streak_query(batches: int) -> str:
    """One row per model whose latest monitor run counted `batches` or more drifted batches in a row.

    The monitor counts the streak from the drift reports themselves (`functions/monitor/`: empty
    batches say nothing and are left out), so the streak is not bounded by the two days of telemetry
    an alert can read: one `monitor_run` a day is enough.
    """
    e = MONITOR_RUN
    return (
        _reads(e) + _texts(e, "model_name") + f"| extend streak = {_field(e, 'drift_streak', 'toint')}\n"
        "| summarize arg_max(timestamp, streak) by model_name\n"
        f"| where streak >= {batches}"
    )


def _served_measured(extra: dict[str, str]) -> str:
    """The `ok` records of served versions, newest period first, numbered per version (`recent`).

    `measured` is the latest record of each (model, version, period): the monitor recomputes its
    whole lookback each run, so a period's latest row is its current verdict. `served` keeps the
    versions found in their model's newest period, so a version rolled back or replaced stops being
    judged once a period without it starts. `extra`: more columns (name -> expression).
    """
    e = QUALITY_MEASURED
    more = "".join(f", {name} = {expression}" for name, expression in extra.items())
    kept = ", ".join(["status", *extra])
    return (
        "let measured = "
        + _reads(e)
        + _texts(e, "model_name", "model_version", "period", "status").rstrip("\n")
        + more
        + "\n"
        f"| summarize arg_max(timestamp, {kept}) by model_name, model_version, period;\n"
        "let newest = measured\n"
        "| order by model_name asc, period desc\n"
        f"| extend recent = row_number(1, {_BY_MODEL})\n"
        "| where recent == 1\n"
        "| project model_name, period;\n"
        "let served = measured\n"
        "| join kind=inner (newest) on model_name, period\n"
        "| distinct model_name, model_version;\n"
        "measured\n"
        "| join kind=leftsemi (served) on model_name, model_version\n"
        '| where status == "ok"\n'
        "| order by model_name asc, model_version asc, period desc\n"
        f"| extend recent = row_number(1, {_BY_VERSION})\n"
    )


def quality_below_baseline_query(tolerance: float) -> str:
    """One row per served version whose latest measured period's ROC AUC fell under the baseline.

    Under by more than `tolerance` (the size of a drop worth acting on) and with its 95 % bootstrap
    interval under the baseline too (so the noise of a small period alone does not fire).
    """
    e = QUALITY_MEASURED
    return (
        _served_measured(
            {
                "roc_auc": _field(e, "roc_auc", "todouble"),
                "roc_auc_high": _field(e, "roc_auc_high", "todouble"),
                "baseline_roc_auc": _field(e, "baseline_roc_auc", "todouble"),
            }
        )
        + "| where recent == 1\n"
        f"| where roc_auc < baseline_roc_auc - {tolerance:g}"
        " and (isnull(roc_auc_high) or roc_auc_high < baseline_roc_auc)\n"
        "| project model_name, model_version, period, roc_auc, roc_auc_high, baseline_roc_auc"
    )


def estimate_gap_query(periods: int) -> str:
    """One row per served version whose last `periods` measured periods all left the estimate."""
    e = QUALITY_MEASURED
    return (
        _served_measured({"gap": f'{_field(e, "estimate_gap")} == "true"'}) + f"| where recent <= {periods}\n"
        "| summarize periods_measured = count(), gaps = countif(gap), flagged = make_set(period)"
        " by model_name, model_version\n"
        f"| where periods_measured == {periods} and gaps == {periods}"
    )


# The day after a period label's last day: ISO week `YYYY-Www` (weeks start on Monday; week 1
# holds 4 January), day `YYYY-MM-DD`, month `YYYY-MM` (model.monitoring.join.period_labels).
_PERIOD_END = (
    "| extend iso_year = toint(substring(period, 0, 4)), iso_week = toint(substring(period, 6, 2))\n"
    "| extend jan4 = make_datetime(iso_year, 1, 4)\n"
    "| extend period_end = case(\n"
    '    indexof(period, "W") == 5, jan4 - ((toint(dayofweek(jan4) / 1d) + 6) % 7) * 1d + iso_week * 7d,\n'
    "    strlen(period) == 10, todatetime(period) + 1d,\n"
    '    datetime_add("month", 1, todatetime(strcat(period, "-01"))))\n'
)


def quality_stale_query(days: int) -> str:
    """One row per model whose newest realised quality is for a period that ended over `days` ago.

    A model with no `ok` period yet counts from the end of its oldest measured period, so a new
    stack waits `days` after its first period before this can fire.
    """
    e = QUALITY_MEASURED
    return (
        _reads(e)
        + _texts(e, "model_name", "model_version", "period", "status")
        + "| summarize arg_max(timestamp, status) by model_name, model_version, period\n"
        + _PERIOD_END
        + '| extend ok_end = iff(status == "ok", period_end, datetime(null))\n'
        "| summarize newest_ok_end = max(ok_end), oldest_end = min(period_end) by model_name\n"
        f"| where coalesce(newest_ok_end, oldest_end) < now() - {days}d"
    )


def rolled_back_query() -> str:
    """One row per automatic rollback in the window: which model, which green version was set to
    0 %, which blue version kept the traffic, which rules failed and why (the alert fires on any row)."""
    e = DEPLOYMENT_ROLLED_BACK
    columns = ("model_name", "green_version", "blue_version", "failed_rules", "streak", "reason")
    return _reads(e) + _texts(e, *columns) + "| project timestamp, " + ", ".join(columns)
