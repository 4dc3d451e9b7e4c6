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


def _compile_unoptimized() -> None:
    """This process's XLA CPU backend at LLVM -O0; the dslc processes tests start keep the default.

    Compiling is most of an in-process test's JAX time, and a test's tiny batches do not
    need optimized code: the parity tests took 203 s of CPU at the default and 142 s at
    -O0 (the same IEEE operations, none reassociated, so every tolerance still holds). The
    flag is read once, when the CPU client starts, so it is set for that moment only:
    ``dslc train`` runs started by tests (quickstart, throughput bounds) compile as users' do.
    """
    flags = os.environ.get("XLA_FLAGS")
    os.environ["XLA_FLAGS"] = f"{flags or ''} --xla_backend_optimization_level=0".strip()
    jax.jit(lambda x: x + 1)(0).block_until_ready()  # starts the client, which reads XLA_FLAGS
    if flags is None:
        del os.environ["XLA_FLAGS"]
    else:
        os.environ["XLA_FLAGS"] = flags


_compile_unoptimized()
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo() -> Path:
    return REPO
