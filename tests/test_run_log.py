"""A run's logs: metrics.jsonl and TensorBoard events hold the same numbers, a resumed run's events show each
step once, and ``dslc plot`` turns run folders into an image of the stated size or refuses in one line.

Real runs (digits_cnn on both targets) are plotted and read back in ``test_cli.py``, which trains them anyway;
here the records are made by hand, so every case costs milliseconds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import cli
from backends.checkpoint import Position
from backends.run_log import RunLog, board_scalars
from tests.helpers import tensorboard_scalars


def record(epoch: int, steps: int, loss: float, **more) -> dict:
    return {"epoch": epoch, "steps": steps, "train_loss": loss, "train_accuracy": 1 - loss / 4,
            "val_loss": loss * 1.1, "test_loss": loss * 1.2, "test_accuracy": 0.5 + epoch / 10, "lr": 0.1 / epoch,
            "train_samples_per_sec": None if epoch == 1 else 1000.0 * epoch, "seconds": 2.5 * epoch, **more}


def write_run(folder: Path, records: list[dict], summary: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with RunLog(folder) as log:
        for r in records:
            log.epoch(r)
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_tags_group_by_split_and_keep_every_number():
    tags = board_scalars(record(2, 90, 0.8))
    assert tags == {"epoch": 2.0, "train/loss": 0.8, "train/accuracy": 0.8, "val/loss": pytest.approx(0.88),
                    "test/loss": pytest.approx(0.96), "test/accuracy": 0.7, "lr": 0.05,
                    "speed/train_samples_per_sec": 2000.0, "seconds": 5.0}
    assert "speed/train_samples_per_sec" not in board_scalars(record(1, 45, 2.0))  # None: not measured, not 0


def test_events_hold_the_records_numbers_at_the_optimizer_step(tmp_path):
    records = [record(e, 45 * e, 2.0 / e, test_d_loss=0.3 * e) for e in (1, 2, 3)]
    write_run(tmp_path, records)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == records
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    assert scalars.keys() == {tag for r in records for tag in board_scalars(r)} and "test/d_loss" in scalars
    for tag, points in scalars.items():  # simple_value is a float32: equal to the record's value rounded to it
        expected = [(r["steps"], np.float32(board_scalars(r)[tag])) for r in records if tag in board_scalars(r)]
        assert points == expected, tag


def test_a_resumed_run_shows_each_step_once_with_the_resumed_values(tmp_path):
    """Stopped in epoch 3 (step 100) after a checkpoint at step 70 (epoch 2, batch 25): the stopped run's
    epoch 2 record (step 90) and running loss at step 80 are orphans; the resumed run rewrites both."""
    with RunLog(tmp_path) as log:
        log.epoch(record(1, 45, 2.0))
        log.running(70, {"loss": 1.5})
        log.running(80, {"loss": 1.4})
        log.epoch(record(2, 90, 1.0))
    with RunLog(tmp_path, resumed=Position(step=70, epochs_done=1, batch=25)) as log:
        log.running(80, {"loss": 1.3})
        log.epoch(record(2, 90, 0.9))
        log.epoch(record(3, 100, 0.5))
    scalars = tensorboard_scalars(tmp_path / "tensorboard")
    assert scalars["train/loss"] == [(45, 2.0), (90, np.float32(0.9)), (100, 0.5)]
    assert scalars["train/running_loss"] == [(70, 1.5), (80, np.float32(1.3))]
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert len(list((tmp_path / "tensorboard").iterdir())) == 2  # the resumed run appends a file of its own


def test_the_event_file_is_closed_when_the_run_is_interrupted(tmp_path):
    with pytest.raises(KeyboardInterrupt), RunLog(tmp_path) as log:
        log.epoch(record(1, 45, 2.0))
        (events,) = (tmp_path / "tensorboard").iterdir()
        assert str(events) in open_files()
        raise KeyboardInterrupt
    assert str(events) not in open_files()
    assert tensorboard_scalars(tmp_path / "tensorboard")["train/loss"] == [(45, 2.0)]


def test_a_rank_that_does_not_write_leaves_no_file(tmp_path):
    with RunLog(tmp_path, writes=False) as log:
        log.epoch(record(1, 45, 2.0))
        log.running(50, {"loss": 1.0})
    assert list(tmp_path.iterdir()) == []


def open_files() -> set[str]:
    return {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_writes_an_image_of_the_stated_size(tmp_path, capsys):
    a = write_run(tmp_path / "a", [record(e, 45 * e, 2.0 / e) for e in (1, 2)], {"spec": "m", "target": "torch"})
    b = write_run(tmp_path / "b", [record(1, 45, 2.1)])  # still training: no summary.json, labelled by its folder
    out = tmp_path / "curves.png"
    assert cli.main(["plot", str(a), str(b), "--out", str(out), "--size", "640x480", "--dpi", "80"]) == 0
    assert png_size(out) == (640, 480)
    assert capsys.readouterr().out == f"wrote {out}: 2 runs, 640x480 pixels (loss, accuracy)\n"


@pytest.mark.parametrize("case, message", [
    ("missing", "{missing}: no such folder"),
    ("not_a_run", "{not_a_run} holds no metrics.jsonl: it is not a run folder of dslc train"),
    ("empty", "{empty}/metrics.jsonl holds no epoch yet: the run has not finished its first one"),
    ("file", "{file} is a file; give the run folder dslc train wrote"),
])
def test_plot_refuses_what_is_not_a_run_in_one_line(tmp_path, capsys, case, message):
    paths = {name: tmp_path / name for name in ("missing", "not_a_run", "empty", "file")}
    paths["not_a_run"].mkdir()
    paths["empty"].mkdir()
    (paths["empty"] / "metrics.jsonl").write_text('{"epoch": 1, "ste')  # one line, torn by a kill
    paths["file"].write_text("x")
    run = write_run(tmp_path / "run", [record(1, 45, 2.0)])
    assert cli.main(["plot", str(run), str(paths[case]), "--out", str(tmp_path / "c.png")]) == 2
    assert capsys.readouterr().err == f"error: {message.format(**paths)}\n"
    assert not (tmp_path / "c.png").exists()


@pytest.mark.parametrize("flags, message", [
    (["--out", "{tmp}/c.xyz"], "error: --out {tmp}/c.xyz: matplotlib writes avif, eps, gif, jpeg, jpg, pdf, pgf, png, "
     "ps, raw, rgba, svg, svgz, tif, tiff, webp; name the file with one of these suffixes (e.g. curves.png)"),
    (["--out", "{tmp}/none/c.png"], "error: --out {tmp}/none/c.png: no folder {tmp}/none to write it in"),
    (["--out", "{tmp}"], "error: --out {tmp} is a folder; give the image's file name (e.g. {tmp}/curves.png)"),
    (["--size", "70000x10", "--out", "{tmp}/c.png"], "error: --size 70000x10: matplotlib draws at most 65535 "
     "pixels a side"),
    (["--size", "800"], "dslc plot: error: argument --size: must be WIDTHxHEIGHT in pixels, e.g. 1200x800, got "
     "'800' (see 'dslc plot --help')"),
])
def test_plot_refuses_a_bad_output_in_one_line(tmp_path, capsys, flags, message):
    run = write_run(tmp_path / "run", [record(1, 45, 2.0)])
    assert exit_code(["plot", str(run), *(f.format(tmp=tmp_path) for f in flags)]) == 2
    assert capsys.readouterr().err == message.format(tmp=tmp_path) + "\n"


def exit_code(argv: list[str]) -> int:
    """The CLI's exit status, whether it returned it or argparse exited with it."""
    try:
        return cli.main(argv)
    except SystemExit as stop:
        return stop.code
