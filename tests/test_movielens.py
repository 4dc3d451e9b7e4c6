"""The movielens loader on a small fake ml-100k.zip (and ml-1m.zip) made here: parse, ids, split, checksum."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile

import numpy as np
import pytest

import backends.data.movielens as movielens
from dsl import DataError
from dsl.training import MovieLensParams

# user, item, rating, time: users 7, 12, 30 and items 5, 9, 40, 41 as GroupLens numbers them (1-based, gaps)
RATINGS = [(7, 5, 3), (12, 9, 4), (30, 40, 5), (7, 41, 1), (12, 5, 2)] * 4


def fake_archive(folder, variant: str, lines: list[str], monkeypatch) -> None:
    """``folder/movielens/<zip>`` holding ``lines``, with its md5 pinned in place of GroupLens's."""
    archive = movielens.ARCHIVES[variant]
    path = folder / "movielens" / archive.file
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr(archive.member, "".join(lines))
    fake = dataclasses.replace(archive, md5=hashlib.md5(path.read_bytes()).hexdigest())
    monkeypatch.setitem(movielens.ARCHIVES, variant, fake)


@pytest.mark.parametrize("variant, separator", [("100k", "\t"), ("1m", "::")])
def test_ratings_are_parsed_with_dense_ids_and_split_90_10(tmp_path, monkeypatch, variant, separator):
    lines = [separator.join(map(str, (*r, 874965758 + i))) + "\n" for i, r in enumerate(RATINGS)]
    fake_archive(tmp_path, variant, lines, monkeypatch)
    source = movielens.movielens(MovieLensParams(variant=variant), tmp_path)
    assert (len(source.train), len(source.test)) == (18, 2)
    both = {k: np.concatenate([source.train[k], source.test[k]]) for k in ("user", "item", "rating")}
    assert both["user"].dtype == both["item"].dtype == np.int64 and both["rating"].dtype == np.float32
    dense = {(7, 5): (0, 0), (12, 9): (1, 1), (30, 40): (2, 2), (7, 41): (0, 3), (12, 5): (1, 0)}
    pairs = sorted(zip(both["user"].tolist(), both["item"].tolist(), both["rating"].tolist()))
    assert pairs == sorted((*dense[(u, i)], float(r)) for u, i, r in RATINGS)


def test_the_split_is_fixed_whatever_the_run(tmp_path, monkeypatch):
    lines = [f"{u}\t{i}\t{r}\t0\n" for u, i, r in RATINGS]
    fake_archive(tmp_path, "100k", lines, monkeypatch)
    a, b = (movielens.movielens(MovieLensParams(), tmp_path) for _ in range(2))
    for column in ("user", "item", "rating"):
        np.testing.assert_array_equal(a.test[column], b.test[column])


def test_a_short_line_is_located(tmp_path, monkeypatch):
    fake_archive(tmp_path, "100k", ["7\t5\t3\t0\n", "12\t9\t4\n"], monkeypatch)
    with pytest.raises(DataError) as info:
        movielens.movielens(MovieLensParams(), tmp_path)
    assert str(info.value) == (f"{tmp_path}/movielens/ml-100k.zip:ml-100k/u.data:2: 3 fields; a rating line holds "
                               "user, item, rating and time")


def test_a_file_that_is_not_the_published_one_is_refused(tmp_path):
    path = tmp_path / "movielens" / "ml-100k.zip"
    path.parent.mkdir()
    path.write_bytes(b"not the archive")
    with pytest.raises(DataError) as info:
        movielens.movielens(MovieLensParams(), tmp_path)
    assert str(info.value) == (f"{path} is not GroupLens's published ml-100k.zip (its md5 is not "
                               "0e33842e24a9c977be4e0107933c0723); delete it to download it again")


def test_offline_without_the_file_says_where_to_put_it(tmp_path, monkeypatch):
    def offline(url, folder, name, md5):
        raise OSError("no network")
    monkeypatch.setattr(movielens, "fetch", offline)
    with pytest.raises(DataError) as info:
        movielens.movielens(MovieLensParams(variant="1m"), tmp_path)
    assert str(info.value) == (f"movielens is not in {tmp_path}/movielens and could not be downloaded (no network?); "
                               f"put https://files.grouplens.org/datasets/movielens/ml-1m.zip at "
                               f"{tmp_path}/movielens/ml-1m.zip; for an offline start, use dataset planted_ratings")
    assert not (tmp_path / "movielens").exists()

