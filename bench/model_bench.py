"""Benchmark: score the same 1,000,000 rows with ONNX Runtime (the serving path) and scikit-learn.

    .venv/bin/python -m bench.model_bench [--rows N] [--repeat K] [--chunk-rows N] [--markdown PATH]
    .venv/bin/python -m bench.model_bench --model-dir DIR      # an existing model folder, ONNX only

Everything runs in ONE process, on the SAME rows: the bank CSV (36,000 rows, in time order) tiled
to `--rows` rows, `y` and `duration` dropped, engineered by `model.train._features` (float32
numerics, exactly what training and ONNX Runtime see).

For each model family (logreg, hgb, rf on feature set `no_calendar` by default) the script fits
`CANDIDATES[family].build(...)` on the first 80 % of the 36,000 rows exactly as `model.train.train`
does, converts it with `model.onnx_export.convert_checked` (the registration parity check), and
loads the bytes with `model.serving.load_bytes` - so the scikit-learn pipeline and the ONNX model
are the same model, in the same process. Unless `--no-train-check`, it also runs
`model.train.train(TrainConfig(..., candidates=(family,), feature_sets=(set,)))` into a temporary
folder and checks that the `model.onnx` training writes is byte-identical to the one benchmarked.

Measured per family:

  batch     rows/s of `LoadedModel.probabilities` (ONNX feed built from the DataFrame included) in
            chunks of `--chunk-rows`, intra_op threads = `--threads`, against `pipeline.predict_proba`
            on the same rows, in one call and in the same chunks. Best of `--repeat` interleaved
            rounds. The two must agree: the max absolute difference of P(subscribe) is printed.
  latency   p50/p99 of 1,000 one-row calls after 50 warm-up calls: ONNX with a session of
            intra_op_num_threads=1 (one thread per one-row call), feed building included; sklearn
            `predict_proba` on the same one-row DataFrames.

Targets (issue 3), printed as MET/MISSED per family: ONNX >= 1.5x sklearn's rows/s in batch (against
the faster of sklearn's two ways); ONNX one-row p50 < 0.5 ms. A family that misses the batch target
is investigated (`--investigate auto`): ONNX Runtime session options, threads and chunk sizes on
`--investigate-rows` rows, plus where the session's time goes (ORT's profiler, per operator).

It also reports the process's peak RSS and the import time of `model.serving` and
`sklearn.ensemble`, each in a fresh interpreter. A missed target is reported, not raised: the exit
status is non-zero only when something fails to run.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.common import command_line, emit, load_average, machine_facts, positive_int, run_logged

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT / "data" / "bank_marketing" / "bank_marketing.csv"
DEFAULT_FAMILIES = ("logreg", "hgb", "rf")
DEFAULT_FEATURE_SET = "no_calendar"

# Project targets, stated in issue 3.
TARGET_BATCH_SPEEDUP = 1.5
TARGET_P50_MS = 0.5

IMPORT_MODULES = ("model.serving", "sklearn.ensemble")
IMPORT_RUNS = 3

log = logging.getLogger("bench.model_bench")


# ------------------------------------------------------------------------------------------------
# Data and models
# ------------------------------------------------------------------------------------------------


@dataclass
class Rows:
    """The benchmark rows (tiled) and the 36,000 labelled rows the models are trained on."""

    features: pd.DataFrame  # `rows` engineered rows, every column
    source_rows: int
    train: pd.DataFrame  # engineered, first (1 - validation_fraction) of the source rows
    valid: pd.DataFrame
    y_train: np.ndarray


def load_rows(data: Path, rows: int, validation_fraction: float) -> Rows:
    from model.data import load_labelled
    from model.schema import LEAKY_COLUMNS, TARGET
    from model.train import _features

    frame = load_labelled(data).frame  # time order, y as 0/1: what train() reads
    y = frame[TARGET].to_numpy()
    raw = frame.drop(columns=[TARGET, *LEAKY_COLUMNS])
    engineered = _features(raw)
    cut = int(len(frame) * (1 - validation_fraction))
    tiled = raw.iloc[np.arange(rows) % len(raw)].reset_index(drop=True)
    return Rows(
        features=_features(tiled),
        source_rows=len(frame),
        train=engineered.iloc[:cut],
        valid=engineered.iloc[cut:],
        y_train=y[:cut],
    )


@dataclass
class Subject:
    """One model under test: ONNX sessions through model.serving, and its sklearn pipeline if any."""

    label: str
    family: str
    feature_set: str
    columns: list[str]
    model_bytes: bytes = field(repr=False)
    batch: Any  # LoadedModel, intra_op threads = --threads
    single: Any  # LoadedModel, intra_op threads = 1
    pipeline: Any = None  # sklearn Pipeline, None with --model-dir
    parity: float | None = None  # convert_checked's check on the validation rows
    train_check: str = "not run"


def _load(metadata: dict[str, Any], model_bytes: bytes, threads: int) -> Any:
    """`model.serving.load_bytes`, checking the session really has `threads` intra-op threads."""
    from model import serving

    loaded = serving.load_bytes(metadata, model_bytes, threads)
    actual = loaded.session.get_session_options().intra_op_num_threads
    if actual != threads:
        raise RuntimeError(f"asked for a session with {threads} intra-op threads, got {actual}")
    return loaded


def build_subject(family: str, feature_set_name: str, rows: Rows, config: Any, threads: int) -> Subject:
    from model.artifacts import MODEL_FILE, sha256_bytes
    from model.features import CANDIDATES
    from model.onnx_export import convert_checked
    from model.schema import FEATURE_SETS, InputSchema

    feature_set = FEATURE_SETS[feature_set_name]
    columns = list(feature_set.columns)
    pipeline = CANDIDATES[family].build(feature_set, config.seed)
    started = time.perf_counter()
    pipeline.fit(rows.train[columns], rows.y_train)
    fit_seconds = time.perf_counter() - started
    schema = InputSchema.learn(rows.train, feature_set, config.unseen_policy)
    model_bytes, parity = convert_checked(pipeline, schema, rows.valid)
    metadata = {
        "name": f"bench-{family}",
        "version": "bench",
        "threshold": 0.5,
        "schema": schema.to_dict(),
        "artifacts": {MODEL_FILE: sha256_bytes(model_bytes)},
    }
    log.info(
        "%s/%s: fitted in %.1fs, ONNX %.0f KB, parity on %d validation rows %.1e",
        family,
        feature_set_name,
        fit_seconds,
        len(model_bytes) / 1024,
        len(rows.valid),
        parity,
    )
    return Subject(
        label=f"{family}/{feature_set_name}",
        family=family,
        feature_set=feature_set_name,
        columns=columns,
        model_bytes=model_bytes,
        batch=_load(metadata, model_bytes, threads),
        single=_load(metadata, model_bytes, 1),
        pipeline=pipeline,
        parity=parity,
    )


def load_subject(folder: Path, threads: int) -> Subject:
    from model.artifacts import MODEL_FILE, read_metadata
    from model.schema import ordered_columns

    metadata = read_metadata(folder)
    model_bytes = (folder / MODEL_FILE).read_bytes()
    batch = _load(metadata, model_bytes, threads)
    single = _load(metadata, model_bytes, 1)
    family = str(metadata.get("candidate", "model"))
    feature_set = batch.schema.feature_set
    parity = metadata.get("onnx", {}).get("parity_max_abs_diff")
    return Subject(
        label=f"{family}/{feature_set} ({folder.name}, ONNX only)",
        family=family,
        feature_set=feature_set,
        columns=list(ordered_columns(batch.schema)),
        model_bytes=model_bytes,
        batch=batch,
        single=single,
        parity=float(parity) if parity is not None else None,
        train_check="n/a (--model-dir)",
    )


def check_against_train(subject: Subject, config: Any) -> str:
    """Run model.train.train for this one family; is its model.onnx the bytes benchmarked here?"""
    from model.artifacts import MODEL_FILE, sha256_bytes
    from model.train import train

    started = time.perf_counter()
    outcome = train(config)
    theirs = (outcome.folder / MODEL_FILE).read_bytes()
    same = sha256_bytes(theirs) == sha256_bytes(subject.model_bytes)
    log.info(
        "%s: train() done in %.1fs; its model.onnx is %s",
        subject.label,
        time.perf_counter() - started,
        "byte-identical" if same else "DIFFERENT",
    )
    return "identical" if same else "DIFFERENT"


# ------------------------------------------------------------------------------------------------
# Measurements
# ------------------------------------------------------------------------------------------------


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


def onnx_chunked(model: Any, features: pd.DataFrame, chunk: int) -> tuple[float, np.ndarray]:
    """The serving path: `LoadedModel.probabilities` per chunk (onnx_feed + session.run)."""
    out = np.empty(len(features), dtype=np.float32)
    started = time.perf_counter()
    for start, stop in _chunks(len(features), chunk):
        out[start:stop] = model.probabilities(features.iloc[start:stop])
    return time.perf_counter() - started, out


def sklearn_whole(pipeline: Any, features: pd.DataFrame, columns: list[str]) -> tuple[float, np.ndarray]:
    """One `predict_proba` over every row (the column selection the pipeline needs included)."""
    started = time.perf_counter()
    out = pipeline.predict_proba(features[columns])[:, 1]
    return time.perf_counter() - started, out


def sklearn_chunked(
    pipeline: Any, features: pd.DataFrame, columns: list[str], chunk: int
) -> tuple[float, np.ndarray]:
    out = np.empty(len(features), dtype=np.float64)
    started = time.perf_counter()
    for start, stop in _chunks(len(features), chunk):
        out[start:stop] = pipeline.predict_proba(features.iloc[start:stop][columns])[:, 1]
    return time.perf_counter() - started, out


@dataclass
class Latency:
    p50_ms: float
    p99_ms: float
    mean_ms: float
    calls: int

    @classmethod
    def of(cls, nanoseconds: np.ndarray) -> Latency:
        ms = nanoseconds / 1e6
        return cls(float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean()), len(ms))


def latency(call: Callable[[pd.DataFrame], Any], frames: Sequence[pd.DataFrame], warmup: int) -> Latency:
    """Per-call wall time of `call(frame)`, one one-row frame per call, after `warmup` calls."""
    for frame in frames[:warmup]:
        call(frame)
    timings = np.empty(len(frames) - warmup, dtype=np.int64)
    for i, frame in enumerate(frames[warmup:]):
        started = time.perf_counter_ns()
        call(frame)
        timings[i] = time.perf_counter_ns() - started
    return Latency.of(timings)


@dataclass
class FamilyResult:
    subject: Subject
    onnx_runs: list[float] = field(default_factory=list)
    sklearn_whole_runs: list[float] = field(default_factory=list)
    sklearn_chunked_runs: list[float] = field(default_factory=list)
    max_abs_diff: float | None = None
    onnx_latency: Latency | None = None
    sklearn_latency: Latency | None = None
    sklearn_latency_one_job: Latency | None = None  # when the estimator has n_jobs > 1
    sklearn_jobs: int | None = None
    investigation: Investigation | None = None

    @property
    def has_sklearn(self) -> bool:
        return self.subject.pipeline is not None

    def sklearn_best(self) -> float | None:
        runs = self.sklearn_whole_runs + self.sklearn_chunked_runs
        return min(runs) if runs else None

    def speedup(self) -> float | None:
        best = self.sklearn_best()
        return None if best is None or not self.onnx_runs else best / min(self.onnx_runs)


def measure_family(subject: Subject, features: pd.DataFrame, args: argparse.Namespace) -> FamilyResult:
    result = FamilyResult(subject)
    n = len(features)
    pipeline, columns = subject.pipeline, subject.columns

    # Warm-up: first call of each path on one small chunk (allocations, thread pools, lazy imports).
    warm = features.iloc[: min(n, 1000)]
    subject.batch.probabilities(warm)
    if pipeline is not None:
        pipeline.predict_proba(warm[columns])

    onnx_out: np.ndarray | None = None
    sklearn_out: np.ndarray | None = None
    for round_number in range(1, args.repeat + 1):  # interleaved, so drift hits every method alike
        seconds, onnx_out = onnx_chunked(subject.batch, features, args.chunk_rows)
        result.onnx_runs.append(seconds)
        line = f"ONNX {n / seconds:,.0f} rows/s"
        if pipeline is not None:
            seconds, sklearn_out = sklearn_whole(pipeline, features, columns)
            result.sklearn_whole_runs.append(seconds)
            line += f"; sklearn one call {n / seconds:,.0f} rows/s"
            seconds, _ = sklearn_chunked(pipeline, features, columns, args.chunk_rows)
            result.sklearn_chunked_runs.append(seconds)
            line += f", chunked {n / seconds:,.0f} rows/s"
        log.info("%s batch round %d/%d: %s", subject.label, round_number, args.repeat, line)
    if onnx_out is not None and sklearn_out is not None:
        result.max_abs_diff = float(np.max(np.abs(onnx_out.astype(np.float64) - sklearn_out)))
        log.info(
            "%s: ONNX vs sklearn max |diff| on %s rows = %.2e", subject.label, f"{n:,}", result.max_abs_diff
        )
    del onnx_out, sklearn_out

    # One-row latency: distinct rows spread over the data, each its own one-row DataFrame holding
    # exactly the model's columns (what validation + prepare_features hands the model per request).
    rng = np.random.default_rng(args.seed)
    calls = args.warmup + args.latency_calls
    picks = rng.choice(n, size=calls, replace=n < calls)
    frames = [features.iloc[[int(i)]][columns] for i in picks]
    result.onnx_latency = latency(subject.single.probabilities, frames, args.warmup)
    log.info(
        "%s one-row ONNX (1 thread): p50 %.3f ms, p99 %.3f ms",
        subject.label,
        result.onnx_latency.p50_ms,
        result.onnx_latency.p99_ms,
    )
    if pipeline is not None:
        result.sklearn_latency = latency(pipeline.predict_proba, frames, args.warmup)
        log.info(
            "%s one-row sklearn: p50 %.3f ms, p99 %.3f ms",
            subject.label,
            result.sklearn_latency.p50_ms,
            result.sklearn_latency.p99_ms,
        )
        estimator = pipeline.steps[-1][1]
        jobs = getattr(estimator, "n_jobs", None)
        if jobs not in (None, 1):
            # The pipeline as trained predicts on n_jobs threads; for one row that is mostly overhead.
            result.sklearn_jobs = int(jobs)
            estimator.set_params(n_jobs=1)
            try:
                result.sklearn_latency_one_job = latency(pipeline.predict_proba, frames, args.warmup)
            finally:
                estimator.set_params(n_jobs=jobs)
            log.info(
                "%s one-row sklearn with n_jobs=1: p50 %.3f ms",
                subject.label,
                result.sklearn_latency_one_job.p50_ms,
            )
    return result


# ------------------------------------------------------------------------------------------------
# Investigation: can ONNX Runtime options close a missed batch target?
# ------------------------------------------------------------------------------------------------


@dataclass
class Variant:
    label: str
    threads: int
    chunk: int | None  # None: the whole investigation set in one call
    graph_level: str = "ORT_ENABLE_ALL"  # onnxruntime's default
    config: dict[str, str] = field(default_factory=dict)


@dataclass
class Investigation:
    rows: int
    runs: dict[str, list[float]]  # variant label -> seconds per round (and "sklearn ...")
    profile: Profile  # one chunk, serving setting
    feed_seconds: float  # onnx_feed alone over the rows, best of rounds
    tree_stats: dict[str, int]


def _variants(threads: int, chunk: int) -> list[Variant]:
    variants = [
        Variant(f"serving setting: intra_op {threads}, ORT_ENABLE_ALL, chunks of {chunk:,}", threads, chunk),
        Variant("intra_op 1", 1, chunk),
        Variant(
            f"intra_op {threads}, intra_op.allow_spinning=0",
            threads,
            chunk,
            config={"session.intra_op.allow_spinning": "0"},
        ),
        Variant("graph optimisation ORT_DISABLE_ALL", threads, chunk, graph_level="ORT_DISABLE_ALL"),
        Variant("graph optimisation ORT_ENABLE_BASIC", threads, chunk, graph_level="ORT_ENABLE_BASIC"),
        Variant("chunks of 10,000", threads, 10_000),
        Variant("chunks of 1,000", threads, 1_000),
        Variant("one call, no chunks", threads, None),
    ]
    return [v for v in variants if v.threads >= 1]


def _session(model_bytes: bytes, variant: Variant, profile_prefix: str | None = None) -> Any:
    """A session built like model.serving._session, with the variant's changes."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = variant.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, variant.graph_level)
    for key, value in variant.config.items():
        options.add_session_config_entry(key, value)
    if profile_prefix is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile_prefix
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def _run_variant(session: Any, schema: Any, features: pd.DataFrame, chunk: int | None) -> float:
    from model.schema import onnx_feed

    size = chunk or len(features)
    started = time.perf_counter()
    for start, stop in _chunks(len(features), size):
        session.run(["probabilities"], onnx_feed(features.iloc[start:stop], schema))
    return time.perf_counter() - started


