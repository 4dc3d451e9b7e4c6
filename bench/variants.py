"""The variants a benchmark compares, behind one interface.

Every variant is set up once per model (build, load the shared initial weights,
compile, warm up: all outside the clock), then ``run(batches)`` does one timed run:
one optimizer step per index batch and a single host sync at the end (``float()``
of the summed loss), so asynchronous runtimes are timed to completion. The clock
is ``time.perf_counter`` around exactly that.

Keras fixes its backend per process, so ``keras-*`` variants run in a worker
subprocess (``bench.worker``) that stays alive for the whole model and is driven
one run at a time, interleaved with the in-process runs; while the main process
runs, the worker is blocked on its pipe, and vice versa.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass

import numpy as np

from .data import BenchData, run_batches
from .models import ModelDef

DSLC = ("dslc-torch", "dslc-jax")
REFERENCES = ("torch-ref", "hf-torch", "torch-dataloader", "flax-ref", "flax-ref-host", "keras-jax", "keras-torch")
DEFAULT_VARIANTS = ("dslc-torch", "dslc-jax", "torch-ref", "hf-torch", "torch-dataloader", "flax-ref", "keras-jax",
                    "keras-torch")
FRAMEWORK = {"dslc-torch": "torch", "dslc-jax": "jax", "torch-ref": "torch", "hf-torch": "torch",
             "torch-dataloader": "torch",
             "flax-ref": "jax", "flax-ref-host": "jax", "keras-jax": "jax", "keras-torch": "torch"}
WARMUP_STEPS = 64  # at most; enough to run a multi-step compiled call (dslc JAX: 25 steps) and single steps


@dataclass(frozen=True)
class Placement:
    """Where and in what precision every variant trains (``--device``, ``--precision``): the GPU mode.

    ``device``: None leaves each framework's default (dslc: ``auto``; the references: the
    CPU for torch, JAX's default device); ``precision="bf16"``: dslc's ``train.precision``,
    torch autocast in the torch references; the Flax reference has no bf16 variant.
    """

    device: str | None = None
    precision: str = "float32"

    def torch_device(self):
        import torch

        wanted = self.device or "cpu"
        return torch.device("cuda" if wanted == "auto" and torch.cuda.is_available() else
                            "cpu" if wanted == "auto" else wanted)


@dataclass
class RunResult:
    seconds: float
    samples: int
    loss: float       # mean training loss over the run (a sanity check: same weights, same batches)
    accuracy: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds


class Variant:
    name: str
    in_process = True

    def imports(self) -> None:
        """Imports the variant's frameworks (kept apart so memory can be measured after them)."""

    def start(self, model: ModelDef, examples: int, seed: int, steps: int) -> None:
        """Begins a setup that can overlap others' (workers); ``setup`` then waits for it. No-op in-process."""

    def setup(self, model: ModelDef, spec, graph, data: BenchData, state: dict, warmup: list) -> dict:
        """Builds, compiles and warms up; returns {'compile_s': float | None, 'warmup_s': float}."""
        raise NotImplementedError

    def run(self, batches: list[np.ndarray], repeat: int) -> RunResult:
        raise NotImplementedError

    def close(self) -> dict:
        return {}


def _timed(fn) -> tuple[float, tuple]:
    tic = time.perf_counter()
    out = fn()
    return time.perf_counter() - tic, out


class DslcVariant(Variant):
    """dslc's target, driven exactly as its training loop drives it (``train_steps`` + one sync)."""

    def __init__(self, target: str, placement: Placement = Placement()):
        self.name, self.target_name, self.placement = f"dslc-{target}", target, placement

    def imports(self):
        import importlib

        importlib.import_module(f"backends.{self.target_name}.target")

    def setup(self, model, spec, graph, data, state, warmup):
        from backends.target import make_target
        from dsl.objectives import resolve_objective

        where = {"device": self.placement.device} if self.placement.device else {}
        train = spec.train.model_copy(update={"precision": self.placement.precision})
        self.target = make_target(self.target_name, graph, train, seed=0, objective=resolve_objective(spec, graph),
                                  **where)
        self.target.load_state(state)
        # columns named for the model: its inputs' names, and its output's for the labels
        self.data = self.target.put({graph.inputs[0][0]: data.x, **data.extra, graph.outputs[0][0]: data.y})
        compile_s = self.target.compile(self.data, self.data, [model.batch_size], model.batch_size)
        warmup_s, _ = _timed(lambda: self._steps(warmup))
        return {"compile_s": compile_s if self.target_name == "jax" else None, "warmup_s": warmup_s}

    def _steps(self, batches):
        sums = self.target.train_steps(self.data, batches)  # accuracy only where the spec's metrics list it
        return float(sums["loss"]), float(sums["accuracy"]) if "accuracy" in sums else float("nan")

    def run(self, batches, repeat):
        seconds, (loss_sum, correct) = _timed(lambda: self._steps(batches))
        samples = sum(len(b) for b in batches)
        return RunResult(seconds, samples, loss_sum / samples, correct / samples)


