"""The settings contract holds everywhere: the app, the three stacks and the local stack agree.

One catalog (functions/settings/catalog.py) declares every setting. These tests fail when the
Pulumi program writes a key the app does not read, when the app reads a key that neither the
stacks nor the local defaults provide, or when two places hold different defaults for one
setting. Each rule is a small function, checked on the real tree and on a broken input.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Iterator, Mapping

import pytest

from devstack.local_settings import (
    EXAMPLE,
    SETTINGS_DOC,
    catalog_values,
    defaults,
    example_document,
    settings_document,
)
from functions.settings import load_settings
from functions.settings.catalog import BY_NAME, CATALOG, STACK_NAME, Cloud, Kind, Reader, Setting
from functions.settings.values import parse
from infra import config
from infra.package import REPO_ROOT
from lake.connection import IDENTITY_KEYS
from tests.infra_support import STACKS, by_type, stack


class Recorder(Mapping[str, str]):
    """An environment that remembers every key the code under test looked up."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return self.values[key]

    def get(self, key: str, default=None):  # type: ignore[no-untyped-def, override]
        self.read.add(key)
        return self.values.get(key, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def owner(key: str) -> Setting | None:
    """The catalog entry a key belongs to: its own entry, or the connection whose `{name}__*` it is."""
    if key in BY_NAME:
        return BY_NAME[key]
    prefix, _, suffix = key.partition("__")
    found = BY_NAME.get(prefix)
    return found if found is not None and found.kind is Kind.CONNECTION and suffix in IDENTITY_KEYS else None


# -- the rules -------------------------------------------------------------------------------------


def written_but_unread(written: Iterable[str]) -> list[str]:
    """Keys a stack writes that no catalog setting (read by the app or by the host) owns, or that the
    catalog says stacks leave alone."""
    problems = []
    for key in written:
        setting = owner(key)
        if setting is None:
            problems.append(f"{key}: written by the stack, read by nobody (not in the catalog)")
        elif setting.cloud not in (Cloud.VALUE, Cloud.RESOURCE):
            problems.append(f"{key}: written by the stack, but the catalog says {setting.cloud}")
    return problems


def read_but_unprovided(read: Iterable[str], stacks: Mapping[str, set[str]], local: set[str]) -> list[str]:
    """Keys the app reads that are not in the catalog, or that a required setting leaves unprovided."""
    problems = []
    for key in sorted(read):
        setting = owner(key)
        if setting is None:
            problems.append(f"{key}: read by the app, provided by neither the stacks nor the local defaults")
            continue
        if setting.name not in local:
            problems.append(f"{key}: read by the app, missing from the local defaults")
        if setting.required:
            for name, written in stacks.items():
                if not any(owner(k) is setting for k in written):
                    problems.append(f"{key}: required, but stack {name} does not write it")
    return problems


def disagreeing_defaults(places: Mapping[str, Mapping[str, str]], expected: Mapping[str, str]) -> list[str]:
    """Every place that holds a value for a setting holds the one the catalog gives that place."""
    return [
        f"{key}: {place} has {values[key]!r}, the catalog says {expected[key]!r}"
        for place, values in places.items()
        for key in values
        if key in expected and values[key] != expected[key]
    ]


# -- the facts -------------------------------------------------------------------------------------


def keys_the_app_reads() -> set[str]:
    env = Recorder(defaults())
    load_settings(env)
    return env.read


def written_by(name: str) -> dict[str, str]:
    web_app = by_type(stack(name), "web:WebApp")[0]
    return {s["name"]: s["value"] for s in web_app.inputs["siteConfig"]["appSettings"]}


def catalog_stack_value(setting: Setting, environment: str) -> str:
    value = setting.cloud_value if setting.cloud_value is not None else setting.default
    assert value is not None
    return environment if value == STACK_NAME else value


# -- the tests on the real tree -------------------------------------------------------------------


def test_every_default_is_valid_for_its_own_kind() -> None:
    for setting in CATALOG:
        for value in {setting.default, setting.local, setting.cloud_value} - {None, STACK_NAME}:
            if setting.reader is Reader.APP and setting.kind is not Kind.CONNECTION:
                parse(setting, value.strip())  # raises SettingsError naming the setting


def test_the_app_reads_only_catalog_settings_and_every_app_setting() -> None:
    read = keys_the_app_reads()
    assert [key for key in read if owner(key) is None] == []
    app_settings = {s.name for s in CATALOG if s.reader is Reader.APP}
    assert app_settings - {owner(key).name for key in read} == set()  # type: ignore[union-attr]


def test_trigger_bindings_name_catalog_settings() -> None:
    """`%NAME%` expressions and `connection=` arguments of the triggers are settings too."""
    source = (REPO_ROOT / "functions" / "function_app.py").read_text()
    tree = ast.parse(source)
    named = set(re.findall(r"%([A-Za-z0-9_]+)%", source))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "connection":
            named.add(ast.unparse(node.value))
    resolved = {BY_NAME.get(n) or (BY_NAME["DataLake"] if n == "DATA_LAKE" else None) for n in named}
    assert named and None not in resolved, named


@pytest.mark.parametrize("name", STACKS)
def test_stacks_write_only_settings_that_are_read(name: str) -> None:
    written = written_by(name)
    assert written_but_unread(written) == []
    for setting in CATALOG:  # and every setting the catalog says a stack writes, it writes
        if setting.cloud in (Cloud.VALUE, Cloud.RESOURCE):
            assert any(owner(key) is setting for key in written), setting.name


def test_the_app_reads_nothing_that_no_one_provides() -> None:
    stacks = {name: set(written_by(name)) for name in STACKS}
    assert read_but_unprovided(keys_the_app_reads(), stacks, set(defaults())) == []


def test_one_value_per_setting_and_place() -> None:
    local = {s.name: v for s in CATALOG if (v := s.local_value()) is not None}
    example = json.loads(EXAMPLE.read_text())["Values"]
    machine = {
        "AzureWebJobsStorage",
        "DataLake",
        "DB_CONNECTION_STRING",
    }  # this machine's Azurite and database
    places: dict[str, Mapping[str, str]] = {
        "functions/local.settings.example.json": example,
        "devstack.local_settings.defaults()": {k: v for k, v in defaults().items() if k not in machine},
    }
    assert disagreeing_defaults(places, local) == []
    assert set(example) == set(catalog_values()) == set(defaults())
    assert EXAMPLE.read_text() == example_document(), "regenerate: python -m devstack.local_settings"
    assert SETTINGS_DOC.read_text() == settings_document(), "regenerate: python -m devstack.local_settings"
    for environment in STACKS:
        expected = {s.name: catalog_stack_value(s, environment) for s in config.STACK_SETTINGS}
        silent = config.app_settings_for(environment, {}).values
        written = written_by(environment)
        overridden = {s.name for s in config.STACK_SETTINGS if s.stack_key in config_keys_of(environment)}
        assert disagreeing_defaults({f"{environment} (no config)": silent}, expected) == []
        assert (
            disagreeing_defaults(
                {f"{environment} stack": written}, {k: v for k, v in expected.items() if k not in overridden}
            )
            == []
        )


def config_keys_of(environment: str) -> set[str]:
    from infra.synth import stack_config

    return {key.split(":", 1)[1] for key in stack_config(environment)}


def test_a_stack_value_the_app_would_refuse_fails_the_preview() -> None:
    with pytest.raises(config.ConfigError, match=r"config 'exportSchedule'.*EXPORT_SCHEDULE"):
        config.app_settings_for("dev", {"exportSchedule": "daily at two"})
    with pytest.raises(
        config.ConfigError,
        match="config 'exportTables' / 'exportPublishTables': setting EXPORT_PUBLISH_TABLES names",
    ):
        config.app_settings_for("dev", {"exportPublishTables": "orders"})
    # Deployed before and failed at start: the stack's publish list names a table no longer exported.
    with pytest.raises(config.ConfigError, match="'exportTables' / 'exportPublishTables'"):
        config.app_settings_for("prod", {"exportTables": "orders"})
    assert (
        config.app_settings_for("prod", {"exportTables": "orders", "exportPublishTables": ""})[
            "EXPORT_TABLES"
        ]
        == "orders"
    )


# -- each rule catches what it is for --------------------------------------------------------------


def test_the_rules_fail_when_broken() -> None:
    assert written_but_unread({"SCORING_QUEUE": "x", "SCORING_QUEU": "typo"}) == [
        "SCORING_QUEU: written by the stack, read by nobody (not in the catalog)"
    ]
    assert written_but_unread({"SCORING_THREADS": "4"}) == [
        "SCORING_THREADS: written by the stack, but the catalog says default"
    ]
    assert written_but_unread({"DataLake__blobServiceUri": "https://x"}) == []
    assert written_but_unread({"AzureWebJobsStorage__blobServiceUrl": "https://x"}) == [
        "AzureWebJobsStorage__blobServiceUrl: written by the stack, read by nobody (not in the catalog)"
    ]
    local = set(defaults())
    assert read_but_unprovided({"EXPORT_NEW_KNOB"}, {}, local) == [
        "EXPORT_NEW_KNOB: read by the app, provided by neither the stacks nor the local defaults"
    ]
    assert read_but_unprovided({"DB_CONNECTION_STRING"}, {"dev": {"MODEL_NAME"}}, local) == [
        "DB_CONNECTION_STRING: required, but stack dev does not write it"
    ]
    assert read_but_unprovided({"SCORING_QUEUE"}, {}, local - {"SCORING_QUEUE"}) == [
        "SCORING_QUEUE: read by the app, missing from the local defaults"
    ]
    assert disagreeing_defaults(
        {"example": {"SCORING_QUEUE": "other"}}, {"SCORING_QUEUE": "scoring-shards"}
    ) == ["SCORING_QUEUE: example has 'other', the catalog says 'scoring-shards'"]


def test_deploy_md_names_every_config_key_a_stack_may_set() -> None:
    """A stack's config keys are documented where operators look (docs/deploy.md's table)."""
    from tests.support import REPO

    text = (REPO / "docs" / "deploy.md").read_text()
    missing = sorted(s.stack_key for s in CATALOG if s.stack_key and f"`{s.stack_key}`" not in text)
    assert missing == []