def _tree_stats(model_bytes: bytes) -> dict[str, int]:
    """Trees, nodes and classes of the model's tree ensemble(s), if any."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    stats: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type.startswith("TreeEnsemble"):
            attributes = {a.name: a for a in node.attribute}
            tree_ids = list(attributes["nodes_treeids"].ints) if "nodes_treeids" in attributes else []
            stats["trees"] = stats.get("trees", 0) + len(set(tree_ids))
            stats["nodes"] = stats.get("nodes", 0) + len(tree_ids)
            modes = (
                [m.decode() for m in attributes["nodes_modes"].strings] if "nodes_modes" in attributes else []
            )
            stats["leaves"] = stats.get("leaves", 0) + modes.count("LEAF")
            if "class_ids" in attributes:
                stats["classes with leaf weights"] = len(set(attributes["class_ids"].ints))
    return stats


PROFILED_RUNS = 3


@dataclass
class Profile:
    op_share: dict[str, float]  # ORT operator type -> share of kernel time
    run_seconds: float  # wall time of one session.run seen from Python (mean of PROFILED_RUNS)
    model_run_seconds: float  # ORT's own "model_run" span: graph execution, without input conversion
    kernel_seconds: float  # sum of kernel times


def _profile_ops(
    model_bytes: bytes, variant: Variant, schema: Any, features: pd.DataFrame, workdir: Path
) -> Profile:
    """Where one chunk's session.run goes, by ORT's own profiler (means over PROFILED_RUNS runs)."""
    from model.schema import onnx_feed

    session = _session(model_bytes, variant, profile_prefix=str(workdir / "ort-profile"))
    feed = onnx_feed(features, schema)
    wall = 0.0
    for _ in range(PROFILED_RUNS):
        started = time.perf_counter()
        session.run(["probabilities"], feed)
        wall += time.perf_counter() - started
    path = Path(session.end_profiling())
    events = json.loads(path.read_text())
    path.unlink(missing_ok=True)
    totals: dict[str, float] = defaultdict(float)
    model_run_us = 0.0
    for event in events:
        if event.get("cat") == "Node" and str(event.get("name", "")).endswith("_kernel_time"):
            totals[str(event.get("args", {}).get("op_name", "?"))] += float(event.get("dur", 0))
        elif event.get("cat") == "Session" and event.get("name") == "model_run":
            model_run_us += float(event.get("dur", 0))
    whole = sum(totals.values()) or 1.0
    return Profile(
        op_share={op: dur / whole for op, dur in sorted(totals.items(), key=lambda kv: -kv[1])},
        run_seconds=wall / PROFILED_RUNS,
        model_run_seconds=model_run_us / 1e6 / PROFILED_RUNS,
        kernel_seconds=whole / 1e6 / PROFILED_RUNS,
    )


def investigate(
    subject: Subject, features: pd.DataFrame, args: argparse.Namespace, workdir: Path
) -> Investigation:
    from model.schema import onnx_feed

    rows = features.iloc[: min(args.investigate_rows, len(features))]
    schema = subject.batch.schema
    variants = _variants(args.threads, args.chunk_rows)
    sessions = {v.label: _session(subject.model_bytes, v) for v in variants}
    runs: dict[str, list[float]] = {v.label: [] for v in variants}
    sklearn_label = "reference: sklearn predict_proba, one call"
    if subject.pipeline is not None:
        runs[sklearn_label] = []
    feed_runs: list[float] = []
    for v in variants:  # warm-up
        _run_variant(sessions[v.label], schema, rows.iloc[:1000], v.chunk)
    for round_number in range(1, args.repeat + 1):
        shift = (round_number - 1) % len(variants)  # rotate the order: no variant always runs first
        for v in variants[shift:] + variants[:shift]:
            runs[v.label].append(_run_variant(sessions[v.label], schema, rows, v.chunk))
        if subject.pipeline is not None:
            runs[sklearn_label].append(sklearn_whole(subject.pipeline, rows, subject.columns)[0])
        started = time.perf_counter()
        for start, stop in _chunks(len(rows), args.chunk_rows):
            onnx_feed(rows.iloc[start:stop], schema)
        feed_runs.append(time.perf_counter() - started)
        log.info(
            "%s investigation round %d/%d: %s",
            subject.label,
            round_number,
            args.repeat,
            "; ".join(f"{label.split(':')[0]} {len(rows) / r[-1]:,.0f}/s" for label, r in runs.items()),
        )
    profile = _profile_ops(
        subject.model_bytes, variants[0], schema, rows.iloc[: min(args.chunk_rows, len(rows))], workdir
    )
    return Investigation(len(rows), runs, profile, min(feed_runs), _tree_stats(subject.model_bytes))


# ------------------------------------------------------------------------------------------------
# Import time, machine, report
# ------------------------------------------------------------------------------------------------


@dataclass
class ImportTime:
    module: str
    importtime_ms: float  # -X importtime's cumulative time of the module itself
    process_ms: float  # wall time of `python -c "import module"`, interpreter start included
    bare_process_ms: float  # wall time of `python -c "pass"`
    pulls_sklearn: bool


def import_time(module: str) -> ImportTime:
    """Best of IMPORT_RUNS fresh interpreters (after one run to warm the file cache)."""
    command = [sys.executable, "-X", "importtime", "-c", f"import {module}"]
    subprocess.run(command, cwd=REPO_ROOT, capture_output=True, check=True)  # noqa: S603 - our interpreter importing a module name of this file
    cumulative: list[float] = []
    wall: list[float] = []
    bare: list[float] = []
    pulls_sklearn = False
    for _ in range(IMPORT_RUNS):
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=True)  # noqa: S603 - our interpreter importing a module name of this file
        for line in done.stderr.splitlines():
            parts = line.split("|")
            if len(parts) != 3 or not line.startswith("import time:"):
                continue
            name = parts[2].strip()
            pulls_sklearn = pulls_sklearn or name.split(".")[0] == "sklearn"
            if name == module:
                cumulative.append(int(parts[1]) / 1000)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO_ROOT, check=True)  # noqa: S603 - our interpreter importing a module name of this file
        wall.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], cwd=REPO_ROOT, check=True)
        bare.append((time.perf_counter() - started) * 1000)
    if not cumulative:
        raise RuntimeError(f"-X importtime printed no line for {module}")
    return ImportTime(module, min(cumulative), min(wall), min(bare), pulls_sklearn)


def _rate(rows: int, runs: list[float]) -> str:
    return f"{rows / min(runs):,.0f}" if runs else "n/a"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("MET" if ok else "MISSED")


@dataclass
class Report:
    args: argparse.Namespace
    rows: int
    source_rows: int
    machine: list[tuple[str, str]]
    command: str
    results: list[FamilyResult]
    imports: list[ImportTime]
    peak_rss_mb: float
    seconds: float

    def markdown(self) -> str:
        a = self.args
        lines = [
            f"Rows: {self.rows:,} (the bank CSV's {self.source_rows:,} rows tiled; `y` and `duration` "
            f"dropped; `model.train._features`), scored by every method in one process; best of "
            f"{a.repeat} interleaved round(s). ONNX: `LoadedModel.probabilities` (onnx_feed + "
            f"`session.run`) in chunks of {a.chunk_rows:,}, intra_op threads = {a.threads}.",
            "",
        ]
        lines += [f"- {name}: {value}" for name, value in self.machine]
        lines += ["", "Command:", "", "```", self.command, "```", ""]

        lines += [
            "| model | ONNX rows/s | sklearn rows/s, one call | sklearn rows/s, chunks | ONNX vs sklearn "
            f"| max abs diff ({self.rows:,} rows) | ONNX KB | train() bytes |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for r in self.results:
            speedup = r.speedup()
            lines.append(
                f"| {r.subject.label} | {_rate(self.rows, r.onnx_runs)} "
                f"| {_rate(self.rows, r.sklearn_whole_runs)} | {_rate(self.rows, r.sklearn_chunked_runs)} "
                f"| {'n/a' if speedup is None else f'{speedup:.2f}x'} "
                f"| {'n/a' if r.max_abs_diff is None else f'{r.max_abs_diff:.1e}'} "
                f"| {len(r.subject.model_bytes) / 1024:,.0f} | {r.subject.train_check} |"
            )
        lines += [
            "",
            "ONNX vs sklearn: sklearn's best time (the faster of one call and chunks) / ONNX's best time. "
            "max abs diff: largest |P_onnx - P_sklearn| over all rows. train() bytes: whether "
            "`model.train.train` for this family writes the same model.onnx as the one benchmarked.",
            "",
            f"One-row latency, {a.latency_calls:,} calls after {a.warmup} warm-up calls, distinct rows, "
            "each a one-row DataFrame of the model's columns; ONNX session with intra_op_num_threads=1, "
            "feed building included:",
            "",
            "| model | ONNX p50 ms | ONNX p99 ms | sklearn p50 ms | sklearn p99 ms "
            "| sklearn n_jobs=1 p50 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in self.results:
            onnx, sk, one = r.onnx_latency, r.sklearn_latency, r.sklearn_latency_one_job
            one_job = _ms(one.p50_ms if one else None) if r.sklearn_jobs else "same"
            lines.append(
                f"| {r.subject.label} | {_ms(onnx.p50_ms if onnx else None)} "
                f"| {_ms(onnx.p99_ms if onnx else None)} "
                f"| {_ms(sk.p50_ms if sk else None)} | {_ms(sk.p99_ms if sk else None)} "
                f"| {one_job if r.has_sklearn else 'n/a'} |"
            )
        lines += ["", *self.targets()]

        for r in self.results:
            if r.investigation is not None:
                lines += ["", *self.investigation_lines(r)]

        lines += ["", "Import time, each in a fresh interpreter (best of 3):", ""]
        lines += [
            '| module | -X importtime cumulative ms | `python -c "import ..."` ms | '
            "`python -c pass` ms | imports sklearn |",
            "|---|---:|---:|---:|---|",
        ]
        for imp in self.imports:
            lines.append(
                f"| `{imp.module}` | {imp.importtime_ms:.0f} | {imp.process_ms:.0f} "
                f"| {imp.bare_process_ms:.0f} | {'yes' if imp.pulls_sklearn else 'no'} |"
            )
        lines += [
            "",
            f"Peak RSS of the benchmark process (ru_maxrss): {self.peak_rss_mb:,.0f} MB "
            f"(everything above ran in this one process: the {self.rows:,}-row frame, every model, "
            "its fitting and conversion, and the train() checks).",
            "",
            f"Total run time: {self.seconds:.0f} s.",
            "",
            "All batch runs (seconds): "
            + "; ".join(
                f"{r.subject.label}: ONNX {', '.join(f'{s:.2f}' for s in r.onnx_runs)}"
                + (
                    f" / sklearn one call {', '.join(f'{s:.2f}' for s in r.sklearn_whole_runs)}"
                    f" / sklearn chunks {', '.join(f'{s:.2f}' for s in r.sklearn_chunked_runs)}"
                    if r.has_sklearn
                    else ""
                )
                for r in self.results
            ),
        ]
        return "\n".join(lines) + "\n"

    def targets(self) -> list[str]:
        out = ["Targets:", ""]
        for r in self.results:
            speedup = r.speedup()
            met = None if speedup is None else speedup >= TARGET_BATCH_SPEEDUP
            out.append(
                f"- {r.subject.label}: {_verdict(met)}: "
                f"ONNX >= {TARGET_BATCH_SPEEDUP:g}x sklearn in batch: "
                + ("n/a (no sklearn pipeline)" if speedup is None else f"{speedup:.2f}x")
            )
            p50 = r.onnx_latency.p50_ms if r.onnx_latency else None
            out.append(
                f"- {r.subject.label}: {_verdict(None if p50 is None else p50 < TARGET_P50_MS)}: "
                f"ONNX one-row p50 < {TARGET_P50_MS:g} ms: {_ms(p50)} ms"
            )
        return out

    def investigation_lines(self, r: FamilyResult) -> list[str]:
        inv = r.investigation
        assert inv is not None
        sklearn_runs = [runs for label, runs in inv.runs.items() if label.startswith("reference")]
        sklearn_best = min(sklearn_runs[0]) if sklearn_runs else None
        lines = [
            f"Investigation of {r.subject.label}: ONNX Runtime variants on the first "
            f"{inv.rows:,} rows, best of {self.args.repeat} interleaved round(s), feed building included:",
            "",
            "| variant | rows/s | vs sklearn (same rows) |",
            "|---|---:|---:|",
        ]
        for label, runs in inv.runs.items():
            vs = "n/a" if sklearn_best is None else f"{sklearn_best / min(runs):.2f}x"
            lines.append(f"| {label} | {_rate(inv.rows, runs)} | {vs} |")
        prof = inv.profile
        ops = ", ".join(f"{op} {share:.1%}" for op, share in prof.op_share.items())
        outside = prof.run_seconds - prof.model_run_seconds
        lines += [
            "",
            f"- One chunk of {min(self.args.chunk_rows, inv.rows):,} rows, serving setting, ORT profiler "
            f"(mean of {PROFILED_RUNS} runs, the first included): `session.run` "
            f"{prof.run_seconds * 1000:.0f} ms seen from Python, "
            f"of which ORT's `model_run` {prof.model_run_seconds * 1000:.0f} ms (kernels "
            f"{prof.kernel_seconds * 1000:.0f} ms) and {outside * 1000:.0f} ms "
            f"({outside / prof.run_seconds:.0%}) outside the graph: converting the inputs (Python `str` "
            "objects to ORT string tensors) and the output.",
            f"- ORT kernel time by operator: {ops}.",
            f"- Building the feeds (`onnx_feed`) for these rows: {inv.feed_seconds:.3f} s of the serving "
            f"setting's {min(next(iter(inv.runs.values()))):.2f} s.",
        ]
        if inv.tree_stats:
            lines.append(
                "- Tree ensemble: " + ", ".join(f"{k} {v:,}" for k, v in inv.tree_stats.items()) + "."
            )
        return lines


# ------------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    command = command_line("bench.model_bench")
    machine = machine_facts(("onnxruntime", "scikit-learn", "skl2onnx", "numpy", "pandas"))
    load_before = load_average()

    from model.train import TrainConfig

    base_config = TrainConfig(data=args.data, out=Path("unused"))
    log.info("loading %s and tiling to %s rows", args.data, f"{args.rows:,}")
    rows = load_rows(args.data, args.rows, base_config.validation_fraction)
    log.info("%s rows ready (%s columns)", f"{len(rows.features):,}", len(rows.features.columns))

    results: list[FamilyResult] = []
    with tempfile.TemporaryDirectory(prefix="model-bench-") as tmp:
        workdir = Path(tmp)
        if args.model_dir:
            subjects_to_run: list[Callable[[], Subject]] = [
                lambda: load_subject(args.model_dir, args.threads)
            ]
        else:
            subjects_to_run = []
            for family in args.families:

                def make(family: str = family) -> Subject:
                    config = TrainConfig(
                        data=args.data,
                        out=workdir / f"train-{family}" / "model",
                        cv_folds=0,
                        permutation_repeats=1,
                        candidates=(family,),
                        feature_sets=(args.feature_set,),
                        seed=args.seed,
                    )
                    subject = build_subject(family, args.feature_set, rows, config, args.threads)
                    if args.train_check:
                        subject.train_check = check_against_train(subject, config)
                    return subject

                subjects_to_run.append(make)

        for make_subject in subjects_to_run:
            subject = make_subject()
            gc.collect()
            result = measure_family(subject, rows.features, args)
            speedup = result.speedup()
            missed = speedup is not None and speedup < TARGET_BATCH_SPEEDUP
            if args.investigate == "always" or (args.investigate == "auto" and missed):
                log.info("%s: investigating ONNX Runtime options", subject.label)
                result.investigation = investigate(subject, rows.features, args, workdir)
            results.append(result)

    machine.append(("load average (1/5/15 min) before / after the runs", f"{load_before} / {load_average()}"))
    imports = [import_time(module) for module in IMPORT_MODULES]
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    report = Report(
        args,
        len(rows.features),
        rows.source_rows,
        machine,
        command,
        results,
        imports,
        peak_rss_mb,
        time.perf_counter() - started,
    )
    emit(report.markdown(), args.markdown, log)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    from model.features import CANDIDATES
    from model.schema import FEATURE_SETS

    parser = argparse.ArgumentParser(
        prog="python -m bench.model_bench",
        description="Compare ONNX Runtime (the serving path) with sklearn predict_proba on the same rows.",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the bank CSV (default: the repo's)")
    parser.add_argument(
        "--rows", type=positive_int, default=1_000_000, help="rows to score (default 1000000)"
    )
    parser.add_argument(
        "--chunk-rows", type=positive_int, default=100_000, help="batch chunk size (default 100000)"
    )
    parser.add_argument(
        "--repeat", type=positive_int, default=3, help="batch rounds; the best counts (default 3)"
    )
    parser.add_argument(
        "--threads", type=positive_int, default=2, help="intra_op threads for batch (default 2)"
    )
    parser.add_argument(
        "--latency-calls", type=positive_int, default=1000, help="timed one-row calls (default 1000)"
    )
    parser.add_argument("--warmup", type=int, default=50, help="untimed one-row calls first (default 50)")
    parser.add_argument(
        "--families",
        type=lambda raw: tuple(f.strip() for f in raw.split(",") if f.strip()),
        default=DEFAULT_FAMILIES,
        help=f"comma-separated candidate families (default {','.join(DEFAULT_FAMILIES)})",
    )
    parser.add_argument(
        "--feature-set", default=DEFAULT_FEATURE_SET, choices=sorted(FEATURE_SETS), help="default no_calendar"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--model-dir", type=Path, help="benchmark this model folder instead (ONNX only)")
    parser.add_argument(
        "--no-train-check",
        dest="train_check",
        action="store_false",
        help="skip running model.train.train per family to check its model.onnx is the benchmarked one",
    )
    parser.add_argument(
        "--investigate",
        choices=("auto", "always", "never"),
        default="auto",
        help="try ONNX Runtime options for families that miss the batch target (default auto)",
    )
    parser.add_argument(
        "--investigate-rows",
        type=positive_int,
        default=200_000,
        help="rows for the investigation (default 200000)",
    )
    parser.add_argument("--markdown", metavar="PATH", help="also write the Markdown report to PATH")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.families) - set(CANDIDATES))
    if unknown or not args.families:
        parser.error(f"--families takes names among {sorted(CANDIDATES)}; got {list(args.families)}")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.model_dir is not None and not args.model_dir.is_dir():
        parser.error(f"--model-dir {args.model_dir} is not a folder")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_logged(lambda: run(args), log)


if __name__ == "__main__":
    raise SystemExit(main())