class TorchRefVariant(Variant):
    """The hand-written torch model (``torch-ref``), or transformers' own (``hf-torch``), same loop."""

    def __init__(self, hf: bool = False, placement: Placement = Placement()):
        self.hf, self.name, self.placement = hf, "hf-torch" if hf else "torch-ref", placement

    def imports(self):
        import torch  # noqa: F401

        if self.hf:
            import transformers  # noqa: F401

    def setup(self, model, spec, graph, data, state, warmup):
        import torch

        from .references import torch_ref

        self.ref = torch_ref
        self.module, self.optimizer = torch_ref.build(model.reference, state, model.optimizer, hf=self.hf)
        self.x, self.y = torch.from_numpy(data.x), torch.from_numpy(data.y)
        if data.extra:  # several inputs, in the spec's order
            self.x = (self.x, *map(torch.from_numpy, data.extra.values()))
        self.module, self.x, self.y = torch_ref.place(self.module, self.x, self.y, self.placement.torch_device())
        warmup_s, _ = _timed(lambda: self._train(warmup))
        return {"compile_s": None, "warmup_s": warmup_s}

    def _train(self, batches):
        return self.ref.train_in_memory(self.module, self.optimizer, self.x, self.y, batches,
                                        bf16=self.placement.precision == "bf16")

    def run(self, batches, repeat):
        seconds, (loss, accuracy, seen) = _timed(lambda: self._train(batches))
        return RunResult(seconds, seen, loss, accuracy)


class TorchDataLoaderVariant(Variant):
    """The article's per-sample pipeline; it shuffles with its own generator (same examples, other order)."""

    name = "torch-dataloader"

    def imports(self):
        import torchvision  # noqa: F401

    def setup(self, model, spec, graph, data, state, warmup):
        from .references import torch_ref

        if data.images.shape[1] != 1:
            raise ValueError("the DataLoader pipeline reads single-channel (MNIST-like) images")
        self.module, self.optimizer = torch_ref.build(model.reference, state, model.optimizer)
        self.pipeline = torch_ref.DataLoaderPipeline(data.images[:, 0], data.y, model.batch_size)
        warmup_s, _ = _timed(lambda: self.pipeline.train(self.module, self.optimizer, len(warmup)))
        return {"compile_s": None, "warmup_s": warmup_s}

    def run(self, batches, repeat):
        seconds, (loss, accuracy, seen) = _timed(lambda: self.pipeline.train(self.module, self.optimizer,
                                                                             len(batches)))
        return RunResult(seconds, seen, loss, accuracy)


class FlaxRefVariant(Variant):
    def __init__(self, mode: str = "device", placement: Placement = Placement()):
        self.mode, self.placement = mode, placement
        self.name = "flax-ref" if mode == "device" else "flax-ref-host"

    def imports(self):
        import flax.linen  # noqa: F401
        import optax  # noqa: F401

    def setup(self, model, spec, graph, data, state, warmup):
        from .references import flax_ref

        if self.placement.precision != "float32":
            raise NotImplementedError("no bf16 Flax reference (the hand-written Flax models are float32 only)")
        inputs = (data.x, *data.extra.values()) if data.extra else data.x
        self.trainer = flax_ref.Trainer(model.reference, inputs, data.y, state, model.optimizer, mode=self.mode,
                                        batch_size=model.batch_size)
        warmup_s, _ = _timed(lambda: self.trainer.train(warmup))
        return {"compile_s": self.trainer.compile_seconds, "warmup_s": warmup_s}

    def run(self, batches, repeat):
        seconds, (loss, accuracy, seen) = _timed(lambda: self.trainer.train(batches))
        return RunResult(seconds, seen, loss, accuracy)


