"""Alerts: an action group and eight log alerts on Application Insights.

Operations (the queries read what `function_app.py` logs, tested against those log lines):
- function failures: any failed invocation (after the host's own retries) in 15 minutes;
- late export: no successful `daily_export` today by `export_deadline_hour` (UTC);
- rejected files: a scoring input was moved to `rejected/` (someone must fix and re-upload it).

The model (the queries read the telemetry events, infra/components/alert_queries.py; thresholds
from stack config, `MonitoringThresholds`):
- drift streak: the last N scored batches of a model all drifted;
- quality below baseline: a served version's realised ROC AUC fell under its registered baseline;
- estimate gap: realised figures left the label-free estimate's interval K periods in a row;
- quality stale: no realised quality for a period that ended in the last M days.
These run hourly over the last two days (the most Azure reads) and mute their e-mails for a day
after firing, so a condition that lasts sends one e-mail a day, not one an hour.
- rollback: the automatic rollback set a green version to 0 % (`deployment_rolled_back`). An event,
  not a lasting condition: read every 15 minutes over the last 15 and not muted, so each rollback
  is counted in exactly one evaluation and every one of them sends its e-mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_azure_native.monitor as monitor

from infra.components.alert_queries import (
    MonitoringThresholds,
    drift_streak_query,
    estimate_gap_query,
    quality_below_baseline_query,
    quality_stale_query,
    rolled_back_query,
    schedule_problem,
)

FAILED_INVOCATIONS = "requests\n| where success == false\n| summarize failures = count() by operation_Name"
REJECTED_FILES = (
    'traces\n| where operation_Name in ("score_blob", "score_shard")\n'
    '| where message has ": rejected ("\n| project timestamp, message'
)


def late_export_query(deadline_hour: int) -> str:
    return (
        f"let deadline = startofday(now()) + {deadline_hour}h;\n"
        "requests\n"
        '| where timestamp > startofday(now()) and operation_Name == "daily_export" and success == true\n'
        "| summarize completed = count()\n"
        "| where now() > deadline and completed == 0"
    )


@dataclass(frozen=True)
class AlertRule:
    """One log search alert: fires when its query returns any row over its window."""

    key: str
    description: str
    query: str
    severity: int
    frequency: str
    window: str
    mute: str | None = None  # muteActionsDuration: no repeated e-mail while the condition lasts

    def __post_init__(self) -> None:
        """Refuse a schedule Azure would refuse (or silently shorten), before anything is created."""
        if problem := schedule_problem(self.frequency, self.window, mute=self.mute, severity=self.severity):
            raise ValueError(f"alert {self.key!r}: {problem}")


# The model's alerts: read hourly over the last two days, one e-mail a day at most.
_MODEL_SCHEDULE = {"frequency": "PT1H", "window": "P2D", "mute": "P1D"}


def model_rules(thresholds: MonitoringThresholds) -> list[AlertRule]:
    """The five alerts on the model's events: four on monitoring, with the stack's thresholds, and
    one on the real-time endpoint's automatic rollback."""
    t = thresholds
    return [
        AlertRule(
            "drift-streak",
            f"The last {t.drift_batches} scored batches of a model all drifted (dataset verdict)",
            drift_streak_query(t.drift_batches),
            3,
            **_MODEL_SCHEDULE,
        ),
        AlertRule(
            "quality-below-baseline",
            f"Realised ROC AUC of a served model version is more than {t.quality_tolerance:g} under "
            "its registered baseline, with its 95 % interval under the baseline",
            quality_below_baseline_query(t.quality_tolerance),
            2,
            **_MODEL_SCHEDULE,
        ),
        AlertRule(
            "estimate-gap",
            f"Realised quality left the label-free estimate's interval in the last "
            f"{t.estimate_gap_periods} measured periods of a served model version",
            estimate_gap_query(t.estimate_gap_periods),
            3,
            **_MODEL_SCHEDULE,
        ),
        AlertRule(
            "quality-stale",
            "The newest realised quality of a model is for a period that ended over "
            f"{t.quality_stale_days} days ago",
            quality_stale_query(t.quality_stale_days),
            3,
            **_MODEL_SCHEDULE,
        ),
        # Severity 2, as a served version under its baseline: a version was bad in production. The
        # rollback already moved the traffic; someone must find out why before promoting it again.
        AlertRule(
            "rollback",
            "The automatic rollback set a green model version to 0 % traffic after failed checks",
            rolled_back_query(),
            2,
            "PT15M",
            "PT15M",
        ),
    ]


def alert_rules(export_deadline_hour: int, thresholds: MonitoringThresholds | None = None) -> list[AlertRule]:
    """Every alert of a stack: the three on operations, then the five on the model."""
    return [
        AlertRule(
            "function-failures", "A function invocation failed", FAILED_INVOCATIONS, 1, "PT5M", "PT15M"
        ),
        AlertRule(
            "export-late",
            f"The daily export has not completed by {export_deadline_hour:02d}:00 UTC",
            late_export_query(export_deadline_hour),
            2,
            "PT1H",
            "P1D",
        ),
        AlertRule("rejected-files", "A scoring input was rejected", REJECTED_FILES, 3, "PT15M", "PT15M"),
        *model_rules(thresholds or MonitoringThresholds()),
    ]


@dataclass(frozen=True)
class AlertsArgs:
    action_group_name: str
    action_group_short_name: str
    rule_names: dict[str, str]  # AlertRule.key -> Azure name
    emails: tuple[str, ...]
    app_insights_id: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    export_deadline_hour: int
    tags: dict[str, str]
    thresholds: MonitoringThresholds = field(default_factory=MonitoringThresholds)


class Alerts(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlertsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:Alerts", name, None, opts)
        group = monitor.ActionGroup(
            f"{name}-action-group",
            action_group_name=args.action_group_name,
            group_short_name=args.action_group_short_name,
            resource_group_name=args.resource_group_name,
            location="Global",
            enabled=True,
            email_receivers=[
                monitor.MicrosoftCommonEmailReceiverArgs(
                    name=f"email-{i}", email_address=email, use_common_alert_schema=True
                )
                for i, email in enumerate(args.emails)
            ],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.rules = [
            monitor.ScheduledQueryRule(
                f"{name}-{rule.key}",
                rule_name=args.rule_names[rule.key],
                resource_group_name=args.resource_group_name,
                location=args.location,
                description=rule.description,
                severity=rule.severity,
                enabled=True,
                scopes=[args.app_insights_id],
                evaluation_frequency=rule.frequency,
                window_size=rule.window,
                criteria=monitor.ScheduledQueryRuleCriteriaArgs(
                    all_of=[
                        monitor.ConditionArgs(
                            query=rule.query, time_aggregation="Count", operator="GreaterThan", threshold=0
                        )
                    ]
                ),
                actions=monitor.ActionsArgs(action_groups=[group.id]),
                mute_actions_duration=rule.mute,
                auto_mitigate=False,
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for rule in alert_rules(args.export_deadline_hour, args.thresholds)
        ]
        self.register_outputs({"action_group": group.id})
