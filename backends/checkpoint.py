"""Resumable checkpoints: one safetensors file per run folder, replaced atomically.

``checkpoint.safetensors`` holds, as tensors, everything the target exports
(``export_state()``: weights and buffers such as BatchNorm statistics, int64 ones
included) and the canonical optimizer state (``optimizer.*``, see
``optimizer_state.py``); its safetensors metadata holds one JSON document with the
spec's text and sha256, the options that decide the run's numbers (target, seed,
epochs, max_steps, batch size, lr override, dataset, passes), the position: the
optimizer step, the epochs finished, the batches done in the next one and that
epoch's running loss and accuracy sums; and, for a run with a validation split, the
early-stopping state (``early_stopping.py``: the best value and epoch, the epochs
since, the epoch it stopped at), as of the last epoch finished.

Nothing random is saved: the batch order is a function of (seed, epoch)
(``data/batches.py``) and dropout's randomness of (seed, step) on both targets, so
the position is all a resumed run needs to continue exactly as an uninterrupted one.

Reading the metadata parses only the file's JSON header (no tensors, no torch or
JAX), so ``dslc train --resume`` refuses a bad folder or a changed spec at once.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dsl import Graph, UsageError

from .optimizer_state import OptimizerState
from .runs import run_file
from .weights import StateDict, load_weights, save_weights

CHECKPOINT = "checkpoint.safetensors"
FORMAT = 1
_KEY = "dslc.checkpoint"
_MAX_HEADER = 100 << 20


@dataclass(frozen=True)
class RunConfig:
    """What decides a run's numbers, recorded at its start; ``--resume`` restores all of it."""

    spec_name: str
    spec_path: str | None
    spec_sha256: str | None
    target: str
    seed: int
    epochs: int | None
    max_steps: int | None
    batch_size: int | None
    lr: float | None
    dataset: str | None
    data_dir: str
    disabled_passes: tuple[str, ...] = ()
    target_options: dict = field(default_factory=dict)
    checkpoint_every: int | None = None
    train_examples: int = 0
    total_steps: int = 0
    world_size: int = 1  # worker processes of a data-parallel run (--nproc)
    precision: str | None = None  # --precision, when given


@dataclass(frozen=True)
class Position:
    """Where a run stands: ``step`` optimizer steps done, ``epochs_done`` epochs finished (evaluated,
    in metrics.jsonl), ``batch`` batches of the next epoch done, with that epoch's running sums."""

    step: int = 0
    epochs_done: int = 0
    batch: int = 0
    sums: dict[str, float] = field(default_factory=dict)  # the epoch's metric sums and counts so far
    seen: int = 0
    seconds: float = 0.0  # training wall time up to this point, over all processes


@dataclass(frozen=True)
class Checkpoint:
    run: RunConfig
    position: Position
    spec_text: str | None
    tensors: dict = field(default_factory=dict, repr=False)
    monitor: dict = field(default_factory=dict)  # the early-stopping state (``EarlyStopping.state``); {}: none

    @property
    def stopped(self) -> bool:
        """Early stopping ended the run: nothing is left to do, whatever steps the plan had left."""
        return self.monitor.get("stopped_epoch") is not None

    def weights(self, graph: Graph) -> StateDict:
        names = graph.state_dict_spec()
        return {k: v for k, v in self.tensors.items() if k in names}

    def optimizer(self, graph: Graph) -> OptimizerState:
        names = graph.state_dict_spec()
        return {k: v for k, v in self.tensors.items() if k not in names}

    @property
    def finished(self) -> bool:
        return self.stopped or (self.position.step >= self.run.total_steps and self.position.batch == 0)


def spec_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def save_checkpoint(folder: Path, weights: StateDict, optimizer: OptimizerState, run: RunConfig, position: Position,
                    spec_text: str | None, monitor: dict | None = None) -> None:
    """Writes ``folder/checkpoint.safetensors`` atomically (temp file, fsync, rename); ``monitor``: the
    early-stopping state."""
    clash = weights.keys() & optimizer.keys()
    if clash:
        raise RuntimeError(f"optimizer state names clash with weight names: {sorted(clash)[:3]}")
    meta = {"format": FORMAT, "run": asdict(run), "position": asdict(position), "spec": spec_text,
            "monitor": monitor or {}}
    save_weights(Path(folder) / CHECKPOINT, {**weights, **optimizer}, {_KEY: json.dumps(meta)})


