"""The registry: immutable numbered versions, and stage pointers moved through the promotion rules.

Versions are written create-only, metadata.json last: its presence is what makes a version exist.
A registration that fails half-way leaves files without metadata.json; listing, `show` and `load`
ignore such a version, and its number is never reused (delete the folder by hand to tidy up).
Stage pointers are the only files ever overwritten, always with optimistic concurrency, so two
people promoting at once cannot silently undo each other.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from model.artifacts import (
    METADATA_FILE,
    MODEL_FILE,
    IntegrityError,
    check_artifact_name,
    read_metadata,
    verified_files,
    verify,
)
from model.registry.decisions import DecisionLog, approval_record, required_approval
from model.registry.errors import (
    AlreadyExistsError,
    ConcurrentUpdateError,
    MissingArtifactError,
    NotFoundError,
    PromotionRefused,
    RegistryError,
)
from model.registry.gate import check_order, check_request, gate_promotion
from model.registry.layout import (
    APPROVAL_STAGES,
    STAGES,
    check_name,
    check_stage,
    model_prefix,
    parse_version_file,
    stage_before,
    stage_file,
    version_file,
)
from model.registry.records import now, promotion_record, refusal_record, rollback_record, with_history
from model.registry.stores import Store, Token

if TYPE_CHECKING:
    import pandas as pd

    from model.challenge import GatePolicy
    from model.serving import LoadedModel

log = logging.getLogger(__name__)

KEY_METRICS = ("roc_auc", "pr_auc")
MAX_REGISTER_ATTEMPTS = 20


@dataclass(frozen=True)
class VersionInfo:
    """One line of `versions()`: enough to choose what to promote."""

    version: str
    registered_at: str | None
    metrics: dict[str, float]
    stages: tuple[str, ...]


class Registry:
    """Register model folders as immutable versions, and move them through dev -> preprod -> prod."""

    def __init__(self, store: Store, approval_stages: tuple[str, ...] = APPROVAL_STAGES) -> None:
        self.store = store
        self.decisions = DecisionLog(store)  # every promotion decision, refusals too
        self.approval_stages = tuple(check_stage(s) for s in approval_stages)

    def __repr__(self) -> str:
        return f"Registry({self.store.describe()})"

    # ---------------------------------------------------------------- reading

    def _numbers(self, name: str) -> tuple[set[int], set[int]]:
        """(every version number with any file, the complete ones: with metadata.json)."""
        seen: set[int] = set()
        complete: set[int] = set()
        for path in self.store.list(model_prefix(name)):
            parsed = parse_version_file(path)
            if parsed is not None:
                seen.add(parsed[1])
                if parsed[2] == METADATA_FILE:
                    complete.add(parsed[1])
        return seen, complete

    def models(self) -> list[str]:
        """Models with at least one complete version."""
        names = set()
        for path in self.store.list(""):
            parsed = parse_version_file(path)
            if parsed is not None and parsed[2] == METADATA_FILE:
                names.add(parsed[0])
        return sorted(names)

    def _unknown_model(self, name: str) -> NotFoundError:
        known = self.models()
        return NotFoundError(
            f"no model {name!r} in {self.store.describe()}; "
            f"models: {', '.join(known) if known else 'none yet'}"
        )

    def _metadata(self, name: str, version: str) -> dict[str, Any] | None:
        raw = self.store.read(version_file(name, version, METADATA_FILE))
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            log.warning("%s/%s/%s is not valid JSON: treating the version as incomplete", name, version,
                        METADATA_FILE)  # fmt: skip
            return None

    def _pointers(self, name: str) -> dict[str, dict[str, Any]]:
        pointers = {}
        for stage in STAGES:
            record = self.stage(name, stage)
            if record is not None:
                pointers[stage] = record
        return pointers

    def versions(self, name: str) -> list[VersionInfo]:
        """Complete versions, oldest first, with their key validation metrics and current stages."""
        check_name(name)
        _, complete = self._numbers(name)
        if not complete:
            raise self._unknown_model(name)
        stages_of: dict[str, list[str]] = {}
        for stage, record in self._pointers(name).items():
            stages_of.setdefault(str(record["version"]), []).append(stage)
        infos = []
        for number in sorted(complete):
            version = str(number)
            metadata = self._metadata(name, version)
            if metadata is None:
                continue
            validation = (metadata.get("metrics") or {}).get("validation") or {}
            metrics = {
                k: float(validation[k]) for k in KEY_METRICS if isinstance(validation.get(k), int | float)
            }
            infos.append(VersionInfo(version, metadata.get("registered_at"), metrics,
                                     tuple(stages_of.get(version, ()))))  # fmt: skip
        return infos

    def stage(self, name: str, stage: str) -> dict[str, Any] | None:
        """The stage pointer record (version, who, when, gate, override, history), or None if unset."""
        raw = self.store.read(stage_file(check_name(name), check_stage(stage)))
        return None if raw is None else json.loads(raw)

    def resolve(self, name: str, ref: str) -> str:
        """A version number, or the version a stage points at; 'latest' is the newest version."""
        check_name(name)
        ref = str(ref)
        if ref in STAGES:
            record = self.stage(name, ref)
            if record is None:
                pointers = self._pointers(name)
                if not pointers and not self._numbers(name)[1]:
                    raise self._unknown_model(name)
                current = ", ".join(f"{s}={r['version']}" for s, r in pointers.items()) or "none"
                raise NotFoundError(
                    f"stage {ref} of {name!r} points at no version yet (stages set: {current})"
                )
            return str(record["version"])
        _, complete = self._numbers(name)
        if not complete:
            raise self._unknown_model(name)
        if ref == "latest":
            return str(max(complete))
        if not ref.isdigit() or int(ref) not in complete:
            listed = ", ".join(str(n) for n in sorted(complete))
            raise NotFoundError(
                f"{name!r} has no version {ref!r}; versions: {listed}; stages: {', '.join(STAGES)}"
            )
        return str(int(ref))

    def show(self, name: str, ref: str) -> dict[str, Any]:
        """The metadata of a version (by number or stage name)."""
        version = self.resolve(name, ref)
        metadata = self._metadata(name, version)
        if metadata is None:  # deleted between listing and reading
            raise NotFoundError(f"version {version} of {name!r} has no readable metadata.json")
        return metadata

    def read_artifact(self, name: str, ref: str, file: str) -> bytes:
        """The bytes of one file of a version (by number or stage), checked against its sha256.

        `file` is a path inside the version folder as metadata.json records it (`plots/roc.png`).
        NotFoundError: no such model, version, stage or recorded file; MissingArtifactError (an
        IntegrityError): recorded but not stored; IntegrityError: the bytes do not match.
        """
        return self._artifact(name, self.show(name, ref), file)

    def _artifact(self, name: str, metadata: dict[str, Any], file: str) -> bytes:
        version = str(metadata["version"])
        recorded = metadata.get("artifacts") or {}
        if file not in recorded:
            raise NotFoundError(
                f"version {version} of {name!r} has no artifact {file!r}; "
                f"artifacts: {', '.join(sorted(recorded)) or 'none'}"
            )
        data = self.store.read(version_file(name, version, check_artifact_name(file)))
        if data is None:
            raise MissingArtifactError(f"version {version} of {name!r} is missing {file}")
        verify(file, data, metadata)
        return data

    def load(self, name: str, ref: str, threads: int = 1, shared: bool = True) -> LoadedModel:
        """A ready-to-score model; the ONNX bytes are checked against metadata's sha256 first."""
        from model.serving import load_bytes

        metadata = self.show(name, ref)
        version = str(metadata["version"])
        model_bytes = self.store.read(version_file(name, version, MODEL_FILE))
        if model_bytes is None:
            raise IntegrityError(f"version {version} of {name!r} has metadata.json but no {MODEL_FILE}")
        return load_bytes(metadata, model_bytes, threads, shared)

    def download(self, name: str, ref: str, dest: Path) -> Path:
        """Copy every file of a version into `dest` (a model folder), verifying each sha256."""
        metadata = self.show(name, ref)
        dest = Path(dest)
        for relative in sorted(metadata.get("artifacts", {})):
            data = self._artifact(name, metadata, relative)
            target = dest.joinpath(*PurePosixPath(relative).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (dest / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
        return dest

    # ---------------------------------------------------------------- writing

    def register(self, folder: Path, name: str | None = None) -> str:
        """Store a model folder as the next version; return its number.

        Every artifact is verified against metadata.json before anything is written, and the very
        bytes that were verified are uploaded. model.onnx is written first, create-only: whoever
        creates `{name}/{n}/model.onnx` owns version n, so a concurrent registration moves on to
        n+1. metadata.json is written last: until then the version does not exist for readers.
        """
        folder = Path(folder)
        metadata = read_metadata(folder)
        name = check_name(name or metadata.get("name") or "")
        files = verified_files(folder, metadata)

        seen, _ = self._numbers(name)
        number = max(seen, default=0) + 1
        for _attempt in range(MAX_REGISTER_ATTEMPTS):
            version = str(number)
            try:
                self.store.create(version_file(name, version, MODEL_FILE), files[MODEL_FILE])
            except AlreadyExistsError:
                number += 1  # another registration claimed this number first
                continue
            for relative, data in files.items():
                if relative != MODEL_FILE:
                    self.store.create(version_file(name, version, relative), data)
            final = {**metadata, "name": name, "version": version, "registered_at": now()}
            metadata_file = version_file(name, version, METADATA_FILE)
            self.store.create(metadata_file, json.dumps(final, indent=2).encode())
            log.info("registered %s version %s from %s in %s", name, version, folder, self.store.describe())
            return version
        raise ConcurrentUpdateError(
            f"could not claim a version number for {name!r} after {MAX_REGISTER_ATTEMPTS} attempts "
            "(many concurrent registrations?): retry"
        )

    def _write_stage(
        self,
        name: str,
        stage: str,
        record: dict[str, Any],
        current: dict[str, Any] | None,
        token: Token | None,
    ) -> dict[str, Any]:
        record = with_history(record, current)
        try:
            self.store.replace(stage_file(name, stage), json.dumps(record, indent=2).encode(), token)
        except ConcurrentUpdateError:
            raise ConcurrentUpdateError(
                f"stage {stage} of {name!r} changed while this change was being prepared (someone else "
                f"promoted or rolled back): check `stage({name!r}, {stage!r})` and retry"
            ) from None
        self.decisions.append(name, {k: v for k, v in record.items() if k != "history"})
        return record

    def promote(
        self,
        name: str,
        version: str,
        stage: str,
        *,
        gate_data: pd.DataFrame | None = None,
        tolerance: float = 0.01,
        metric: str = "pr_auc",
        override_reason: str | None = None,
        actor: str | None = None,
        stand_in: LoadedModel | None = None,
        policy: GatePolicy | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Point `stage` at `version` if the order and the gate allow it; return the new stage record.

        Order: dev accepts any version, preprod only the current dev version, prod only the current
        preprod version. Gate: if the stage already serves another version (the champion), the
        challenger (or its `stand_in`) must pass model/registry/gate.py on `gate_data`. A stage of
        `approval_stages` (prod) needs a recorded approval (`approve`). `override_reason` skips the
        checks, recorded. `evidence` (what asked for the promotion) goes into the log either way.
        """
        check_stage(stage)
        version = self.resolve(name, version)
        check_request(metric, override_reason)
        # The token is read before any check, so a change made meanwhile makes the write fail.
        raw, token = self.store.read_with_token(stage_file(name, stage))
        current = None if raw is None else json.loads(raw)
        if current is not None and str(current["version"]) == version:
            log.info("%s %s already points at version %s: nothing to do", name, stage, version)
            return current
        champion = None if current is None else str(current["version"])

        gate = approval = None
        if override_reason is None:
            try:
                before = stage_before(stage)
                if before is not None:
                    pointer = self.stage(name, before)
                    in_before = None if pointer is None else str(pointer["version"])
                    check_order(name, version, stage, before, in_before)
                if stage in self.approval_stages:
                    approval = required_approval(self.decisions, name, version, stage)
                if champion is not None:
                    gate = gate_promotion(name, version, champion, stage, gate_data, tolerance,
                                          metric, self.load, stand_in, policy)  # fmt: skip
            except PromotionRefused as refusal:  # the refusal is a decision too: logged with its figures
                refused = refusal_record(stage, version, actor, str(refusal), refusal.gate, champion)
                self.decisions.append(name, refused | ({"evidence": evidence} if evidence else {}))
                raise

        record = promotion_record(
            stage, version, actor=actor, gate=gate, override_reason=override_reason, previous=champion
        ) | ({"evidence": evidence} if evidence else {})
        if approval is not None:
            record["approval"] = {"by": approval["actor"], "at": approval["approved_at"]}
        record = self._write_stage(name, stage, record, current, token)
        log.info("%s %s -> version %s (was %s)%s", name, stage, version, champion,
                 " OVERRIDE: " + override_reason if override_reason else "")  # fmt: skip
        return record

    def approve(
        self, name: str, version: str, stage: str, *, by: str, note: str | None = None
    ) -> dict[str, Any]:
        """Record that `by` approves `version` for `stage` (a stage of `approval_stages` needs it)."""
        check_stage(stage)
        if not by or not by.strip():
            raise RegistryError("an approval names who approves (--by)")
        return self.decisions.append(
            name, approval_record(stage, self.resolve(name, version), by.strip(), note)
        )

    def rollback(self, name: str, stage: str, *, actor: str | None = None, reason: str) -> dict[str, Any]:
        """Point `stage` back at the version it served before (no order check, no gate: it is an undo).

        The new record has kind "rollback" and the reason; its `previous` is the version rolled
        back from, so rolling back twice returns to where it was.
        """
        check_stage(stage)
        if not reason or not reason.strip():
            raise RegistryError("a rollback needs a reason (it is recorded in the stage file)")
        raw, token = self.store.read_with_token(stage_file(check_name(name), stage))
        if raw is None:
            if not self._numbers(name)[1]:
                raise self._unknown_model(name)
            raise NotFoundError(f"stage {stage} of {name!r} points at no version: nothing to roll back")
        current = json.loads(raw)
        previous = current.get("previous")
        if previous is None:
            raise RegistryError(
                f"stage {stage} of {name!r} has no previous version (version {current['version']} was the "
                "first): promote another version instead"
            )
        previous = self.resolve(name, str(previous))
        record = rollback_record(
            stage, previous, actor=actor, reason=reason, previous=str(current["version"])
        )
        record = self._write_stage(name, stage, record, current, token)
        log.info("%s %s rolled back to version %s (was %s): %s",
                 name, stage, previous, current["version"], reason)  # fmt: skip
        return record
