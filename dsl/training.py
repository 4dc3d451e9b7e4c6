"""The training vocabulary: losses, optimizers, metrics and dataset names.

Defaults are torch's (optax often differs: AdamW decays by 0.01 here, not 1e-4;
``adam``'s ``weight_decay`` is torch's coupled L2, not AdamW). Options that one
backend cannot reproduce exactly (SGD dampening, amsgrad) are left out, so a spec
that asks for them is refused instead of silently training differently.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, Strict, WithJsonSchema, model_validator

from .types import Bool, Int, NonNegativeFloat, NonNegativeInt, Pair, Params, PositiveFloat, PositiveInt, Probability

Beta = Annotated[float, Strict(), Field(ge=0, lt=1)]
ColumnName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
NoDecay = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
"""Weights a weight decay skips: fnmatch patterns over canonical (torch state_dict) names, and the shortcut
``bias_and_norm`` (``dsl/decay.py``)."""


def _class_axis(value: int) -> int:
    if value not in (1, -1):
        raise ValueError(f"must be 1 (torch's layout [N, C, d1, ...]) or -1 (classes last, [N, T, V]), got {value}")
    return value


ClassAxis = Annotated[int, Strict(), AfterValidator(_class_axis), WithJsonSchema({"enum": [1, -1]})]


@dataclass(frozen=True)
class LossDef:
    """A loss; ``targets`` says what the dataset must yield: class ids, values shaped like the output, or label
    sequences padded with the blank (``labels``, ctc).

    ``counts`` is what the batch's loss is a mean over, hence what an epoch's sums are
    divided by: ``targets``, the targets it does not ignore (cross_entropy: every class
    id but ``ignore_index``, so a token-level mean for sequences), or ``examples``.
    """

    name: str
    params: type[Params]
    targets: Literal["classes", "values", "labels"]
    doc: str
    counts: Literal["targets", "examples"] = "examples"


class NoLossParams(Params):
    pass


class CrossEntropyParams(Params):
    """torch's ``F.cross_entropy`` arguments, and where the classes are: ``class_axis`` 1 is torch's layout
    ``[N, C, d1, ...]``; -1 is ``[N, T, V]``, sequence logits as Transformer and Keras code writes them."""

    label_smoothing: Probability = 0.0
    ignore_index: Int = -100
    class_axis: ClassAxis = 1


class CtcParams(Params):
    """torch's ``F.ctc_loss`` arguments; ``input_lengths`` names the batch column holding each example's frame
    count (default: all T frames)."""

    blank: NonNegativeInt = 0
    zero_infinity: Bool = False
    input_lengths: ColumnName | None = None


class _Decaying(Params):
    """An optimizer with a weight decay, and the weights it skips (``no_decay``: a second torch param group with
    weight_decay 0, an optax mask; ``dsl/decay.py``)."""

    @model_validator(mode="after")
    def _no_decay_needs_decay(self):
        if self.no_decay and self.weight_decay == 0:
            raise ValueError("no_decay exempts weights from weight_decay, which is 0 here: give weight_decay > 0, "
                             "or drop no_decay")
        return self


class SgdParams(_Decaying):
    lr: PositiveFloat = 1e-3
    momentum: NonNegativeFloat = 0.0
    nesterov: Bool = False
    weight_decay: NonNegativeFloat = 0.0
    no_decay: NoDecay | None = None

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self):
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0 (as in torch)")
        return self


class AdamParams(_Decaying):
    lr: PositiveFloat = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegativeFloat = 0.0
    no_decay: NoDecay | None = None


class AdamWParams(AdamParams):
    weight_decay: NonNegativeFloat = 0.01


class SparseAdamParams(Params):
    """torch's ``SparseAdam`` on the tables of embeddings with ``sparse: true`` and ``Adam`` (same lr, betas, eps)
    on every other weight: the pairing torch users write, as SparseAdam refuses dense gradients and Adam sparse
    ones. Neither decays weights. A table's step is lazy: only the rows the batch looked up (ids other than
    ``padding_idx``, zero gradient or not) update their moments and move; the step count and bias correction are
    global, and SparseAdam's ``eps`` is added to the uncorrected ``sqrt(v)`` (docs/PARITY.md §20)."""

    lr: PositiveFloat = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: PositiveFloat = 1e-8


