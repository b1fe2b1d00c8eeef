"""The model-monitoring alerts: KQL built from the telemetry contract, thresholds from stack config,
and each Azure rule they rely on, pinned with the URL it comes from."""

from __future__ import annotations

import ast
import inspect
import json
import re

import pulumi_azure_native.monitor as monitor
import pytest

from functions.telemetry.events import BY_NAME, DEPLOYMENT_ROLLED_BACK, EVENT_KEY, QUALITY_MEASURED
from infra import config, policies
from infra.components import alert_queries as q
from infra.components.alerts import AlertRule, alert_rules, model_rules
from infra.naming import Names
from infra.package import REPO_ROOT
from tests.infra_support import GOOD_CONFIG, STACKS, by_type, stack

GOOD = GOOD_CONFIG
MODEL_KEYS = ("drift-streak", "quality-below-baseline", "estimate-gap", "quality-stale", "rollback")
# Thresholds other than the defaults, so a query that ignored its threshold would show.
OTHER = q.MonitoringThresholds(
    drift_batches=4, quality_tolerance=0.125, estimate_gap_periods=3, quality_stale_days=21
)
EVERY_RULE = [*alert_rules(4), *model_rules(OTHER)]

# Sources of the Azure rules pinned below.
LOG_SEARCH_ALERT_RULE = q.ALERT_RULES_URL
GRANULARITIES = "https://github.com/Azure/azure-rest-api-specs/issues/21258"
MAX_48_HOURS = "https://github.com/MicrosoftDocs/azure-docs/issues/22637"
TERRAFORM_V2 = (
    "https://github.com/hashicorp/terraform-provider-azurerm/blob/main/website/docs/r/"
    "monitor_scheduled_query_rules_alert_v2.html.markdown"
)
SERVICE_LIMITS = "https://learn.microsoft.com/azure/azure-monitor/service-limits#alerts"
NAME_RULES = "https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules#microsoftinsights"
REST_SPEC = (
    "https://github.com/Azure/azure-rest-api-specs/blob/main/specification/monitor/resource-manager/"
    "Microsoft.Insights/stable/2021-08-01/scheduledQueryRule_API.json"
)
PULUMI_DOCS = "https://www.pulumi.com/registry/packages/azure-native/api-docs/monitor/scheduledqueryrule/"
POLICY = {rule.id: rule for rule in policies.RULES}


def _rules(name: str) -> dict[str, dict]:
    """The stack's ScheduledQueryRule inputs by rule key (`alert-<key>-mlops-<env>`)."""
    found = {}
    for resource in by_type(stack(name), "monitor:ScheduledQueryRule"):
        key = resource.azure_name.removeprefix("alert-").split("-mlops-")[0]
        found[key] = resource.inputs
    return found


def _query(props: dict) -> str:
    return props["criteria"]["allOf"][0]["query"]


# --- the queries read only what the telemetry contract declares -------------------------------
_SEGMENT = re.compile(r"\btraces\b")
_EVENT_FILTER = re.compile(
    r"tostring\(customDimensions\.(\w+)\)\s*(?:==\s*\"(\w+)\"|in\s*\(((?:\s*\"\w+\"\s*,?)+)\))"
)
_DIMENSION = re.compile(r"customDimensions\.(\w+)")


def _events_and_dimensions(query: str) -> list[tuple[set[str], set[str]]]:
    """For each `traces` pipeline of the query: the events it selects and the dimensions it reads."""
    found = []
    for segment in _SEGMENT.split(query)[1:]:
        events: set[str] = set()
        for key, single, several in _EVENT_FILTER.findall(segment):
            if key == EVENT_KEY:
                events |= {single} if single else set(re.findall(r"\"(\w+)\"", several))
        found.append((events, set(_DIMENSION.findall(segment)) - {EVENT_KEY}))
    return found


@pytest.mark.parametrize("rule", [r for r in EVERY_RULE if r.key in MODEL_KEYS], ids=lambda r: r.key)
def test_every_dimension_a_query_reads_is_declared_by_the_event_it_reads(rule: AlertRule) -> None:
    """Parse the KQL: each `traces` pipeline selects declared events by `customDimensions.event`
    and reads only dimensions every one of those events declares (functions/telemetry/events.py)."""
    pipelines = _events_and_dimensions(rule.query)
    assert pipelines, rule.query
    for events, dimensions in pipelines:
        assert events and events <= set(BY_NAME), (events, rule.query)
        for event in events:
            assert dimensions <= set(BY_NAME[event].dimensions), (
                event,
                dimensions - set(BY_NAME[event].dimensions),
            )
    assert "customDimensions[" not in rule.query  # only the dotted form, which the parse above sees


