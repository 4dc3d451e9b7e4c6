"""``dslc plot``: the loss and metric curves of runs, read from their ``metrics.jsonl``, in one image.

One panel per quantity (``loss`` first, then every other loss and metric as
``metrics.jsonl`` names it), over the optimizer step, the x axis TensorBoard uses too; a
colour per run and a line style per split (train solid, val dashed, test dotted), so the
torch run and the JAX run of one spec lie on top of each other. A run is labelled by its
``summary.json`` (spec and target), or by its folder while it is still training.

Matplotlib draws without pyplot: a ``Figure`` saved through the canvas its format needs
(Agg for PNG), so no display is needed and no global backend is switched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from dsl.errors import UsageError

from .run_log import METRICS_FILE, SPLITS
from .runs import run_file

SPLIT_STYLES = {"train": "-", "val": "--", "test": ":"}
_NOT_CURVES = ("train_samples_per_sec",)  # a speed, not a quantity of the model
DEFAULT_SIZE = (1200, 800)  # pixels
DEFAULT_DPI = 100
MAX_PIXELS = (1 << 16) - 1  # Agg's limit: "Image size ... must be less than 2^16 in each direction"


@dataclass(frozen=True)
class RunCurves:
    """A run's label and its epoch records, in order."""

    label: str
    records: list[dict]

    def curve(self, split: str, quantity: str) -> tuple[list[int], list[float]]:
        """Steps and values of ``<split>_<quantity>`` over the epochs that have a number for it."""
        key = f"{split}_{quantity}"
        points = [(r["steps"], r[key]) for r in self.records if isinstance(r.get(key), int | float)]
        return [s for s, _ in points], [v for _, v in points]

    def has(self, split: str) -> bool:
        return any(key.startswith(f"{split}_") for record in self.records for key in record)


def plot_runs(folders: list[Path], out: Path, size: tuple[int, int] = DEFAULT_SIZE,
              dpi: int = DEFAULT_DPI) -> list[str]:
    """Draws the curves of the runs in ``folders`` into ``out`` (``size`` pixels; PNG, or any format matplotlib
    writes, by the suffix); returns the quantities drawn, one panel each. Raises ``UsageError`` on bad input."""
    from matplotlib.figure import Figure

    _check_out(Path(out), size, Figure)
    runs = _labelled([read_run(Path(folder)) for folder in folders], folders)
    quantities = _quantities(runs)
    figure = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, layout="constrained")
    columns = min(3, len(quantities))
    axes = figure.subplots(math.ceil(len(quantities) / columns), columns, squeeze=False).ravel()
    pens = _pens(len(runs))
    for ax, quantity in zip(axes, quantities):
        _panel(ax, quantity, runs, pens)
    for ax in axes[len(quantities):]:
        ax.set_visible(False)
    _legend(figure, runs, pens, [s for s in SPLIT_STYLES if any(run.has(s) for run in runs)])
    figure.savefig(out)
    return quantities


def read_run(folder: Path) -> RunCurves:
    """A run folder's records (a line torn by a kill in mid-write is skipped) and label; ``UsageError`` for a
    path that is not a run folder or a run without a finished epoch."""
    if folder.is_file() and folder.name == METRICS_FILE:
        folder = folder.parent
    path = run_file(folder, METRICS_FILE, str(folder), "it is not a run folder of dslc train")
    records = [r for r in map(_record, path.read_text().splitlines()) if r is not None]
    if not records:
        raise UsageError(f"{path} holds no epoch yet: the run has not finished its first one")
    return RunCurves(_label(folder), records)


def _record(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("steps"), int) else None


def _label(folder: Path) -> str:
    """``spec (target)`` from the run's summary.json; the folder's name where there is none (yet)."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
        return f"{summary['spec']} ({summary['target']})"
    except (OSError, ValueError, KeyError, TypeError):
        return folder.name or str(folder)


def _labelled(runs: list[RunCurves], folders: list[Path]) -> list[RunCurves]:
    """The runs, each label that two runs share followed by the run's folder."""
    labels = [run.label for run in runs]
    return [RunCurves(f"{run.label} {folder}" if labels.count(run.label) > 1 else run.label, run.records)
            for run, folder in zip(runs, folders)]


def _quantities(runs: list[RunCurves]) -> list[str]:
    """Every quantity a split has in some run: ``loss`` first, then in the order the records give them."""
    seen = {}
    for record in (r for run in runs for r in run.records):
        for key in record:
            split, _, quantity = key.partition("_")
            if split in SPLITS and quantity and key not in _NOT_CURVES:
                seen.setdefault(quantity, None)
    return sorted(seen, key=lambda q: q != "loss")


def _pens(count: int) -> list[dict]:
    """A colour per run, and a width from wide (the first run) to thin (the last): where two runs agree, as
    a torch and a JAX run of one spec do, the later lies inside the earlier and both stay visible."""
    return [{"color": f"C{i % 10}", "linewidth": 1.2 + 2.4 * (count - 1 - i) / max(count - 1, 1),
             "marker": "o", "markersize": 3 + 3 * (count - 1 - i) / max(count - 1, 1)} for i in range(count)]


def _panel(ax, quantity: str, runs: list[RunCurves], pens: list[dict]) -> None:
    """One quantity's curves: a line per run and split, with markers (a one-epoch run is a point)."""
    for run, pen in zip(runs, pens):
        for split, style in SPLIT_STYLES.items():
            steps, values = run.curve(split, quantity)
            if steps:
                ax.plot(steps, values, linestyle=style, **pen)
    ax.set_title(quantity)
    ax.set_xlabel("optimizer step")
    ax.grid(alpha=0.3)


def _legend(figure, runs: list[RunCurves], pens: list[dict], splits: list[str]) -> None:
    """One legend for the figure: the runs by colour, then the splits the runs have by line style."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], **pen) for pen in pens]
    handles += [Line2D([], [], color="black", linestyle=SPLIT_STYLES[split]) for split in splits]
    labels = [run.label for run in runs] + splits
    figure.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 6), frameon=False)


def _check_out(out: Path, size: tuple[int, int], figure_class) -> None:
    """``--out`` must name a file in an existing folder, of a format matplotlib writes, of a size Agg draws."""
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give the image's file name (e.g. {out / 'curves.png'})")
    formats = figure_class().canvas.get_supported_filetypes()
    if out.suffix.lstrip(".").lower() not in formats:
        raise UsageError(f"--out {out}: matplotlib writes {', '.join(sorted(formats))}; name the file with one of "
                         f"these suffixes (e.g. curves.png)")
    if max(size) > MAX_PIXELS:
        raise UsageError(f"--size {size[0]}x{size[1]}: matplotlib draws at most {MAX_PIXELS} pixels a side")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: no folder {out.parent} to write it in")