LOSSES = MappingProxyType({
    "cross_entropy": LossDef("cross_entropy", CrossEntropyParams, "classes",
                             "Softmax cross-entropy of logits against class ids (torch.nn.CrossEntropyLoss): class "
                             "axis 1, or -1 for [N, T, V]; the mean over targets other than ignore_index (-100).",
                             counts="targets"),
    "ctc": LossDef("ctc", CtcParams, "labels",
                   "Connectionist temporal classification of logits [N, T, C] (batch first) against label "
                   "sequences [N, S] padded with the blank (torch.nn.CTCLoss, reduction mean)."),
    "mse": LossDef("mse", NoLossParams, "values",
                   "Mean squared error (torch.nn.MSELoss), not optax's half-squared l2_loss."),
    "bce_with_logits": LossDef("bce_with_logits", NoLossParams, "values",
                               "Binary cross-entropy of logits against 0/1 targets (torch.nn.BCEWithLogitsLoss)."),
})

OPTIMIZERS = MappingProxyType({
    "sgd": SgdParams,
    "adam": AdamParams,
    "adamw": AdamWParams,
    "sparse_adam": SparseAdamParams,
})
"""Optimizer name -> parameter schema. Semantics are torch.optim's; see docs/PARITY.md §13 (§20: sparse_adam)."""

SPARSE_OPTIMIZERS = MappingProxyType({
    "sparse_adam": "lazy Adam on the rows a batch looked up",
    "sgd": "plain SGD, with momentum 0 and weight_decay 0: the same step as a dense gradient's",
})
"""The optimizers that take an embedding's sparse gradient, and what they do with it. torch's Adam and AdamW
raise on one; so does its SGD with weight decay (``add(sparse, dense)``) or fused (dslc's SGD steps sparse tables
unfused), and with momentum it keeps a sparse buffer, which has no canonical form here."""

@dataclass(frozen=True)
class MetricDef:
    """A metric: the losses it goes with, and how an epoch's value comes from the steps' per-batch sums.

    ``per`` is what the sum is divided by: ``target``, the loss's count (cross_entropy's
    targets other than ``ignore_index``: tokens, pixels; otherwise examples), or
    ``example``. ``derive`` applies after the division: ``exp`` for perplexity, ``sqrt``
    for rmse, neither a mean of per-batch values. ``per: split`` is a metric no sum
    gives, as it ranks every example against every other (auc): it is computed once
    per evaluation from the whole test split's (score, label) pairs
    (``backends/split_metrics.py``), never from the training steps. ``needs`` is what
    an error says it needs of the loss.
    """

    name: str
    losses: tuple[str, ...]
    per: Literal["target", "example", "split"]
    doc: str
    needs: str
    derive: Literal["exp", "sqrt"] | None = None
    better: Literal["higher", "lower"] = "lower"  # early stopping's mode: auto (Keras's metric direction)


_CLASSIFICATION = "a classification loss (cross_entropy or bce_with_logits)"
_REGRESSION = "a regression loss (mse): it compares float predictions with float targets"
_BINARY = "bce_with_logits: it scores logits against 0/1 labels"

METRICS = MappingProxyType({d.name: d for d in (
    MetricDef("accuracy", ("cross_entropy", "bce_with_logits"), "target",
              "correct predictions: over every target cross_entropy counts (tokens, pixels; ignore_index skipped), "
              "or per example averaged over its positions (bce_with_logits)", _CLASSIFICATION, better="higher"),
    MetricDef("iou", ("cross_entropy", "bce_with_logits"), "example",
              "each example's foreground intersection over union (class ids other than 0; for segmentation), "
              "averaged over examples", _CLASSIFICATION, better="higher"),
    MetricDef("perplexity", ("cross_entropy",), "target",
              "exp of the mean cross entropy per counted target (token) over the epoch, without label smoothing",
              "cross_entropy (it is exp of the mean cross entropy per token)", derive="exp"),
    MetricDef("rmse", ("mse",), "example",
              "root mean squared error: sqrt of the epoch's mean squared error (each example's mean over its "
              "positions), which is sklearn.metrics.mean_squared_error over the whole split, then sqrt; not a "
              "mean of batch RMSEs", _REGRESSION, derive="sqrt"),
    MetricDef("mae", ("mse",), "example",
              "mean absolute error over the epoch's examples (each example's mean over its positions), as "
              "sklearn.metrics.mean_absolute_error", _REGRESSION),
    MetricDef("logloss", ("bce_with_logits",), "example",
              "mean binary cross-entropy of the logits' probabilities against the 0/1 labels over the epoch's "
              "examples, as sklearn.metrics.log_loss (unweighted, whatever train.loss_weights says)", _BINARY),
    MetricDef("auc", ("bce_with_logits",), "split",
              "area under the ROC curve of the logits against the 0/1 labels, by sklearn.metrics.roc_auc_score "
              "over the whole held-out split (one logit per example, [N] or [N, 1]); evaluations only", _BINARY,
              better="higher"),
)})
"""Metric name -> its definition; each backend lowers the per-batch sum (``backends/*/training.py``), and
``backends/split_metrics.py`` computes the ``per: split`` ones."""