def test_the_parse_sees_an_undeclared_dimension() -> None:
    """The parser itself: a misspelt dimension or an event that reads another's dimension is seen."""
    query = (
        'traces\n| where tostring(customDimensions.event) == "quality_measured"\n'
        "| extend x = customDimensions.rocauc"
    )
    [(events, dimensions)] = _events_and_dimensions(query)
    assert events == {"quality_measured"} and not dimensions <= set(QUALITY_MEASURED.dimensions)
    several = (
        'traces | where tostring(customDimensions.event) in ("batch_scored", "monitor_run")'
        " | extend i = customDimensions.input"
    )
    [(events, dimensions)] = _events_and_dimensions(several)
    assert events == {"batch_scored", "monitor_run"} and "input" not in BY_NAME["monitor_run"].dimensions


def test_a_query_builder_refuses_an_undeclared_dimension() -> None:
    with pytest.raises(ValueError, match="'roc_auc' is not a dimension of the 'batch_scored' event"):
        q._field(BY_NAME["batch_scored"], "roc_auc")


def test_names_come_from_the_contract_not_respelled() -> None:
    """No string in alert_queries.py or alerts.py spells an event name or builds `customDimensions.`
    by hand: both come from functions/telemetry/events.py through `_reads` and `_field`."""
    for path in ("infra/components/alert_queries.py", "infra/components/alerts.py"):
        tree = ast.parse((REPO_ROOT / path).read_text())
        documented = (ast.Module, ast.ClassDef, ast.FunctionDef)
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, documented) and node.body and isinstance(node.body[0], ast.Expr)
        }
        texts = [
            n.value
            for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
        ]
        for text in texts:
            assert not any(f'"{event}"' in text or text == event for event in BY_NAME), (path, text)
            assert "customDimensions." not in text, (path, text)
    source = inspect.getsource(q)
    assert source.count('CUSTOM_DIMENSIONS = "customDimensions"') == 1


# --- what each query says ------------------------------------------------------------------------
def test_the_thresholds_reach_the_queries() -> None:
    rules = {r.key: r for r in model_rules(OTHER)}
    assert rules["drift-streak"].query.endswith("| where streak >= 4")
    assert "roc_auc < baseline_roc_auc - 0.125" in rules["quality-below-baseline"].query
    assert "periods_measured == 3 and gaps == 3" in rules["estimate-gap"].query
    assert "now() - 21d" in rules["quality-stale"].query
    assert "4 scored batches" in rules["drift-streak"].description
    assert "0.125" in rules["quality-below-baseline"].description


def test_drift_reads_the_streak_the_monitor_counts_from_the_reports() -> None:
    """The streak comes from the latest monitor_run of each model (the monitor counts it from the
    drift reports, tests/test_monitor.py), so N is not bounded by the two days an alert reads."""
    query = q.drift_streak_query(3)
    assert query.startswith('traces\n| where tostring(customDimensions.event) == "monitor_run"')
    assert "streak = toint(customDimensions.drift_streak)" in query
    assert "arg_max(timestamp, streak) by model_name" in query and query.endswith(">= 3")


def test_quality_queries_judge_the_latest_verdict_of_served_versions() -> None:
    """The monitor re-emits every period of its lookback each run: the latest row of a period is its
    verdict, and only versions present in their model's newest period are judged."""
    for query in (q.quality_below_baseline_query(0.05), q.estimate_gap_query(2)):
        assert "by model_name, model_version, period;" in query
        assert "join kind=leftsemi (served) on model_name, model_version" in query
        assert '| where status == "ok"' in query
    below = q.quality_below_baseline_query(0.05)
    assert "| where recent == 1\n| where roc_auc < baseline_roc_auc - 0.05" in below
    assert "roc_auc_high < baseline_roc_auc" in below  # its 95 % interval is under the baseline too


