"""The statistics of the drift report, on binned counts, with numpy only.

The deployed Function App computes drift while it scores and ships without scipy (decision 39),
so the few formulas it needs are here, each checked against scipy in tests/test_drift_stats.py:
- the Wasserstein distance and the Kolmogorov-Smirnov statistic between a reference and a batch
  counted on the same cells (model.reference.Sketch), both distributions taken as spread evenly
  inside an interval;
- the Jensen-Shannon distance (base 2, as Evidently) and Pearson's chi-squared test of
  homogeneity (a 2 x k table: reference rows against batch rows);
- the p-values: Kolmogorov's two-sided distribution (Durbin's matrix as Marsaglia, Tsang and Wang
  compute it; in the tail twice Smirnov's exact one-sided law, as scipy does), the chi-squared
  survival function for whole degrees of freedom (a closed form), and the Benjamini-Hochberg
  false-discovery-rate control across features;
- the value a statistic reaches by chance: a quantile by simulation (batches of the same size
  drawn from the reference) or the critical value of a test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np

_KS_TAIL = 2.2  # n * d**2 from which 2 * Smirnov is the two-sided tail to ~1e-8 (scipy's cut-off)
_KS_EXACT_MAX_N = 10_000  # above, Kolmogorov's limit law (Stephens' small-sample correction)


# ------------------------------------------------------------------------------------ distances


def cdf_gap(reference: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Batch CDF minus reference CDF at the upper end of every cell (shares on the last axis)."""
    return np.cumsum(batch - reference, axis=-1)


def ks_statistic(reference: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """The largest CDF gap where both CDFs are known exactly: the cell ends (a lower bound of the raw
    samples' statistic, equal to it when every value is a knot)."""
    return np.max(np.abs(cdf_gap(reference, batch)), axis=-1)


def wasserstein_interior(
    widths: np.ndarray,
    reference: np.ndarray,
    reference_lean: np.ndarray,
    batch: np.ndarray,
    batch_lean: np.ndarray,
) -> np.ndarray:
    """W1 = integral of |F_batch - F_reference| over the interior cells (the tails are the caller's).

    Per cell: its width w, each side's share and "lean" (share times the mean place of its rows in
    the cell, 0 at the lower end, 1 at the upper). With gaps a and b of the CDFs at the cell's ends,
    the integral of the gap over the cell is exactly D = w (b - lean_batch + lean_reference). When a
    and b have the same sign, |D| is taken (exact unless the CDFs cross twice inside the cell); when
    they differ, the gap is taken to fall linearly to zero and on to b, where D puts the crossing:
    the spread-evenly case (lean = share / 2) gives the textbook w (a^2 + b^2) / (2 (|a| + |b|)).
    The first and last cells (the tails) are left out; the arrays are per cell, cells on the last axis.
    """
    gap = cdf_gap(reference, batch)
    start, end = gap[..., :-2], gap[..., 1:-1]
    width = widths[1:-1]
    signed = width * (end - batch_lean[..., 1:-1] + reference_lean[1:-1])
    slope = start - end
    where = np.divide(2 * signed / np.where(width > 0, width, 1) - end, slope, out=np.zeros_like(slope),
                      where=slope != 0)  # fmt: skip
    where = np.clip(where, 0.0, 1.0)
    crossing = np.maximum(np.abs(signed), width * (np.abs(start) * where + np.abs(end) * (1 - where)) / 2)
    return np.sum(np.where(start * end >= 0, np.abs(signed), crossing), axis=-1)


def jensen_shannon(reference: np.ndarray, batch: np.ndarray) -> np.ndarray:
    """Jensen-Shannon distance, log base 2 (0 = same shares, 1 = no category in common)."""
    p = reference / np.sum(reference, axis=-1, keepdims=True)
    q = batch / np.sum(batch, axis=-1, keepdims=True)
    p, q = np.broadcast_arrays(p, q)
    middle = (p + q) / 2

    def _kl(x: np.ndarray) -> np.ndarray:
        ratio = np.divide(x, middle, out=np.ones_like(x), where=x > 0)
        return np.sum(x * np.log2(ratio), axis=-1)

    return np.sqrt(np.maximum((_kl(p) + _kl(q)) / 2, 0.0))


def chi2_homogeneity(
    reference: np.ndarray, batch: np.ndarray, min_expected: float = 5.0
) -> tuple[float, int, int]:
    """Pearson's chi-squared of the 2 x k table (reference counts, batch counts): (chi2, dof, pooled).

    A two-sample test, so a category the reference never saw has a finite, honest weight (the
    goodness-of-fit form divides by a zero expectation). Categories the batch is expected to hold
    fewer than `min_expected` times are pooled into one cell (Cochran's rule), unseen ones with them.
    """
    reference, batch = np.asarray(reference, dtype=np.float64), np.asarray(batch, dtype=np.float64)
    columns = reference + batch
    keep = columns > 0
    reference, batch, columns = reference[keep], batch[keep], columns[keep]
    expected_batch = columns * batch.sum() / columns.sum()
    rare = expected_batch < min_expected
    pooled = int(rare.sum())
    if pooled > 1:
        reference = np.append(reference[~rare], reference[rare].sum())
        batch = np.append(batch[~rare], batch[rare].sum())
    table = np.vstack([reference, batch])
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    return float(np.sum((table - expected) ** 2 / expected)), table.shape[1] - 1, pooled


# ------------------------------------------------------------------------------------ p-values


def _log_factorials(n: int) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])