class SupervisedParams(Params):
    pass


class ReconstructionParams(Params):
    pass


ModelName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class GanParams(Params):
    """The DCGAN paper's roles: which model generates and which discriminates."""

    generator: ModelName = "generator"
    discriminator: ModelName = "discriminator"


@dataclass(frozen=True)
class ObjectiveDef:
    """What training minimizes; ``roles`` are the params naming models, in step order (``phases``)."""

    name: str
    params: type[Params]
    doc: str
    phases: tuple[str, ...] = ()  # role of the model each step of a batch updates; () : the one model


OBJECTIVES = MappingProxyType({d.name: d for d in (
    ObjectiveDef("supervised", SupervisedParams,
                 "one loss per output against the dataset's targets (train.loss), summed with train.loss_weights"),
    ObjectiveDef("reconstruction", ReconstructionParams,
                 "the model's output against its own input (train.loss: mse or bce_with_logits); an autoencoder"),
    ObjectiveDef("gan", GanParams,
                 "the DCGAN paper's non-saturating GAN: per batch a discriminator step on real and generated "
                 "examples, then a generator step; noise is drawn from the seed",
                 phases=("discriminator", "generator")),
)})


class NoDatasetParams(Params):
    pass


@dataclass(frozen=True)
class Column:
    """One column of a dataset that names its own (Hugging Face's names for text), and what it holds.

    ``kind`` is checked against the model input it feeds, before anything is loaded:
    ``ids`` (integer token ids [L], right-padded with 0), ``mask`` ([L], 1 on a real
    position and 0 on padding; cast to the input's dtype), ``frames`` (float [T, F]),
    ``class`` (one class id per example), ``tokens`` (target ids per position, -100 on
    padding: torch's ``ignore_index``), ``length`` (the real length of each example, int64); for
    recommenders ``id`` (one integer id per example, shape ``[]``: a user, an item), ``field_ids`` (one
    integer id per categorical field, ``[F]``), ``features`` (float features ``[F]``) and ``value`` (one float
    target per example: a rating, a 0/1 click).
    """

    name: str
    kind: Literal["ids", "mask", "frames", "class", "tokens", "length", "id", "field_ids", "features", "value"]


def _columns(text: str) -> tuple[Column, ...]:
    """``'input_ids:ids attention_mask:mask'`` -> the Columns, so a dataset's row stays one line."""
    return tuple(Column(*item.split(":")) for item in text.split())


TEXT_COLUMNS = _columns("input_ids:ids attention_mask:mask token_type_ids:ids label:class")
"""A text classification dataset's columns, Hugging Face's names (``BertForSequenceClassification``'s inputs)."""

RATING_COLUMNS = _columns("user:id item:id rating:value")
"""A rating dataset's columns: who rated, what, and the rating (a float, the target of ``mse``)."""

CLICK_COLUMNS = _columns("dense:features sparse:field_ids label:value")
"""A click-through dataset's columns, Criteo's layout: 13 dense features, 26 categorical fields, a 0/1 label."""

PAIR_COLUMNS = _columns("source:ids target_in:ids target_out:tokens source_mask:mask target_mask:mask")
"""A sequence-to-sequence dataset's columns: the target twice, shifted for teacher forcing."""