class KerasVariant(Variant):
    """Keras in this process; only a worker subprocess uses it (the backend is per process)."""

    def __init__(self, backend: str):
        self.backend, self.name = backend, f"keras-{backend}"

    def imports(self):
        from .references import keras_ref

        keras_ref.import_keras(self.backend)

    def setup(self, model, spec, graph, data, state, warmup):
        from .references import keras_ref

        self.trainer = keras_ref.Trainer(self.backend, model.reference, data.x, data.y, state, model.optimizer)
        self.batch_size = model.batch_size
        x, y = self.trainer.prepare(warmup)
        warmup_s, _ = _timed(lambda: self.trainer.fit(x, y, self.batch_size))
        return {"compile_s": None, "warmup_s": warmup_s}

    def run(self, batches, repeat):
        x, y = self.trainer.prepare(batches)  # outside the clock (see keras_ref's docstring)
        seconds, (loss, accuracy, seen) = _timed(lambda: self.trainer.fit(x, y, self.batch_size))
        return RunResult(seconds, seen, loss, accuracy)


class WorkerVariant(Variant):
    """Runs another variant in a ``bench.worker`` subprocess, one command per timed run.

    The worker lives for the whole benchmark (one import of its frameworks); each
    model is a ``setup`` command. ``start`` launches it, ``setup`` waits for it.
    """

    in_process = False

    def __init__(self, name: str):
        self.name = name
        self.proc = None
        self.failed: str | None = None

    def launch(self) -> None:
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"bench-{self.name}-", suffix=".log", delete=False)
        cmd = [sys.executable, "-m", "bench.worker", "--variant", self.name, "--serve"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, bufsize=1, cwd=os.getcwd())
        self.ready = None

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.log.seek(0)
            tail = self.log.read()[-2000:]
            raise RuntimeError(f"worker exited ({self.proc.returncode}): {tail}")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def _send(self, **command) -> None:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def start(self, model, examples, seed, steps):
        """Sends the model's setup without waiting, so several workers set up at once."""
        if self.failed:
            raise RuntimeError(self.failed)
        try:
            if self.ready is None:
                self.ready = self._read()["ready"]
            self._send(cmd="setup", model=model.key if model.reference else model.spec, examples=examples,
                       seed=seed, steps=steps)
        except Exception as e:
            self.failed = str(e)
            raise

    def setup(self, model, spec, graph, data, state, warmup):
        if self.failed:
            raise RuntimeError(self.failed)
        return self._read()["setup"]

    def run(self, batches, repeat):
        self._send(cmd="run", steps=len(batches), repeat=repeat)
        result = self._read()["result"]
        return RunResult(*(result[k] for k in ("seconds", "samples", "loss", "accuracy")))

    def close(self):
        if self.proc is None or self.proc.poll() is not None:
            return {}
        try:
            self._send(cmd="quit")
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        return {}


PLACEMENT = Placement()
"""The run's placement; ``bench.run`` sets it from ``--device`` and ``--precision`` before making variants."""


def make_variant(name: str, *, in_process: bool = False) -> Variant:
    """The named variant; ``keras-*`` become worker proxies unless ``in_process`` (inside a worker)."""
    if name in DSLC:
        return DslcVariant(name.split("-", 1)[1], PLACEMENT)
    if name in ("torch-ref", "hf-torch"):
        return TorchRefVariant(hf=name == "hf-torch", placement=PLACEMENT)
    if name == "torch-dataloader":
        return TorchDataLoaderVariant()
    if name in ("flax-ref", "flax-ref-host"):
        return FlaxRefVariant("device" if name == "flax-ref" else "host", PLACEMENT)
    if name in ("keras-jax", "keras-torch"):
        backend = name.split("-", 1)[1]
        return KerasVariant(backend) if in_process else WorkerVariant(name)
    raise ValueError(f"unknown variant {name!r}; known: {', '.join(DSLC + REFERENCES)}")


def warmup_batches(examples: int, steps: int, batch_size: int) -> list[np.ndarray]:
    """Untimed steps before the first run: as many as a run, up to ``WARMUP_STEPS``, so every compiled
    path a run takes (whole multi-step calls and single steps alike) has executed once."""
    return run_batches(examples, min(steps, WARMUP_STEPS), 999, 0, batch_size)


def result_dict(result: RunResult) -> dict:
    return {**asdict(result), "samples_per_s": result.samples_per_s}
