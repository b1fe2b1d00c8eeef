"""A retrain asked for by a person or a pipeline (`python -m functions retrain`), through the same
runner and records as one the monitor asks for.

The delivery pipeline's model workflow runs it on a GitHub runner against a deployed stack: the
settings are the Function App's own (the JSON `az functionapp config appsettings list` prints), so
the job is the one the app would submit; only the credential differs. The app authenticates as its
managed identity (`DataLake__clientId`, ManagedIdentityCredential); a runner has none, so those
entries are dropped and `DefaultAzureCredential` picks up the runner's `azure/login` (OIDC) session.
The verdict records the rule `manual` with who asked and why, so the promotion log says so.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from functions.retrain import azureml
from functions.retrain.request import request_retrain
from functions.settings import Settings, SettingsError, load_settings
from lake import clients
from lake.contract import DATA_LAKE
from model.registry import STAGES

MANUAL = "manual"  # the rule a verdict names when no monitoring rule asked for the retrain
_APP_IDENTITY = (f"{DATA_LAKE}__clientId", f"{DATA_LAKE}__credential")


def app_settings_env(path: Path) -> dict[str, str]:
    """The app settings of `az functionapp config appsettings list -o json` (a list of name/value
    objects) or a plain JSON object, without the app's own identity settings."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise SettingsError(f"app settings file {path}: {error}") from None
    if isinstance(document, list):
        pairs = {str(item["name"]): str(item.get("value") or "") for item in document if "name" in item}
    elif isinstance(document, dict):
        pairs = {str(k): str(v) for k, v in document.items()}
    else:
        raise SettingsError(f"app settings file {path}: expected a list of {{name, value}} or an object")
    return {k: v for k, v in pairs.items() if k not in _APP_IDENTITY}


def manual_verdict(reason: str, actor: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "retrain": True,
        "fired": [MANUAL],
        "evidence": {MANUAL: {"fired": True, "reason": reason, "by": actor}},
        "evaluated_at": now.isoformat(timespec="seconds"),
    }


def _cli_token() -> str:
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
    return credential.get_token(azureml.ARM_SCOPE).token


def run_manual(
    env: Mapping[str, str] | None,
    *,
    reason: str,
    actor: str,
    promote: tuple[str, ...] | None = None,
    export_day: dt.date | None = None,
    now: dt.datetime | None = None,
    token: Callable[[], str] | None = None,
) -> tuple[Settings, dict[str, Any]]:
    """Ask for one retrain with `env`'s settings (None: this process's); (the settings, the record)."""
    now = now or dt.datetime.now(dt.UTC)
    settings = load_settings(env)
    if promote is not None:
        unknown = sorted(set(promote) - set(STAGES))
        if unknown:
            raise SettingsError(f"--promote names {unknown}: stages are {', '.join(STAGES)}")
        retraining = replace(settings.retraining, promote_to=tuple(s for s in STAGES if s in promote))
        settings = replace(settings, retraining=retraining)
    if settings.retraining.runner == "off":
        raise SettingsError("RETRAIN_RUNNER is off for this app: there is nowhere to run a retrain")
    service = clients.blob_service(settings.data_lake)
    record = request_retrain(settings, service, manual_verdict(reason, actor, now), now,
                             export_day=export_day, token=token or _cli_token)  # fmt: skip
    return settings, record
