"""The real-time endpoint's infrastructure: the rollback's conditioned write on `models`, and the
`scoreUrl` / `scoreKey` outputs, under Pulumi's mocks."""

from __future__ import annotations

import re

import pulumi
import pytest

from infra import config
from infra.components.functionapp import KEY_NOT_LISTED, SCORE_FUNCTION
from infra.components.rbac import Rbac, RbacArgs
from infra.package import REPO_ROOT
from infra.program import build
from infra.roles import (
    CONDITIONED_WRITE_ACTIONS,
    FUNCTION,
    PRINCIPAL_TYPES,
    ROLE_IDS,
    Grant,
    blob_paths_condition,
    function_grants,
)
from infra.synth import MOCK_FUNCTION_KEY, RecordingMocks, code_archive, mock_stack, synthesize
from lake.contract import MODELS_CONTAINER
from tests.infra_support import STACKS, by_type, stack

# Sources of the condition's format, attribute and action names.
ABAC_EXAMPLES = "https://learn.microsoft.com/azure/storage/blobs/storage-auth-abac-examples"
ABAC_ATTRIBUTES = "https://learn.microsoft.com/azure/storage/blobs/storage-auth-abac-attributes"
ABAC_REST = "https://learn.microsoft.com/azure/role-based-access-control/conditions-role-assignments-rest"
FUNCTION_KEYS_ISSUE = "https://github.com/pulumi/pulumi-azure-native/issues/844"
WRITE = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
ADD = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action"
PATH = "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path]"


def _paths(condition: str) -> set[str]:
    """The blob paths a condition's path expression allows, parsed back out of its text."""
    match = re.search(re.escape(PATH) + r" ForAnyOfAnyValues:StringEquals \{([^}]*)\}\)\)$", condition)
    assert match, condition
    return set(re.findall(r"'([^']*)'", match.group(1)))


def _rollback_assignments(name: str) -> list[dict]:
    return [
        a.inputs for a in by_type(stack(name), "authorization:RoleAssignment") if a.inputs.get("condition")
    ]


def test_the_rollback_writes_exactly_its_two_blobs_of_models() -> None:
    """Microsoft's "Write blobs in named containers with a path" (Storage Blob Data Contributor
    form, ABAC_EXAMPLES): `((!(ActionMatches{write}) AND !(ActionMatches{add/action})) OR (path
    expression))`; the action names and the `blobs:path` attribute (no container, no leading
    slash) as listed in ABAC_ATTRIBUTES."""
    grants = [
        g for g in function_grants(True, "bank-marketing") if g.scope == f"container:{MODELS_CONTAINER}"
    ]
    assert {(g.role, g.condition is None) for g in grants} == {
        ("Storage Blob Data Reader", True),  # reads stay unconditioned, in the whole container
        ("Storage Blob Data Contributor", False),
    }
    (writer,) = [g for g in grants if g.condition]
    assert _paths(writer.condition) == {"bank-marketing/deployments.json", "bank-marketing/promotions.jsonl"}
    targeted = re.findall(r"!\(ActionMatches\{'([^']+)'\}\)", writer.condition)
    assert {WRITE, ADD} <= set(targeted) == set(CONDITIONED_WRITE_ACTIONS)
    assert not [a for a in targeted if a.endswith("/read")]  # read is never narrowed
    assert writer.condition.startswith("((!(ActionMatches{'" + WRITE + "'}) AND ")
    with pytest.raises(ValueError, match="relative to the container"):
        blob_paths_condition(["/models/x"])


