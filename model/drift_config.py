"""The drift report's thresholds, apart from the statistics: the settings catalog imports them.

Kept free of numpy and pandas so that reading the app's settings (which every process does,
the export's reading children too) does not load the scientific stack.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DriftConfig:
    """Every threshold of the drift report; the defaults and their sources are in docs/monitoring.md."""

    wasserstein: float = 0.1  # normalised W1 at or above which a numeric column drifted
    jensen_shannon: float = 0.1  # JS distance (base 2) at or above which a categorical column drifted
    small_batch_rows: int = 1000  # at or below: tests with false-discovery-rate control instead
    alpha: float = 0.05  # the false discovery rate (and the scores' own test level)
    drift_share: float = 0.5  # share of drifted features from which the dataset drifted
    weight_by_importance: bool = True  # weigh the share by reference.json's `importance`, if any
    noise_quantile: float = 0.95  # `detectable` of a distance: this quantile under no drift
    beyond_chance: bool = True  # a distance drifts only if it also exceeds its `detectable`
    simulations: int = 400  # batches drawn from the reference to find that quantile
    min_expected: float = 5.0  # chi-squared: rarer categories are pooled into one cell

    def __post_init__(self) -> None:
        for name in ("wasserstein", "jensen_shannon", "min_expected"):
            if getattr(self, name) <= 0:
                raise ValueError(f"DriftConfig.{name} must be > 0")
        for name in ("alpha", "drift_share", "noise_quantile"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"DriftConfig.{name} must be in (0, 1]")
        if not 0 <= self.small_batch_rows <= 10_000:
            raise ValueError("DriftConfig.small_batch_rows must be in [0, 10000] (exact KS p-values)")
        if self.simulations < 20:
            raise ValueError("DriftConfig.simulations must be >= 20")


DEFAULT_CONFIG = DriftConfig()
