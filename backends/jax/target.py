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

Over more than one device (``devices``, ``--devices N``) the target is data parallel
(``mesh.py``): the same compiled steps over a one-axis mesh, the state replicated
and each index batch split; one device builds no mesh and places nothing, so it runs
exactly the single-device code. BatchNorm then normalizes each device's shard by
the shard's own statistics, as torch DDP does, unless ``train.sync_batch_norm``
(``ops/normalization.py``).
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dsl import Graph, WeightsError
from dsl.decay import no_decay_names
from dsl.objectives import Objective
from dsl.schema import TrainSpec

from ..data.stream import Stream
from ..inputs import as_tuple, join_outputs, map_inputs, map_outputs
from ..optimizer_state import (
    STEP,
    OptimizerState,
    check_optimizer_state,
    entries_of,
    entry_key,
    of_model,
    step_array,
    trainable_names,
)
from ..precision import check_precision
from ..schedules import StepSchedule, check_scheduled, constant_hyperparameters
from ..weights import StateDict
from ..world import World
from .device import bf16_nodes, device_name, mixed_apply, mixed_model_apply, resolve_device
from .mesh import DataMesh, mesh_devices
from .model import FlaxModel, state_from_variables, variables_from_state
from .objectives import JAX_OBJECTIVES
from .schedule import decay_mask, step_rule
from .training import TrainState, make_apply, make_optimizer, make_steps, put_sub, sub

LOOP_MAX_STEP_SECONDS = 0.005


