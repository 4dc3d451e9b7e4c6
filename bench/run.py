"""Runs the benchmark: dslc's two targets against hand-written references, interleaved.

    python -m bench.run [--models mlp,cnn,resnet20,bert,lstm,deepfm] [--repeats 5] [--steps N] [--smoke]
                        [--out bench/results/latest.json]

For each model every variant is set up once (build, same initial weights, compile,
warm-up: all untimed); then each repeat runs every variant once over the same index
batches, in an order rotated by one each repeat and reversed every other repeat, so
no variant always runs first, last, or after the same neighbour. Reported: samples/s
min-median-max over the repeats, median ratios
dslc/reference, the JAX compile seconds, and peak memory (see ``bench/README.md``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from .data import make_data, model_data, run_batches
from .flops import sgemm_peak_gflops, training_flops_per_example
from .models import MODELS, ModelDef, load, resolve
from .variants import DEFAULT_VARIANTS, DSLC, FRAMEWORK, REFERENCES, make_variant, result_dict, warmup_batches

DEFAULT_OUT = Path("bench/results/latest.json")
SMOKE_OUT = Path("bench/results/smoke.json")
MEMORY_STEPS = 50

# (label, numerator, denominator, threshold, models the threshold applies to; others: reported only)
CHECKS = [
    ("dslc torch / hand-written torch", "dslc-torch", "torch-ref", 0.97, None),
    ("dslc JAX / hand-written Flax", "dslc-jax", "flax-ref", 0.97, None),
    ("dslc torch / hand-written torch (sequence issue)", "dslc-torch", "torch-ref", 1.0, {"bert", "lstm"}),
    ("dslc JAX / hand-written Flax (sequence issue)", "dslc-jax", "flax-ref", 1.0, {"bert", "lstm"}),
    ("dslc torch / hand-written torch (recommender issue)", "dslc-torch", "torch-ref", 1.0, {"deepfm"}),
    ("dslc JAX / hand-written Flax (recommender issue)", "dslc-jax", "flax-ref", 1.0, {"deepfm"}),
    ("dslc torch / transformers' BertForSequenceClassification", "dslc-torch", "hf-torch", 1.0, None),
    ("dslc JAX / Keras 3 (JAX)", "dslc-jax", "keras-jax", 1.2, {"mlp"}),
    ("dslc JAX / hand-written torch", "dslc-jax", "torch-ref", 1.5, {"cnn"}),
    ("dslc torch (graph rewrites) / hand-written torch", "dslc-torch", "torch-ref", 1.15, {"cnn"}),
    ("dslc torch / Keras 3 (torch)", "dslc-torch", "keras-torch", 2.0, {"mlp"}),
    ("dslc torch / torch DataLoader pipeline", "dslc-torch", "torch-dataloader", None, None),
    ("dslc JAX / torch DataLoader pipeline", "dslc-jax", "torch-dataloader", None, None),
]
EPOCH_THRESHOLD = 5.0


# --------------------------------------------------------------------------- contention
CONTENDED = 0.10


class OtherCpu:
    """The share of the machine's CPUs that processes other than this one and its workers used in a window:
    busy time from /proc/stat (steal included) minus this process tree's CPU time. Linux only; None elsewhere."""

    MIN_WINDOW = 0.25  # seconds

    def __init__(self):
        import psutil

        self.me = psutil.Process()
        self.ticks = os.sysconf("SC_CLK_TCK")

    def _busy(self) -> float | None:
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:9]]
        except OSError:
            return None
        user, nice, system, idle, iowait, irq, softirq, steal = fields
        return (user + nice + system + irq + softirq + steal) / self.ticks

    def _ours(self) -> float:
        import resource

        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)  # subprocesses that ended and were waited for
        total = reaped.ru_utime + reaped.ru_stime
        for proc in [self.me, *self.me.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except Exception:  # a child that just exited
                pass
        return total

    def start(self) -> None:
        self.t0, self.busy0, self.ours0 = time.perf_counter(), self._busy(), self._ours()

    def stop(self) -> float | None:
        busy = self._busy()
        if busy is None or self.busy0 is None:
            return None
        wall = time.perf_counter() - self.t0
        if wall < self.MIN_WINDOW:  # /proc/stat counts in clock ticks (10 ms): too coarse for a short run
            return None
        other = (busy - self.busy0) - (self._ours() - self.ours0)
        return max(0.0, other / (wall * (os.cpu_count() or 1)))


# --------------------------------------------------------------------------- one model
def bench_model(model: ModelDef, names: list[str], workers: dict, *, repeats: int, steps: int, examples: int,
                seed: int, memory: bool, log) -> dict:
    from backends.weights import init_weights

    spec, graph = load(model)
    notes = {name: model.skipped[name] for name in names if name in model.skipped}
    names = [n for n in names if n not in model.skipped]
    data = model_data(model, examples, seed)
    state = init_weights(graph, 0)
    warmup = warmup_batches(examples, steps, model.batch_size)
    variants = {}
    for name in names:
        variant = workers.get(name) or make_variant(name)
        if not variant.in_process and name not in workers:  # launched on first use, kept for later models
            variant.launch()
            workers[name] = variant
        variants[name] = variant
    info: dict[str, dict] = {}

    # Workers set up together first; the in-process setups (and so the compile times) come after, alone.
    for name, variant in variants.items():
        if not variant.in_process:
            try:
                variant.start(model, examples, seed, steps)
            except Exception:
                pass  # reported by setup below
    for name, variant in sorted(variants.items(), key=lambda item: item[1].in_process):
        try:
            if variant.in_process:
                variant.imports()
            info[name] = variant.setup(model, spec, graph, data, state, warmup)
            log(f"  {name}: ready (compile {_fmt_s(info[name]['compile_s'])}, warm-up {info[name]['warmup_s']:.2f}s)")
        except Exception as e:  # a missing framework (Keras) must not stop the others
            notes[name] = f"skipped: {type(e).__name__}: {(str(e).strip().splitlines() or [''])[-1][:200]}"
            log(f"  {name}: {notes[name]}")
    active = [n for n in names if n in info]

    runs: dict[str, list] = {n: [] for n in active}
    other_cpu: dict[str, list] = {n: [] for n in active}
    monitor = OtherCpu()
    orders = []
    for repeat in range(repeats):
        batches = run_batches(examples, steps, repeat, seed, model.batch_size)
        order = run_order(active, repeat)
        for name in order:
            gc.collect()
            monitor.start()
            runs[name].append(variants[name].run(batches, repeat))
            other_cpu[name].append(monitor.stop())
        busy = [n for n in active if (other_cpu[n][-1] or 0) > CONTENDED]
        orders.append(order)
        log(f"  repeat {repeat + 1}/{repeats}: " + "  ".join(
            f"{n} {runs[n][-1].samples_per_s:,.0f}" for n in active)
            + (f"  [yellow](other processes busy during {', '.join(busy)})[/]" if busy else ""))
    for name in active:
        if variants[name].in_process:
            variants[name].close()
    del variants, data
    gc.collect()

    result = {"model": model.key, "spec": model.spec, "steps": steps, "batch_size": model.batch_size,
              "optimizer": {model.optimizer.name: dict(model.optimizer.params)}, "examples": examples,
              "repeats": repeats, "orders": orders, "variants": {}, "notes": notes}
    for name in active:
        rates = [r.samples_per_s for r in runs[name]]
        result["variants"][name] = {
            "framework": FRAMEWORK[name],
            "runs": [{**result_dict(r), "other_cpu": c} for r, c in zip(runs[name], other_cpu[name])],
            "min": min(rates), "median": statistics.median(rates), "max": max(rates),
            "compile_s": info[name]["compile_s"], "warmup_s": info[name]["warmup_s"], "memory": None}
    if memory:
        memory_steps = min(MEMORY_STEPS, steps)
        for name in active:
            log(f"  {name}: peak memory alone in a fresh process ({memory_steps} steps)")
            result["variants"][name]["memory"] = isolated_memory(name, model, examples, seed, memory_steps)
    result["ratios"] = ratios(result)
    dslc = [result["variants"][v]["median"] for v in DSLC if v in result["variants"]]
    if dslc:
        flops, peak = training_flops_per_example(graph), sgemm_peak_gflops()
        limit = peak * 1e9 / flops
        result["flop_limit"] = {"flops_per_example": flops, "peak_gflops": peak, "samples_per_s": limit,
                                "best_dslc": max(dslc), "fraction": max(dslc) / limit}
    return result


def run_order(names: list[str], repeat: int) -> list[str]:
    """Repeat r starts at variant r (mod n); odd repeats run backwards, so no variant always follows the
    same one (a predecessor can leave spinning threads or a cold cache behind)."""
    base = names[::-1] if repeat % 2 else names
    shift = repeat % len(names)
    return base[shift:] + base[:shift]


def isolated_memory(name: str, model: ModelDef, examples: int, seed: int, steps: int) -> dict:
    """The variant alone in a fresh process: imports, setup, one run; its RSS (see bench/worker.py)."""
    cmd = [sys.executable, "-m", "bench.worker", "--variant", name, "--model", model.key if model.reference else
           model.spec, "--examples", str(examples), "--seed", str(seed), "--steps", str(steps)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])["memory"]


