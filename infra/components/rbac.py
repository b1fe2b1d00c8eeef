"""Rbac: one role assignment per grant of the persona matrix (infra/roles.py), at the narrowest scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_azure_native.authorization as authorization

from infra.roles import CONDITION_VERSION, ROLE_IDS, Grant, assignment_name


@dataclass(frozen=True)
class RbacArgs:
    grants: list[Grant]
    principals: Mapping[str, pulumi.Input[str]]  # Grant.principal -> object id
    principal_types: Mapping[str, str]  # Grant.principal -> User | Group | ServicePrincipal
    scopes: Mapping[str, pulumi.Input[str]]  # Grant.scope -> resource id
    subscription_id: pulumi.Input[str]
    environment: str


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    return pulumi.Output.concat(
        "/subscriptions/",
        subscription_id,
        "/providers/Microsoft.Authorization/roleDefinitions/",
        ROLE_IDS[role],
    )


def _assignment_name(args: RbacArgs, grant: Grant) -> pulumi.Output[str]:
    """GUID from the scope's resource id, the principal's object id and the role id (roles.py)."""
    return pulumi.Output.all(args.scopes[grant.scope], args.principals[grant.principal]).apply(
        lambda ids: assignment_name(ids[0], ids[1], ROLE_IDS[grant.role])
    )


def _logical_name(component: str, grant: Grant) -> str:
    role = grant.role.lower().replace(" ", "-")
    return f"{component}-{grant.principal}-{role}-{grant.scope.replace(':', '-')}"


class Rbac(pulumi.ComponentResource):
    assignments: list[authorization.RoleAssignment]

    def __init__(self, name: str, args: RbacArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:Rbac", name, None, opts)
        missing = sorted({g.scope for g in args.grants} - set(args.scopes))
        if missing:
            raise ValueError(f"role matrix names scopes this stack does not have: {', '.join(missing)}")
        # The assignment's name comes from scope, principal and role (not the condition): a second
        # grant of the same three would be the same assignment, its condition silently replacing
        # the first's.
        keys = [(g.principal, g.role, g.scope) for g in args.grants]
        if twice := sorted({k for k in keys if keys.count(k) > 1}):
            raise ValueError(f"role matrix grants the same role twice on one scope: {twice}")
        self.assignments = [
            authorization.RoleAssignment(
                _logical_name(name, grant),
                role_assignment_name=_assignment_name(args, grant),
                principal_id=args.principals[grant.principal],
                principal_type=args.principal_types[grant.principal],
                role_definition_id=role_definition_id(args.subscription_id, grant.role),
                scope=args.scopes[grant.scope],
                description=f"{grant.principal}: {grant.role} on {grant.scope} ({args.environment})"
                + (" with a condition" if grant.condition else ""),
                # Azure ABAC: the condition narrows the role; version 2.0 is the only one accepted
                # ("Add or edit Azure role assignment conditions using the REST API",
                # learn.microsoft.com/azure/role-based-access-control/conditions-role-assignments-rest).
                condition=grant.condition,
                condition_version=CONDITION_VERSION if grant.condition else None,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for grant in args.grants
        ]
        self.register_outputs({"count": len(self.assignments)})
