"""The three stacks, synthesized once per test session under Pulumi's mocks (infra/synth.py)."""

from __future__ import annotations

from functools import cache

from infra.policies import Subject
from infra.synth import Resource, Synthesis, synthesize

STACKS = ("dev", "preprod", "prod")


@cache
def stack(name: str) -> Synthesis:
    return synthesize(name)


def subjects(synthesis: Synthesis) -> list[Subject]:
    return [Subject(r.type, r.azure_name, r.inputs) for r in synthesis.resources]


def by_type(synthesis: Synthesis, type_: str) -> list[Resource]:
    return synthesis.of_type(f"azure-native:{type_}")