def ratios(result: dict) -> list[dict]:
    out = []
    variants = result["variants"]
    for label, num, den, threshold, applies in CHECKS:
        if num not in variants or den not in variants:
            continue
        a, b = variants[num], variants[den]
        paired = [x["samples_per_s"] / y["samples_per_s"] for x, y in zip(a["runs"], b["runs"])]
        threshold = threshold if applies is None or result["model"] in applies else None
        value = a["median"] / b["median"]
        contended = any((r["other_cpu"] or 0) > CONTENDED for r in a["runs"] + b["runs"])
        out.append({"label": label, "numerator": num, "denominator": den, "ratio": value,
                    "paired_median": statistics.median(paired), "threshold": threshold,
                    "passed": None if threshold is None else value >= threshold, "contended": contended})
    return out


# --------------------------------------------------------------------------- dslc train epoch
def epoch_check(examples: int, seed: int, dataloader_rate: float | None, targets=("jax", "torch"), log=print) -> dict:
    """Times the real ``dslc train specs/mnist_mlp.yaml`` on MNIST-format files made from the
    synthetic images (60,000 train, 10,000 test), 3 epochs; the steady-state epoch (train + test
    evaluation + checkpoint) is the faster of epochs 2 and 3, so one slow moment of a shared
    machine does not decide it; epoch 1 also holds data loading and compilation."""
    result = {"spec": "specs/mnist_mlp.yaml", "train_examples": examples, "dataloader_samples_per_s": dataloader_rate,
              "dataloader_epoch_s": examples / dataloader_rate if dataloader_rate else None, "targets": {}}
    with tempfile.TemporaryDirectory(prefix="bench-mnist-") as tmp:
        raw = Path(tmp) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for prefix, n, s in (("train", examples, seed), ("t10k", 10000, seed + 1)):
            d = make_data(n, s)
            images = struct.pack(">IIII", 2051, n, 28, 28) + d.images.tobytes()
            labels = struct.pack(">II", 2049, n) + d.y.astype("uint8").tobytes()
            (raw / f"{prefix}-images-idx3-ubyte").write_bytes(images)
            (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(labels)
        for target in targets:
            out = Path(tmp) / f"run-{target}"
            cmd = [sys.executable, "cli.py", "train", "specs/mnist_mlp.yaml", "--target", target, "--epochs", "3",
                   "--data-dir", tmp, "--out", str(out), "--no-progress"]
            log(f"  $ dslc train specs/mnist_mlp.yaml --target {target} --epochs 3 --data-dir <synthetic MNIST files>")
            monitor = OtherCpu()
            monitor.start()
            tic = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            process_s = time.perf_counter() - tic
            other_cpu = monitor.stop()
            if proc.returncode != 0:
                result["targets"][target] = {"error": proc.stderr.strip()[-500:]}
                continue
            records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
            summary = json.loads((out / "summary.json").read_text())
            entry = {"process_s": process_s, "other_cpu": other_cpu, "epoch1_s": records[0]["seconds"],
                     "epoch2_s": min(b["seconds"] - a["seconds"] for a, b in zip(records, records[1:])),
                     "train_samples_per_s": summary["train_samples_per_sec"],
                     "compile_s": summary["compile_seconds"]}
            if dataloader_rate:
                entry["speedup_epoch2"] = result["dataloader_epoch_s"] / entry["epoch2_s"]
                entry["speedup_epoch1"] = result["dataloader_epoch_s"] / entry["epoch1_s"]
                entry["passed"] = entry["speedup_epoch2"] >= EPOCH_THRESHOLD
            result["targets"][target] = entry
    return result


# --------------------------------------------------------------------------- output
def _fmt_s(v) -> str:
    return "-" if v is None else f"{v:.2f}s"


def _fmt_other(values: list) -> str:
    measured = [v for v in values if v is not None]
    if not measured:
        return "-"  # runs too short to measure
    v = max(measured)
    return f"[yellow]{v:.0%}[/]" if v > CONTENDED else f"{v:.0%}"


def _fmt_rate(v: float) -> str:
    return f"{v / 1000:,.1f}k" if v >= 10000 else f"{v:,.0f}"


def print_report(report: dict, console) -> None:
    from rich.table import Table

    for result in report["models"]:
        table = Table(title=f"{result['model']} ({result['spec']}): samples/s over {result['repeats']} interleaved "
                            f"runs of {result['steps']} steps, batch {result['batch_size']}", title_justify="left")
        for column in ("variant", "min", "median", "max", "vs ref", "loss", "compile", "warm-up",
                       "peak RSS MiB", "Δ over data", "other CPU"):
            table.add_column(column, justify="left" if column == "variant" else "right")
        ref_of = {"dslc-torch": "torch-ref", "dslc-jax": "flax-ref"}
        for name, v in result["variants"].items():
            ref = result["variants"].get(ref_of.get(name, ""))
            vs = f"{v['median'] / ref['median']:.3f}x" if ref else ""
            mem = v.get("memory") or {}
            peak = mem.get("peak_rss_mib")
            delta = peak - mem["rss_after_data_mib"] if peak is not None and "rss_after_data_mib" in mem else None
            table.add_row(name, _fmt_rate(v["min"]), _fmt_rate(v["median"]), _fmt_rate(v["max"]), vs,
                          f"{v['runs'][0]['loss']:.4f}", _fmt_s(v["compile_s"]), _fmt_s(v["warmup_s"]),
                          "-" if peak is None else f"{peak:,.0f}", "-" if delta is None else f"{delta:,.0f}",
                          _fmt_other([r["other_cpu"] for r in v["runs"]]))
        console.print(table)
        contended = sum((r["other_cpu"] or 0) > CONTENDED for v in result["variants"].values() for r in v["runs"])
        if contended:
            total = sum(len(v["runs"]) for v in result["variants"].values())
            console.print(f"  [yellow]warning: other processes used > {CONTENDED:.0%} of the CPUs during {contended} "
                          f"of {total} runs; those numbers are not reliable (rerun on an idle machine)[/]")
        for name, note in result["notes"].items():
            console.print(f"  note: {name}: {note}")
        if not result["ratios"]:
            continue
        checks = Table(title=f"{result['model']}: median ratios (same run)", title_justify="left")
        for column in ("ratio", "median", "paired median", "target", "verdict"):
            checks.add_column(column, justify="left" if column == "ratio" else "right")
        for r in result["ratios"]:
            verdict = "report" if r["passed"] is None else ("[green]PASS[/]" if r["passed"] else "[red]FAIL[/]")
            if report["smoke"] and r["passed"] is not None:
                verdict = "(smoke)"  # a few steps say nothing about the targets
            elif r["contended"]:
                verdict += " [yellow](contended)[/]"
            checks.add_row(r["label"], f"{r['ratio']:.3f}x", f"{r['paired_median']:.3f}x",
                           "-" if r["threshold"] is None else f">= {r['threshold']}x", verdict)
        console.print(checks)
        limit = result.get("flop_limit")
        if limit:
            console.print(f"  FLOP limit: {limit['flops_per_example'] / 1e6:.2f} MFLOP per training example at "
                          f"{limit['peak_gflops']:.0f} GFLOP/s (sgemm peak) = {_fmt_rate(limit['samples_per_s'])} "
                          f"samples/s; best dslc median {_fmt_rate(limit['best_dslc'])} = "
                          f"{limit['fraction']:.0%} of it (stretch goal for the CNN: 40%)")
    epoch = report.get("epoch_check")
    if epoch:
        table = Table(title=f"dslc train specs/mnist_mlp.yaml vs the article's DataLoader epoch "
                            f"({_fmt_s(epoch['dataloader_epoch_s'])} = {epoch['train_examples']:,} / "
                            f"{_fmt_rate(epoch['dataloader_samples_per_s'] or 0)} samples/s)", title_justify="left")
        for column in ("target", "epoch 2-3 (steady, best)", "epoch 1 (+load, compile)", "process", "train samples/s",
                       "speedup (steady)", "target", "verdict", "other CPU"):
            table.add_column(column, justify="left" if column == "target" else "right")
        for target, e in epoch["targets"].items():
            if "error" in e:
                table.add_row(target, "error", e["error"][-80:], "", "", "", "", "", "")
                continue
            verdict = "" if "passed" not in e else ("[green]PASS[/]" if e["passed"] else "[red]FAIL[/]")
            table.add_row(target, _fmt_s(e["epoch2_s"]), _fmt_s(e["epoch1_s"]), _fmt_s(e["process_s"]),
                          _fmt_rate(e["train_samples_per_s"]),
                          f"{e['speedup_epoch2']:.1f}x" if "speedup_epoch2" in e else "-", f">= {EPOCH_THRESHOLD}x",
                          verdict, _fmt_other([e["other_cpu"]]))
        console.print(table)
    console.print(f"peak RSS: the variant alone in a fresh process (one run of at most {MEMORY_STEPS} steps; VmHWM, "
                  "whole process). "
                  "Δ over data: peak minus the RSS once its frameworks were imported and the shared numpy data made "
                  "(what the variant itself adds: data copies, model, optimizer, compiled code, workspaces). "
                  "other CPU: the largest share of the CPUs that other processes used during one of the variant's "
                  "runs ('-': runs too short to measure).")


def environment() -> dict:
    import importlib.metadata as md

    versions = {}
    for package in ("torch", "torchvision", "jax", "jaxlib", "flax", "optax", "keras", "numpy"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True).stdout.strip())
    except OSError:
        commit, dirty = None, None
    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(), "versions": versions, "git_commit": commit,
            "git_dirty": dirty, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


