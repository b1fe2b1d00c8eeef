"""Names, stack config validation, the code archive and its release, and the offline plan CLI."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import pytest

from infra import config, plan
from infra.archive import CodeArchive, build_archive, zip_folder
from infra.naming import RULES, InvalidNameError, Names, check
from infra.synth import code_archive, synthesize
from tests.infra_support import GOOD_CONFIG, STACKS, assert_deployable, by_type, stack

GOOD = GOOD_CONFIG
LONG_PREFIXES = (
    "a" * 40,
    "contoso-marketing-analytics-platform-ml",
    "x-y-z-1-2-3-4-5-6-7-8-9-0-a-b-c-d-e-f-g",
)


def _all_names(names: Names) -> dict[str, tuple[str, str]]:
    return {
        "resource_group": ("resource_group", names.resource_group),
        "datalake": ("storage_account", names.storage_account("dl")),
        "host": ("storage_account", names.storage_account("fn")),
        "ml": ("storage_account", names.storage_account("ml")),
        "key_vault": ("key_vault", names.key_vault),
        "function_app": ("function_app", names.function_app),
        "ml_workspace": ("ml_workspace", names.ml_workspace),
        "log_analytics": ("log_analytics", names.log_analytics),
        "plan": ("generic", names.plan),
        "action_group_short": ("action_group_short", names.action_group_short),
        "alert": ("generic", names.alert("function-failures")),
        "retrain_identity": ("user_assigned_identity", names.retrain_identity),
    }


@pytest.mark.parametrize("prefix", ("mlops", "ab", *LONG_PREFIXES))
@pytest.mark.parametrize("environment", STACKS)
def test_names_follow_azure_rules_for_any_valid_prefix(prefix: str, environment: str) -> None:
    for kind, name in _all_names(Names(prefix, environment)).values():
        pattern, low, high = RULES[kind]
        assert low <= len(name) <= high and pattern.match(name), (kind, name)
    accounts = [Names(prefix, environment).storage_account(p) for p in ("dl", "fn", "ml")]
    assert len(set(accounts)) == 3


def test_long_prefixes_that_share_a_start_still_get_distinct_names() -> None:
    first, second = (
        Names("contoso-marketing-analytics-a", "prod"),
        Names("contoso-marketing-analytics-b", "prod"),
    )
    for key, (_, name) in _all_names(first).items():
        if key not in (
            "resource_group",
            "ml_workspace",
            "log_analytics",
            "plan",
            "action_group_short",
            "alert",
        ):
            assert name != _all_names(second)[key][1], key
    every = [n for env in STACKS for _, n in _all_names(Names("mlops", env)).values()]
    assert len(set(every)) == len(every)


def test_name_check_rejects_invalid_names() -> None:
    with pytest.raises(InvalidNameError, match="storage_account"):
        check("storage_account", "St-Upper-And-Hyphens")
    with pytest.raises(InvalidNameError):
        check("key_vault", "kv--double-hyphen")
    with pytest.raises(InvalidNameError):
        check("key_vault", "k" * 25)


def test_the_user_assigned_identity_name_rule() -> None:
    """Microsoft.ManagedIdentity/userAssignedIdentities `name`: "Character limit: 3-128. Valid
    characters: alphanumerics, hyphens and underscores. Start with letter or number." (template
    reference, learn.microsoft.com/azure/templates/microsoft.managedidentity/userassignedidentities;
    the same 3-128 / letters, digits, '_', '-' / starts with a letter or digit in PSRule's
    Azure.Identity.UserAssignedName, azure.github.io/PSRule.Rules.Azure/en/rules/
    Azure.Identity.UserAssignedName). The program's rule is stricter by the underscore: Microsoft's
    guide supports only alphanumerics and hyphens when it creates one ("Manage user-assigned
    managed identities using Azure Resource Manager", learn.microsoft.com/entra/identity/
    managed-identities-azure-resources/manage-user-assigned-managed-identities-azure-resource-manager)."""
    _, low, high = RULES["user_assigned_identity"]
    assert (low, high) == (3, 128)
    assert Names("mlops", "dev").retrain_identity == "id-mlops-retrain-dev"
    assert Names("mlops", "prod").retrain_identity == "id-mlops-retrain-prd"
    assert len(Names("a" * 200, "preprod").retrain_identity) == 128
    for good in ("abc", "1-a", "A" * 128):
        assert check("user_assigned_identity", good) == good
    for bad in ("ab", "-abc", "a" * 129, "a.b", "a b", "a_b"):
        with pytest.raises(InvalidNameError):
            check("user_assigned_identity", bad)


def test_long_prefix_stack_builds_with_valid_names() -> None:
    synthesis = synthesize("prod", overrides={"prefix": LONG_PREFIXES[1]})
    for account in by_type(synthesis, "storage:StorageAccount"):
        assert len(account.azure_name) <= 24 and account.azure_name.isalnum()
    vault = by_type(synthesis, "keyvault:Vault")[0].azure_name
    assert 3 <= len(vault) <= 24
    assert synthesis.outputs["resourceGroup"] == f"rg-{LONG_PREFIXES[1]}-prod"


def test_config_parses_the_stack_defaults() -> None:
    parsed = config.parse("prod", GOOD)
    assert parsed.network_isolation is True  # on in prod unless the stack says otherwise
    assert parsed.app["MODEL_STAGE"] == "prod"
    assert config.parse("dev", GOOD).network_isolation is False
    assert config.parse("dev", GOOD).alert_emails == ("oncall@example.com",)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("prefix", "Bad_Prefix", "'prefix'"),
        ("prefix", "a--b", "'prefix'"),
        ("location", "West Europe", "'location'"),
        ("dataScientistsGroupId", "data-scientists", "'dataScientistsGroupId'"),
        ("alertEmails", "[]", "'alertEmails'"),
        ("alertEmails", '["not-an-email"]', "'alertEmails'"),
        ("instanceMemoryMb", "1000", "'instanceMemoryMb'"),
        ("maxInstances", "0", "'maxInstances'"),
        ("networkIsolation", "yes", "'networkIsolation'"),
        ("allowedIpRanges", '["everything"]', "'allowedIpRanges'"),
        ("modelStage", "staging", "'modelStage'"),
    ],
)
def test_config_errors_name_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(config.ConfigError, match=message):
        config.parse("dev", GOOD | {key: value})


def test_config_requires_known_environment_and_keys() -> None:
    with pytest.raises(config.ConfigError, match="environment"):
        config.parse("staging", GOOD)
    missing = dict(GOOD)
    del missing["mlEngineersGroupId"]
    with pytest.raises(config.ConfigError, match="pulumi config set mlEngineersGroupId"):
        config.parse("dev", missing)


def test_archive_holds_the_app_and_nothing_secret() -> None:
    archive = code_archive()
    with zipfile.ZipFile(archive.path) as zipped:
        assert_deployable(set(zipped.namelist()), zipped.read("requirements.txt").decode())
    assert archive.path.name == f"functionapp-{archive.sha256[:16]}.zip"
    assert hashlib.sha256(archive.path.read_bytes()).hexdigest() == archive.sha256


def test_archive_is_reproducible_and_named_by_content(tmp_path: Path) -> None:
    assert build_archive(tmp_path / "again").sha256 == code_archive().sha256
    source = tmp_path / "src"
    source.mkdir()
    (source / "function_app.py").write_text("print('v1')\n")
    first = zip_folder(source, tmp_path / "a.zip")
    assert zip_folder(source, tmp_path / "b.zip") == first
    (source / "function_app.py").write_text("print('v2')\n")
    assert zip_folder(source, tmp_path / "c.zip") != first


def test_a_code_change_is_a_new_package_and_a_new_deployment() -> None:
    current = stack("dev")
    changed = synthesize("dev", archive=CodeArchive(code_archive().path, "f" * 64))
    for synthesis, digest in ((current, code_archive().sha256), (changed, "f" * 64)):
        deployment = by_type(synthesis, "resources:Deployment")[0]
        assert deployment.inputs["deploymentName"] == f"onedeploy-{digest[:16]}"
        assert deployment.inputs["tags"] == {"package-sha256": digest}
        extension = deployment.inputs["properties"]["template"]["resources"][0]
        assert extension["type"] == "Microsoft.Web/sites/extensions"
        assert extension["name"] == f"{synthesis.outputs['functionAppName']}/onedeploy"
        assert extension["properties"] == {
            "packageUri": synthesis.outputs["codePackage"],
            "remoteBuild": True,
        }
        assert synthesis.outputs["codePackage"].endswith(f"/app-package/functionapp-{digest[:16]}.zip")
    assert (
        by_type(current, "resources:Deployment")[0].name != by_type(changed, "resources:Deployment")[0].name
    )


@pytest.mark.parametrize("name", STACKS)
def test_plan_prints_resources_roles_and_policy(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main([name]) == 0
    text = capsys.readouterr().out
    assert f"Stack {name}:" in text
    assert "storage:StorageAccount" in text and "allowSharedKeyAccess = false" in text
    assert "Role matrix (principal | role | scope):" in text
    assert "Security policy: all rules pass" in text
    assert ("data-scientists (group)" in text) is (name == "dev")


def test_plan_json_is_machine_readable(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["prod", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stack"] == "prod"
    assert {"principal", "principalType", "role", "scope"} == set(result["roles"][0])
    types = {r["type"] for r in result["resources"]}
    assert {"web:WebApp", "network:VirtualNetwork", "eventgrid:SystemTopicEventSubscription"} <= types
    assert result["policy"]["violations"] == []
    assert "mock-blob-key" not in json.dumps(result)  # the webhook key never reaches the plan


def test_plan_rejects_unknown_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        plan.main(["staging"])
    assert "invalid choice" in capsys.readouterr().err


# -- the training environment's conda file (infra/components/training.py) ---------------------------


def test_the_conda_file_pins_training_packages_as_requirements_txt_does(tmp_path: Path) -> None:
    from infra.components.training import conda_yaml, read_requirements, training_requirements

    (tmp_path / "runtime.txt").write_text("numpy>=2.0,<3  # comment\nazure-functions>=1.21,<3\n")
    (tmp_path / "requirements.txt").write_text(
        "-r runtime.txt\n# tooling\nruff>=0.8,<1\nscikit-learn >= 1.6, <2\nskl2onnx>=1.18,<2\n"
    )
    found = read_requirements(tmp_path / "requirements.txt")
    assert found["scikit-learn"] == "scikit-learn>=1.6,<2" and found["numpy"] == "numpy>=2.0,<3"
    pip = training_requirements(found, ("scikit-learn", "skl2onnx", "numpy"))
    assert conda_yaml("env-x", pip, python="3.11") == (
        "name: env-x\n"
        "channels:\n"
        "  - conda-forge\n"
        "dependencies:\n"
        "  - python=3.11\n"
        "  - pip\n"
        "  - pip:\n"
        '      - "scikit-learn>=1.6,<2"\n'
        '      - "skl2onnx>=1.18,<2"\n'
        '      - "numpy>=2.0,<3"\n'
    )


def test_the_conda_file_is_valid_yaml_with_only_the_training_needs() -> None:
    import yaml

    from infra.components.training import (
        TRAINING_PACKAGES,
        conda_yaml,
        read_requirements,
        training_requirements,
    )

    pip = training_requirements(read_requirements())
    document = yaml.safe_load(conda_yaml("bank-marketing-train", pip))
    assert document["dependencies"][:2] == ["python=3.11", "pip"]
    listed = document["dependencies"][2]["pip"]
    assert len(listed) == len(TRAINING_PACKAGES)
    names = {re.split(r"[<>=!~]", line, maxsplit=1)[0] for line in listed}
    # serving-only and dev-only packages stay out; the Function App's runtime is not the job's
    assert not names & {"azure-functions", "pyodbc", "pytest", "ruff", "pulumi", "playwright"}


def test_a_training_package_missing_from_requirements_is_an_error() -> None:
    from infra.components.training import RequirementsError, training_requirements

    with pytest.raises(RequirementsError, match="skl2onnx"):
        training_requirements({"scikit-learn": "scikit-learn>=1.6"}, ("scikit-learn", "skl2onnx"))


def test_the_environment_name_and_version_rule() -> None:
    """Source: "Environment Versions - Create Or Update" (learn.microsoft.com/rest/api/azureml/
    environment-versions/create-or-update, api 2024-10-01): `name` "Container name. This is
    case-sensitive." and `version` "Version identifier. This is case-sensitive." are path segments
    with no pattern given; we hold both to the conservative asset-name subset the job request
    already enforces (functions/retrain/azureml.py ASSET_NAME), so Pulumi refuses what the
    monitor would refuse."""
    from infra.components.training import split_environment

    assert split_environment("bank-marketing-train:1") == ("bank-marketing-train", "1")
    assert split_environment("Env_2.x:2024.05.01") == ("Env_2.x", "2024.05.01")
    for bad in ("bank-marketing-train", "bad/env:1", "env:", ":1", "-env:1", "env:1/2"):
        with pytest.raises(ValueError, match="name:version"):
            split_environment(bad)
