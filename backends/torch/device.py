"""Which torch device a target runs on, and its bf16 autocast (``backends/precision.py``)."""

from __future__ import annotations

import contextlib

import torch

from ..precision import check_device, no_gpu


def resolve_device(device: str | None) -> torch.device:
    """``cpu``, ``cuda`` (refused where ``torch.cuda.is_available()`` is False) or ``auto``/None: cuda if there."""
    device = check_device(device or "auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise no_gpu("torch", "torch.cuda.is_available() is False")
    return torch.device(device)


def device_name(device: torch.device) -> str:
    """As summary.json records it: ``cpu``, or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def autocast(device: torch.device, bf16: bool):
    """torch's mixed precision for forward and loss: bfloat16 where autocast's lists say (no GradScaler: bfloat16
    has float32's exponent range); a no-op context for float32."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def float_outputs(model):
    """``model`` with its floating outputs in float32: losses and metric sums never count in bfloat16 (8 bits of
    mantissa: integers above 256 round), and numpy has no bfloat16 to copy them into."""
    def run(*inputs):
        out = model(*inputs)
        return {k: as_float(v) for k, v in out.items()} if isinstance(out, dict) else as_float(out)

    return run


def as_float(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype == torch.bfloat16 else t
