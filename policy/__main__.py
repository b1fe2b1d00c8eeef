"""CrossGuard policy pack: `pulumi preview --policy-pack policy/` enforces infra/policies.py."""

import sys
from pathlib import Path

# The pack runs from policy/; the rules live in the project's `infra` package beside it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import EnforcementLevel, PolicyPack

from infra.policy_pack import PACK_NAME, build_policies

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=build_policies())