@pytest.mark.parametrize("name", STACKS)
def test_each_stack_sends_the_condition_with_version_2_0(name: str) -> None:
    """`condition` plus `conditionVersion: "2.0"` on the one assignment (ABAC_REST), for the stack's
    MODEL_NAME; every other assignment has neither."""
    synthesis = stack(name)
    (writer,) = _rollback_assignments(name)
    assert writer["conditionVersion"] == "2.0"
    assert writer["roleDefinitionId"].endswith(ROLE_IDS["Storage Blob Data Contributor"])
    assert writer["scope"].endswith(f"/blobServices/default/containers/{MODELS_CONTAINER}")
    assert writer["principalId"] == synthesis.outputs["functionPrincipalId"]
    model = next(s["value"] for s in _settings(synthesis) if s["name"] == "MODEL_NAME")
    assert _paths(writer["condition"]) == {f"{model}/deployments.json", f"{model}/promotions.jsonl"}
    others = [a.inputs for a in by_type(synthesis, "authorization:RoleAssignment") if a.inputs is not writer]
    assert not [a for a in others if "condition" in a or "conditionVersion" in a]


def _settings(synthesis) -> list[dict]:
    return by_type(synthesis, "web:WebApp")[0].inputs["siteConfig"]["appSettings"]


def test_the_paths_follow_the_stacks_model_name() -> None:
    (writer,) = [
        a.inputs
        for a in by_type(synthesize("dev", overrides={"modelName": "churn"}), "authorization:RoleAssignment")
        if a.inputs.get("condition")
    ]
    assert _paths(writer["condition"]) == {"churn/deployments.json", "churn/promotions.jsonl"}


def test_two_grants_of_one_role_on_one_scope_are_refused() -> None:
    """Assignment names come from scope, principal and role only: a second, differently
    conditioned grant would overwrite the first's condition under the same name."""
    pulumi.runtime.set_mocks(RecordingMocks(), project=config.PROJECT, stack="dev", preview=False)
    grants = [
        Grant(FUNCTION, "Storage Blob Data Contributor", "container:models", condition="(a)"),
        Grant(FUNCTION, "Storage Blob Data Contributor", "container:models", condition="(b)"),
    ]
    with pytest.raises(ValueError, match="same role twice"):
        Rbac(
            "rbac",
            RbacArgs(grants, {FUNCTION: "p"}, PRINCIPAL_TYPES, {"container:models": "/x"}, "s", "dev"),
        )


@pytest.mark.parametrize("name", STACKS)
def test_score_url_and_its_key_are_outputs_the_key_secret(name: str) -> None:
    """The key is the platform's `default` key of `score`, read with listWebAppFunctionKeys (keys
    cannot be resources: FUNCTION_KEYS_ISSUE) and kept secret; the URL is not a secret."""
    synthesis = stack(name)
    host = synthesis.outputs["functionAppHostName"]
    assert synthesis.outputs["scoreUrl"] == f"https://{host}/api/score"
    assert synthesis.outputs["scoreKey"] == MOCK_FUNCTION_KEY
    assert "scoreKey" in synthesis.secret_outputs and "scoreUrl" not in synthesis.secret_outputs
    (call,) = [args for token, args in synthesis.calls if token == "azure-native:web:listWebAppFunctionKeys"]
    assert call == {
        "functionName": SCORE_FUNCTION,
        "name": synthesis.outputs["functionAppName"],
        "resourceGroupName": synthesis.outputs["resourceGroup"],
    }


def test_preview_lists_no_key() -> None:
    """`pulumi preview` does not call listkeys: the function may not be deployed yet."""
    from infra.cloud import offline_ops
    from infra.components.release import package_url

    mocks = mock_stack("dev", preview=True)
    seen: dict = {}
    pulumi.runtime.test(
        lambda: pulumi.Output.all(**build(config.load(), code_archive(), ops=offline_ops(package_url))).apply(
            seen.update
        )
    )()
    assert not [token for token, _ in mocks.calls if token == "azure-native:web:listWebAppFunctionKeys"]
    assert seen.get("scoreKey") in (None, KEY_NOT_LISTED)


def test_the_app_declares_the_function_the_key_is_read_for() -> None:
    """functions/function_app.py (another change) declares `score` at auth level FUNCTION."""
    source = (REPO_ROOT / "functions" / "function_app.py").read_text()
    assert f'@app.function_name("{SCORE_FUNCTION}")' in source
    assert re.search(
        r'route="score"[^)]*auth_level=func\.AuthLevel\.FUNCTION|auth_level=func\.AuthLevel\.FUNCTION[^)]*route="score"',
        source,
    )
