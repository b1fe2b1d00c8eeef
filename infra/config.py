"""A stack's settings, read once from Pulumi config and validated before any resource exists.

Everything the components need arrives through `StackConfig`, so a typo in `Pulumi.prod.yaml`
stops `pulumi preview` with a message naming the key, not an Azure error twenty minutes in.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import pulumi

from functions.settings import SettingsError, load_settings
from functions.settings.catalog import CATALOG, STACK_NAME, Cloud, Kind, Setting, setting
from infra.components.alert_queries import MonitoringThresholds
from lake.contract import DATA_LAKE
from model.registry import STAGES

ENVIRONMENTS = STAGES  # one stack per stage of the model registry: dev, preprod, prod
PROJECT = "mlops-azure-functions"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CIDR = re.compile(r"^\d{1,3}(\.\d{1,3}){3}(/\d{1,2})?$")
_LOCATION = re.compile(r"^[a-z]+[a-z0-9]*$")
_INSTANCE_MEMORY_MB = (512, 2048, 4096)
_PERIOD_DAYS = {"day": 1, "week": 7, "month": 31}  # MONITOR_PERIOD -> its longest length in days
_PRINCIPAL_TYPES = ("User", "ServicePrincipal", "Group")


class ConfigError(ValueError):
    """A stack setting is missing or invalid; the message names the key."""


@dataclass(frozen=True)
class Sizing:
    """What a stack may spend: Flex Consumption scale and telemetry retention."""

    max_instances: int = 10
    instance_memory_mb: int = 2048
    log_retention_days: int = 30


# The settings a stack writes from its config: every `Cloud.VALUE` entry of the settings catalog.
STACK_SETTINGS: tuple[Setting, ...] = tuple(s for s in CATALOG if s.cloud is Cloud.VALUE)


@dataclass(frozen=True)
class AppSettings:
    """The app settings a stack writes from its config, by setting name, in catalog order.

    Built by `app_settings_for` from the settings catalog (functions/settings/catalog.py): the
    stack's config key when set, else the catalog's cloud value, else the app's own default.
    """

    values: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.values[name]

    @property
    def publishes_for_scoring(self) -> bool:
        return bool(self.values["EXPORT_PUBLISH_TABLES"].strip())


def _stack_value(setting: Setting, environment: str, raw: Mapping[str, str]) -> str:
    given = raw.get(setting.stack_key) if setting.stack_key else None
    if given is not None and (given != "" or setting.kind is Kind.LIST):  # an empty list means "none"
        return given
    fallback = setting.cloud_value if setting.cloud_value is not None else setting.default
    assert fallback is not None, f"catalog: {setting.name} is written by stacks but has no value"
    return environment if fallback == STACK_NAME else fallback


def app_settings_for(environment: str, raw: Mapping[str, str]) -> AppSettings:
    """The stack's app settings, checked by the app's own parser: what `preview` accepts, the app loads."""
    values = {setting.name: _stack_value(setting, environment, raw) for setting in STACK_SETTINGS}
    placeholders = {
        f"{DATA_LAKE}__blobServiceUri": "https://stack.blob.core.windows.net",
        "DB_CONNECTION_STRING": "-",
        # a Cloud.RESOURCE setting: the stack's own workspace id, written by the FunctionApp component
        "RETRAIN_WORKSPACE": "/subscriptions/-/resourceGroups/-/providers/"
        "Microsoft.MachineLearningServices/workspaces/-",
    }
    try:
        load_settings({**placeholders, **values})
    except SettingsError as error:
        named = set(re.findall(r"\b[A-Z][A-Z_]+[A-Z]\b", str(error)))  # the settings the message names
        keys = [f"'{s.stack_key}'" for s in STACK_SETTINGS if s.stack_key and s.name in named]
        where = f"config {' / '.join(keys)}" if keys else "the stack's app settings"
        raise ConfigError(f"{where}: {error}") from None
    return AppSettings(values)


def default_app_settings(environment: str = "prod") -> AppSettings:
    """A stack's app settings when its config sets none of them."""
    return app_settings_for(environment, {})


@dataclass(frozen=True)
class StackConfig:
    environment: str
    prefix: str
    location: str
    data_scientists_group: str
    ml_engineers_group: str
    alert_emails: tuple[str, ...]
    network_isolation: bool = False
    allowed_ip_ranges: tuple[str, ...] = ()
    export_deadline_hour: int = 4
    deployer_principal_type: str = "User"
    sizing: Sizing = field(default_factory=Sizing)
    app: AppSettings = field(default_factory=default_app_settings)
    monitoring: MonitoringThresholds = field(default_factory=MonitoringThresholds)
    db_connection_string: pulumi.Output[str] | None = None

    @property
    def tags(self) -> dict[str, str]:
        return {"project": PROJECT, "environment": self.environment, "managed-by": "pulumi"}