def smirnov_sf(d: float, n: int) -> float:
    """P(D+_n >= d), Smirnov's one-sided statistic, exactly (Birnbaum and Tingey, 1951)."""
    if d <= 0:
        return 1.0
    if d >= 1:
        return 0.0
    j = np.arange(0, math.floor(n * (1 - d)) + 1)
    below, above = 1 - d - j / n, d + j / n
    j, below, above = j[below > 0], below[below > 0], above[below > 0]
    logs = _log_factorials(n)
    terms = logs[n] - logs[j] - logs[n - j] + (n - j) * np.log(below) + (j - 1) * np.log(above)
    if len(terms) == 0:
        return 0.0
    top = float(terms.max())
    return float(min(1.0, d * math.exp(top) * np.sum(np.exp(terms - top))))


def _durbin_cdf(d: float, n: int) -> float:
    """P(D_n < d) by Durbin's matrix (Marsaglia, Tsang and Wang 2003), powers rescaled as they grow."""
    k = int(n * d) + 1
    m = 2 * k - 1
    h = k - n * d
    rows, cols = np.indices((m, m))
    steps = rows - cols + 1
    matrix = (steps >= 0).astype(np.float64)
    powers = h ** np.arange(1, m + 1)
    matrix[:, 0] -= powers
    matrix[m - 1, :] -= powers[::-1]
    if 2 * h - 1 > 0:
        matrix[m - 1, 0] += (2 * h - 1) ** m
    factorials = np.exp(-_log_factorials(m + 1))
    matrix = np.where(steps > 0, matrix * factorials[np.clip(steps, 0, m + 1)], matrix)
    result, log_scale = np.eye(m), 0.0
    base, base_log = matrix, 0.0
    power = n
    while power:
        if power & 1:
            result = result @ base
            top = float(np.abs(result).max()) or 1.0
            result, log_scale = result / top, log_scale + base_log + math.log(top)
        power >>= 1
        if power:
            base = base @ base
            top = float(np.abs(base).max()) or 1.0
            base, base_log = base / top, 2 * base_log + math.log(top)
    value = result[k - 1, k - 1]
    if value <= 0:
        return 0.0
    return float(min(1.0, math.exp(math.log(value) + log_scale + math.lgamma(n + 1) - n * math.log(n))))


def _kolmogorov_limit_sf(d: float, n: int) -> float:
    root = math.sqrt(n)
    lam = (root + 0.12 + 0.11 / root) * d
    total = sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return float(min(1.0, max(0.0, 2 * total)))


def ks_sf(d: float, n: int) -> float:
    """P(D_n >= d) for the two-sided one-sample statistic (scipy.stats.kstwo.sf).

    A two-sample test of a batch of n rows against a reference of N rows uses n N / (n + N),
    rounded, as scipy's ks_2samp(method="asymp") does.
    """
    if n < 1 or d <= 0 or n * d <= 0.5:
        return 1.0
    if d >= 1:
        return 0.0
    if d >= 0.5 or n * d * d >= _KS_TAIL:
        return min(1.0, 2 * smirnov_sf(d, n))
    if n > _KS_EXACT_MAX_N:
        return _kolmogorov_limit_sf(d, n)
    return max(0.0, 1.0 - _durbin_cdf(d, n))