def test_period_end_arithmetic_matches_the_monitors_period_labels() -> None:
    """The stale query's KQL computes the day after a period's last day; the same arithmetic in
    Python equals model.monitoring.join.period_bounds for weeks across year ends, days and months."""
    import datetime as dt

    from model.monitoring.join import period_bounds

    def kql_week_end(label: str) -> dt.date:  # jan4 - ((dayofweek(jan4)/1d + 6) % 7) * 1d + week * 7d
        year, week = int(label[0:4]), int(label[6:8])
        jan4 = dt.date(year, 1, 4)
        sunday_based = (jan4.weekday() + 1) % 7  # Kusto's dayofweek: Sunday 0d ... Saturday 6d
        return jan4 - dt.timedelta(days=(sunday_based + 6) % 7) + dt.timedelta(days=7 * week)

    for label in ("2026-W01", "2026-W53", "2027-W01", "2020-W53", "2021-W01", "2024-W52", "2025-W01"):
        last = dt.date.fromisoformat(period_bounds(label, "week")[1])
        assert kql_week_end(label) == last + dt.timedelta(days=1), label
    assert 'indexof(period, "W") == 5' in q.quality_stale_query(14)
    assert "strlen(period) == 10, todatetime(period) + 1d" in q.quality_stale_query(14)
    assert 'datetime_add("month", 1, todatetime(strcat(period, "-01")))' in q.quality_stale_query(14)


def test_rollback_fires_on_any_deployment_rolled_back_in_its_window() -> None:
    """Each rollback event (functions/telemetry/events.py) is counted once (window = frequency, no
    mute), at the severity of a served version under its baseline, in every stack."""
    rule = {r.key: r for r in model_rules(OTHER)}["rollback"]
    assert f'customDimensions.event) == "{DEPLOYMENT_ROLLED_BACK.name}"\n' in rule.query
    assert (rule.frequency, rule.window, rule.mute, rule.severity) == ("PT15M", "PT15M", None, 2)
    for name in STACKS:
        assert _query(_rules(name)["rollback"]) == rule.query and _rules(name)["rollback"]["severity"] == 2


def test_stale_quality_waits_for_a_first_period_and_reads_no_old_rows() -> None:
    query = q.quality_stale_query(14)
    assert "coalesce(newest_ok_end, oldest_end) < now() - 14d" in query
    assert "ago(" not in query  # the evidence is in the last two days: the monitor re-emits


# --- Azure's rules, each with its source ---------------------------------------------------------
def test_query_time_range_is_at_most_two_days_whatever_ago_says() -> None:
    """ "The alert time range is limited to a maximum of two days. Even if the query contains an ago
    command with a time range of longer than two days, the two-day maximum time range is applied.
    For example, even if the query text contains ago(7d), the query only scans up to two days of
    data." (Override query time range, LOG_SEARCH_ALERT_RULE). "Max time period is limited to 48
    hours and frequency to 24 hours; you can't exceed either" (the docs' author, MAX_48_HOURS)."""
    assert q.minutes(q.MAX_QUERY_RANGE) == 48 * 60
    for name in STACKS:
        for key, props in _rules(name).items():
            assert q.minutes(props["windowSize"]) <= 48 * 60, key
            assert "overrideQueryTimeRange" not in props, key
            assert POLICY["alert-query-supported"].check(props) is None, key
    assert "ago(7d)" in (
        POLICY["alert-query-supported"].check(_with_query("traces | where timestamp > ago(7d)")) or ""
    )


def _with_query(query: str) -> dict:
    props = json.loads(json.dumps(_rules("dev")["quality-stale"]))
    props["criteria"]["allOf"][0]["query"] = query
    return props


def test_frequency_and_window_are_values_azure_accepts() -> None:
    """evaluationFrequency "can be set anywhere from one minute to one day" (LOG_SEARCH_ALERT_RULE);
    a wrong windowSize gets "Supported granularities are: 5, 10, 15, 30, 45, 60, 120, 180, 240, 300,
    360, 1440, 2880" (minutes, GRANULARITIES); the provider's validation lists PT1M..P1D and
    PT5M..P2D, PT1M windows only with a PT1M frequency (TERRAFORM_V2)."""
    assert [q.minutes(w) for w in q.WINDOWS] == [5, 10, 15, 30, 45, 60, 120, 180, 240, 300, 360, 1440, 2880]
    assert q.FREQUENCIES[0] == "PT1M" and q.minutes(q.FREQUENCIES[-1]) == 24 * 60
    for rule in EVERY_RULE:
        assert rule.frequency in q.FREQUENCIES and rule.window in q.WINDOWS, rule.key
    with pytest.raises(ValueError, match="windowSize 'P3D'"):
        AlertRule("x", "x", "traces", 3, "PT1H", "P3D")
    with pytest.raises(ValueError, match="evaluationFrequency 'P2D'"):
        AlertRule("x", "x", "traces", 3, "P2D", "P2D")


