"""The three stacks, synthesized once per test session under Pulumi's mocks (infra/synth.py)."""

from __future__ import annotations

from functools import cache

from infra.policies import Subject
from infra.synth import Resource, Synthesis, synthesize

STACKS = ("dev", "preprod", "prod")
APP_FILES = (
    "function_app.py",
    "host.json",
    "requirements.txt",
    "functions/__init__.py",
    "functions/settings/__init__.py",
    "functions/settings/catalog.py",
    "lake/contract.py",
    "lake/clients.py",
    "functions/export/engine.py",
    "functions/export/job.py",
    "functions/scoring/job.py",
    "model/__init__.py",
    "model/drift.py",
    "model/serving.py",
)
NEVER_DEPLOYED = (
    "local.settings",
    ".venv/",
    ".local/",
    "tests/",
    "__pycache__",
    ".pyc",
    "node_modules/",
    ".git/",
)


def assert_deployable(files: set[str], runtime_requirements: str) -> None:
    """What Azure needs to run the app is there; secrets, tests and training-only packages are not."""
    assert [f for f in APP_FILES if f not in files] == []
    assert [f for f in files if any(part in f for part in NEVER_DEPLOYED)] == []
    assert "azure-functions" in runtime_requirements and "onnxruntime" in runtime_requirements
    assert "scikit-learn" not in runtime_requirements and "pulumi" not in runtime_requirements


@cache
def stack(name: str) -> Synthesis:
    return synthesize(name)


def subjects(synthesis: Synthesis) -> list[Subject]:
    return [Subject(r.type, r.azure_name, r.inputs) for r in synthesis.resources]


def by_type(synthesis: Synthesis, type_: str) -> list[Resource]:
    return synthesis.of_type(f"azure-native:{type_}")


# A valid raw stack config (Pulumi.<stack>.yaml keys without the project prefix), for unit tests.
GOOD_CONFIG = {
    "prefix": "mlops",
    "location": "westeurope",
    "dataScientistsGroupId": "11111111-1111-4111-8111-111111111111",
    "mlEngineersGroupId": "22222222-2222-4222-8222-222222222222",
    "alertEmails": '["oncall@example.com"]',
}
