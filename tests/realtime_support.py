"""Helpers for the real-time tests: a model name of its own per test, the app's HTTP functions
bound to it, requests built as the Python worker builds them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pandas as pd
import pytest
from azure.storage.blob import BlobServiceClient

from devstack import runner
from functions.settings import get_settings
from lake.contract import MODELS_CONTAINER
from model.registry import BlobStore, Registry
from model.registry.deployments import Deployments
from tests.model_fixtures import Models
from tests.scoring_support import scoring_env


def records(models: Models, rows: int, first: int = 0, with_ids: bool = True) -> list[dict[str, Any]]:
    """`rows` held-out bank clients as JSON records (client_id from 1 + first when asked)."""
    frame = models.gate.drop(columns=["y"]).iloc[first : first + rows].copy()
    if with_ids:
        frame.insert(0, "client_id", range(first + 1, first + 1 + len(frame)))
    return json.loads(frame.to_json(orient="records"))


def frame_of(models: Models, rows: int) -> pd.DataFrame:
    return models.gate.drop(columns=["y"]).iloc[:rows].reset_index(drop=True)


def http_request(
    body: Any = None,
    *,
    url: str = "/api/score",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> func.HttpRequest:
    """A real func.HttpRequest, as the worker hands one to the function."""
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    sent = {"content-type": "application/json"} | (headers or {})
    return func.HttpRequest(method, f"http://localhost{url}", headers=sent, body=data)


@dataclass
class Stack:
    """The app's functions for one model name, its registry and the versions registered."""

    name: str
    env: dict[str, str]
    registry: Registry
    good: str
    bad: str
    functions: dict[str, Any]

    @property
    def deployments(self) -> Deployments:
        return Deployments(self.registry, self.name, "dev")

    def call(self, function: str, request: func.HttpRequest | None = None) -> func.HttpResponse:
        return self.functions[function](request or http_request(method="GET", url=f"/api/{function}"))

    def score(self, body: Any, **headers: str) -> tuple[int, dict[str, Any]]:
        response = self.functions["score"](http_request(body, headers=headers))
        return response.status_code, json.loads(response.get_body())

    def service(self):  # type: ignore[no-untyped-def]
        from functions import function_app

        return function_app.realtime()


@contextmanager
def app_stack(
    connection_string: str, blob_service: BlobServiceClient, models: Models, **overrides: str
) -> Iterator[Stack]:
    """Register the good and bad models under a fresh name, serve good at dev, bind the app to it."""
    name = f"rt-{uuid.uuid4().hex[:10]}"
    registry = Registry(BlobStore(blob_service.get_container_client(MODELS_CONTAINER), ensure=True))
    good = registry.register(models.good, name)
    bad = registry.register(models.bad, name)
    registry.promote(name, good, "dev", override_reason="tests")
    env = scoring_env(
        connection_string,
        MODEL_NAME=name,
        DEPLOYMENTS_REFRESH_SECONDS="0",
        REQUEST_LOG_FLUSH_SECONDS="300",
        **overrides,
    )
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        get_settings.cache_clear()
        from functions import function_app  # after the settings: the module reads them on import

        function_app.reset()
        functions = {f.get_function_name(): f.get_user_function() for f in runner.index(function_app.app)}
        try:
            yield Stack(name, env, registry, good, bad, functions)
        finally:
            function_app.reset()
            get_settings.cache_clear()
