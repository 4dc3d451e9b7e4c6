"""``planted_clicks``: seeded click-through data from a known factorization machine, in Criteo's layout.

Each example has ``dense`` features (standard normal, [13] float32), one id per
categorical field in ``sparse`` ([26] int64, uniform below the field's vocab) and a
``label`` (float32 0/1) drawn as ``Bernoulli(sigmoid(logit))`` with

    logit = BIAS + dense @ u + sum_f w_f[id_f] + sum_{f<g} <v_f[id_f], v_g[id_g]>,

the model DeepFM's FM half computes. The stds (``u`` 0.3, ``w`` 0.2, ``v`` 0.178 at
rank 4) give each of the three parts a variance near 1.1 (13 * 0.09, 26 * 0.04,
325 * 4 * 0.178^4), so none dominates and a model must learn the interactions to
come near the truth. Vocabularies are the ``sparse`` input's declared ``vocab`` (or
the table reading it); without either, ``DEFAULT_VOCAB`` (4 to 100 ids a field,
geometrically spaced: 1,070 ids in all). With ``ids``, each field draws among its
first ``ids`` ids at most, so a spec sized for real Criteo (93,145 ids in its largest
field) still gets a task with enough clicks per id to learn: with
``specs/deepfm_criteo.yaml``'s vocab, DeepFM (JAX, Adam lr 3e-3, 4 epochs) reached a
test AUC of 0.8397 against the truth's 0.8517 at 30 ids a field, but 0.7998 against
0.8436 at 100.

A model's ceiling is the truth's own AUC on the test split (``planted_auc``): 0.8329
with the defaults (200,000 + 20,000 examples). An FM of dim 8 in plain torch (Adam
lr 3e-3, batch 1024) reached 0.8206 after 4 epochs, 0.012 below it; with 10 to 1,000
ids a field (7,700 ids) it peaked at 0.770 against 0.843 and then overfit, too few
clicks per id to learn the interactions from. The world is drawn from a fixed seed; the training examples
from the run's seed, the test ones from a fixed seed, as in ``ratings.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dsl import DataError
from dsl.training import PlantedClicksParams

from .columns import Feeds
from .sequences import splits
from .sources import Source, Split

DENSE, FIELDS = 13, 26
DEFAULT_VOCAB = tuple(int(v) for v in np.geomspace(4, 100, FIELDS).round())
BIAS, DENSE_STD, FIRST_STD, LATENT_STD = -1.0, 0.3, 0.2, 0.178
WORLD_SEED = 0xC71C
SIZES = (200_000, 20_000)


@dataclass(frozen=True)
class ClickWorld:
    """The planted FM: dense weights ``u`` [13], and per field a weight and a latent vector per id."""

    dense: np.ndarray  # [DENSE]
    first: tuple[np.ndarray, ...]  # per field: [vocab]
    latent: tuple[np.ndarray, ...]  # per field: [vocab, rank]

    def logit(self, dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
        """The true log-odds of a click for each example."""
        first = sum(w[sparse[:, f]] for f, w in enumerate(self.first))
        v = np.stack([v[sparse[:, f]] for f, v in enumerate(self.latent)], axis=1)  # [N, F, rank]
        pairs = 0.5 * (np.square(v.sum(1)) - np.square(v).sum(1)).sum(1)
        return BIAS + dense @ self.dense + first + pairs


def click_world(vocab: tuple[int, ...], rank: int) -> ClickWorld:
    rng = np.random.default_rng([WORLD_SEED, rank, *vocab])
    first = tuple(rng.normal(0, FIRST_STD, size) for size in vocab)
    latent = tuple(rng.normal(0, LATENT_STD * (4 / rank) ** 0.25, (size, rank)) for size in vocab)
    return ClickWorld(rng.normal(0, DENSE_STD, DENSE), first, latent)


def click_vocab(feeds: Feeds, most: int | None = None) -> tuple[int, ...]:
    """The ids drawn per field: the ``sparse`` input's vocab (else ``DEFAULT_VOCAB``), at most ``most``."""
    vocab = feeds.vocab("sparse") or DEFAULT_VOCAB
    vocab = (vocab,) * FIELDS if isinstance(vocab, int) else tuple(vocab)
    if len(vocab) != FIELDS or min(vocab) < 2:
        raise DataError(f"dataset planted_clicks makes {FIELDS} categorical fields of 2 or more ids each; the "
                        f"sparse input's vocab is {list(vocab)}")
    return vocab if most is None else tuple(min(size, most) for size in vocab)


def planted_clicks(params: PlantedClicksParams, feeds: Feeds, seed: int, train_size: int | None,
                   test_size: int | None) -> Source:
    """``dense`` float32 [N, 13], ``sparse`` int64 [N, 26], ``label`` float32 [N] of ``click_world``."""
    vocab = click_vocab(feeds, params.ids)
    world = click_world(vocab, params.rank)
    return splits(lambda rng, count: _draw(world, vocab, rng, count), seed, 0xC11C,
                  train_size or SIZES[0], test_size or SIZES[1])


def _draw(world: ClickWorld, vocab: tuple[int, ...], rng: np.random.Generator, count: int) -> Split:
    dense = rng.standard_normal((count, DENSE)).astype(np.float32)
    sparse = np.stack([rng.integers(0, size, count) for size in vocab], axis=1)
    chance = 1 / (1 + np.exp(-world.logit(dense, sparse)))
    return Split({"dense": dense, "sparse": sparse, "label": (rng.random(count) < chance).astype(np.float32)})


def planted_auc(world: ClickWorld, split: Split) -> float:
    """The AUC of the true logit on ``split``: what no model of these clicks can beat, but by chance."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(split["label"], world.logit(split["dense"], split["sparse"])))
