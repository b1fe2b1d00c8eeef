"""Blue/green deployments of the real-time endpoint: `{model}/deployments.json`, changed only here.

Flex Consumption has no deployment slots, so the two colours live in the registry: `blue` and
`green` each name a version, green takes an integer share of the traffic (blue the rest) and a
shadow share of the requests is also scored by the other colour, for comparison only. The
routing rule (model/realtime/routing.py) gives green the caller buckets below its weight, so
raising green's weight only ever moves callers from blue to green.

Before the first change there is no file: blue serves the version of the stack's stage
(MODEL_STAGE) and green nothing, so the endpoint works as soon as a version is promoted. Every
change is a conditional write (the token read before it), keeps the last HISTORY_LIMIT documents,
and goes into the promotion log (`kind: "deployment"`) with who, why and the evidence.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from model.registry.errors import ConcurrentUpdateError, NotFoundError, RegistryError
from model.registry.layout import deployments_file
from model.registry.records import HISTORY_LIMIT, actor_of, now

if TYPE_CHECKING:
    from model.registry.registry import Registry

BLUE, GREEN = COLOURS = ("blue", "green")
DEPLOYMENTS_FORMAT = 1
DEPLOYMENT_KIND = "deployment"  # the promotion log's kind for every change made here
ACTIONS = ("set", "traffic", "swap", "rollback", "auto_rollback")


class DeploymentError(RegistryError):
    """A deployment change that would leave the endpoint in an impossible or unsafe state."""


def check_colour(colour: str) -> str:
    if colour not in COLOURS:
        raise DeploymentError(f"unknown deployment {colour!r}: deployments are {', '.join(COLOURS)}")
    return colour


def check_percent(value: object, what: str) -> int:
    """An integer percentage 0..100 (Azure ML's online endpoints take integers too)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise DeploymentError(f"{what} must be a whole percentage from 0 to 100, not {value!r}")
    return value


@dataclass(frozen=True)
class DeploymentState:
    """Which version each colour serves, green's share of the traffic, the shadow share."""

    blue: str | None
    green: str | None
    green_weight: int = 0
    shadow: int = 0
    explicit: bool = True  # False: no deployments.json yet, blue is the stage's version

    def version(self, colour: str) -> str | None:
        return self.blue if check_colour(colour) == BLUE else self.green

    def weight(self, colour: str) -> int:
        return self.green_weight if check_colour(colour) == GREEN else 100 - self.green_weight

    def other(self, colour: str) -> str:
        return GREEN if check_colour(colour) == BLUE else BLUE

    @property
    def live(self) -> tuple[str, ...]:
        """The colours that take traffic (a version and a weight above 0)."""
        return tuple(c for c in COLOURS if self.version(c) is not None and self.weight(c) > 0)

    def check(self) -> DeploymentState:
        check_percent(self.green_weight, "green's traffic")
        check_percent(self.shadow, "the shadow share")
        for colour in COLOURS:
            if self.weight(colour) > 0 and self.version(colour) is None:
                raise DeploymentError(
                    f"{colour} would take {self.weight(colour)} % of the traffic but serves no version: "
                    f"`python -m model deployments set VERSION --slot {colour}` first"
                )
        return self

    def describe(self) -> dict[str, Any]:
        return {
            colour: {"version": self.version(colour), "traffic": self.weight(colour)} for colour in COLOURS
        } | {"shadow": self.shadow}

    def summary(self) -> str:
        parts = [f"{c}=v{self.version(c) or '-'} {self.weight(c)}%" for c in COLOURS]
        return ", ".join(parts) + f", shadow {self.shadow}%"

    def to_document(self, model: str) -> dict[str, Any]:
        return {"format": DEPLOYMENTS_FORMAT, "model": model, "deployments": self.describe()}

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> DeploymentState:
        if document.get("format") != DEPLOYMENTS_FORMAT:
            raise DeploymentError(f"deployments.json has format {document.get('format')!r}, not 1")
        deployments = document.get("deployments") or {}
        versions = {c: (deployments.get(c) or {}).get("version") for c in COLOURS}
        state = cls(
            blue=None if versions[BLUE] is None else str(versions[BLUE]),
            green=None if versions[GREEN] is None else str(versions[GREEN]),
            green_weight=(deployments.get(GREEN) or {}).get("traffic", 0),
            shadow=deployments.get("shadow", 0),
        )
        return state.check()


# A change: the stored state and document (the one the write's token guards) -> the state to write.
Change = Callable[[DeploymentState, dict[str, Any] | None], DeploymentState]


class Deployments:
    """Read and change `{model}/deployments.json` in a registry."""

    def __init__(self, registry: Registry, name: str, stage: str) -> None:
        self.registry = registry
        self.name = name
        self.stage = stage  # the stack's MODEL_STAGE: what blue serves before the first change
        self.path = deployments_file(name)

    def implicit(self) -> DeploymentState:
        """The state before any change: blue serves the stage's version (None if it has none yet)."""
        try:
            return DeploymentState(self.registry.resolve(self.name, self.stage), None, explicit=False)
        except NotFoundError:
            return DeploymentState(None, None, explicit=False)

    def parse(self, raw: bytes | None) -> tuple[DeploymentState, dict[str, Any] | None]:
        if raw is None:
            return self.implicit(), None
        try:
            document = json.loads(raw)
        except json.JSONDecodeError as error:
            raise DeploymentError(f"{self.path} is not valid JSON ({error})") from None
        return DeploymentState.from_document(document), document

    def read(self) -> DeploymentState:
        return self.parse(self.registry.store.read(self.path))[0]

    def document(self) -> dict[str, Any] | None:
        """The stored document, history included (None before the first change)."""
        return self.parse(self.registry.store.read(self.path))[1]

    # ------------------------------------------------------------------ changes

    def set(self, version: str, colour: str = GREEN, *, actor: str | None = None,
            reason: str | None = None) -> DeploymentState:  # fmt: skip
        """Point `colour` at `version` (checked: it exists and its bytes match their sha256)."""
        check_colour(colour)
        resolved = self.registry.resolve(self.name, version)
        self.registry.load(self.name, resolved)  # IntegrityError for a damaged version: never deployed

        def change(state: DeploymentState, _document: dict[str, Any] | None) -> DeploymentState:
            return replace(state, **{colour: resolved})

        return self._change("set", change, actor, reason, None, resolved)

    def traffic(self, *, green: int | None = None, blue: int | None = None, shadow: int | None = None,
                actor: str | None = None, reason: str | None = None) -> DeploymentState:  # fmt: skip
        """Move the split (`green=10`, or `blue=90`: the other colour takes the rest) and/or the shadow."""
        if green is None and blue is None and shadow is None:
            raise DeploymentError("say what to change: green=N, blue=N and/or shadow=N")
        if green is not None and blue is not None and green + blue != 100:
            raise DeploymentError(f"blue={blue} and green={green} must add up to 100")

        def change(state: DeploymentState, _document: dict[str, Any] | None) -> DeploymentState:
            weight = state.green_weight
            if green is not None:
                weight = check_percent(green, "green's traffic")
            elif blue is not None:
                weight = 100 - check_percent(blue, "blue's traffic")
            return replace(state, green_weight=weight, shadow=state.shadow if shadow is None else shadow)

        return self._change("traffic", change, actor, reason, None)

    def swap(self, *, actor: str | None = None, reason: str | None = None) -> DeploymentState:
        """Green becomes blue once it takes all the traffic: no caller changes version."""

        def change(state: DeploymentState, _document: dict[str, Any] | None) -> DeploymentState:
            if state.green is None or state.green_weight != 100:
                raise DeploymentError(
                    f"swap once green takes all the traffic (now {state.summary()}): "
                    "`python -m model deployments traffic green=100` first"
                )
            return replace(state, blue=state.green, green=state.blue, green_weight=0)

        return self._change("swap", change, actor, reason, None)

    def rollback(self, *, reason: str, actor: str | None = None, evidence: dict[str, Any] | None = None,
                 automatic: bool = False) -> DeploymentState:  # fmt: skip
        """Every caller back on the version that served before: green to 0 % (and no shadow); if green
        already takes nothing and the last change was a swap, the swap is undone."""
        if not reason or not reason.strip():
            raise DeploymentError("a rollback needs a reason (it is recorded in the promotion log)")

        def change(state: DeploymentState, document: dict[str, Any] | None) -> DeploymentState:
            if state.green_weight > 0:
                return replace(state, green_weight=0, shadow=0)
            last = (document or {}).get("change") or {}
            if last.get("action") == "swap" and state.green is not None:
                return replace(state, blue=state.green, green=state.blue, green_weight=0, shadow=0)
            raise DeploymentError(f"nothing to roll back: green takes no traffic ({state.summary()})")

        action = "auto_rollback" if automatic else "rollback"
        return self._change(action, change, actor, reason, evidence)

    def _change(self, action: str, change: Change, actor: str | None, reason: str | None,
                evidence: dict[str, Any] | None, version: str | None = None) -> DeploymentState:  # fmt: skip
        raw, token = self.registry.store.read_with_token(self.path)
        before, current = self.parse(raw)
        after = replace(change(before, current), explicit=True).check()  # the document the token guards
        if before.explicit and after == before:
            return before  # nothing changes: nothing written, nothing logged
        actor = actor_of(actor)
        record = {"action": action, "at": now(), "actor": actor, "reason": (reason or "").strip() or None}
        history = [] if current is None else [*current.get("history", []), _without_history(current)]
        document = after.to_document(self.name) | {"change": record, "history": history[-HISTORY_LIMIT:]}
        try:
            self.registry.store.replace(self.path, json.dumps(document, indent=2).encode(), token)
        except ConcurrentUpdateError:
            raise ConcurrentUpdateError(
                f"{self.path} changed while this change was being prepared (someone else moved the "
                "deployments): `python -m model deployments show` and retry"
            ) from None
        self.registry.decisions.append(self.name, {
            "kind": DEPLOYMENT_KIND,
            "action": action,
            "stage": None,
            "version": version or after.green or after.blue,
            "actor": actor,
            "reason": record["reason"],
            "deployments": after.describe(),
            "before": before.describe(),
            "gate": None,
            "override": None,
            "previous": None,
        } | ({"evidence": evidence} if evidence else {}))  # fmt: skip
        return after


def _without_history(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "history"}
