"""Hand-written Keras 3 references (``keras.Sequential``), trained with ``model.fit``.

Why ``fit``: it is how Keras is meant to be used and the path Keras optimizes (one
compiled train function per batch shape, metrics on the device); a
``train_on_batch`` loop adds a Python round trip and a numpy->tensor conversion per
step that no Keras expert would choose for an in-memory dataset. To give Keras the
same batches in the same order as the other variants, each timed run gathers its
examples in batch order *before* the clock starts and calls
``fit(x, y, batch_size=<the spec's>, epochs=1, shuffle=False, verbose=0)``: Keras' own shuffle
is left out of the timing, which favours Keras slightly. ``fit``'s per-call overhead
(data adapter, callbacks, history) is inside the timed region, as a user pays it.
Inputs are NHWC (Keras' default ``channels_last``); Adam uses ``epsilon=1e-8``
(torch's value; Keras' default is 1e-7). ``steps_per_execution`` and ``jit_compile``
are left at their defaults.

Keras fixes its backend per process (``KERAS_BACKEND`` before the first import), so
the harness runs each backend in its own subprocess (``bench.worker``). One-shot use:

    python -m bench.references.keras_ref --backend jax --model mlp --steps 200

prints one JSON object (samples/s of one timed run after a warm-up ``fit``).
"""

from __future__ import annotations

import os

import numpy as np

BACKENDS = ("jax", "torch")


def import_keras(backend: str):
    """Imports Keras on the given backend; fails if Keras was already imported on another."""
    os.environ["KERAS_BACKEND"] = backend
    import keras

    if keras.backend.backend() != backend:
        raise RuntimeError(f"keras is already imported with backend {keras.backend.backend()!r}")
    return keras


def build(keras, model: str, state: dict[str, np.ndarray] | None, optimizer):
    from keras import layers

    if model == "mlp":
        net = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(),
                                layers.Dense(128, activation="relu"), layers.Dense(10)])
    elif model == "cnn":
        net = keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3, activation="relu"),
                                layers.MaxPooling2D(2), layers.Flatten(),
                                layers.Dense(128, activation="relu"), layers.Dense(10)])
    else:
        raise ValueError(f"no Keras reference for model {model!r}")
    if state is not None:
        net.set_weights(weights_from_torch(model, state))
    net.compile(optimizer=make_optimizer(keras, optimizer),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return net


def make_optimizer(keras, optimizer):
    """The spec's Adam in Keras (torch's eps); Keras' weight_decay is decoupled, so other optimizers are refused."""
    p = optimizer.params
    if optimizer.name != "adam" or p["weight_decay"]:
        raise ValueError(f"no Keras reference for optimizer {optimizer.name} {dict(p)}")
    return keras.optimizers.Adam(learning_rate=p["lr"], beta_1=p["betas"][0], beta_2=p["betas"][1], epsilon=p["eps"])


def weights_from_torch(model: str, state: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Canonical (torch) weights in ``set_weights`` order, in Keras layouts."""
    fc1 = state["fc1.weight"]
    weights = []
    if model == "cnn":
        weights += [state["conv1.weight"].transpose(2, 3, 1, 0), state["conv1.bias"]]
        fc1 = fc1.reshape(128, 32, 13, 13).transpose(0, 2, 3, 1).reshape(128, -1)
    weights += [fc1.T, state["fc1.bias"], state["fc2.weight"].T, state["fc2.bias"]]
    return [np.ascontiguousarray(w, np.float32) for w in weights]


class Trainer:
    """A compiled Keras model over the NHWC data; ``train(batches)`` is one timed ``fit``."""

    def __init__(self, backend: str, model: str, x_nchw: np.ndarray, y: np.ndarray, state, optimizer):
        self.keras = import_keras(backend)
        self.net = build(self.keras, model, state, optimizer)
        self.x = np.ascontiguousarray(x_nchw.transpose(0, 2, 3, 1))
        self.y = y.astype(np.int32)

    def prepare(self, batches) -> tuple[np.ndarray, np.ndarray]:
        order = np.concatenate(batches)
        return self.x[order], self.y[order]

    def fit(self, x: np.ndarray, y: np.ndarray, batch_size: int = 64) -> tuple[float, float, int]:
        history = self.net.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        return float(history.history["loss"][-1]), float(history.history["accuracy"][-1]), len(y)


def main(argv=None) -> None:
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=BACKENDS, required=True)
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--examples", type=int, default=60000)
    args = parser.parse_args(argv)
    from bench.worker import serve_once

    result = serve_once(f"keras-{args.backend}", args.model, args.examples, args.steps)
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
