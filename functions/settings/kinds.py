"""What a setting is: how its text is read, who reads it, and how each environment gets its value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a setting's text is read (functions/settings/values.py parses each kind)."""

    TEXT = "text"
    LIST = "list"  # comma-separated names; empty means none
    JSON = "json"
    INT = "int"
    NUMBER = "number"  # a decimal number: 0.1, 5e-2
    WORKERS = "workers"  # a whole number, or `auto`: one per core, at most 4
    SIZE = "size"  # bytes: 1048576, 512KiB, 64MB, 10GiB
    BOOL = "bool"
    CHOICE = "choice"
    NCRONTAB = "ncrontab"  # six fields, seconds first, or a TimeSpan hh:mm:ss
    QUEUE = "queue"  # a storage queue name
    CONNECTION = "connection"  # a Functions connection prefix: a connection string or `{name}__*` URIs


class Reader(StrEnum):
    APP = "app"  # parsed by functions.settings at start
    HOST = "host"  # read by the Functions host itself (connections, telemetry, the worker)


class Cloud(StrEnum):
    """How the Pulumi program provides a setting in Azure."""

    DEFAULT = "default"  # not written: the app's default applies in every stack
    VALUE = "value"  # written: the stack's config (`stack_key`) if set, else `cloud_value`, else the default
    RESOURCE = "resource"  # written from the stack's resources (endpoints, Key Vault reference, telemetry)
    PLATFORM = "platform"  # never an app setting in Azure (Flex Consumption sets it from the site config)


STACK_NAME = "{stack}"  # a cloud value that stands for the stack's own name (dev, preprod, prod)
AUTO = "auto"


@dataclass(frozen=True)
class Setting:
    name: str
    kind: Kind
    meaning: str
    default: str | None = None  # as an app setting's text; None: required, or not read by the app
    minimum: float | None = None  # inclusive bounds of INT, WORKERS and NUMBER
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    reader: Reader = Reader.APP
    cloud: Cloud = Cloud.DEFAULT
    stack_key: str | None = None  # the Pulumi config key that sets it per stack
    cloud_value: str | None = None  # what stacks write when their config is silent (else the default)
    local: str | None = None  # the local stack's value when it differs from the default
    hint: str | None = None  # added to the error when a value is refused

    @property
    def required(self) -> bool:
        return self.reader is Reader.APP and self.default is None

    def local_value(self) -> str | None:
        return self.local if self.local is not None else self.default
