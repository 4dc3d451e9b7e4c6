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

from .types import Bool, Int, NonNegativeFloat, NonNegativeInt, Pair, Params, PositiveFloat, Probability

Beta = Annotated[float, Strict(), Field(ge=0, lt=1)]
ColumnName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


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


class SgdParams(Params):
    lr: PositiveFloat = 1e-3
    momentum: NonNegativeFloat = 0.0
    nesterov: Bool = False
    weight_decay: NonNegativeFloat = 0.0

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self):
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0 (as in torch)")
        return self


class AdamParams(Params):
    lr: PositiveFloat = 1e-3
    betas: tuple[Beta, Beta] = (0.9, 0.999)
    eps: PositiveFloat = 1e-8
    weight_decay: NonNegativeFloat = 0.0


class AdamWParams(AdamParams):
    weight_decay: NonNegativeFloat = 0.01


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
})
"""Optimizer name -> parameter schema. Semantics are torch.optim's; see docs/PARITY.md §13."""

@dataclass(frozen=True)
class MetricDef:
    """A metric: the losses it goes with, and how an epoch's value comes from the steps' per-batch sums.

    ``per`` is what the sum is divided by: ``target``, the loss's count (cross_entropy's
    targets other than ``ignore_index``: tokens, pixels; otherwise examples), or
    ``example``. ``derive`` applies after the division: ``exp`` for perplexity, which is
    not a sum of per-batch values.
    """

    name: str
    losses: tuple[str, ...]
    per: Literal["target", "example"]
    doc: str
    derive: Literal["exp"] | None = None


METRICS = MappingProxyType({d.name: d for d in (
    MetricDef("accuracy", ("cross_entropy", "bce_with_logits"), "target",
              "correct predictions: over every target cross_entropy counts (tokens, pixels; ignore_index skipped), "
              "or per example averaged over its positions (bce_with_logits)"),
    MetricDef("iou", ("cross_entropy", "bce_with_logits"), "example",
              "each example's foreground intersection over union (class ids other than 0; for segmentation), "
              "averaged over examples"),
    MetricDef("perplexity", ("cross_entropy",), "target",
              "exp of the mean cross entropy per counted target (token) over the epoch, without label smoothing",
              derive="exp"),
)})
"""Metric name -> its definition; each backend lowers the per-batch sum (``backends/*/training.py``)."""


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


@dataclass(frozen=True)
class DatasetDef:
    """What a dataset yields, so ``dslc validate`` can check a spec against it without loading it.

    ``labels`` is what its targets are: ``"classes"`` (integer class ids, which only
    ``cross_entropy`` takes) or ``"values"`` (floats for ``mse``/``bce_with_logits``);
    ``label_shape`` is one example's target shape, ``()`` for one class id per example,
    which asks for logits ``[N, C]``. Both are None for ``synthetic``, whose targets are
    made to fit the loss and the output (``backends/data/synthetic.py``).
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
    columns: tuple[str, ...] = ()  # columns it yields beside its input and label, by name (a loss's input_lengths)


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
               path="a folder holding train/ and test/, one <column>.npy each", named_columns=True),
    DatasetDef("npz", None, None, None, None,
               "your arrays in one .npz file (data.path): x_train, y_train, x_test, y_test for one input and one "
               "target, else <column>_train and <column>_test by input and output name",
               path="an .npz file holding x_train, y_train, x_test, y_test (or <column>_train, <column>_test)",
               named_columns=True),
    DatasetDef("image_folder", None, None, "classes", (),
               "torchvision's ImageFolder layout: data.path/train/<class>/*.png|jpg and data.path/test/<class>/..., "
               "class ids from the sorted folder names; decoded once (L or RGB by the input's channels, resized "
               "bilinearly to its height and width) and cached under --data-dir; pixels / 255", scale=255.0,
               path="a folder holding train/<class>/ and test/<class>/ image folders"),
)})


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
