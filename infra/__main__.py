"""Entry point `pulumi up` runs (Pulumi.yaml: `main: infra/`); the program itself is infra/program.py."""

import sys
from pathlib import Path

# Pulumi runs this folder as a script: make the repository root importable (infra, functions).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from infra import config
from infra.program import build

for key, value in build(config.load()).items():
    pulumi.export(key, value)