class JaxTarget:
    name = "jax"
    steps_per_call = 25

    def __init__(self, graph: Graph, train: TrainSpec | None, *, seed: int = 0, dtype: str = "float32",
                 full_precision: bool = False, objective: Objective | None = None, device: str | None = "auto",
                 precision: str | None = None, devices: int | None = 1, world: World = World(),
                 schedules: dict[str, StepSchedule] | None = None):
        """``devices``: the data mesh's local devices per process, None for all of them (what ``dslc train``
        passes unless ``--devices`` says otherwise); 1, the default, for check, eval, predict and the bench, which
        on a multi-GPU host must not spread a probe over every GPU. ``world``: a multi-host run's process;
        unused here, as the mesh spans every process's devices (``mesh.py``), and the driver decides who writes.
        ``schedules``: each scheduled model's lr (and momentum) per step (``backends/schedules.py``), which a spec
        with a schedule or warmup needs to train."""
        self.device = resolve_device(device)  # before anything is traced: --device cuda without a GPU is refused
        self.precision = check_precision(precision or (train.precision if train else "float32"), dtype)
        if dtype == "float64" and not jax.config.jax_enable_x64:
            jax.config.update("jax_enable_x64", True)
        if full_precision:  # no TF32 / bf16 passes on GPUs: dslc check compares float32 to float32
            jax.config.update("jax_default_matmul_precision", "highest")
        self.graph, self.train, self.dtype, self.seed, self.objective = graph, train, jnp.dtype(dtype), seed, objective
        self.model = FlaxModel(graph)
        self.mesh = _data_mesh(devices)
        replicas = self.mesh.size if self.mesh and not (train and train.sync_batch_norm) else 1
        self.apply = make_apply({m: FlaxModel(graph.submodel(m), replicas=replicas) for m in graph.model_names})
        self._model_apply = self.model.apply
        if self.precision == "bf16":  # bfloat16 compute inside the differentiated functions, float32 outside
            nodes = bf16_nodes(graph)
            self.apply, self._model_apply = mixed_apply(self.apply, nodes), mixed_model_apply(self.model.apply, nodes)
        self.phases, self._evaluate = JAX_OBJECTIVES[objective.name](objective, self.apply) if objective else ([], None)
        self.schedules = schedules or {}
        self.txs = {m: self._optimizer(m) for m in dict.fromkeys(m for m, _ in self.phases)}
        self.rules = {m: step_rule(train, self.schedules.get(m), self.dtype) for m in self.txs}
        self.state: TrainState | None = None
        self._compiled: dict = {}
        self._probes: dict = {}  # forward and loss_and_grads, jit-compiled on first use
        if objective:
            train_step, train_loop, eval_step = make_steps(self.phases, self._evaluate, self.txs, self.rules)
            placed = {"out_shardings": self.mesh.replicated} if self.mesh else {}  # the state stays replicated
            self._train_step = jax.jit(train_step, donate_argnums=0, **placed)
            self._train_loop = jax.jit(train_loop, donate_argnums=0, **placed)
            self._eval_step = jax.jit(eval_step, **placed)
        self._apply = jax.jit(lambda variables, x: self._model_apply(variables, *as_tuple(x)))

    def _optimizer(self, model: str):
        """The model's optax optimizer: scaled by the step's lr where it has a schedule, masked by ``no_decay``."""
        optimizer, schedule = self.train.optimizer_for(model), self.schedules.get(model)
        exempt = no_decay_names(self.graph.submodel(model), optimizer.params)
        return make_optimizer(optimizer, scheduled=schedule is not None,
                              cycled=schedule is not None and schedule.momentum is not None,
                              decay_mask=decay_mask(self.graph, model, exempt) if exempt else None)

    def hyperparameters(self, steps: range) -> dict[str, dict[str, np.ndarray]]:
        """The lr (and one_cycle's momentum) each model's optimizer steps ``steps`` use, read from the arrays the
        compiled step indexes by its step count (in the model's dtype)."""
        index = np.asarray(steps, np.int32)
        values = {}
        for model, rule in self.rules.items():
            if rule.lr is None:
                values[model] = {k: np.full(len(index), v) for k, v in
                                 constant_hyperparameters(self.train.optimizer_for(model)).items()}
                continue
            values[model] = {"lr": np.asarray(rule.lr[index]),
                             **({"momentum": np.asarray(rule.momentum[index])} if rule.momentum is not None else {})}
        return values

    # weights -------------------------------------------------------------
    def load_state(self, state: StateDict) -> None:
        variables = variables_from_state(self.graph, state)
        variables = jax.device_put(jax.tree.map(lambda a: jnp.asarray(a, self.dtype if a.dtype.kind == "f" else None),
                                                variables), self.device)
        params, model_state = variables["params"], {k: v for k, v in variables.items() if k != "params"}
        opt_state = {m: tx.init(sub(params, m)) for m, tx in self.txs.items()}
        self.state = self._placed(TrainState(params, model_state, opt_state, jnp.zeros((), jnp.int32),
                                             jax.random.key(self.seed)))

    def export_state(self) -> StateDict:
        return state_from_variables(self.graph, self.variables)

    # optimizer state ---------------------------------------------------------
    def export_optimizer_state(self) -> OptimizerState:
        """optax's state in torch's terms: ``mu``/``nu``/``count`` -> ``exp_avg``/``exp_avg_sq``/``step``,
        ``trace`` -> ``momentum_buffer`` (docs/PARITY.md §13: with no dampening the two are the same
        recurrence), each tree converted to canonical layouts like the weights; one optimizer per model."""
        local = self._local(self.state)
        step = int(local.step)
        state = {STEP: step_array(step)}
        for model in self.txs:
            opt_state, names = local.opt_state[model], trainable_names(self.graph.submodel(model))
            if self.train.optimizer_for(model).name == "sgd":
                trace = optax.tree_utils.tree_get(opt_state, "trace")
                entries = {"momentum_buffer": self._canonical(model, trace)} if trace is not None and step else {}
            elif count := int(optax.tree_utils.tree_get(opt_state, "count")):
                entries = {"step": dict.fromkeys(names, np.array(count, np.float32)),
                           "exp_avg": self._canonical(model, optax.tree_utils.tree_get(opt_state, "mu")),
                           "exp_avg_sq": self._canonical(model, optax.tree_utils.tree_get(opt_state, "nu"))}
            else:
                entries = {}
            for weight in names:
                state.update({entry_key(weight, entry): values[weight] for entry, values in entries.items()})
        return state

    def load_optimizer_state(self, state: OptimizerState) -> None:
        """The inverse of ``export_optimizer_state``: a fresh ``tx.init`` with the canonical entries set in.

        Missing entries (before the first step) stay optax's zeros, which give the same
        first step as torch's absent ones. optax has one ``count`` for all weights, so
        the per-weight ``step`` entries must agree.
        """
        opt_states = {}
        for model, tx in self.txs.items():
            name, sub_graph = self.train.optimizer_for(model).name, self.graph.submodel(model)
            check_optimizer_state(sub_graph, name, of_model(state, model))
            found = {w: entries_of(state, w, name) for w in trainable_names(sub_graph)}
            opt_state = tx.init(sub(self.state.params, model))
            if found and all(found.values()):  # checked: all weights have state, or none (before the first step)
                opt_state = self._with_entries(model, opt_state, name, found)
            opt_states[model] = opt_state
        self.state = self._placed(self.state._replace(opt_state=opt_states,
                                                      step=jnp.asarray(int(state[STEP]), jnp.int32)))

    def _with_entries(self, model: str, opt_state, name: str, found: dict[str, dict[str, np.ndarray]]):
        def entry(key):
            return {w: e[key] for w, e in found.items()}

        if name == "sgd":
            return self._set(model, opt_state, trace=entry("momentum_buffer"))
        counts = {int(e["step"]) for e in found.values()}
        if len(counts) != 1:
            raise WeightsError(f"optimizer state: the weights' step entries differ ({sorted(counts)}); "
                               f"optax keeps one count for all of them")
        return self._set(model, opt_state, mu=entry("exp_avg"), nu=entry("exp_avg_sq"), count=counts.pop())

    def _canonical(self, model: str, tree) -> StateDict:
        """A tree shaped like one model's params (a moment, a trace) in canonical names and layouts."""
        variables = self.variables
        state = state_from_variables(self.graph, {**variables, "params": put_sub(variables["params"], model, tree)})
        return {w: state[w] for w in trainable_names(self.graph.submodel(model))}

    def _set(self, model: str, opt_state, count: int | None = None, **trees: StateDict):
        """``opt_state`` with the named fields (``mu``, ``trace``, ...) replaced, converted to Flax layouts.

        The current weights fill the rest of the state dict the converters read; the
        params trees they give back (this model's part) are the ones used.
        """
        full = self.export_state()
        values = {k: jax.tree.map(lambda a: jnp.asarray(a, self.dtype),
                                  sub(variables_from_state(self.graph, {**full, **tree})["params"], model))
                  for k, tree in trees.items()}
        if count is not None:
            old = optax.tree_utils.tree_get(opt_state, "count")
            values["count"] = jnp.asarray(count, old.dtype)
        return optax.tree_utils.tree_set(opt_state, **values)

    @property
    def device_name(self) -> str:
        return device_name(self.device)

    @property
    def variables(self) -> dict:
        state = self._local(self.state)
        return {"params": state.params, **state.model_state}

    # placement -----------------------------------------------------------
    def _placed(self, state: TrainState) -> TrainState:
        """The state where the steps read it: replicated over the mesh (as it is, on one device)."""
        return self.mesh.replicate(state) if self.mesh else state

    def _local(self, tree):
        """Arrays this process can read whole (a multi-process run's replicated ones are this host's copy)."""
        return self.mesh.local(tree) if self.mesh else tree

    def _batch(self, index: np.ndarray, leading: int = 0):
        """An index (or mask) batch where a step reads it: split over the mesh, or the numpy array itself."""
        return self.mesh.put_batch(index, leading) if self.mesh else index

    def _batch_struct(self, shape: tuple[int, ...], dtype, leading: int = 0) -> jax.ShapeDtypeStruct:
        sharding = self.mesh.batch_sharding(shape[leading], leading) if self.mesh else None
        return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding)

    # training ------------------------------------------------------------
    def put(self, columns: dict[str, np.ndarray] | Stream) -> dict[str, jax.Array] | Stream:
        """Columns on the device: floats in the model's dtype, integers and bools in theirs.
        A ``Stream`` stays on the host: the steps put one batch at a time."""
        if isinstance(columns, Stream):
            return columns
        if self.mesh:
            return self.mesh.replicate({k: np.asarray(v, self.dtype if v.dtype.kind == "f" else None)
                                        for k, v in columns.items()})
        return jax.device_put({k: self._array(v) for k, v in columns.items()}, self.device)

    def _array(self, a: np.ndarray):
        return jnp.asarray(a, self.dtype if a.dtype.kind == "f" else None)

    def compile(self, train_data, test_data, batch_sizes: list[int], eval_batch_size: int) -> float:
        """Compiles the steps ahead of time: for in-memory data, over the whole split gathered by index;
        for a ``Stream``, over one batch of each size (keyed ``('stream', size)``)."""
        check_scheduled(self.train, self.txs, self.schedules)
        start = time.perf_counter()
        for size in sorted(set(batch_sizes)):
            data, key = _shaped(self, train_data, size)
            index = self._batch_struct((size,), jnp.int32)
            self._compiled[key] = self._train_step.lower(self.state, data, index).compile()
        if not isinstance(train_data, Stream):
            self._compile_loop(train_data, max(batch_sizes))
        data, key = _shaped(self, test_data, eval_batch_size, "eval")
        index = self._batch_struct((eval_batch_size,), jnp.int32)
        mask = self._batch_struct((eval_batch_size,), self.dtype)
        self._compiled[key] = self._eval_step.lower(self.state.params, self.state.model_state, data, index,
                                                    mask).compile()
        return time.perf_counter() - start

    def _compile_loop(self, data, batch_size: int) -> None:
        """Compiles the multi-step loop if it beats single steps on this model and machine."""
        batches = np.zeros((self.steps_per_call, batch_size), np.int32)
        step = self._compiled[batch_size]
        state = jax.tree.map(jnp.copy, self.state)  # the trial trains a copy; the state is donated
        _, state = _seconds(lambda s: _run(step, s, data, batches[:5], self._batch), state)  # warm-up
        single, state = _seconds(lambda s: _run(step, s, data, batches[:10], self._batch), state)
        if single / 10 > LOOP_MAX_STEP_SECONDS:
            return
        loop = self._train_loop.lower(self.state, data, self._batch_struct(batches.shape, jnp.int32, 1)).compile()
        stacked = self._batch(batches, 1)
        _, state = _seconds(lambda s: loop(s, data, stacked), state)  # warm-up
        looped, unrolled = [], []
        for _ in range(3):  # interleaved, best of three: a busy machine must not decide it
            seconds, state = _seconds(lambda s: loop(s, data, stacked), state)
            looped.append(seconds)
            seconds, state = _seconds(lambda s: _run(step, s, data, batches, self._batch), state)
            unrolled.append(seconds)
        if min(looped) < min(unrolled):
            self._compiled["loop", batch_size] = loop

    def train_steps(self, data, batches: list[np.ndarray]) -> dict:
        check_scheduled(self.train, self.txs, self.schedules)
        if isinstance(data, Stream):
            sums = {}
            for batch in data.iterate(batches):
                n = len(next(iter(batch.values())))
                step = self._compiled.get(("stream", n), self._train_step)
                self.state, metrics = step(self.state, self.put(batch), self._batch(np.arange(n, dtype=np.int32)))
                sums = _add(sums, metrics)
            return self._local(sums)
        sums, start = {}, 0
        loop = self._compiled.get(("loop", len(batches[0])))
        while loop and len(batches) - start >= self.steps_per_call and \
                all(len(b) == len(batches[0]) for b in batches[start:start + self.steps_per_call]):
            indices = self._batch(np.stack(batches[start:start + self.steps_per_call]), 1)
            self.state, metrics = loop(self.state, data, indices)
            sums, start = _add(sums, metrics), start + self.steps_per_call
        for index in batches[start:]:
            step = self._compiled.get(len(index), self._train_step)
            self.state, metrics = step(self.state, data, self._batch(index))
            sums = _add(sums, metrics)
        return self._local(sums)

    def evaluate(self, data, index: np.ndarray, mask: np.ndarray) -> dict:
        streamed = isinstance(data, Stream)
        step = self._compiled.get(("stream", "eval") if streamed else "eval", self._eval_step)
        batches = data.iterate(list(index)) if streamed else (data for _ in index)
        sums = {}
        for rows, weights, batch in zip(index, mask.astype(self.dtype), batches):
            if streamed:
                batch, rows = self.put(batch), np.arange(len(rows), dtype=np.int32)
            sums = _add(sums, step(self.state.params, self.state.model_state, batch, self._batch(rows),
                                   self._batch(weights)))
        return self._local(sums)

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        x = map_inputs(self._array, x)
        return join_outputs([map_outputs(np.asarray, self._apply(self.variables, map_inputs(
            lambda a: a[i:i + batch_size], x))) for i in range(0, len(as_tuple(x)[0]), batch_size)])

    # parity --------------------------------------------------------------
    def forward(self, x: np.ndarray, capture: bool = False, train: bool = False):
        """A probe: the model state a training-mode forward returns is dropped.

        Jit-compiled whole, once per (capture, train): run eagerly, op by op, a probe compiled
        one XLA module per primitive (gru_classifier's check: 139 compilations, 11 s of its 26 s).
        """
        key = ("forward", capture, train)
        if key not in self._probes:
            self._probes[key] = jax.jit(lambda variables, rng, inputs: self._probe_forward(variables, rng, inputs,
                                                                                           capture, train))
        out, captured = self._probes[key](self.variables, self._step_key(), as_tuple(map_inputs(self._array, x)))
        return jax.tree.map(np.asarray, out), {k: np.asarray(v) for k, v in captured.items()}

    def _step_key(self) -> jax.Array:
        """The next training step's random key (``train_step``'s): the probes draw its dropout masks, so
        ``backends/guard.py`` replays a step's own numbers."""
        return jax.random.fold_in(self.state.key, self.state.step)

    def _probe_forward(self, variables, rng, inputs, capture: bool, train: bool):
        mode = {"mutable": list(self.state.model_state), "rngs": {"dropout": rng}} if train else {}
        out = self._model_apply(variables, *inputs, capture=capture, train=train, **mode)
        out = out[0] if train else out
        return out if capture else (out, {})

    def loss_and_grads(self, batch: dict[str, np.ndarray], phase: int = 0, train: bool = True):
        """The mean loss of step ``phase`` of the objective on ``batch`` and the gradients of the weights that
        step updates, after the earlier phases ran without updating anything (see the torch target). With
        ``train=False`` the model runs in evaluation mode (no dropout, BatchNorm's running statistics), as the
        torch target's ``module.train(False)``."""
        phases = self.phases
        if not train:
            phases, _ = JAX_OBJECTIVES[self.objective.name](self.objective, _evaluating(self.apply))
        model = phases[phase][0]
        key = ("loss_and_grads", phase, train)
        if key not in self._probes:  # jit-compiled whole, as forward is
            self._probes[key] = jax.jit(lambda params, model_state, batch, rng: _phase_loss_and_grads(
                phases, phase, params, model_state, batch, rng))
        loss, grads = self._probes[key](self.state.params, self.state.model_state, self.put(batch), self._step_key())
        grads = state_from_variables(self.graph, {"params": put_sub(self.state.params, model, grads)})
        return float(loss), {w: grads[w] for w in trainable_names(self.graph.submodel(model))}


