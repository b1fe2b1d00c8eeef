"""TrainingEnvironment: the Azure ML environment a retraining job runs in, built from requirements.txt.

The monitor submits `python -m model retrain` as a command job naming an environment by
`environmentId` = `{workspace}/environments/{name}/versions/{version}` (functions/retrain/azureml.py),
from the app setting RETRAIN_ENVIRONMENT (`name:version`). This component creates exactly that
environment version in the stack's workspace, from the same value (the stack's app settings,
infra/config.py), so the name is written once: functions/settings/retraining.py.

The environment is a Docker base image plus a conda file Azure ML builds on top of it ("Manage
Azure Machine Learning environments", learn.microsoft.com/azure/machine-learning/
how-to-manage-environments-v2, "Create an environment from a Docker image plus a conda file";
REST: "Environment Versions - Create Or Update", learn.microsoft.com/rest/api/azureml/
environment-versions/create-or-update, EnvironmentVersionProperties `image`, `condaFile`,
`osType`). The conda file is generated from the repository's requirements.txt: the training
packages only, with the bounds the developers' venv is tested with, so the job cannot drift from
what the tests ran.

The job's code is a code asset (TrainingCode): a folder of the workspace storage's `code`
container holding model/ and lake/, registered as a code version named by the folder's content
hash ("Code Versions - Create Or Update", learn.microsoft.com/rest/api/azureml/code-versions/
create-or-update, CodeVersionProperties `codeUri`). The job names it by `codeId`
(functions/retrain/azureml.py), from the app setting RETRAIN_CODE_ID.

pulumi-azure-native 3.x names the body `properties` (EnvironmentVersionPropertiesArgs: `image`,
`conda_file`, `os_type`, ...); 2.x called it `environment_version_properties`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_azure_native.machinelearningservices as ml

from functions.retrain.azureml import ASSET_NAME
from infra.components.functionapp import PYTHON_VERSION
from infra.package import REPO_ROOT

# Microsoft's CPU training base image (Ubuntu 22.04 with conda and Open MPI), the one the Azure ML
# docs and examples pair with a conda file (AzureML-Containers, base/cpu/openmpi4.1.0-ubuntu22.04).
BASE_IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
OS_TYPE = "Linux"
CODE_ASSET = "bank-marketing-code"  # the code asset's name; its version is the content hash
REQUIREMENTS = REPO_ROOT / "requirements.txt"
# What `python -m model retrain` imports (model/, lake/): training, export to ONNX and its check,
# the CSV reader, the report, the MLflow log, the lake through an identity. scipy comes with
# scikit-learn. Nothing of the Function App (azure-functions, pyodbc) and no dev tooling.
TRAINING_PACKAGES = (
    "scikit-learn",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "numpy",
    "pandas",
    "pyarrow",
    "matplotlib",
    "mlflow-skinny",
    "azure-identity",
    "azure-storage-blob",
)
CONDA_CHANNELS = ("conda-forge",)  # only python and pip come from conda; the rest from PyPI
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*)$")


class RequirementsError(ValueError):
    """requirements.txt does not pin a package the training job needs."""


def split_environment(value: str) -> tuple[str, str]:
    """RETRAIN_ENVIRONMENT's `name:version` as (name, version), each an Azure ML asset name.

    The same split as functions/retrain/request.py submit_azureml, checked by the same rule the
    job request applies (functions/retrain/azureml.py ASSET_NAME).
    """
    name, sep, version = value.partition(":")
    if not sep or not ASSET_NAME.fullmatch(name) or not ASSET_NAME.fullmatch(version):
        raise ValueError(
            f"RETRAIN_ENVIRONMENT {value!r} must be name:version, each a letter or digit then letters, "
            "digits, '.', '-' or '_'"
        )
    return name, version


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def read_requirements(path: Path = REQUIREMENTS) -> dict[str, str]:
    """Every requirement of `path` and the files it includes (`-r`), by normalized name -> spec line."""
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            found |= read_requirements(path.parent / line[3:].strip())
            continue
        match = _REQUIREMENT.match(line)
        if match is None or line.startswith("-"):
            continue
        name, spec = match.groups()
        found[_normalize(name)] = f"{name}{spec.replace(' ', '')}"
    return found


def training_requirements(
    requirements: Mapping[str, str], packages: Iterable[str] = TRAINING_PACKAGES
) -> list[str]:
    """The requirement lines of `packages`, in that order; RequirementsError names any not pinned."""
    missing = [p for p in packages if _normalize(p) not in requirements]
    if missing:
        raise RequirementsError(f"requirements.txt does not list {', '.join(missing)}, which training needs")
    return [requirements[_normalize(p)] for p in packages]


def conda_yaml(name: str, pip: Iterable[str], python: str = PYTHON_VERSION) -> str:
    """The conda file: `python` and `pip` from conda, the training requirements through pip.

    The shape the Azure ML docs give a conda file (channels, dependencies with `python=X.Y`,
    `pip` and a `pip:` list); written by hand, not by a YAML library, so the bytes are stable and
    a change of requirements.txt is exactly a change of this text.
    """
    lines = [f"name: {name}", "channels:"]
    lines += [f"  - {channel}" for channel in CONDA_CHANNELS]
    lines += ["dependencies:", f"  - python={python}", "  - pip", "  - pip:"]
    lines += [f'      - "{requirement}"' for requirement in pip]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class TrainingEnvironmentArgs:
    workspace_name: pulumi.Input[str]  # the workspace resource's name output: created after it
    resource_group_name: pulumi.Input[str]
    environment: str  # RETRAIN_ENVIRONMENT, `name:version`, as the stack writes it to the app
    tags: dict[str, str]
    requirements: Path = REQUIREMENTS
    image: str = BASE_IMAGE


class TrainingEnvironment(pulumi.ComponentResource):
    environment: ml.EnvironmentVersion
    name: str
    version: str

    def __init__(
        self, name: str, args: TrainingEnvironmentArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:azure:TrainingEnvironment", name, None, opts)
        self.name, self.version = split_environment(args.environment)
        conda = conda_yaml(self.name, training_requirements(read_requirements(args.requirements)))
        # Bump RETRAIN_ENVIRONMENT's version when requirements.txt changes, so past jobs keep
        # naming the environment they ran in (whether the service accepts a changed conda file
        # under an existing version is not confirmed here).
        self.environment = ml.EnvironmentVersion(
            f"{name}-environment",
            name=self.name,
            version=self.version,
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            properties=ml.EnvironmentVersionPropertiesArgs(
                image=args.image,
                conda_file=conda,
                os_type=OS_TYPE,
                description="python -m model retrain: the training requirements of requirements.txt",
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"environment_id": self.environment.id})


@dataclass(frozen=True)
class TrainingCodeArgs:
    workspace_name: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    version: str  # the uploaded folder's content hash (infra/archive.py CodeBundle.digest)
    code_uri: pulumi.Input[str]  # the folder's URL, an output of the upload: registered after it
    tags: dict[str, str]


class TrainingCode(pulumi.ComponentResource):
    """The code asset the retrain job runs: model/ and lake/ at one content version."""

    code: ml.CodeVersion

    def __init__(self, name: str, args: TrainingCodeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:azure:TrainingCode", name, None, opts)
        # A new content hash is a new version (a new resource): a past job keeps naming the code it ran.
        self.code = ml.CodeVersion(
            f"{name}-code",
            name=CODE_ASSET,
            version=args.version,
            workspace_name=args.workspace_name,
            resource_group_name=args.resource_group_name,
            properties=ml.CodeVersionPropertiesArgs(
                code_uri=args.code_uri,
                description="python -m model retrain: the repository's model/ and lake/ packages",
                tags=args.tags,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"code_id": self.code.id})
