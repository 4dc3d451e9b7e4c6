"""Runs one variant in its own process: for Keras (one backend per process) and for
measuring a variant's peak memory in isolation.

    python -m bench.worker --variant keras-jax --serve
        imports, prints {"ready": ...}, then answers JSON commands on stdin, one per line:
        {"cmd": "setup", "model": "mlp", "examples": N, "seed": S, "steps": K} -> {"setup": ...};
        {"cmd": "run", "steps": N, "repeat": R} -> {"result": ...}; {"cmd": "quit"}
    python -m bench.worker --variant dslc-jax --model mlp --steps 200
        one setup and one timed run; prints one JSON object with the peak memory.

The protocol goes to the original stdout; anything a library prints is sent to stderr.
Memory is the process's resident set: ``peak_rss_mib`` is its high-water mark,
``VmHWM`` from /proc/self/status (whole process: interpreter, framework libraries,
data, model, optimizer, workspaces; see ``peak_rss_mib``); ``rss_after_imports_mib`` is the
resident set once the variant's frameworks are imported, ``rss_after_data_mib`` once the
shared numpy data exists too (before the variant copies or converts any of it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys


def rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def peak_rss_mib() -> float:
    """This process's resident high-water mark: ``VmHWM`` where /proc has it, else ``ru_maxrss``.

    ``ru_maxrss`` alone is wrong for a subprocess on Linux: it keeps the high-water mark
    of the forked copy of the parent across ``exec``, so every worker would report the
    harness's own size. ``VmHWM`` belongs to the process's current address space.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Session:
    """A variant set up for one model, with one model's data; ``run`` is one timed run."""

    def __init__(self, variant, model: str, examples: int, seed: int, steps: int):
        from backends.weights import init_weights

        from .data import model_data, run_batches
        from .models import load, resolve
        from .variants import warmup_batches

        self.run_batches, self.examples, self.seed = run_batches, examples, seed
        self.variant, self.model = variant, resolve(model)
        spec, graph = load(self.model)
        data = model_data(self.model, examples, seed)
        self.rss_after_data = rss_mib()
        self.setup = self.variant.setup(self.model, spec, graph, data, init_weights(graph, 0),
                                        warmup_batches(examples, steps, self.model.batch_size))

    def run(self, steps: int, repeat: int) -> dict:
        from .variants import result_dict

        batches = self.run_batches(self.examples, steps, repeat, self.seed, self.model.batch_size)
        return result_dict(self.variant.run(batches, repeat))


def _variant(name: str):
    from .variants import make_variant

    variant = make_variant(name, in_process=True)
    variant.imports()
    return variant, rss_mib()


def serve_once(variant: str, model: str, examples: int, steps: int, seed: int = 0) -> dict:
    """A fresh variant: setup, one timed run, and the process's memory (used for isolated peaks)."""
    variant, rss_after_imports = _variant(variant)
    session = Session(variant, model, examples, seed, steps)
    result = session.run(steps, 0)
    return {"variant": variant.name, "model": session.model.key, "setup": session.setup, "result": result,
            "memory": {"rss_after_imports_mib": rss_after_imports, "rss_after_data_mib": session.rss_after_data,
                       "peak_rss_mib": peak_rss_mib()}}


def serve(args) -> None:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(**reply):
        proto.write(json.dumps(reply) + "\n")

    try:
        variant, rss_after_imports = _variant(args.variant)
    except Exception as e:  # reported to the harness, which skips the variant with this note
        send(error=f"{type(e).__name__}: {e}")
        return
    send(ready={"rss_after_imports_mib": rss_after_imports})
    session = None
    for line in sys.stdin:
        command = json.loads(line)
        try:
            if command["cmd"] == "setup":
                session = None
                session = Session(variant, command["model"], command["examples"], command["seed"],
                                  command["steps"])
                send(setup=session.setup)
            elif command["cmd"] == "run":
                send(result=session.run(command["steps"], command["repeat"]))
            elif command["cmd"] == "quit":
                send(bye=True)
                return
            else:
                send(error=f"unknown command {command['cmd']!r}")
        except Exception as e:
            send(error=f"{type(e).__name__}: {e}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="run one benchmark variant in its own process")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--model", default="mlp", help="one-shot mode: a model key (mlp, cnn, resnet20) or a spec path")
    parser.add_argument("--examples", type=int, default=60000, help="one-shot mode: synthetic examples")
    parser.add_argument("--seed", type=int, default=0, help="one-shot mode: data seed")
    parser.add_argument("--steps", type=int, default=100, help="one-shot mode: timed steps")
    parser.add_argument("--serve", action="store_true", help="answer commands on stdin (see the docstring)")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args)
    else:
        json.dump(serve_once(args.variant, args.model, args.examples, args.steps, args.seed), sys.stdout)
        print()


if __name__ == "__main__":
    main()