def test_frequency_is_no_longer_than_the_lookback_and_the_mute() -> None:
    """ "evaluation_frequency cannot be greater than the query look back which is
    window_duration*number_of_evaluation_periods" and "cannot be greater than the
    mute_actions_after_alert_duration"; "The query look back ... cannot exceed 48 hours";
    "auto_mitigation_enabled and mute_actions_after_alert_duration are mutually exclusive";
    mute values PT5M..P2D (TERRAFORM_V2)."""
    for name in STACKS:
        for key, props in _rules(name).items():
            assert q.minutes(props["evaluationFrequency"]) <= q.minutes(props["windowSize"]), key
            if "muteActionsDuration" in props:
                assert props["muteActionsDuration"] in q.MUTE_DURATIONS
                assert q.minutes(props["muteActionsDuration"]) >= q.minutes(props["evaluationFrequency"])
                assert props["autoMitigate"] is False, key
    assert "shorter than" in (q.schedule_problem("PT1H", "P1D", mute="PT30M") or "")
    assert "cannot both" in (q.schedule_problem("PT1H", "P1D", mute="P1D", auto_mitigate=True) or "")
    assert "over the 2-day" in (q.schedule_problem("PT1H", "P1D", evaluation_periods=3) or "")
    assert "lookback" in (q.schedule_problem("P1D", "PT6H") or "")


def test_severity_is_0_to_4() -> None:
    """ "Severity of the alert. Should be an integer between [0-4]. Value of 0 is severest."
    (REST_SPEC: enum "0".."4"; PULUMI_DOCS)."""
    for name in STACKS:
        assert {props["severity"] for props in _rules(name).values()} <= set(q.SEVERITIES)
    assert "severity" in (q.schedule_problem("PT1H", "P1D", severity=5) or "")


def test_count_of_rows_with_one_evaluation_period() -> None:
    """`metric_measure_column` "can not be specified if time_aggregation_method is Count", and
    "number_of_evaluation_periods must be 1 for queries that do not project timestamp column"
    (TERRAFORM_V2): every query summarises (no timestamp bins), so failingPeriods stays unset (1/1)."""
    for name in STACKS:
        for key, props in _rules(name).items():
            [condition] = props["criteria"]["allOf"]
            assert condition["timeAggregation"] == "Count" and "metricMeasureColumn" not in condition, key
            assert (condition["operator"], condition["threshold"]) == ("GreaterThan", 0), key
            periods = condition.get("failingPeriods") or {}
            assert (
                periods.get("numberOfEvaluationPeriods", 1) == 1 == periods.get("minFailingPeriodsToAlert", 1)
            )


def test_queries_use_no_reserved_word_or_refused_plugin() -> None:
    """ "Log search alert rule queries do not support the 'bag_unpack()', 'pivot()' and 'narrow()'
    plugins"; "The word "AggregatedValue" is a reserved word" (LOG_SEARCH_ALERT_RULE)."""
    for rule in EVERY_RULE:
        assert not [word for word in q.FORBIDDEN_IN_QUERY if word in rule.query], rule.key
    assert "bag_unpack" in (
        POLICY["alert-query-supported"].check(_with_query("traces | evaluate bag_unpack(customDimensions)"))
        or ""
    )


def test_description_and_properties_fit_the_service_limits() -> None:
    """ "Alert rules and alert processing rules description length: Log search alerts 4096
    characters"; "The total size of all data in the log alert rule properties can't exceed 64 KB"
    (SERVICE_LIMITS)."""
    for name in STACKS:
        for key, props in _rules(name).items():
            assert len(props["description"]) <= q.MAX_DESCRIPTION, key
            assert len(json.dumps(props).encode()) < 64 * 1024, key