def _text(raw: Mapping[str, str], key: str, default: str | None = None) -> str:
    value = raw.get(key)
    if value is None or value == "":
        if default is None:
            raise ConfigError(f"config '{key}' is required: pulumi config set {key} <value>")
        return default
    return value


def _int(raw: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    text = _text(raw, key, str(default))
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"config '{key}' must be a whole number, got {text!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"config '{key}' must be between {low} and {high}, got {value}")
    return value


def _float(raw: Mapping[str, str], key: str, default: float, low: float, high: float) -> float:
    text = _text(raw, key, str(default))
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"config '{key}' must be a number, got {text!r}") from None
    if not low < value < high:  # also refuses nan and inf
        raise ConfigError(f"config '{key}' must be above {low:g} and below {high:g}, got {text}")
    return value


def monitoring_thresholds(raw: Mapping[str, str], app: AppSettings) -> MonitoringThresholds:
    """The model alerts' thresholds, each bounded by what its alert can see.

    The quality alerts read what the monitor re-emits each day for the periods of its last
    MONITOR_LOOKBACK_DAYS (the app's default: stacks do not set it), so K consecutive periods and
    M days must fit inside that lookback, or the alert could never (or would always) fire.
    """
    defaults = MonitoringThresholds()
    lookback = int(setting("MONITOR_LOOKBACK_DAYS").default or 0)
    period = app["MONITOR_PERIOD"]
    most = max(1, lookback // _PERIOD_DAYS[period])
    gaps = _int(raw, "alertEstimateGapPeriods", defaults.estimate_gap_periods, 1, 400)
    if gaps > most:
        raise ConfigError(
            f"config 'alertEstimateGapPeriods' must be at most {most} with monitorPeriod {period}: the "
            f"monitor recomputes the last {lookback} days (MONITOR_LOOKBACK_DAYS), {most} whole "
            f"period(s), so {gaps} periods in a row are never in view; got {gaps}"
        )
    stale = _int(raw, "alertQualityStaleDays", defaults.quality_stale_days, 1, 400)
    if stale >= lookback:
        raise ConfigError(
            f"config 'alertQualityStaleDays' must be below {lookback}: the monitor recomputes the last "
            f"{lookback} days (MONITOR_LOOKBACK_DAYS), older periods are out of view; got {stale}"
        )
    return MonitoringThresholds(
        # Two days of telemetry hold two daily batches: a larger N needs more batches a day.
        drift_batches=_int(raw, "alertDriftBatches", defaults.drift_batches, 1, 500),
        # A ROC AUC is in (0, 1): a tolerance of 0.5 or more could never be crossed.
        quality_tolerance=_float(raw, "alertQualityTolerance", defaults.quality_tolerance, 0.0, 0.5),
        estimate_gap_periods=gaps,
        quality_stale_days=stale,
    )


def _bool(raw: Mapping[str, str], key: str, default: bool) -> bool:
    text = _text(raw, key, str(default)).lower()
    if text not in {"true", "false"}:
        raise ConfigError(f"config '{key}' must be true or false, got {text!r}")
    return text == "true"


def _choice(raw: Mapping[str, str], key: str, default: str, allowed: tuple[str, ...]) -> str:
    value = _text(raw, key, default)
    if value not in allowed:
        raise ConfigError(f"config '{key}' must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _list(raw: Mapping[str, str], key: str) -> tuple[str, ...]:
    text = raw.get(key) or "[]"
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        items = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise ConfigError(f"config '{key}' must be a list of strings")
    return tuple(items)


def check_ip_range(cidr: str) -> str | None:
    """Why storage network rules would refuse `cidr` (None when they accept it).

    Azure Storage IP rules take public IPv4 addresses or CIDR ranges only: private ranges (RFC
    1918) are not allowed, and "/31" or "/32" ranges are not supported but must be written as the
    plain address ("Azure Storage firewall rules", learn.microsoft.com/azure/storage/common/
    storage-network-security-limitations#restrictions-for-ip-network-rules). Key Vault takes the
    same list, so one check covers both.
    """
    if not _CIDR.match(cidr):
        return "is not an IPv4 address or CIDR range"
    try:
        network = ipaddress.IPv4Network(cidr, strict=True)
    except ValueError as exc:
        return f"is not a valid IPv4 range ({exc})"
    if "/" in cidr and network.prefixlen in (31, 32):
        return f"uses /{network.prefixlen}, which storage rules refuse: list each address without a prefix"
    if any(network.overlaps(block) for block in _RFC1918):
        return "is or holds a private range (RFC 1918): storage IP rules accept public addresses only"
    if network.is_loopback or network.is_link_local or network.is_multicast or network.is_unspecified:
        return "is not a public internet range"
    return None


_RFC1918 = tuple(ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _guid(raw: Mapping[str, str], key: str) -> str:
    value = _text(raw, key).lower()
    if not _GUID.match(value):
        raise ConfigError(f"config '{key}' must be an Entra ID object id (a GUID), got {value!r}")
    return value


def parse(environment: str, raw: Mapping[str, str]) -> StackConfig:
    """Validate plain config values (`raw` keys without the project namespace)."""
    if environment not in ENVIRONMENTS:
        raise ConfigError(f"environment must be one of {', '.join(ENVIRONMENTS)}, got {environment!r}")
    prefix = _text(raw, "prefix")
    if not _PREFIX.match(prefix) or "--" in prefix:
        raise ConfigError(
            f"config 'prefix' must be 3-40 lowercase letters, digits or single hyphens, "
            f"starting with a letter, got {prefix!r}"
        )
    location = _text(raw, "location")
    if not _LOCATION.match(location):
        raise ConfigError(f"config 'location' must be an Azure region name like westeurope, got {location!r}")
    emails = _list(raw, "alertEmails")
    if not emails:
        raise ConfigError("config 'alertEmails' needs at least one address: alerts must reach somebody")
    for email in emails:
        if not _EMAIL.match(email):
            raise ConfigError(f"config 'alertEmails' has an invalid address {email!r}")
    ip_ranges = _list(raw, "allowedIpRanges")
    for cidr in ip_ranges:
        if problem := check_ip_range(cidr):
            raise ConfigError(f"config 'allowedIpRanges': {cidr!r} {problem}")
    memory = _int(raw, "instanceMemoryMb", Sizing.instance_memory_mb, 512, 4096)
    if memory not in _INSTANCE_MEMORY_MB:
        raise ConfigError(f"config 'instanceMemoryMb' must be one of {_INSTANCE_MEMORY_MB}, got {memory}")
    app = app_settings_for(environment, raw)
    return StackConfig(
        environment=environment,
        prefix=prefix,
        location=location,
        data_scientists_group=_guid(raw, "dataScientistsGroupId"),
        ml_engineers_group=_guid(raw, "mlEngineersGroupId"),
        alert_emails=emails,
        network_isolation=_bool(raw, "networkIsolation", environment == "prod"),
        allowed_ip_ranges=ip_ranges,
        export_deadline_hour=_int(raw, "exportDeadlineHour", 4, 1, 23),
        deployer_principal_type=_choice(raw, "deployerPrincipalType", "User", _PRINCIPAL_TYPES),
        sizing=Sizing(
            max_instances=_int(raw, "maxInstances", Sizing.max_instances, 1, 1000),
            instance_memory_mb=memory,
            log_retention_days=_int(raw, "logRetentionDays", Sizing.log_retention_days, 30, 730),
        ),
        app=app,
        monitoring=monitoring_thresholds(raw, app),
    )


CONFIG_KEYS = (
    "prefix",
    "location",
    "dataScientistsGroupId",
    "mlEngineersGroupId",
    "alertEmails",
    "networkIsolation",
    "allowedIpRanges",
    "exportDeadlineHour",
    "deployerPrincipalType",
    "maxInstances",
    "instanceMemoryMb",
    "logRetentionDays",
    "alertDriftBatches",
    "alertQualityTolerance",
    "alertEstimateGapPeriods",
    "alertQualityStaleDays",
    *(s.stack_key for s in STACK_SETTINGS if s.stack_key),
)


def load() -> StackConfig:
    """Read the current stack's config (under `pulumi up`, or under the mocks of the plan and tests)."""
    config = pulumi.Config()
    raw = {key: value for key in CONFIG_KEYS if (value := config.get(key)) is not None}
    environment = config.get("environment") or pulumi.get_stack()
    parsed = parse(environment, raw)
    secret = config.get_secret("dbConnectionString")
    if secret is None:
        raise ConfigError(
            "config 'dbConnectionString' is required (stored encrypted): "
            "pulumi config set --secret dbConnectionString '<ODBC connection string>'"
        )
    return replace(parsed, db_connection_string=secret)