@dataclass(frozen=True)
class DatasetDef:
    """What a dataset yields, so ``dslc validate`` can check a spec against it without loading it.

    ``labels`` is what its targets are: ``"classes"`` (integer class ids, which only
    ``cross_entropy`` takes) or ``"values"`` (floats for ``mse``/``bce_with_logits``);
    ``label_shape`` is one example's target shape, ``()`` for one class id per example,
    which asks for logits ``[N, C]``. Both are None for ``synthetic``, whose targets are
    made to fit the loss and the output (``backends/data/synthetic.py``), and for the
    sequence-to-sequence and speech datasets, whose targets per position are checked by
    their losses.

    ``columns`` are the columns of a dataset that names its own (Hugging Face's names
    for text), each with its kind. Every one reaches the batch, under its own name or
    the input or output ``data.columns`` maps it to; the model's inputs and targets
    must each get one (``dsl/columns.py`` checks it, with the kinds, before anything is
    loaded). The first column sets the sequence length: it must feed an input, whose
    length the dataset then makes (synthetic tasks) or pads and cuts to (text). A
    ``tokenized`` dataset reads text and needs ``data.tokenizer``.
    """

    name: str
    example_shape: tuple[int, ...] | None  # None: made in whatever shape the model takes
    num_classes: int | None
    labels: Literal["classes", "values"] | None
    label_shape: tuple[int, ...] | None
    doc: str
    scale: float | None = None  # the stored value that means 1.0 (pixels 0..255 -> 255); None: stored as used
    sizes: tuple[int, int] | None = None  # (train, test) examples; None: made in any number (synthetic)
    path: str | None = None  # what data.path names for this dataset; None: it reads no data.path
    named_columns: bool = False  # one column per model input and target, by name; else one image and one label
    columns: tuple[Column, ...] = ()  # the columns it names itself; the first sets the sequence length
    tokenized: bool = False  # reads text, which data.tokenizer turns into ids
    params: type[Params] = NoDatasetParams  # its arguments: dataset: {name: {args}}
    splits_on_disk: bool = False  # data.validation names a split beside train/ and test/ (npy val/, npz x_val)


class PlantedRatingsParams(Params):
    """``planted_ratings``' matrix: ``users`` x ``items`` of rank ``rank``, Gaussian noise of std ``noise``."""

    users: PositiveInt = 300
    items: PositiveInt = 300
    rank: PositiveInt = 4
    noise: PositiveFloat = 0.5


class PlantedClicksParams(Params):
    """``planted_clicks``' FM logit: latent vectors of ``rank`` numbers per categorical id; with ``ids``, each field
    draws among its first ``ids`` ids at most (a real log's head of a hashed table: enough clicks per id to learn)."""

    rank: PositiveInt = 4
    ids: Annotated[int, Strict(), Field(ge=2)] | None = None


class MovieLensParams(Params):
    """Which MovieLens: ``100k`` (943 users, 1,682 movies) or ``1m`` (6,040 users, 3,706 rated movies)."""

    variant: Literal["100k", "1m"] = "100k"