# --------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="dslc vs hand-written torch / Flax / Keras: training throughput")
    parser.add_argument("--models", help=f"comma-separated model keys ({', '.join(MODELS)}) or spec paths "
                                         "(default: mlp,cnn; with --smoke, all of them)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, from {', '.join(DSLC + REFERENCES)}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, help="timed steps per run (default: per model, mlp 937 = one epoch)")
    parser.add_argument("--examples", type=int,
                        help="synthetic training examples (default: per model, 60000; resnet20 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true",
                        help="2 repeats of a few steps on 4096 examples, no memory or epoch runs (< 2 min)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                        help="measure each in-process variant's peak RSS alone in a subprocess (default: on, "
                             "off with --smoke)")
    parser.add_argument("--epoch", action=argparse.BooleanOptionalAction, default=None,
                        help="time `dslc train specs/mnist_mlp.yaml` against the DataLoader epoch (default: on "
                             "when mlp is benchmarked, off with --smoke)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"),
                        help="GPU mode: dslc's --device, and the torch references' device (default: dslc auto, "
                             "references on the CPU; JAX's default device for the Flax reference)")
    parser.add_argument("--precision", choices=("float32", "bf16"), default="float32",
                        help="bf16: dslc's train.precision and torch autocast in the torch references")
    parser.add_argument("--out", type=Path, help=f"JSON result file (default {DEFAULT_OUT}; {SMOKE_OUT} with --smoke)")
    args = parser.parse_args(argv)
    from . import variants

    variants.PLACEMENT = variants.Placement(args.device, args.precision)

    from rich.console import Console

    console = Console(width=max(Console().width, 140))
    log = console.print
    models = [resolve(m.strip()) for m in (args.models or ",".join(MODELS if args.smoke else ("mlp", "cnn"))).split(",")
              if m.strip()]
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    for name in names:
        make_variant(name)  # validates the name
    repeats = 2 if args.smoke else args.repeats
    memory = (not args.smoke) if args.memory is None else args.memory
    epoch = (not args.smoke and any(m.key == "mlp" for m in models)) if args.epoch is None else args.epoch
    out = args.out or (SMOKE_OUT if args.smoke else DEFAULT_OUT)

    start = time.perf_counter()
    report = {"command": " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])]),
              "smoke": args.smoke, "environment": environment(), "device": args.device or "default",
              "precision": args.precision, "models": []}
    idle = OtherCpu()
    idle.start()
    time.sleep(1.0)
    report["environment"]["other_cpu_at_start"] = other = idle.stop()
    if other is not None and other > CONTENDED:
        log(f"[yellow]warning: other processes are using {other:.0%} of the {os.cpu_count()} CPUs; "
            "the numbers may be skewed (each run's share is reported)[/]")
    workers = {}  # one subprocess per Keras backend for the whole run (Keras fixes its backend per process)
    try:
        for model in models:
            steps = args.steps or (model.smoke_steps if args.smoke else model.steps)
            examples = 4096 if args.smoke else args.examples or model.examples
            log(f"[bold]{model.key}[/]: {len(names)} variants x {repeats} repeats x {steps} steps of "
                f"{model.batch_size}, {examples:,} examples, {model.optimizer.name} {dict(model.optimizer.params)}")
            report["models"].append(bench_model(model, names, workers, repeats=repeats, steps=steps,
                                                examples=examples, seed=args.seed, memory=memory, log=log))
    finally:
        for worker in workers.values():
            worker.close()
    if epoch:
        mlp = next((r for r in report["models"] if r["model"] == "mlp"), None)
        rate = mlp["variants"].get("torch-dataloader", {}).get("median") if mlp else None
        log("[bold]epoch check[/]")
        report["epoch_check"] = epoch_check(args.examples or MODELS["mlp"].examples, args.seed, rate, log=log)
    if "torch" in sys.modules:
        report["environment"]["torch_num_threads"] = sys.modules["torch"].get_num_threads()
    report["seconds"] = time.perf_counter() - start
    print_report(report, console)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {out} ({report['seconds']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
