"""Where everything lives inside the registry (the `models` container, or a local folder).

    {model}/{version}/model.onnx, metadata.json, reference.json, model_card.md, plots/*.png
    {model}/stages/{stage}.json      which version each stage serves, and its history
    {model}/promotions.jsonl         every promotion decision, promoted or refused (append-only)
    {model}/deployments.json         the HTTP function's blue and green versions, traffic and shadow

The stage names, the model name rules and every registry path are defined here and nowhere else
(the file names inside a version, and the rule for them, are the model folder's: model/artifacts.py).
"""

from __future__ import annotations

import re

from model.registry.errors import NotFoundError, RegistryError

STAGES = ("dev", "preprod", "prod")  # the order a version travels in
SERVING_STAGE = STAGES[-1]  # what scores when no stage is named: production
APPROVAL_STAGES = (SERVING_STAGE,)  # stages a version reaches only with a recorded human approval
STAGES_DIR = "stages"
DECISIONS_FILE = "promotions.jsonl"
DEPLOYMENTS_FILE = "deployments.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_RESERVED_NAMES = {STAGES_DIR}


def check_name(name: str) -> str:
    """A model name usable as the first path segment (never the stages folder's name)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in _RESERVED_NAMES:
        raise RegistryError(
            f"model name {name!r} is not allowed: use letters, digits, '.', '_' or '-' (at most 64, "
            "starting with a letter or digit)"
        )
    return name


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise NotFoundError(f"unknown stage {stage!r}: stages are {' -> '.join(STAGES)}")
    return stage


def model_prefix(name: str) -> str:
    """The prefix of everything one model holds (its versions and its stage pointers)."""
    return f"{name}/"


def version_file(name: str, version: str, file: str) -> str:
    """`{model}/{version}/{file}`: one file of one registered version."""
    return f"{name}/{version}/{file}"


def stage_file(name: str, stage: str) -> str:
    """`{model}/stages/{stage}.json`: the pointer of one stage."""
    return f"{name}/{STAGES_DIR}/{stage}.json"


def decisions_file(name: str) -> str:
    """`{model}/promotions.jsonl`: the model's log of promotion decisions, one JSON object a line."""
    return f"{name}/{DECISIONS_FILE}"


def deployments_file(name: str) -> str:
    """`{model}/deployments.json`: which versions the real-time endpoint serves, and how traffic splits."""
    return f"{name}/{DEPLOYMENTS_FILE}"


def parse_version_file(path: str) -> tuple[str, int, str] | None:
    """(model, version number, file inside the version) of a version file; None for anything else."""
    parts = path.split("/")
    if len(parts) >= 3 and parts[1].isdigit():
        return parts[0], int(parts[1]), "/".join(parts[2:])
    return None


def stage_before(stage: str) -> str | None:
    """The stage that must serve a version before `stage` may (None for the first stage)."""
    index = STAGES.index(stage)
    return STAGES[index - 1] if index > 0 else None