DATASETS = MappingProxyType({d.name: d for d in (
    DatasetDef("digits", (1, 8, 8), 10, "classes", (),
               "scikit-learn's bundled 8x8 handwritten digits, offline; pixels / 16", scale=16.0, sizes=(1437, 360)),
    DatasetDef("mnist", (1, 28, 28), 10, "classes", (),
               "MNIST through torchvision, downloaded into --data-dir; pixels / 255", scale=255.0,
               sizes=(60000, 10000)),
    DatasetDef("fashion_mnist", (1, 28, 28), 10, "classes", (), "Fashion-MNIST through torchvision; pixels / 255",
               scale=255.0, sizes=(60000, 10000)),
    DatasetDef("cifar10", (3, 32, 32), 10, "classes", (),
               "CIFAR-10 through torchvision, downloaded into --data-dir (or put cifar-10-python.tar.gz there); "
               "pixels / 255", scale=255.0, sizes=(50000, 10000)),
    DatasetDef("shapes", (1, 16, 16), 2, "classes", (16, 16),
               "seeded 16x16 images of noise with 1-3 planted rectangles, brighter than the background, and their "
               "per-pixel masks (class 1 inside a rectangle): a segmentation task that trains offline in seconds",
               sizes=(2048, 512)),
    DatasetDef("glyphs", (3, 32, 32), 10, "classes", (),
               "seeded CIFAR-shaped 3x32x32 images of ten glyphs (square, frame, disc, ring, plus, cross, bar, pillar, "
               "triangle, four dots) at random positions, sizes and colours over noise, offline: a classification "
               "task for convnets where CIFAR-10 cannot be downloaded; uint8 pixels / 255",
               scale=255.0, sizes=(10000, 2000)),
    DatasetDef("synthetic", None, None, None, None,
               "seeded standard-normal inputs of the model's shape, learnable targets", named_columns=True),
    DatasetDef("npy", None, None, None, None,
               "your arrays: data.path/train/ and data.path/test/ hold one <column>.npy per model input and "
               "target (x.npy and y.npy for one input and one target); data.stream: true memory-maps them",
               path="a folder holding train/ and test/, one <column>.npy each", named_columns=True,
               splits_on_disk=True),
    DatasetDef("npz", None, None, None, None,
               "your arrays in one .npz file (data.path): x_train, y_train, x_test, y_test for one input and one "
               "target, else <column>_train and <column>_test by input and output name",
               path="an .npz file holding x_train, y_train, x_test, y_test (or <column>_train, <column>_test)",
               named_columns=True, splits_on_disk=True),
    DatasetDef("image_folder", None, None, "classes", (),
               "torchvision's ImageFolder layout: data.path/train/<class>/*.png|jpg and data.path/test/<class>/..., "
               "class ids from the sorted folder names; decoded once (L or RGB by the input's channels, resized "
               "bilinearly to its height and width) and cached under --data-dir; pixels / 255", scale=255.0,
               path="a folder holding train/<class>/ and test/<class>/ image folders", splits_on_disk=True),
    DatasetDef("planted_tokens", None, None, "classes", (),
               "seeded text classification: token ids (id 1 first, as BERT's [CLS]; ids below the reading "
               "embedding's num_embeddings) right-padded with 0 to random lengths, with exactly one of K class tokens "
               "(ids 2..K+1, K the output's logits) planted at a random position; label is its class",
               named_columns=True, columns=TEXT_COLUMNS),
    DatasetDef("reverse", None, None, None, None,
               "seeded sequence reversal for seq2seq: source ids (3.. up to the embedding's size) of random length "
               "padded with 0; target_in is 1 (BOS) then the reversed source (teacher forcing); target_out is the "
               "reversed source then 2 (EOS), -100 on padding",
               named_columns=True, columns=PAIR_COLUMNS),
    DatasetDef("synthetic_speech", None, None, None, None,
               "seeded speech-like frames [T, F]: each character of a random transcript (ids 1..K, K one less than "
               "the CTC output's classes; 0 is the blank) sounds as 2-4 frames of its own fixed pattern plus noise, "
               "with silence between; transcript padded with 0; frame_lengths the frames each utterance uses",
               named_columns=True, columns=_columns("frames:frames transcript:tokens frame_lengths:length")),
    DatasetDef("text_classification", None, None, "classes", (),
               "your texts: data.path/train.csv and test.csv (or .jsonl), fields text and label (class names, "
               "numbered in sorted order, or integer ids), tokenized by data.tokenizer and padded or cut to the "
               "input's length", path="a folder holding train.csv and test.csv (or train.jsonl, test.jsonl)",
               named_columns=True, tokenized=True, columns=TEXT_COLUMNS),
    DatasetDef("ag_news", None, 4, "classes", (),
               "AG News (World, Sports, Business, Sci/Tech): torchtext's CSV files, downloaded into --data-dir/ag_news "
               "(md5-checked); text is title and description; tokenized by data.tokenizer",
               sizes=(120000, 7600), named_columns=True, tokenized=True, columns=TEXT_COLUMNS),
    DatasetDef("parallel_text", None, None, None, None,
               "your sentence pairs for translation: data.path/train.tsv and test.tsv, one 'source<TAB>target' per "
               "line, tokenized by data.tokenizer into reverse's columns (target_in starts with BOS, target_out ends "
               "with EOS)", path="a folder holding train.tsv and test.tsv", named_columns=True, tokenized=True,
               columns=PAIR_COLUMNS),
    DatasetDef("planted_ratings", None, None, "values", (),
               "seeded ratings from a planted low-rank matrix: global mean + user bias + item bias + a rank-r "
               "product + Gaussian noise (dataset: {planted_ratings: {users, items, rank, noise}}); the best "
               "achievable test RMSE is the noise std", named_columns=True, columns=RATING_COLUMNS,
               params=PlantedRatingsParams),
    DatasetDef("planted_clicks", None, None, "values", (),
               "seeded click-through data from a planted factorization machine: 13 dense features, 26 categorical "
               "fields (ids below each field's vocab), labels drawn from sigmoid(bias + linear terms + pairwise "
               "latent products)", named_columns=True, columns=CLICK_COLUMNS, params=PlantedClicksParams),
    DatasetDef("movielens", None, None, "values", (),
               "MovieLens ratings (dataset: {movielens: {variant: 100k|1m}}), downloaded into "
               "--data-dir/movielens (md5-checked); ids made 0-based, a fixed random 90/10 split",
               named_columns=True, columns=RATING_COLUMNS, params=MovieLensParams),
    DatasetDef("criteo", None, None, "values", (),
               "a Criteo-format TSV (data.path: label, 13 integer and 26 hex categorical fields), read once in "
               "streamed batches into memory-mapped columns beside it: dense log(1 + x), categorical values hashed "
               "into each field's vocab (0: missing); the last 10% of lines are the test split",
               path="a Criteo-format .tsv file (label, 13 integer features, 26 categorical, tab-separated)",
               named_columns=True, columns=CLICK_COLUMNS),
)})


