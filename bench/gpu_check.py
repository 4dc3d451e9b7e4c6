"""The GPU check: on a machine with an NVIDIA GPU, parity and training throughput of the zoo, in one report.

    python -m bench.gpu_check [--out bench/results/gpu-check.json] [--models mlp,cnn,resnet20,bert,lstm,deepfm]
                              [--steps 100] [--repeats 3] [--specs specs/a.yaml,...]

1. ``dslc check SPEC --device cuda`` for each zoo spec in float32 (TF32 off in torch,
   ``highest`` matmul precision in JAX: check says so), both targets compared.
2. ``python -m bench.run --device cuda`` in float32: dslc's targets against the
   hand-written torch (channels_last on image models) and Flax references.
3. The same in bf16 (``--precision bf16``): dslc against the torch reference under
   bf16 autocast (there is no bf16 Flax reference).

Each part runs in its own process, so one failure is recorded and the rest still
runs; the report lists every check's verdict, every model's samples/s per variant
and dslc's ratio to the reference of its target. Sized for a short lease (about 10
minutes on an H100 with the defaults); ``--steps``/``--repeats`` trade time for noise.
It needs JAX's CUDA plugin for the JAX parts (``pip install "jax[cuda12]"``); without
it the report says JAX has no GPU and the torch parts still run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .run import environment

REPO = Path(__file__).resolve().parent.parent
ZOO_CHECKS = ("digits_mlp", "digits_cnn", "digits_bn_cnn", "mnist_cnn", "resnet20_cifar", "resnet18", "unet_small",
              "dcgan_digits", "lstm_classifier", "gru_classifier", "lstm_speech_ctc", "transformer_translate",
              "bert_tiny_hf", "mf_movielens", "deepfm_criteo")
MODELS = "mlp,cnn,resnet20,bert,lstm,deepfm"
PAIRS = {"dslc-torch": "torch-ref", "dslc-jax": "flax-ref"}


def gpu_info() -> dict:
    """What torch and JAX see, and nvidia-smi's line for each GPU."""
    import torch

    info = {"torch_cuda": torch.cuda.is_available(),
            "torch_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]}
    try:
        import jax

        info["jax_gpus"] = [str(d) for d in jax.devices("gpu")]
    except RuntimeError as err:  # no CUDA plugin: JAX has only its CPU platform
        info["jax_gpus"], info["jax_gpu_error"] = [], str(err).splitlines()[0]
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        info["nvidia_smi"] = subprocess.run(query, capture_output=True, text=True).stdout.strip().splitlines()
    return info


def check_zoo(specs: list[str], timeout: int) -> list[dict]:
    """``dslc check --device cuda`` per spec: PASS/FAIL, its last lines, seconds."""
    results = []
    for spec in specs:
        tic = time.perf_counter()
        try:
            run = subprocess.run([sys.executable, str(REPO / "cli.py"), "check", spec, "--device", "cuda"], cwd=REPO,
                                 capture_output=True, text=True, timeout=timeout)
            verdict, tail = ("PASS" if run.returncode == 0 else "FAIL"), (run.stdout + run.stderr).strip()
        except subprocess.TimeoutExpired:
            verdict, tail = "TIMEOUT", f"over {timeout} s"
        results.append({"spec": spec, "verdict": verdict, "seconds": time.perf_counter() - tic,
                        "tail": tail.splitlines()[-3:]})
        print(f"check {spec}: {verdict} ({results[-1]['seconds']:.0f}s)", flush=True)
    return results


def throughput(models: str, precision: str, steps: int, repeats: int) -> dict:
    """One ``bench.run`` on the GPU; its per-model samples/s and dslc's ratio to its target's reference."""
    variants = "dslc-torch,dslc-jax,torch-ref" + (",flax-ref" if precision == "float32" else "")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        run = subprocess.run([sys.executable, "-m", "bench.run", "--models", models, "--variants", variants,
                              "--steps", str(steps), "--repeats", str(repeats), "--no-memory", "--no-epoch",
                              "--device", "cuda", "--precision", precision, "--out", str(out)], cwd=REPO,
                             capture_output=True, text=True)
        if not out.exists():
            return {"precision": precision, "error": (run.stderr.strip().splitlines() or ["no result"])[-1]}
        report = json.loads(out.read_text())
    return {"precision": precision, "models": [_rates(m) for m in report["models"]]}


def _rates(model: dict) -> dict:
    rates = {name: v.get("median") for name, v in model["variants"].items()}
    ratios = {f"{ours}/{ref}": rates[ours] / rates[ref] for ours, ref in PAIRS.items()
              if rates.get(ours) and rates.get(ref)}
    return {"model": model["model"], "samples_per_s": rates, "ratios": ratios, "notes": model.get("notes", {})}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="dslc on an NVIDIA GPU: zoo parity and training throughput")
    parser.add_argument("--specs", help="comma-separated spec names or paths to check (default: the zoo)")
    parser.add_argument("--models", default=MODELS, help=f"bench models (default {MODELS})")
    parser.add_argument("--steps", type=int, default=100, help="timed steps per bench run (default 100)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--check-timeout", type=int, default=120, help="seconds per dslc check (default 120)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/gpu-check.json"))
    args = parser.parse_args(argv)
    info = gpu_info()
    if not info["torch_cuda"]:
        print("error: no NVIDIA GPU visible to torch (torch.cuda.is_available() is False); run this on a GPU "
              "machine", file=sys.stderr)
        return 2
    names = args.specs.split(",") if args.specs else ZOO_CHECKS
    specs = [n if n.endswith(".yaml") else f"specs/{n}.yaml" for n in names]
    report = {"environment": environment(), "gpu": info, "checks": check_zoo(specs, args.check_timeout),
              "throughput": [throughput(args.models, p, args.steps, args.repeats) for p in ("float32", "bf16")]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    failed = [c["spec"] for c in report["checks"] if c["verdict"] != "PASS"]
    print(f"wrote {args.out}; checks: {len(specs) - len(failed)}/{len(specs)} PASS" +
          (f" (not: {', '.join(failed)})" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
