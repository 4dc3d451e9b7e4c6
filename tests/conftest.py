"""Test-wide settings: float64 available in JAX, TF32 off in torch, shared helpers."""

from pathlib import Path

import jax
import pytest
import torch

jax.config.update("jax_enable_x64", True)  # float64 parity tests; dslc's own code gives dtypes explicitly
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    return REPO
