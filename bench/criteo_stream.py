"""The ``criteo`` conversion's speed and peak memory on a generated Criteo-format file.

    python -m bench.criteo_stream                 # 1,000,000 lines in /tmp/dslc-criteo-bench/
    python -m bench.criteo_stream --lines 200000 --folder DIR

``write_criteo`` writes a seeded file in Criteo's layout (also the tests' fixture): a
0/1 label, 13 integers (a tenth missing, some negative, long-tailed like Criteo's
counts) and 26 categorical values of 8 hex digits (a twentieth missing; field f has
about 10 * 4^(f mod 8) distinct values, up to 163,840). The conversion then runs in a fresh
process, which reports its peak resident memory (``ru_maxrss``: everything the
process held at its peak, numpy and pyarrow included, nothing subtracted) and the
increase over the same process just before converting, with the lines per second
and the machine's load average. Results are recorded in ``backends/data/criteo.py``'s
docstring (1,000,000 lines: 342,000-361,000 lines/s, peak RSS 343-357 MB, load
average 4.5-4.7 on 2 CPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DENSE, FIELDS = 13, 26
VOCAB = 100_000  # per field, for the conversion measured
CHUNK = 100_000  # lines generated and written at a time


def write_criteo(path: Path, lines: int, seed: int = 0) -> Path:
    """A Criteo-format TSV of ``lines`` seeded random lines (see the module's docstring)."""
    import pyarrow as pa
    from pyarrow import csv

    rng = np.random.default_rng(seed)
    uniques = [_hex_values(rng, 10 * 4 ** (f % 8)) for f in range(FIELDS)]
    options = csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    with csv.CSVWriter(str(path), _schema(pa), write_options=options) as writer:
        for start in range(0, lines, CHUNK):
            writer.write_table(_chunk(pa, rng, min(CHUNK, lines - start), uniques))
    return path


def _schema(pa):
    return pa.schema([("label", pa.int8()), *((f"i{k}", pa.int64()) for k in range(DENSE)),
                      *((f"c{k}", pa.string()) for k in range(FIELDS))])


def _hex_values(rng: np.random.Generator, count: int):
    import pyarrow as pa

    return pa.array([f"{v:08x}" for v in rng.integers(0, 2**32, count)])


def _chunk(pa, rng: np.random.Generator, n: int, uniques):
    label = pa.array((rng.random(n) < 0.25).astype(np.int8))
    counts = np.floor(np.expm1(rng.exponential(2.0, (n, DENSE)))).astype(np.int64) - (rng.random((n, DENSE)) < 0.02)
    dense = [pa.array(counts[:, k], mask=rng.random(n) < 0.1) for k in range(DENSE)]
    sparse = [uniques[f].take(pa.array(rng.integers(0, len(uniques[f]), n), mask=rng.random(n) < 0.05))
              for f in range(FIELDS)]
    return pa.Table.from_arrays([label, *dense, *sparse], schema=_schema(pa))


def measure(path: Path, vocab: int) -> dict:
    """Converts ``path`` in this process (into a fresh folder beside it): seconds, lines, memory in MB."""
    import resource

    import backends.data.criteo as criteo

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = path.parent / f"converted-{os.getpid()}"
    out.mkdir()
    start, cpu = time.perf_counter(), time.process_time()
    lines = criteo.convert(path, (vocab,) * FIELDS, out)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for file in out.iterdir():
        file.unlink()
    out.rmdir()
    return {"lines": lines, "seconds": round(seconds, 2), "lines_per_s": round(lines / seconds),
            "cpu_seconds": round(cpu, 2), "lines_per_cpu_s": round(lines / cpu),
            "peak_rss_mb": round(peak), "rss_increase_mb": round(peak - before),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/dslc-criteo-bench"))
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # the fresh process's part
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, VOCAB)))
        return
    args.folder.mkdir(parents=True, exist_ok=True)
    path = args.folder / f"criteo-{args.lines}.tsv"
    if not path.is_file():
        start = time.perf_counter()
        write_criteo(path, args.lines)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.1f} s")
    print(f"load average before: {[round(x, 2) for x in os.getloadavg()]}")
    run = subprocess.run([sys.executable, "-m", "bench.criteo_stream", "--measure", str(path)], check=True,
                         capture_output=True, text=True)
    print(run.stdout.strip())


if __name__ == "__main__":
    main()