@pytest.mark.parametrize("prefix", ("mlops", "ab", "a" * 40, "contoso-marketing-analytics-platform-ml"))
def test_rule_names_follow_the_scheduled_query_rule_name_rules(prefix: str) -> None:
    """scheduledQueryRules: 1-260 characters, "Can't use: *<>%{}&:\\\\?/# or control characters.
    Can't end with space or period." (NAME_RULES); ours are also unique per stack."""
    for environment in STACKS:
        names = [Names(prefix, environment).alert(rule.key) for rule in alert_rules(4)]
        assert len(set(names)) == len(names) == 8
        for name in names:
            assert 1 <= len(name) <= 64 and not re.search(r"[*<>%{}&:\\?/#\x00-\x1f]", name)
            assert not name.endswith((" ", "."))


def test_the_sdk_speaks_the_api_version_and_properties_we_use() -> None:
    """pulumi-azure-native's monitor.ScheduledQueryRule "Uses Azure REST API version
    2025-01-01-preview" (PULUMI_DOCS); the properties the component sets exist in that SDK."""
    source = inspect.getsource(inspect.getmodule(monitor.ScheduledQueryRule))
    assert "Uses Azure REST API version 2025-01-01-preview." in source
    rule_args = set(inspect.signature(monitor.ScheduledQueryRuleArgs).parameters)
    assert {
        "evaluation_frequency",
        "window_size",
        "mute_actions_duration",
        "auto_mitigate",
        "severity",
    } <= rule_args
    assert {"query", "time_aggregation", "operator", "threshold", "failing_periods"} <= set(
        inspect.signature(monitor.ConditionArgs).parameters
    )


# --- thresholds from stack config ----------------------------------------------------------------
def test_thresholds_default_and_per_stack() -> None:
    assert config.parse("prod", GOOD).monitoring == q.MonitoringThresholds(3, 0.05, 2, 14)
    parsed = {name: config.parse(name, _stack_raw(name)).monitoring for name in STACKS}
    assert parsed["prod"] == parsed["preprod"] == q.MonitoringThresholds()
    assert parsed["dev"] == q.MonitoringThresholds(3, 0.1, 3, 28)
    assert "roc_auc < baseline_roc_auc - 0.1 " in _query(_rules("dev")["quality-below-baseline"])
    assert "now() - 14d" in _query(_rules("prod")["quality-stale"])
    assert set(_rules("prod")) == {"function-failures", "export-late", "rejected-files", *MODEL_KEYS}


def _stack_raw(name: str) -> dict[str, str]:
    """The stack file's config as the program reads it, keys without the project prefix."""
    from infra.synth import stack_config

    return {key.split(":", 1)[1]: value for key, value in stack_config(name).items()}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("alertDriftBatches", "0", "'alertDriftBatches' must be between 1 and 500"),
        ("alertDriftBatches", "two", "'alertDriftBatches' must be a whole number"),
        ("alertQualityTolerance", "0", "'alertQualityTolerance' must be above 0 and below 0.5"),
        ("alertQualityTolerance", "0.5", "'alertQualityTolerance' must be above 0"),
        ("alertQualityTolerance", "nan", "'alertQualityTolerance' must be above 0"),
        ("alertQualityTolerance", "5%", "'alertQualityTolerance' must be a number"),
        (
            "alertEstimateGapPeriods",
            "7",
            "'alertEstimateGapPeriods' must be at most 6 with monitorPeriod week",
        ),
        ("alertEstimateGapPeriods", "0", "'alertEstimateGapPeriods' must be between 1"),
        ("alertQualityStaleDays", "42", "'alertQualityStaleDays' must be below 42"),
        ("alertQualityStaleDays", "-1", "'alertQualityStaleDays' must be between 1"),
    ],
)
def test_threshold_errors_name_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.parse("prod", GOOD | {key: value})


def test_gap_periods_must_fit_the_monitor_period() -> None:
    """With monthly periods the 42-day lookback holds one whole month: two in a row never show."""
    with pytest.raises(config.ConfigError, match="at most 1 with monitorPeriod month"):
        config.parse("prod", GOOD | {"monitorPeriod": "month"})
    assert config.parse("prod", GOOD | {"monitorPeriod": "month", "alertEstimateGapPeriods": "1"})
    assert config.parse("prod", GOOD | {"monitorPeriod": "day", "alertEstimateGapPeriods": "30"})


def test_the_stack_reads_every_threshold_key() -> None:
    """`load()` reads only CONFIG_KEYS: a key missing there would be silently ignored."""
    assert {
        "alertDriftBatches",
        "alertQualityTolerance",
        "alertEstimateGapPeriods",
        "alertQualityStaleDays",
    } <= set(config.CONFIG_KEYS)
