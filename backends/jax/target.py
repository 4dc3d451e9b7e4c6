"""The JAX target: the dataset lives on the device; steps are compiled ahead of time.

Train steps are one ``jax.jit`` function with the state donated, so parameters and
optimizer state are updated in place; batches are gathered on the device from index
arrays. The loss and accuracy sums stay on the device until the driver reads them.

For small steps the per-call dispatch is a large share of the time, so runs of
``steps_per_call`` full batches go through one compiled ``lax.scan``. For large
steps XLA's CPU backend runs a scanned step slower than a plain one (the MNIST CNN
twice as slow), so ``compile`` times both on a copy of the state and keeps the
faster; compute-heavy steps (over ``LOOP_MAX_STEP_SECONDS``) skip the trial. All of
it is timed as compilation and kept out of throughput.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dsl import Graph, WeightsError
from dsl.schema import TrainSpec

from ..inputs import as_tuple, map_inputs
from ..optimizer_state import (
    STEP,
    OptimizerState,
    check_optimizer_state,
    entries_of,
    entry_key,
    step_array,
    trainable_names,
)
from ..weights import StateDict
from .model import FlaxModel, state_from_variables, variables_from_state
from .training import TrainState, apply_train, make_loss, make_optimizer, make_steps

LOOP_MAX_STEP_SECONDS = 0.005


class JaxTarget:
    name = "jax"
    steps_per_call = 25

    def __init__(self, graph: Graph, train: TrainSpec | None, *, seed: int = 0, dtype: str = "float32",
                 full_precision: bool = False):
        if dtype == "float64" and not jax.config.jax_enable_x64:
            jax.config.update("jax_enable_x64", True)
        if full_precision:  # no TF32 / bf16 passes on GPUs: dslc check compares float32 to float32
            jax.config.update("jax_default_matmul_precision", "highest")
        self.graph, self.train, self.dtype, self.seed = graph, train, jnp.dtype(dtype), seed
        self.model = FlaxModel(graph)
        self.loss_name = train.loss.name if train else "cross_entropy"
        self.loss = make_loss(train.loss) if train else None
        self.tx = make_optimizer(train.optimizer) if train else None
        self.state: TrainState | None = None
        self._compiled: dict = {}
        if train:
            train_step, train_loop, eval_step = make_steps(self.model, self.loss_name, self.loss, self.tx)
            self._train_step = jax.jit(train_step, donate_argnums=0)
            self._train_loop = jax.jit(train_loop, donate_argnums=0)
            self._eval_step = jax.jit(eval_step)
        self._apply = jax.jit(lambda variables, x: self.model.apply(variables, *as_tuple(x)))

    # weights -------------------------------------------------------------
    def load_state(self, state: StateDict) -> None:
        variables = variables_from_state(self.graph, state)
        variables = jax.tree.map(lambda a: jnp.asarray(a, self.dtype if a.dtype.kind == "f" else None), variables)
        params, model_state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
        opt_state = self.tx.init(params) if self.tx else None
        self.state = TrainState(params, model_state, opt_state, jnp.zeros((), jnp.int32), jax.random.key(self.seed))

    def export_state(self) -> StateDict:
        return state_from_variables(self.graph, self.variables)

    # optimizer state ---------------------------------------------------------
    def export_optimizer_state(self) -> OptimizerState:
        """optax's state in torch's terms: ``mu``/``nu``/``count`` -> ``exp_avg``/``exp_avg_sq``/``step``,
        ``trace`` -> ``momentum_buffer`` (docs/PARITY.md §13: with no dampening the two are the same
        recurrence), each tree converted to canonical layouts like the weights."""
        step, opt_state = int(self.state.step), self.state.opt_state
        state = {STEP: step_array(step)}
        if self.train.optimizer.name == "sgd":
            trace = optax.tree_utils.tree_get(opt_state, "trace")
            entries = {"momentum_buffer": self._canonical(trace)} if trace is not None and step else {}
        elif count := int(optax.tree_utils.tree_get(opt_state, "count")):
            entries = {"step": dict.fromkeys(trainable_names(self.graph), np.array(count, np.float32)),
                       "exp_avg": self._canonical(optax.tree_utils.tree_get(opt_state, "mu")),
                       "exp_avg_sq": self._canonical(optax.tree_utils.tree_get(opt_state, "nu"))}
        else:
            entries = {}
        for weight in trainable_names(self.graph):
            state.update({entry_key(weight, entry): values[weight] for entry, values in entries.items()})
        return state

    def load_optimizer_state(self, state: OptimizerState) -> None:
        """The inverse of ``export_optimizer_state``: a fresh ``tx.init`` with the canonical entries set in.

        Missing entries (before the first step) stay optax's zeros, which give the same
        first step as torch's absent ones. optax has one ``count`` for all weights, so
        the per-weight ``step`` entries must agree.
        """
        name = self.train.optimizer.name
        check_optimizer_state(self.graph, name, state)
        found = {w: entries_of(state, w, name) for w in trainable_names(self.graph)}
        opt_state = self.tx.init(self.state.params)
        if found and all(found.values()):  # checked: all weights have state, or none (before the first step)
            opt_state = self._with_entries(opt_state, name, found)
        self.state = self.state._replace(opt_state=opt_state, step=jnp.asarray(int(state[STEP]), jnp.int32))

    def _with_entries(self, opt_state, name: str, found: dict[str, dict[str, np.ndarray]]):
        def entry(key):
            return {w: e[key] for w, e in found.items()}

        if name == "sgd":
            return self._set(opt_state, trace=entry("momentum_buffer"))
        counts = {int(e["step"]) for e in found.values()}
        if len(counts) != 1:
            raise WeightsError(f"optimizer state: the weights' step entries differ ({sorted(counts)}); "
                               f"optax keeps one count for all of them")
        return self._set(opt_state, mu=entry("exp_avg"), nu=entry("exp_avg_sq"), count=counts.pop())

    def _canonical(self, tree) -> StateDict:
        """A tree shaped like the params (a moment, a trace) in canonical names and layouts."""
        state = state_from_variables(self.graph, {**self.variables, "params": tree})
        return {w: state[w] for w in trainable_names(self.graph)}

    def _set(self, opt_state, count: int | None = None, **trees: StateDict):
        """``opt_state`` with the named fields (``mu``, ``trace``, ...) replaced, converted to Flax layouts.

        Buffers fill the rest of the state dict the converters read; the params trees
        they give back are the ones used.
        """
        full = self.export_state()
        values = {k: jax.tree.map(lambda a: jnp.asarray(a, self.dtype),
                                  variables_from_state(self.graph, {**full, **tree})["params"])
                  for k, tree in trees.items()}
        if count is not None:
            old = optax.tree_utils.tree_get(opt_state, "count")
            values["count"] = jnp.asarray(count, old.dtype)
        return optax.tree_utils.tree_set(opt_state, **values)

    @property
    def variables(self) -> dict:
        return {"params": self.state.params, **self.state.model_state}

    # training ------------------------------------------------------------
    def put(self, x: np.ndarray, y: np.ndarray):
        y_dtype = self.dtype if y.dtype.kind == "f" else jnp.int32
        return jax.device_put(self._arrays(x)), jax.device_put(jnp.asarray(y, y_dtype))

    def _arrays(self, x):
        """Float inputs in the model's dtype; integer and bool inputs keep theirs (ids, masks)."""
        return map_inputs(lambda a: jnp.asarray(a, self.dtype if a.dtype.kind == "f" else None), x)

    def compile(self, train_data, test_data, batch_sizes: list[int], eval_batch_size: int) -> float:
        start = time.perf_counter()
        for size in sorted(set(batch_sizes)):
            index = jax.ShapeDtypeStruct((size,), jnp.int32)
            self._compiled[size] = self._train_step.lower(self.state, *train_data, index).compile()
        self._compile_loop(train_data, max(batch_sizes))
        index = jax.ShapeDtypeStruct((eval_batch_size,), jnp.int32)
        mask = jax.ShapeDtypeStruct((eval_batch_size,), self.dtype)
        self._compiled["eval"] = self._eval_step.lower(self.variables, *test_data, index, mask).compile()
        return time.perf_counter() - start

    def _compile_loop(self, data, batch_size: int) -> None:
        """Compiles the multi-step loop if it beats single steps on this model and machine."""
        batches = np.zeros((self.steps_per_call, batch_size), np.int32)
        step = self._compiled[batch_size]
        state = jax.tree.map(jnp.copy, self.state)  # the trial trains a copy; the state is donated
        _, state = _seconds(lambda s: _run(step, s, data, batches[:5]), state)  # warm-up
        single, state = _seconds(lambda s: _run(step, s, data, batches[:10]), state)
        if single / 10 > LOOP_MAX_STEP_SECONDS:
            return
        loop = self._train_loop.lower(self.state, *data, jax.ShapeDtypeStruct(batches.shape, jnp.int32)).compile()
        _, state = _seconds(lambda s: loop(s, *data, batches), state)  # warm-up
        looped, unrolled = [], []
        for _ in range(3):  # interleaved, best of three: a busy machine must not decide it
            seconds, state = _seconds(lambda s: loop(s, *data, batches), state)
            looped.append(seconds)
            seconds, state = _seconds(lambda s: _run(step, s, data, batches), state)
            unrolled.append(seconds)
        if min(looped) < min(unrolled):
            self._compiled["loop", batch_size] = loop

    def train_steps(self, data, batches: list[np.ndarray]):
        loss_sum = correct = 0.0
        start = 0
        loop = self._compiled.get(("loop", len(batches[0])))
        while loop and len(batches) - start >= self.steps_per_call and \
                all(len(b) == len(batches[0]) for b in batches[start:start + self.steps_per_call]):
            indices = np.stack(batches[start:start + self.steps_per_call])
            self.state, (loss, hits) = loop(self.state, *data, indices)
            loss_sum, correct, start = loss_sum + loss, correct + hits, start + self.steps_per_call
        for index in batches[start:]:
            step = self._compiled.get(len(index), self._train_step)
            self.state, (loss, hits) = step(self.state, *data, index)
            loss_sum, correct = loss_sum + loss, correct + hits
        return loss_sum, correct

    def evaluate(self, data, index: np.ndarray, mask: np.ndarray):
        step = self._compiled.get("eval", self._eval_step)
        loss_sum = correct = 0.0
        for rows, weights in zip(index, mask.astype(self.dtype)):
            loss, hits = step(self.variables, *data, rows, weights)
            loss_sum, correct = loss_sum + loss, correct + hits
        return loss_sum, correct

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        x = self._arrays(x)
        return np.concatenate([np.asarray(self._apply(self.variables, map_inputs(lambda a: a[i:i + batch_size], x)))
                               for i in range(0, len(as_tuple(x)[0]), batch_size)])

    # parity --------------------------------------------------------------
    def forward(self, x: np.ndarray, capture: bool = False, train: bool = False):
        """A probe: the model state a training-mode forward returns is dropped."""
        mode = {"mutable": list(self.state.model_state), "rngs": {"dropout": self.state.key}} if train else {}
        out = self.model.apply(self.variables, *as_tuple(self._arrays(x)), capture=capture, train=train, **mode)
        out = out[0] if train else out
        out, captured = out if capture else (out, {})
        return jax.tree.map(np.asarray, out), {k: np.asarray(v) for k, v in captured.items()}

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, train: bool = False):
        x, y = self.put(x, y)

        def objective(params):
            if train:
                return self.loss(apply_train(self.model, params, self.state.model_state, x, self.state.key)[0], y)
            return self.loss(self.model.apply({"params": params, **self.state.model_state}, *as_tuple(x)), y)

        loss, grads = jax.value_and_grad(lambda params: objective(params).mean())(self.state.params)
        return float(loss), state_from_variables(self.graph, {"params": grads})


def _run(step, state, data, batches):
    for index in batches:
        state, metrics = step(state, *data, index)
    return state, metrics


def _seconds(fn, state):
    """Wall time of ``fn(state)`` to completion, and the state it returns."""
    start = time.perf_counter()
    state, metrics = fn(state)
    jax.block_until_ready(metrics)
    return time.perf_counter() - start, state


TARGET = JaxTarget
