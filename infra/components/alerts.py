"""Alerts: an action group and three log alerts on Application Insights.

- function failures: any failed invocation (after the host's own retries) in 15 minutes;
- late export: no successful `daily_export` today by `export_deadline_hour` (UTC);
- rejected files: a scoring input was moved to `rejected/` (someone must fix and re-upload it).
The queries read what `function_app.py` logs, so they are tested against those log lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_azure_native.monitor as monitor

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
    key: str
    description: str
    query: str
    severity: int
    frequency: str
    window: str


def alert_rules(export_deadline_hour: int) -> list[AlertRule]:
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
                auto_mitigate=False,
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for rule in alert_rules(args.export_deadline_hour)
        ]
        self.register_outputs({"action_group": group.id})
