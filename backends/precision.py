"""Device names and mixed precision, framework-free: what both targets agree on.

``device`` is the target option ``cpu | cuda | auto`` (``--device``): auto takes a GPU
when the framework has one. ``precision`` is ``train.precision`` (``--precision``):
``bf16`` is mixed precision, float32 weights and optimizer state with bfloat16 compute
(README, "Mixed precision", has the table of which op computes in which dtype on
each target; ``backends/jax/device.py`` the JAX policy).
"""

from __future__ import annotations

from dsl.errors import UsageError

DEVICES = ("cpu", "cuda", "auto")
PRECISIONS = ("float32", "bf16")


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise UsageError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    return device


def no_gpu(framework: str, looked_for: str) -> UsageError:
    """The one line for ``--device cuda`` where the framework finds no GPU."""
    return UsageError(f"--device cuda: {framework} finds no GPU ({looked_for}); use --device cpu, or --device auto "
                      f"to take a GPU only where there is one")


def check_precision(precision: str, dtype: str) -> str:
    """``precision`` if the model's dtype can take it: bf16 mixes bfloat16 compute into float32 weights only."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if precision == "bf16" and dtype != "float32":
        raise UsageError(f"precision bf16 computes in bfloat16 over float32 weights; a {dtype} model cannot use "
                         f"it: use precision float32, or dtype float32")
    return precision
