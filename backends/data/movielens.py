"""``movielens``: GroupLens's MovieLens 100K and 1M ratings as ``user``, ``item``, ``rating`` columns.

The zip archive is read from ``DATA_DIR/movielens/`` (downloaded there when missing,
by torchvision's ``download_url``) and checked against GroupLens's published md5,
the same sums other loaders pin. Ratings are ``u.data`` (100K: user, item, rating,
time, tab-separated) or ``ratings.dat`` (1M: ``::``-separated); user and item ids
are made 0-based and contiguous in the order of the original ids (100K's users
1..943 become 0..942; 1M's 3,706 rated movies of ids up to 3,952 become 0..3,705).

The split is random by rating, 90/10, from a fixed seed, so every run and both
targets see the same test ratings whatever ``--seed`` is (as ``digits``' split).
A user or item may appear only in the test split; a model then predicts it from its
untrained embedding and biases, as a real cold start would.
"""

from __future__ import annotations

import contextlib
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsl import DataError
from dsl.training import MovieLensParams

from .sources import Source, Split
from .text_files import fetch

URL = "https://files.grouplens.org/datasets/movielens/{}"
SPLIT_SEED = 0x3E75
TEST_FRACTION = 0.1


@dataclass(frozen=True)
class Archive:
    """One MovieLens release: its zip, the ratings file inside, how fields are separated, the zip's md5."""

    file: str
    member: str
    separator: bytes
    md5: str


ARCHIVES = {
    "100k": Archive("ml-100k.zip", "ml-100k/u.data", b"\t", "0e33842e24a9c977be4e0107933c0723"),
    "1m": Archive("ml-1m.zip", "ml-1m/ratings.dat", b"::", "c4d9eecfca2ab87c1945afe126590906"),
}


def movielens(params: MovieLensParams, data_dir: str | Path) -> Source:
    """The variant's ratings split 90/10: ``user``, ``item`` (int64, 0-based) and ``rating`` (float32 1..5)."""
    archive = ARCHIVES[params.variant]
    path = archive_path(Path(data_dir) / "movielens", archive)
    with zipfile.ZipFile(path) as zipped:
        user, item, rating = parse_ratings(zipped.read(archive.member), archive.separator, f"{path}:{archive.member}")
    columns = {"user": _dense_ids(user), "item": _dense_ids(item), "rating": rating.astype(np.float32)}
    order = np.random.default_rng(SPLIT_SEED).permutation(len(rating))
    test, train = np.split(order, [int(len(order) * TEST_FRACTION)])
    return Source(*(Split({k: v[rows] for k, v in columns.items()}) for rows in (train, test)), None)


def parse_ratings(raw: bytes, separator: bytes, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User ids, item ids and ratings of the lines ``user SEP item SEP rating SEP time``.

    The fields are split once over the whole file (1M lines: 1.8 s at load average 6); only a file whose
    field count is off is read line by line, to say which line.
    """
    text = raw.replace(separator, b" ")
    fields = text.split()
    if len(fields) != 4 * text.count(b"\n") + 4 * (not text.endswith(b"\n")):
        _locate_bad_line(text, where)
    try:
        table = np.array(fields, dtype=np.int64).reshape(-1, 4)
    except ValueError as err:
        raise DataError(f"{where}: a field is not an integer ({err})") from None
    return table[:, 0], table[:, 1], table[:, 2]


def _locate_bad_line(text: bytes, where: str) -> None:
    for number, line in enumerate(text.split(b"\n"), 1):
        if len(line.split()) != 4 and line.strip():
            raise DataError(f"{where}:{number}: {len(line.split())} fields; a rating line holds user, item, rating "
                            f"and time")


def _dense_ids(ids: np.ndarray) -> np.ndarray:
    """Ids numbered 0.. in the order of the original ones, none skipped."""
    return np.unique(ids, return_inverse=True)[1].astype(np.int64)


def archive_path(folder: Path, archive: Archive) -> Path:
    """``folder/<archive>``, downloaded when missing, checked against its md5."""
    path = folder / archive.file
    if not path.is_file():
        _download(folder, archive)
    if hashlib.md5(path.read_bytes()).hexdigest() != archive.md5:
        raise DataError(f"{path} is not GroupLens's published {archive.file} (its md5 is not {archive.md5}); delete "
                        f"it to download it again")
    return path


def _download(folder: Path, archive: Archive) -> None:
    existed = folder.exists()
    try:
        fetch(URL.format(archive.file), folder, archive.file, archive.md5)
    except (OSError, RuntimeError):  # URLError is an OSError; a corrupt download a RuntimeError
        with contextlib.suppress(OSError):
            (folder / archive.file).unlink(missing_ok=True)
            if not existed:
                folder.rmdir()
        raise DataError(f"movielens is not in {folder} and could not be downloaded (no network?); put "
                        f"{URL.format(archive.file)} at {folder / archive.file}; for an offline start, use dataset "
                        f"planted_ratings") from None
