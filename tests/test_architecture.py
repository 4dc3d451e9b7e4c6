"""The dependency rules of the design, enforced."""

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO


def imports(folder: str) -> dict[str, set[str]]:
    found = {}
    for path in (REPO / folder).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = "." * node.level + (node.module or "")
                names.add(base)
        found[str(path.relative_to(REPO))] = names
    return found


def roots(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names if not n.startswith(".")}


def test_dsl_imports_neither_torch_nor_jax_nor_backends():
    for path, names in imports("dsl").items():
        assert not roots(names) & {"torch", "torchvision", "jax", "flax", "optax", "backends", "cli"}, path


@pytest.mark.parametrize("backend, forbidden", [("torch", {"jax", "flax", "optax"}), ("jax", {"torch", "torchvision"})])
def test_backends_never_import_each_other(backend, forbidden):
    for path, names in imports(f"backends/{backend}").items():
        assert not roots(names) & forbidden, path
        other = "jax" if backend == "torch" else "torch"
        assert not any(n.lstrip(".").startswith(other) or n == f"backends.{other}" for n in names), path


def test_nothing_in_the_library_imports_the_cli():
    for folder in ("dsl", "backends"):
        for path, names in imports(folder).items():
            assert "cli" not in roots(names), path


def test_loading_a_spec_loads_no_framework():
    code = ("import sys, dsl, dsl.summary, backends.loop, backends.parity; dsl.load('specs/mnist_cnn.yaml'); "
            "print(sorted(m for m in ('torch', 'jax', 'flax', 'optax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
