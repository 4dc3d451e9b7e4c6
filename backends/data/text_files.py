"""Reading text files: CSV and JSON Lines of texts and labels, tab-separated sentence pairs, AG News.

Python's ``csv`` and ``json`` read them; this module adds what a user needs when a
file is wrong: one line naming the file, the line (and, for JSON, the column) and what
to fix, ``data/train.jsonl:7:12: not JSON (Expecting ',' delimiter)``. A file is read
whole as bytes and decoded once, so a byte that is not UTF-8 is located exactly
(a text stream decodes in blocks and would blame the wrong line).

AG News comes from the CSV files torchtext's ``AG_NEWS`` reads (Zhang et al.'s, as
published with Char-CNN-Keras), downloaded by torchvision's ``download_url`` and
checked against torchtext's md5 sums.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from dsl import DataError

AG_NEWS_URL = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/{}.csv"
AG_NEWS_MD5 = {"train": "b1a00f826fdfbd249f79597b59e1dc12", "test": "d52ea96a97a2d943681189a97654912d"}
AG_NEWS_CLASSES = ("World", "Sports", "Business", "Sci/Tech")
INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class Texts:
    """One split of a text classification file: texts, labels as written, and the line each came from."""

    file: Path
    texts: list[str]
    labels: list[str | int]
    lines: list[int]


def classification_file(folder: Path, split: str) -> Texts:
    """``folder/<split>.csv`` (a header naming ``text`` and ``label``) or ``folder/<split>.jsonl``."""
    for suffix, read in ((".csv", read_csv), (".jsonl", read_jsonl)):
        path = Path(folder) / f"{split}{suffix}"
        if path.is_file():
            return read(path)
    raise DataError(f"dataset text_classification: {folder} has no {split}.csv or {split}.jsonl; put the {split} "
                    f"split there, one example per row with the fields text and label")


def read_csv(path: Path) -> Texts:
    reader = csv.reader(io.StringIO(decoded(path), newline=""))
    rows = _rows(reader, path)
    header = next(rows, None)
    if header is None or not {"text", "label"} <= set(header[1]):
        named = ", ".join(header[1]) if header else "nothing (the file is empty)"
        raise DataError(f"{path}:1: the header names {named}; a text classification CSV starts with a header "
                        f"naming the columns text and label")
    text, label = header[1].index("text"), header[1].index("label")
    found = Texts(path, [], [], [])
    for line, row in rows:
        if len(row) != len(header[1]):
            raise DataError(f"{path}:{line}: {len(row)} fields, but the header names {len(header[1])} "
                            f"({', '.join(header[1])}); quote a field that holds a comma")
        _add(found, row[text], row[label], line)
    return found


def read_jsonl(path: Path) -> Texts:
    found = Texts(path, [], [], [])
    for line, raw in enumerate(decoded(path).split("\n"), 1):
        if raw.strip():
            row = _json_object(path, line, raw)
            _add(found, row["text"], row["label"], line)
    return found


def _json_object(path: Path, line: int, raw: str) -> dict:
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{line}:{err.colno}: not JSON ({err.msg}); each line is one object, "
                        f'{{"text": "...", "label": ...}}') from None
    if not isinstance(row, dict) or not {"text", "label"} <= set(row):
        what = f"an object with the keys {', '.join(row) or 'none'}" if isinstance(row, dict) else \
            f"a JSON {type(row).__name__}"
        raise DataError(f'{path}:{line}:1: {what}; each line is one object with text and label, {{"text": "...", '
                        f'"label": ...}}')
    if not isinstance(row["text"], str) or isinstance(row["label"], bool) or \
            not isinstance(row["label"], (str, int)):
        raise DataError(f"{path}:{line}:1: text must be a string and label a string or an integer; got "
                        f"{type(row['text']).__name__} and {type(row['label']).__name__}")
    return row


def _add(found: Texts, text: str, label: str | int, line: int) -> None:
    found.texts.append(text)
    found.labels.append(label)
    found.lines.append(line)


def read_pairs(path: Path) -> tuple[list[str], list[str]]:
    """``source<TAB>target`` per line (blank lines skipped): the sources and the targets."""
    if not path.is_file():
        raise DataError(f"dataset parallel_text: {path} is missing; put one 'source<TAB>target' pair per line there")
    sources, targets = [], []
    for line, raw in enumerate(decoded(path).split("\n"), 1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        fields = raw.split("\t")
        if len(fields) != 2:
            raise DataError(f"{path}:{line}: {len(fields)} tab-separated fields; each line is one pair, "
                            f"source<TAB>target")
        sources.append(fields[0])
        targets.append(fields[1])
    return sources, targets


def class_ids(train: Texts, test: Texts) -> tuple[list[int], list[int], tuple[str, ...] | None]:
    """Labels as class ids: integers as they are (if every training label is one), else the training split's
    names numbered in sorted order; also those names (None for integer labels)."""
    if all(_is_int(label) for label in train.labels):
        return _integers(train), _integers(test), None
    names = tuple(sorted({str(label) for label in train.labels}))
    index = {name: i for i, name in enumerate(names)}
    for label, line in zip(test.labels, test.lines):
        if str(label) not in index:
            raise DataError(f"{test.file}:{line}: label '{label}' is not a class of the training split "
                            f"({', '.join(names)})")
    return [index[str(label)] for label in train.labels], [index[str(label)] for label in test.labels], names


def _is_int(label: str | int) -> bool:
    return isinstance(label, int) or bool(INTEGER.fullmatch(label.strip()))


def _integers(texts: Texts) -> list[int]:
    """The labels of ``texts`` as class ids 0 or more; a name or a negative id is located."""
    ids = []
    for label, line in zip(texts.labels, texts.lines):
        if not _is_int(label) or int(label) < 0:
            raise DataError(f"{texts.file}:{line}: label '{label}' is not a class id 0 or more, as the training "
                            f"split's labels are")
        ids.append(int(label))
    return ids


def read_lines(path: Path) -> list[str]:
    """A file of texts to predict, one per line (a trailing newline ends the last, it does not add one)."""
    lines = decoded(path).split("\n")
    return [line.removesuffix("\r") for line in (lines[:-1] if lines[-1] == "" else lines)]


def decoded(path: Path) -> str:
    """The file's text; a byte that is not UTF-8 is a located error."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}); save the file as "
                        f"UTF-8") from None


