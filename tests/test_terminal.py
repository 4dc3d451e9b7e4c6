"""The README's quickstart typed in a terminal: ``dslc train`` inside a pseudo-terminal, progress bar on.

The quickstart once crashed only in a terminal (rich's bar raised ``KeyError: 'rate'``
after epoch 1) while every test was green, because pipes turn the bar off. These
tests give the command a real pseudo-terminal (the ``pty`` module), as a person's
shell does, and run the README's command unchanged: 20 epochs into the default
``runs/<name>-<target>`` folder of a fresh working directory.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

TIMEOUT_SECONDS = 300


def dslc_command() -> list[str]:
    """The installed ``dslc`` console script as a user runs it, else the checkout's cli.py."""
    script = Path(sys.executable).with_name("dslc")
    return [str(script)] if script.exists() else [sys.executable, str(REPO / "cli.py")]


def run_in_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """Runs a command with a pseudo-terminal as stdin, stdout and stderr; returns (exit code, what it showed)."""
    leader, follower = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(args, stdin=follower, stdout=follower, stderr=follower, cwd=cwd, env=env,
                            start_new_session=True)
    os.close(follower)
    shown = bytearray()
    deadline = time.monotonic() + TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the command exited and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    return proc.wait(timeout=30), shown.decode("utf-8", "replace")


@pytest.mark.parametrize("target", ["jax", "torch"])
def test_quickstart_in_a_terminal(tmp_path, target):
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    code, shown = run_in_terminal(dslc_command() + ["train", "specs/digits_cnn.yaml", "--target", target], tmp_path)
    assert code == 0, shown[-2000:]
    assert "Traceback" not in shown and "Error" not in shown, shown[-2000:]
    assert "━" in shown, "the progress bar was not drawn: the command did not see a terminal"
    assert "epoch 20/20" in shown and f"-> runs/digits_cnn-{target}" in shown
    summary = json.loads((tmp_path / "runs" / f"digits_cnn-{target}" / "summary.json").read_text())
    assert summary["epochs"] == 20 and summary["test_accuracy"] >= 0.97


def test_a_second_run_gets_a_fresh_numbered_folder(tmp_path):
    """The default run folder is never overwritten: the second run goes to ``-2``."""
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    for _ in range(2):
        code, shown = run_in_terminal(dslc_command() + ["train", "specs/digits_mlp.yaml", "--target", "torch",
                                                        "--max-steps", "1"], tmp_path)
        assert code == 0, shown[-2000:]
    assert "-> runs/digits_mlp-torch-2" in shown and "n/a samples/s" in shown  # one step: all warm-up, no rate
    first, second = (json.loads((tmp_path / "runs" / name / "summary.json").read_text())
                     for name in ("digits_mlp-torch", "digits_mlp-torch-2"))
    assert first["out"] == "runs/digits_mlp-torch" and second["out"] == "runs/digits_mlp-torch-2"
    assert first["train_samples_per_sec"] is None