def read_checkpoint(folder: Path, *, tensors: bool = False) -> Checkpoint:
    """The checkpoint of a run folder; only its header unless ``tensors``. Raises ``UsageError``."""
    folder = Path(folder)
    path = run_file(folder, CHECKPOINT, f"--resume {folder}", "it is not a run folder, or its run was stopped "
                    "before the first checkpoint (start it again)")
    meta = _metadata(path)
    try:
        run = RunConfig(**{**meta["run"], "disabled_passes": tuple(meta["run"]["disabled_passes"])})
        position = Position(**meta["position"])
    except (KeyError, TypeError) as err:
        raise UsageError(f"{path}: not a dslc checkpoint of this version ({err})") from None
    return Checkpoint(run, position, meta.get("spec"), load_weights(path) if tensors else {}, meta.get("monitor") or {})


def _metadata(path: Path) -> dict:
    """The checkpoint's JSON document, from the safetensors header alone (8-byte length, then JSON)."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8).ljust(8, b"\0"))
            header = json.loads(f.read(length)) if 0 < length <= _MAX_HEADER else None
        meta = json.loads(header["__metadata__"][_KEY])
    except OSError as err:
        raise UsageError(f"{path}: cannot read the checkpoint: {err.strerror}") from None
    except (ValueError, TypeError, KeyError):
        raise UsageError(f"{path}: not a dslc checkpoint (no {_KEY} metadata)") from None
    if meta.get("format") != FORMAT:
        raise UsageError(f"{path}: checkpoint format {meta.get('format')}, this dslc reads {FORMAT}")
    return meta


def check_resumable(checkpoint: Checkpoint, folder: Path) -> None:
    """Raises ``UsageError`` for a run that has nothing left to do."""
    if checkpoint.stopped:
        raise UsageError(f"--resume {folder}: early stopping ended the run after epoch "
                         f"{checkpoint.monitor['stopped_epoch']} (best epoch {checkpoint.monitor['best_epoch']}); "
                         f"nothing to resume")
    if checkpoint.finished:
        raise UsageError(f"--resume {folder}: the run is complete ({checkpoint.position.step:,} steps, "
                         f"{checkpoint.position.epochs_done} epochs); nothing to resume")


def check_spec(checkpoint: Checkpoint, folder: Path, spec_path: Path | None) -> tuple[str, str]:
    """The spec text to resume with and the file name its errors should cite.

    A spec given on the command line, or else the run's recorded spec file where it
    still exists, must be byte for byte the one the run started with; a recorded file
    that is gone is replaced by the text the checkpoint keeps.
    """
    run = checkpoint.run
    if checkpoint.spec_text is None or run.spec_sha256 is None:
        raise UsageError(f"--resume {folder}: the run was started without its spec text (from the Python API); "
                         f"resume it with backends.loop.train")
    spec_path = Path(spec_path) if spec_path else None
    path = spec_path or (Path(run.spec_path) if run.spec_path else None)
    if path is None or (spec_path is None and not path.exists()):
        return checkpoint.spec_text, run.spec_path or "<checkpoint>"
    try:
        text = path.read_bytes().decode()
    except OSError as err:
        raise UsageError(f"{path}: cannot read spec: {err.strerror}") from None
    except UnicodeDecodeError:
        text = ""  # not the text the run started with
    if spec_sha256(text) != run.spec_sha256:
        raise UsageError(f"--resume {folder}: the spec {path} is not the one the run started from (sha256 "
                         f"{run.spec_sha256[:12]} then, {spec_sha256(text)[:12]} now): it changed, or is another "
                         f"spec; resume with the spec the run started from, or start a new run")
    return text, str(path)
