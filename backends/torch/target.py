"""The torch target: eager torch steps over in-memory tensors, optionally ``torch.compile``d.

Batches are gathered from the in-memory dataset by index (no per-example Python),
the optimizer is torch's fused implementation, and the loss and accuracy sums stay
tensors until the driver reads them once per epoch. Like JAX, the target uses the
GPU when there is one (``device`` overrides).

Dropout's randomness is a function of (seed, step), as JAX's ``fold_in(key, step)``
is: before each step of a model with dropout, torch's generator is seeded from the
two, so a resumed run draws the masks an uninterrupted one would, with no generator
state saved (4 µs a step with the seeding; models without dropout skip it).
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
import torch

from dsl import Graph
from dsl.schema import TrainSpec

from ..inputs import as_tuple, map_inputs, map_outputs
from ..optimizer_state import STEP, OptimizerState, check_optimizer_state, entries_of, entry_key, step_array
from ..weights import StateDict
from .module import DTYPES, build_module, export_state, load_state
from .training import correct_count, make_loss, make_optimizer


class TorchTarget:
    name = "torch"

    def __init__(self, graph: Graph, train: TrainSpec | None, *, seed: int = 0, dtype: str = "float32",
                 compile: bool = False, device: str | None = None, full_precision: bool = False):
        torch.manual_seed(seed)
        self.seed, self.steps = seed, 0
        self.random = any(n.is_random for n in graph.nodes)
        if full_precision:  # no TF32 on GPUs: dslc check compares float32 to float32
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        self.graph, self.train, self.dtype = graph, train, DTYPES[dtype]
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.module = build_module(graph, dtype=dtype).to(self.device)
        self.generator = device_generator(self.device)
        self.step_module = torch.compile(self.module) if compile else self.module  # shares the parameters
        self.loss_name = train.loss.name if train else "cross_entropy"
        self.loss = make_loss(train.loss) if train else None
        self.optimizer = None

    def load_state(self, state: StateDict) -> None:
        load_state(self.module, self.graph, state)
        self.optimizer, self.steps = None, 0

    def export_optimizer_state(self) -> OptimizerState:
        """torch's ``optimizer.state_dict()['state']``, keyed by weight name (``optimizer_state.py``)."""
        state = {STEP: step_array(self.steps)}
        if self.optimizer is None:
            return state
        for name, param in self.module.named_parameters():
            for entry, value in self.optimizer.state.get(param, {}).items():
                if value is not None:
                    state[entry_key(name, entry)] = np.array(value.detach().cpu().numpy(), order="C")
        return state

    def load_optimizer_state(self, state: OptimizerState) -> None:
        """A fresh optimizer given the canonical state through ``load_state_dict``, torch's own path.

        ``load_state_dict`` casts each entry to its parameter's dtype and device, and puts
        ``step`` where the fused kernel reads it (float32, on the parameter's device): a
        fused Adam continues bit for bit (tests/test_resume.py).
        """
        name = self.train.optimizer.name
        check_optimizer_state(self.graph, name, state)
        self.optimizer = make_optimizer(self.train.optimizer, self.module.parameters())
        saved = self.optimizer.state_dict()
        params = dict(self.module.named_parameters())
        ids = {id(p): i for i, p in enumerate(self.optimizer.param_groups[0]["params"])}
        saved["state"] = {ids[id(params[w])]: {e: torch.from_numpy(np.array(v)) for e, v in entries.items()}
                          for w in params if (entries := entries_of(state, w, name))}
        self.optimizer.load_state_dict(saved)
        self.steps = int(state[STEP])

    def export_state(self) -> StateDict:
        return export_state(self.module)

    def put(self, x: np.ndarray, y: np.ndarray):
        y_dtype = self.dtype if y.dtype.kind == "f" else torch.int64
        return self._tensor(x), torch.from_numpy(y).to(self.device, y_dtype)

    def compile(self, train_data, test_data, batch_sizes: list[int], eval_batch_size: int) -> float:
        """With ``torch.compile``, traces and compiles the train step on each batch size (timed)."""
        if self.step_module is self.module:
            return 0.0
        start = time.perf_counter()
        state = export_state(self.module)
        for size in sorted(set(batch_sizes)):
            self.train_steps(train_data, [np.arange(size, dtype=np.int32)])
        self.load_state(state)  # compiling must not train
        return time.perf_counter() - start

    def train_steps(self, data, batches: list[np.ndarray]):
        if self.optimizer is None:
            self.optimizer = make_optimizer(self.train.optimizer, self.module.parameters())
        self.module.train()
        x_all, y_all = data
        loss_sum, correct = (torch.zeros((), dtype=self.dtype, device=self.device) for _ in range(2))
        for index in batches:
            if self.random:
                self.generator.manual_seed(step_seed(self.seed, self.steps))
            self.steps += 1
            index = torch.from_numpy(index).to(self.device, non_blocking=True)
            x, y = map_inputs(lambda a: a[index], x_all), y_all[index]
            out = self.step_module(*as_tuple(x))
            loss = self.loss(out, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum.add_(loss.detach(), alpha=len(index))
            correct.add_(correct_count(self.loss_name, out.detach(), y))
        return loss_sum, correct

    @torch.no_grad()
    def evaluate(self, data, index: np.ndarray, mask: np.ndarray):
        self.module.eval()
        x_all, y_all = data
        loss_sum = correct = torch.zeros((), dtype=self.dtype, device=self.device)
        for rows, weights in zip(index, mask):
            rows = torch.from_numpy(rows).to(self.device)
            weights = torch.from_numpy(weights).to(self.device, self.dtype)
            out = self.module(*as_tuple(map_inputs(lambda a: a[rows], x_all)))
            loss_sum = loss_sum + (self.loss(out, y_all[rows], reduction="none") * weights).sum()
            correct = correct + correct_count(self.loss_name, out, y_all[rows], weights)
        return loss_sum, correct

    @torch.no_grad()
    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        self.module.eval()
        x = self._tensor(x)
        size = len(as_tuple(x)[0])
        return torch.cat([self.module(*as_tuple(map_inputs(lambda a: a[i:i + batch_size], x)))
                          for i in range(0, size, batch_size)]).cpu().numpy()

    @torch.no_grad()
    def forward(self, x: np.ndarray, capture: bool = False, train: bool = False):
        self.module.train(train)
        captured = {}
        hooks = [self.module.get_submodule(n.name).register_forward_hook(
            lambda mod, args, out, name=n.name: captured.__setitem__(name, out.cpu().numpy().copy()))
            for n in self.graph.nodes] if capture else []
        try:
            with self._buffers_kept():
                out = map_outputs(lambda t: t.cpu().numpy(), self.module(*as_tuple(self._tensor(x))))
        finally:
            for hook in hooks:
                hook.remove()
        return out, captured

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, train: bool = False):
        self.module.train(train)
        self.module.zero_grad(set_to_none=True)
        x_t, y_t = self.put(x, y)
        with self._buffers_kept():  # restored after backward, which reads the saved running statistics
            loss = self.loss(self.module(*as_tuple(x_t)), y_t)
            loss.backward()
        grads = {k: np.array(p.grad.cpu().numpy(), order="C") for k, p in self.module.named_parameters()}
        return loss.item(), grads

    @contextlib.contextmanager
    def _buffers_kept(self):
        """Restores the buffers a training-mode forward updates: ``forward`` and ``loss_and_grads`` only probe."""
        saved = {k: b.clone() for k, b in self.module.named_buffers()}
        try:
            yield
        finally:
            with torch.no_grad():
                for k, b in self.module.named_buffers():
                    b.copy_(saved[k])

    def _tensor(self, x):
        """Float inputs in the model's dtype; integer and bool inputs keep theirs (ids, masks)."""
        return map_inputs(lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(
            self.device, self.dtype if a.dtype.kind == "f" else None), x)


def step_seed(seed: int, step: int) -> int:
    """The seed of one step's random draws: splitmix64 of (seed, step), so nearby steps' streams are unrelated.

    Measured on this CPU: 1.3 µs (numpy's ``SeedSequence`` took 28 µs).
    """
    x = (seed * 0x9E3779B97F4A7C15 + step + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def device_generator(device: torch.device) -> torch.Generator:
    """The generator dropout draws from on ``device``.

    Seeding it directly costs 2.7 µs; ``torch.manual_seed`` seeds every device type
    there is and took 300 µs a call on this CPU, more than a digits_mlp step.
    """
    if device.type == "cuda":
        torch.cuda.init()
        return torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()]
    return torch.default_generator


_MASK64 = (1 << 64) - 1


TARGET = TorchTarget