def _data_mesh(devices: int | None) -> DataMesh | None:
    """The mesh over ``devices`` local devices (None: all of them), or None for one device: no placement at all,
    so one device compiles and runs exactly the unsharded steps."""
    chosen = mesh_devices(devices)
    return DataMesh(chosen) if len(chosen) > 1 else None


def _phase_loss_and_grads(phases, phase: int, params, model_state, batch, rng):
    """Phase ``phase``'s loss and the gradient of its model's weights, after the earlier phases ran on ``batch``
    without updating a weight (their model state carried on, as a training step carries it)."""
    for _, step in phases[:phase]:
        _, (_, model_state) = step(params, model_state, batch, rng)
    model, step = phases[phase]

    def objective(part):
        return step(put_sub(params, model, part), model_state, batch, rng)[0]

    return jax.value_and_grad(objective)(sub(params, model))


def _evaluating(apply):
    """``apply`` always in evaluation mode, whatever mode the objective asks for."""
    def evaluating(model, params, model_state, inputs, train, rng):
        return apply(model, params, model_state, inputs, False, rng)

    return evaluating


def _shaped(target: JaxTarget, data, size: int, kind: str | int | None = None):
    """The data a step is compiled for, and its key in ``_compiled``: the split itself, or for a ``Stream``
    its first ``size`` rows (one batch, as ``put`` makes it)."""
    kind = size if kind is None else kind
    if isinstance(data, Stream):
        return target.put(data.gather(np.arange(min(size, len(data))))), ("stream", kind)
    return data, kind


def _add(sums: dict, metrics: dict) -> dict:
    return {k: sums[k] + v if k in sums else v for k, v in metrics.items()}


def _run(step, state, data, batches, put):
    for index in batches:
        state, metrics = step(state, data, put(index))
    return state, metrics


def _seconds(fn, state):
    """Wall time of ``fn(state)`` to completion, and the state it returns."""
    start = time.perf_counter()
    state, metrics = fn(state)
    jax.block_until_ready(metrics)
    return time.perf_counter() - start, state


TARGET = JaxTarget
