"""Test-wide settings: float64 available in JAX, TF32 off in torch, shared helpers."""

import os
from pathlib import Path

from backends.threads import available_cores, use_threads

if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):  # pytest -n N: each worker its share of the cores, and so
    # the dslc processes it starts (DSLC_THREADS): N workers of all the cores each oversubscribe them.
    os.environ["DSLC_THREADS"] = str(max(1, available_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    use_threads()  # before JAX starts its CPU client

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
