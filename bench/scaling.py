"""Scaling mode: training samples/s of ``dslc train`` with 1 and N workers, on whatever devices exist.

    python -m bench.scaling [--specs specs/digits_mlp.yaml,specs/digits_bn_cnn.yaml] [--workers 1,2]
                            [--targets torch,jax] [--device auto] [--precision float32,bf16] [--steps 200]
                            [--out bench/results/scaling.json]

Each point is one real ``dslc train`` run in a fresh process (``cli.py``, so what a
user types is what is timed): ``--nproc N`` for torch (DDP, one process per worker),
``--devices N`` for JAX (one process, a ``data`` mesh over N devices; on the CPU
dslc asks XLA for N host devices). The rate is the run's own ``train_samples_per_sec``
from ``summary.json``: timed steps only, no compilation, warm-up or evaluation.
The global batch is the spec's, so N workers each compute 1/N of it: on one
2-core CPU, N workers share the same cores and the ratio measures the overhead of
data parallelism, not a speed-up; on N GPUs it is the scaling itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .run import environment

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SPECS = ("specs/digits_mlp.yaml", "specs/digits_bn_cnn.yaml")
DEFAULT_OUT = Path("bench/results/scaling.json")
WORKER_FLAG = {"torch": "--nproc", "jax": "--devices"}


def train_rate(spec: str, target: str, workers: int, *, device: str, precision: str, steps: int,
               threads: int | None = None) -> dict:
    """One ``dslc train`` run; its summary's samples/s and wall seconds (or the error line it printed)."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, str(REPO / "cli.py"), "train", spec, "--target", target, "--max-steps", str(steps),
                   "--out", out, "--overwrite", "--no-progress", "--device", device, "--precision", precision,
                   WORKER_FLAG[target], str(workers), *(["--threads", str(threads)] if threads else [])]
        tic = time.perf_counter()
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
        point = {"spec": spec, "target": target, "workers": workers, "precision": precision,
                 "process_seconds": time.perf_counter() - tic}
        summary = Path(out) / "summary.json"
        if result.returncode != 0 or not summary.exists():
            return {**point, "error": (result.stderr.strip().splitlines() or ["exit %d" % result.returncode])[-1]}
        data = json.loads(summary.read_text())
        return {**point, "samples_per_sec": data["train_samples_per_sec"], "steps": data["steps"],
                "train_loss": data.get("train_loss")}


def with_speedups(points: list[dict]) -> list[dict]:
    """Each point's rate over the 1-worker rate of the same spec, target and precision."""
    one = {(p["spec"], p["target"], p["precision"]): p.get("samples_per_sec") for p in points if p["workers"] == 1}
    for p in points:
        base = one.get((p["spec"], p["target"], p["precision"]))
        p["vs_1_worker"] = p["samples_per_sec"] / base if base and p.get("samples_per_sec") else None
    return points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="dslc train samples/s with 1 and N data-parallel workers")
    parser.add_argument("--specs", default=",".join(DEFAULT_SPECS), help="comma-separated spec paths")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--targets", default="torch,jax")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto")
    parser.add_argument("--precision", default="float32", help="comma-separated: float32,bf16")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per run (default 200)")
    parser.add_argument("--threads", type=int, help="CPU threads per process (default: dslc's own)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    split = lambda text: [s.strip() for s in text.split(",") if s.strip()]  # noqa: E731
    points = []
    for spec in split(args.specs):
        for target in split(args.targets):
            for precision in split(args.precision):
                for workers in map(int, split(args.workers)):
                    point = train_rate(spec, target, workers, device=args.device, precision=precision,
                                       steps=args.steps, threads=args.threads)
                    rate = point.get("samples_per_sec")
                    print(f"{spec} {target} {precision} x{workers}: "
                          + (f"{rate:,.0f} samples/s" if rate else point.get("error", "n/a")), flush=True)
                    points.append(point)
    report = {"command": " ".join(["python -m bench.scaling", *(argv if argv is not None else sys.argv[1:])]),
              "environment": environment(), "device": args.device, "points": with_speedups(points)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all("error" not in p for p in points) else 1


if __name__ == "__main__":
    sys.exit(main())
