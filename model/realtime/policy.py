"""The automatic rollback's thresholds, light enough for the settings module to import (no numpy).

The rules that use them: model/realtime/health.py. The ROLLBACK_* settings take their defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RollbackPolicy:
    """Thresholds of the automatic rollback (ROLLBACK_* settings; defaults here)."""

    window_minutes: int = 15
    min_requests: int = 50
    min_success: float = 0.99
    max_p99_ms: float = 250.0
    max_prediction_drift: float = 0.25
    failed_checks: int = 2
