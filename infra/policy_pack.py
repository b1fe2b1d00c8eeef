"""The rules of infra/policies.py as CrossGuard policies (`pulumi preview --policy-pack policy/`).

Built here, importable without starting the analyzer, so the tests run the same policy objects
the pack serves; policy/__main__.py only hands them to `PolicyPack`.
"""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra import policies

PACK_NAME = "mlops-azure-security"


def _resource_policy(rule: policies.Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type != rule.resource_type:
            return
        message = rule.check(args.props)
        if message:
            report_violation(f"{rule.description}: {message} [{rule.source}]", None)

    return ResourceValidationPolicy(
        name=rule.id,
        description=f"{rule.description} ({rule.source})",
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _isolation(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    subjects = [policies.Subject(r.resource_type, r.name, r.props) for r in args.resources]
    for violation in policies.isolation_violations(subjects):
        report_violation(f"{violation.resource}: {violation.message}", None)


def build_policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    found: list[ResourceValidationPolicy | StackValidationPolicy] = [
        _resource_policy(rule) for rule in policies.RULES
    ]
    found.append(
        StackValidationPolicy(
            name="network-isolation",
            description="With a virtual network in the stack, data stores deny every other network",
            validate=_isolation,
            enforcement_level=EnforcementLevel.MANDATORY,
        )
    )
    return found