def _rows(reader, path: Path):
    """(line, row) for each non-empty row of a ``csv.reader``; csv's own errors located."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(f"{path}:{reader.line_num}: not CSV ({err})") from None
        if row:
            yield reader.line_num, row


def ag_news_file(data_dir: str | Path, split: str) -> Path:
    """``DATA_DIR/ag_news/<split>.csv``, downloaded when missing, checked against torchtext's md5."""
    folder = Path(data_dir) / "ag_news"
    path = folder / f"{split}.csv"
    if path.is_file():
        if hashlib.md5(path.read_bytes()).hexdigest() != AG_NEWS_MD5[split]:
            raise DataError(f"{path} is not AG News's published {split}.csv (its md5 is not "
                            f"{AG_NEWS_MD5[split]}); delete it to download it again")
        return path
    _download(folder, split)
    return path


def fetch(url: str, folder: Path, name: str, md5: str) -> None:
    """torchvision's ``download_url``: the file into ``folder``, retried on redirects, md5-checked."""
    from torchvision.datasets.utils import download_url

    download_url(url, str(folder), name, md5)


def _download(folder: Path, split: str) -> None:
    existed = folder.exists()
    try:
        fetch(AG_NEWS_URL.format(split), folder, f"{split}.csv", AG_NEWS_MD5[split])
    except (OSError, RuntimeError):  # URLError is an OSError; a corrupt download a RuntimeError
        with contextlib.suppress(OSError):
            (folder / f"{split}.csv").unlink(missing_ok=True)
            if not existed:
                folder.rmdir()
        raise DataError(f"ag_news is not in {folder} and could not be downloaded (no network?); put train.csv and "
                        f"test.csv from {AG_NEWS_URL.format('{train,test}')} there; for an offline start, use "
                        f"dataset planted_tokens") from None


def read_ag_news(path: Path) -> Texts:
    """AG News's rows: class index 1..4, title, description; the text is the title and the description."""
    found = Texts(path, [], [], [])
    for line, row in _rows(csv.reader(io.StringIO(decoded(path), newline="")), path):
        if len(row) != 3 or row[0] not in ("1", "2", "3", "4"):
            raise DataError(f"{path}:{line}: not an AG News row (class index 1..4, title, description)")
        _add(found, f"{row[1]} {row[2]}", int(row[0]) - 1, line)
    return found