def chi2_sf(x: float, dof: int) -> float:
    """P(X >= x) for chi-squared with whole `dof` (a finite sum of Poisson-like terms)."""
    if dof <= 0:
        return 1.0 if x <= 0 else 0.0
    if x <= 0:
        return 1.0
    half = x / 2
    if dof % 2 == 0:
        j = np.arange(dof // 2)
        logs = j * math.log(half) - _log_factorials(dof // 2)[: dof // 2] - half
        return float(min(1.0, np.sum(np.exp(logs))))
    j = np.arange(1, (dof - 1) // 2 + 1)
    log_gamma = math.lgamma(0.5) + np.cumsum(np.log(j - 0.5))  # log Gamma(j + 1/2)
    logs = (j - 0.5) * math.log(half) - half - log_gamma
    return float(min(1.0, math.erfc(math.sqrt(half)) + np.sum(np.exp(logs))))


def _decreasing_root(sf: Callable[[float], float], level: float, low: float, high: float) -> float:
    """x in [low, high] with sf(x) = level, for a decreasing sf (bisection to ~1e-10 relative)."""
    for _ in range(200):
        middle = (low + high) / 2
        if sf(middle) > level:
            low = middle
        else:
            high = middle
        if high - low <= 1e-10 * max(high, 1e-12):
            break
    return high


@lru_cache(maxsize=4096)
def ks_critical(n: int, level: float) -> float:
    """The smallest D a batch of (effective) size n needs for a p-value <= level.

    At the levels a test uses (<= 0.05) the two-sided tail is twice Smirnov's one-sided one to
    ~1e-5 relative in D, and that is fast to invert; above, the full distribution.
    """
    if level > 0.05 or n > _KS_EXACT_MAX_N:
        return _decreasing_root(lambda d: ks_sf(d, n), level, 0.0, 1.0)
    return _decreasing_root(lambda d: 2 * smirnov_sf(d, n), level, 0.0, 1.0)


@lru_cache(maxsize=4096)
def chi2_critical(dof: int, level: float) -> float:
    """The smallest chi-squared with `dof` degrees of freedom whose p-value is <= level."""
    high = max(1.0, 2.0 * dof)
    while chi2_sf(high, dof) > level:
        high *= 2
    return _decreasing_root(lambda x: chi2_sf(x, dof), level, 0.0, high)


def benjamini_hochberg(p_values: list[float], alpha: float) -> tuple[list[float], float]:
    """(q-values, cut-off): reject the hypotheses with p <= cut-off, which is q <= alpha.

    Controls the expected share of false alarms among the features flagged at `alpha`. The cut-off
    is k alpha / m for the largest k with p_(k) <= k alpha / m, and alpha / m when there is none:
    the p-value a feature needs to be flagged on its own.
    """
    m = len(p_values)
    if m == 0:
        return [], alpha
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    ranks = np.arange(1, m + 1)
    ranked = p[order]
    adjusted = np.minimum.accumulate((ranked * m / ranks)[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    passing = np.nonzero(ranked <= alpha * ranks / m)[0]
    k = int(passing[-1]) + 1 if len(passing) else 0
    return q.tolist(), alpha * max(k, 1) / m


# ------------------------------------------------------------------------- what chance alone gives


def null_quantile(
    statistic: Callable[[np.ndarray], np.ndarray],
    shares: np.ndarray,
    rows: int,
    quantile: float,
    simulations: int,
    seed: int,
) -> float:
    """The `quantile` of `statistic` over batches of `rows` rows drawn from `shares` itself.

    The statistic receives the simulated batches' shares (one per row of a matrix), on the same
    cells as the real batch: the same estimator, the same binning, only chance differs. Seeded,
    so one batch's report does not depend on when, or in how many shards, it was computed.
    """
    p = np.asarray(shares, dtype=np.float64)
    p = p / p.sum()
    counts = np.random.default_rng(seed).multinomial(rows, p, size=simulations)
    return float(np.quantile(statistic(counts / rows), quantile))