class EarlyStoppingParams(Params):
    """Keras's ``EarlyStopping(monitor, mode, patience, min_delta)``: stop when the validation metric ``monitor``
    has not improved by more than ``min_delta`` for ``patience`` epochs; ``auto`` minimizes losses and maximizes
    the metrics that grow with quality (accuracy, iou, auc). See ``backends/early_stopping.py`` for the rule."""

    monitor: Annotated[str, Field(min_length=1)] = "val_loss"
    mode: Literal["min", "max", "auto"] = "auto"
    patience: NonNegativeInt = 0
    min_delta: NonNegativeFloat = 0.0


class VocabParams(Params):
    """A vocabulary built from the training split only (the test split's unseen tokens read as ``<unk>``):
    the ``max_size`` most frequent tokens seen at least ``min_freq`` times; ``max_size`` defaults to what fits the
    embedding that reads the ids, after the four reserved ids (0 ``<pad>``, 1 ``<bos>``, 2 ``<eos>``, 3 ``<unk>``)."""

    max_size: PositiveInt | None = None
    min_freq: PositiveInt = 1


class TokenizerFileParams(Params):
    """A Hugging Face ``tokenizers`` file (``tokenizer.json``); a relative path is read from the working
    directory, as ``data.path`` is."""

    path: Annotated[str, Field(min_length=1)]


TOKENIZERS = MappingProxyType({
    "char": VocabParams,
    "vocab": VocabParams,
    "file": TokenizerFileParams,
})
"""``data.tokenizer``: ``char`` (a vocabulary of characters), ``vocab`` (of words: runs of letters and digits, and
of other symbols, as ``tokenizers``' Whitespace pre-tokenizer splits them) or ``file: tokenizer.json``. The
vocabularies are built from the training split and saved as ``vocab.json`` next to the run's weights."""


class RandomCropParams(Params):
    """torchvision's ``RandomCrop(size, padding)``: zero-pad each side by ``padding``, then crop ``size`` at a
    random position; ``size`` (``[H, W]``, or one number for both) defaults to the input's height and width."""

    padding: NonNegativeInt = 0
    size: Pair | None = None


class HorizontalFlipParams(Params):
    """torchvision's ``RandomHorizontalFlip(p)``: mirror the width axis with probability ``p``."""

    p: Probability = 0.5


AUGMENTATIONS = MappingProxyType({
    "random_crop": RandomCropParams,
    "horizontal_flip": HorizontalFlipParams,
})
"""``data.augment`` steps, applied in order to the training split's (C, H, W) input (``backends/data/augment.py``)."""
