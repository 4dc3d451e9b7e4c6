"""Names people bring from Keras, Flax and torch, and the one-line message for a name dslc does not know.

A first spec is often written from memory of another framework: ``Dense``, ``nn.Conv2d``,
``categorical_crossentropy``. Saying only "unknown op" sends the user to the docs; naming
dslc's op (and what differs, such as Keras's probabilities against dslc's logits) fixes the
spec in place. Every message also lists the valid names, since a hint can be missing or wrong.

The tables below are the one place these names live: foreign name -> ``Alias`` (dslc has it,
under another name) or ``Planned`` (dslc does not have it yet). A name is looked up as
written, then without a module prefix (``torch.nn.``, ``keras.layers.``, ``optax.`` ...),
then ignoring case. ``tests/test_names.py`` checks that every ``Alias`` names something in
the catalogs and every ``Planned`` something not yet in them, so the tables cannot rot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import did_you_mean
from .initializers import INITIALIZERS
from .ops import OP_GROUPS, OPS
from .schedules import SCHEDULES
from .training import AUGMENTATIONS, DATASETS, LOSSES, METRICS, OBJECTIVES, OPTIMIZERS


@dataclass(frozen=True)
class Alias:
    """Another framework's name for dslc's ``name``; ``by`` says whose name it is, ``note`` what differs."""

    name: str
    by: str
    note: str = ""


@dataclass(frozen=True)
class Planned:
    """A name dslc does not have yet; ``where`` is the issue that plans it ('' when none does)."""

    name: str
    by: str
    where: str = ""


CORE = "the language core issue"
SEQUENCE = "the sequence families issue"
VISION = "the vision families issue"
RUN = "the recommenders/run issue"

_CHANNELS_FIRST = "dslc is channels first (torch's order): input.shape is [C, H, W]"
_CHANNELS_FIRST_1D = "dslc is channels first (torch's order): input.shape is [C, L]"
_TRANSPOSE_WEIGHT = _CHANNELS_FIRST + "; weight is torch's (in, out, kH, kW), the kernel flipped"
_FLAX_STRIDE = "stride defaults to kernel_size (torch's default), not Flax's 1"
_TANH_GELU = "dslc's gelu is exact (erf) unless gelu: {approximate: tanh}, which is jax.nn.gelu's default"
_LOGITS_IDS = "it takes logits and class ids, as torch does, not probabilities and one-hot labels"
_FROM_LOGITS = "it takes logits (Keras's from_logits=True): put no sigmoid before it"
_NO_SIGMOID = "it takes logits: put no sigmoid before it"
_GLOBAL_POOL = "use output_size: 1; the output is [N, C, 1, 1] (torch's), not [N, C]: add a flatten after it"
_RECURRENT = ("torch's: hidden_size (Keras's units), batch first, gives output [N, T, D*H] and the final states "
              "[N, D*num_layers, H] as name[h_n] (whatever Keras's return_sequences says)")
_PACKED_ATTENTION = ("its weights are torch's packed in_proj_weight (3E, E) and out_proj; a padding mask is a 4th "
                     "input with mask: keep or ignore")
_BN_MOMENTUM = "momentum is the new batch's weight, as in torch (default 0.1): {}'s momentum m is dslc's 1 - m"

OP_NAMES: Mapping[str, Alias | Planned] = MappingProxyType({
    # linear
    "Dense": Alias("linear", "Keras and Flax"),
    "Linear": Alias("linear", "torch and Flax nnx"),
    "Identity": Alias("identity", "Keras and torch"),
    # conv
    "Conv2D": Alias("conv2d", "Keras", _CHANNELS_FIRST),
    "Convolution2D": Alias("conv2d", "Keras", _CHANNELS_FIRST),
    "Conv2d": Alias("conv2d", "torch"),
    "Conv": Alias("conv2d", "Flax", _CHANNELS_FIRST),
    "Conv1D": Alias("conv1d", "Keras", _CHANNELS_FIRST_1D),
    "Convolution1D": Alias("conv1d", "Keras", _CHANNELS_FIRST_1D),
    "Conv1d": Alias("conv1d", "torch"),
    "Conv2DTranspose": Alias("conv_transpose2d", "Keras", _CHANNELS_FIRST),
    "ConvTranspose2d": Alias("conv_transpose2d", "torch"),
    "ConvTranspose": Alias("conv_transpose2d", "Flax", _TRANSPOSE_WEIGHT),
    # pooling
    "MaxPooling2D": Alias("max_pool2d", "Keras", _CHANNELS_FIRST),
    "MaxPool2D": Alias("max_pool2d", "Keras", _CHANNELS_FIRST),
    "MaxPool2d": Alias("max_pool2d", "torch"),
    "max_pool": Alias("max_pool2d", "Flax", _FLAX_STRIDE),
    "AveragePooling2D": Alias("avg_pool2d", "Keras", _CHANNELS_FIRST),
    "AvgPool2D": Alias("avg_pool2d", "Keras", _CHANNELS_FIRST),
    "AvgPool2d": Alias("avg_pool2d", "torch"),
    "avg_pool": Alias("avg_pool2d", "Flax", _FLAX_STRIDE),
    "MaxPooling1D": Alias("max_pool1d", "Keras", _CHANNELS_FIRST_1D),
    "MaxPool1D": Alias("max_pool1d", "Keras", _CHANNELS_FIRST_1D),
    "MaxPool1d": Alias("max_pool1d", "torch"),
    "AveragePooling1D": Alias("avg_pool1d", "Keras", _CHANNELS_FIRST_1D),
    "AvgPool1D": Alias("avg_pool1d", "Keras", _CHANNELS_FIRST_1D),
    "AvgPool1d": Alias("avg_pool1d", "torch"),
    # activation
    "ReLU": Alias("relu", "Keras and torch"),
    "LeakyReLU": Alias("leaky_relu", "Keras and torch", "negative_slope defaults to 0.01 (torch's), not Keras's 0.3"),
    "GELU": Alias("gelu", "torch"),
    "nn.gelu": Alias("gelu", "Flax", _TANH_GELU),
    "jax.nn.gelu": Alias("gelu", "JAX", _TANH_GELU),
    "Softmax": Alias("softmax", "Keras and torch"),
    "LogSoftmax": Alias("log_softmax", "torch"),
    "Tanh": Alias("tanh", "torch"),
    "Sigmoid": Alias("sigmoid", "torch"),
    "SiLU": Alias("silu", "torch"),
    "swish": Alias("silu", "Keras and Flax"),
    "ReLU6": Alias("relu6", "torch"),
    "Hardsigmoid": Alias("hardsigmoid", "torch"),
    "hard_sigmoid": Alias("hardsigmoid", "Keras 3 and Flax", "relu6(x + 3) / 6; Keras 2's was 0.2·x + 0.5"),
    "Hardswish": Alias("hardswish", "torch"),
    "hard_swish": Alias("hardswish", "Keras 3 and Flax"),
    "hard_silu": Alias("hardswish", "Keras 3 and Flax"),
    "ELU": Alias("elu", "Keras and torch"),
    "Softplus": Alias("softplus", "torch"),
    "PReLU": Alias("prelu", "Keras, Flax and torch", "one slope, or one per channel (num_parameters: C), "
                                                    "starting at 0.25 (torch's), not Flax's 0.01 or Keras's 0"),
    # reshape, dropout
    "Flatten": Alias("flatten", "Keras and torch", "it flattens [C, H, W] in torch's order"),
    "Reshape": Alias("reshape", "Keras", "shape is per example, as Keras's target_shape, read in torch's [C, H, W] "
                                         "order"),
    "Permute": Alias("permute", "Keras", "dims count the batch too, from 0 (torch.permute's): Keras's "
                                         "Permute((2, 1)) is permute: {dims: [0, 2, 1]}"),
    "Dropout": Alias("dropout", "Keras, Flax and torch", "its probability is p (Keras's and Flax's rate)"),
    "Dropout2d": Alias("dropout2d", "torch"),
    "SpatialDropout2D": Alias("dropout2d", "Keras", "its probability is p (Keras's rate); " + _CHANNELS_FIRST),
    # normalization
    "BatchNormalization": Alias("batch_norm2d", "Keras", _BN_MOMENTUM.format("Keras") + "; batch_norm1d for [N, C]"),
    "BatchNorm2d": Alias("batch_norm2d", "torch"),
    "BatchNorm1d": Alias("batch_norm1d", "torch"),
    "BatchNorm": Alias("batch_norm2d", "Flax", _BN_MOMENTUM.format("Flax") + "; batch_norm1d for [N, C]"),
    "LayerNormalization": Alias("layer_norm", "Keras", "eps defaults to 1e-5 (torch's), not Keras's 1e-3"),
    "LayerNorm": Alias("layer_norm", "torch and Flax", "eps defaults to 1e-5 (torch's), not Flax's 1e-6; "
                                                      "normalized_shape lists the trailing dims it normalizes"),
    "GroupNormalization": Alias("group_norm", "Keras", "eps defaults to 1e-5 (torch's), not Keras's 1e-3; "
                                                       "num_groups is required (Keras's groups defaults to 32)"),
    "GroupNorm": Alias("group_norm", "torch and Flax", "eps defaults to 1e-5 (torch's), not Flax's 1e-6; "
                                                      "num_groups is required (Flax's defaults to 32)"),
    "InstanceNorm2d": Alias("instance_norm2d", "torch"),
    "InstanceNorm": Alias("instance_norm2d", "Flax", "eps defaults to 1e-5 and affine to false (torch's), "
                                                    "not Flax's 1e-6 and learned scale and bias"),
    # not in dslc yet
    # merge
    "Add": Alias("add", "Keras", "inputs are named with inputs: [a, b]"),
    "Multiply": Alias("multiply", "Keras", "inputs are named with inputs: [a, b]"),
    "Concatenate": Alias("concat", "Keras", "dim counts the batched tensor's axes, channels first (dim: 1)"),
    "torch.cat": Alias("concat", "torch"),
    "Embedding": Alias("embedding", "Keras and torch"),
    "FeaturesEmbedding": Alias("field_embedding", "pytorch-fm", "one table of sum(vocab_sizes) rows with per-field "
                                                                "offsets, as pytorch-fm's"),
    "FeaturesLinear": Alias("bias", "pytorch-fm", "FeaturesLinear is bias: {vocab_sizes: [...]} (per-id scalars, "
                                                  "zeros) then sum: {dim: 1, keepdim: true} and add_bias"),
    "FactorizationMachine": Alias("fm_interaction", "pytorch-fm", "reduce: true (reduce_sum) gives [N, 1]"),
    "Dot": Alias("dot", "Keras", "it sums over the last axis and drops it ([N, D] with [N, D] gives [N]); Keras's "
                                 "[N, 1] is dot: {keepdim: true}; no normalize (cosine)"),
    "torch.sum": Alias("sum", "torch", "dim is required, counted on the batched tensor (never 0)"),
    "reduce_sum": Alias("sum", "TensorFlow", "dim (axis) is required, counted on the batched tensor (never 0)"),
    "torch.mean": Alias("mean", "torch", "dim is required, counted on the batched tensor (never 0)"),
    "reduce_mean": Alias("mean", "TensorFlow", "dim (axis) is required, counted on the batched tensor (never 0)"),
    "torch.squeeze": Alias("squeeze", "torch", "dim is required and must have size 1"),
    "Embed": Alias("embedding", "Flax", "initialized N(0, 1) as torch's, not Flax's std 1/sqrt(D)"),
    "GlobalAveragePooling1D": Alias("sequence_pool", "Keras", "it is sequence_pool: {mode: mean} over [N, T, E]; "
                                                              "a Keras mask (True = real step) is mask: keep"),
    "GlobalMaxPooling1D": Alias("sequence_pool", "Keras", "it is sequence_pool: {mode: max} over [N, T, E]"),
    "narrow": Alias("slice", "torch", "narrow(dim, start, length) is slice: {dim, start, end: start + length}"),
    "LSTM": Alias("lstm", "Keras and torch", _RECURRENT),
    "GRU": Alias("gru", "Keras and torch", _RECURRENT),
    "MultiHeadAttention": Alias("multi_head_attention", "Keras", "inputs are [query, key, value] (Keras's call "
                                "takes query, value, key); its weights are torch's packed in_proj_weight"),
    "MultiHeadDotProductAttention": Alias("multi_head_attention", "Flax", _PACKED_ATTENTION),
    "MultiheadAttention": Alias("multi_head_attention", "torch", "batch first; it returns the output only, without "
                                "the attention weights"),
    "dot_product_attention": Alias("scaled_dot_product_attention", "JAX and Flax", "q, k, v are [N, T, E]: heads: "
                                   "splits them; a padding mask is a 4th input with mask: keep or ignore"),
    "TransformerEncoderLayer": Alias("transformer_encoder_layer", "torch", "batch first"),
    "TransformerDecoderLayer": Alias("transformer_decoder_layer", "torch", "batch first"),
    "GlobalAveragePooling2D": Alias("adaptive_avg_pool2d", "Keras", _GLOBAL_POOL),
    "GlobalMaxPooling2D": Alias("adaptive_max_pool2d", "Keras", _GLOBAL_POOL),
    "AdaptiveAvgPool2d": Alias("adaptive_avg_pool2d", "torch"),
    "AdaptiveMaxPool2d": Alias("adaptive_max_pool2d", "torch"),
    "UpSampling2D": Alias("upsample", "Keras", "Keras's size is dslc's scale_factor; " + _CHANNELS_FIRST),
    "Upsample": Alias("upsample", "torch"),
    "interpolate": Alias("upsample", "torch"),
    "UpsamplingNearest2d": Alias("upsample", "torch", "it is upsample: {mode: nearest}"),
    "UpsamplingBilinear2d": Alias("upsample", "torch", "it is upsample: {mode: bilinear, align_corners: true}"),
    "jax.image.resize": Alias("upsample", "JAX", "nearest takes torch's source pixel, floor(dst / scale), not "
                                                 "resize's half-pixel one, and bilinear does not antialias"),
    "ZeroPadding2D": Alias("zero_pad2d", "Keras", "padding is [left, right, top, bottom] (torch's), "
                                                  "not Keras's ((top, bottom), (left, right))"),
    "ZeroPad2d": Alias("zero_pad2d", "torch"),
})

LOSS_NAMES: Mapping[str, Alias | Planned] = MappingProxyType({
    "categorical_crossentropy": Alias("cross_entropy", "Keras", _LOGITS_IDS),
    "CategoricalCrossentropy": Alias("cross_entropy", "Keras", _LOGITS_IDS),
    "sparse_categorical_crossentropy": Alias("cross_entropy", "Keras", "it takes logits (Keras's from_logits=True)"),
    "SparseCategoricalCrossentropy": Alias("cross_entropy", "Keras", "it takes logits (Keras's from_logits=True)"),
    "CrossEntropyLoss": Alias("cross_entropy", "torch"),
    "NLLLoss": Alias("cross_entropy", "torch", "it takes logits: drop the log_softmax before it"),
    "nll_loss": Alias("cross_entropy", "torch", "it takes logits: drop the log_softmax before it"),
    "softmax_cross_entropy": Alias("cross_entropy", "optax", "it takes class ids, not one-hot labels"),
    "softmax_cross_entropy_with_integer_labels": Alias("cross_entropy", "optax"),
    "mean_squared_error": Alias("mse", "Keras"),
    "MeanSquaredError": Alias("mse", "Keras"),
    "MSELoss": Alias("mse", "torch"),
    "mse_loss": Alias("mse", "torch"),
    "squared_error": Alias("mse", "optax", "mse is its mean over all values"),
    "l2_loss": Alias("mse", "optax", "optax's l2_loss is HALF the squared error, dslc's mse the full mean (torch's)"),
    "binary_crossentropy": Alias("bce_with_logits", "Keras", _FROM_LOGITS),
    "BinaryCrossentropy": Alias("bce_with_logits", "Keras", _FROM_LOGITS),
    "BCEWithLogitsLoss": Alias("bce_with_logits", "torch"),
    "binary_cross_entropy_with_logits": Alias("bce_with_logits", "torch"),
    "sigmoid_binary_cross_entropy": Alias("bce_with_logits", "optax"),
    "BCELoss": Alias("bce_with_logits", "torch", _NO_SIGMOID),
    "binary_cross_entropy": Alias("bce_with_logits", "torch", _NO_SIGMOID),
    "CTCLoss": Alias("ctc", "torch", "it takes batch-first logits [N, T, C] and applies log_softmax itself"),
    "ctc_loss": Alias("ctc", "torch and optax", "it takes batch-first logits [N, T, C], as optax's does"),
    "CTC": Alias("ctc", "Keras"),
})

OPTIMIZER_NAMES: Mapping[str, Alias | Planned] = MappingProxyType({
    "SGD": Alias("sgd", "Keras and torch"),
    "Adam": Alias("adam", "Keras and torch"),
    "AdamW": Alias("adamw", "Keras and torch", "weight_decay defaults to 0.01 (torch's; Keras's is 0.004)"),
    "optax.adamw": Alias("adamw", "optax", "weight_decay defaults to 0.01 (torch's), not optax's 1e-4"),
    "SparseAdam": Alias("sparse_adam", "torch", "it pairs SparseAdam on the sparse embeddings with Adam on the rest"),
    "RMSprop": Planned("rmsprop", "Keras, torch and optax"),
    "Adagrad": Planned("adagrad", "Keras, torch and optax"),
})

SCHEDULE_NAMES: Mapping[str, Alias | Planned] = MappingProxyType({
    "StepLR": Alias("step", "torch"),
    "MultiStepLR": Alias("multistep", "torch"),
    "ExponentialLR": Alias("exponential", "torch"),
    "exponential_decay": Alias("exponential", "optax", "torch's ExponentialLR: gamma per interval, no staircase "
                                                       "(step: {step_size: N} is the staircase)"),
    "CosineAnnealingLR": Alias("cosine", "torch"),
    "cosine_decay_schedule": Alias("cosine", "optax", "T_max intervals from the optimizer's lr to eta_min (optax's "
                                                      "alpha times lr)"),
    "OneCycleLR": Alias("one_cycle", "torch"),
    "cosine_onecycle_schedule": Alias("one_cycle", "optax", "torch's OneCycleLR, whose steps differ from optax's "
                                                            "by one"),
    "ReduceLROnPlateau": Planned("reduce_on_plateau", "Keras and torch"),
    "CosineAnnealingWarmRestarts": Planned("cosine_restarts", "torch"),
    "PolynomialLR": Planned("polynomial", "torch"),
})

DATASET_NAMES: Mapping[str, Alias | Planned] = MappingProxyType({
    "MNIST": Alias("mnist", "torchvision"),
    "FashionMNIST": Alias("fashion_mnist", "torchvision"),
    "fashion-mnist": Alias("fashion_mnist", ""),
    "load_digits": Alias("digits", "scikit-learn"),
    "CIFAR10": Alias("cifar10", "torchvision"),
    "cifar-10": Alias("cifar10", "TensorFlow Datasets"),
    "ImageFolder": Alias("image_folder", "torchvision"),
    "image_dataset_from_directory": Alias("image_folder", "Keras"),
    "AG_NEWS": Alias("ag_news", "torchtext"),
})

AUGMENTATION_NAMES: Mapping[str, Alias | Planned] = MappingProxyType({
    "RandomCrop": Alias("random_crop", "torchvision"),
    "RandomHorizontalFlip": Alias("horizontal_flip", "torchvision"),
    "RandomFlip": Alias("horizontal_flip", "Keras", "it is RandomFlip('horizontal'); dslc has no vertical flip"),
    "random_flip_left_right": Alias("horizontal_flip", "TensorFlow"),
})

METRIC_NAMES: Mapping[str, Alias | Planned] = MappingProxyType({
    "acc": Alias("accuracy", "Keras"),
    "Accuracy": Alias("accuracy", "Keras and torchmetrics"),
    "sparse_categorical_accuracy": Alias("accuracy", "Keras"),
    "SparseCategoricalAccuracy": Alias("accuracy", "Keras"),
    "categorical_accuracy": Alias("accuracy", "Keras", "it compares the argmax with class ids, not one-hot labels"),
    "CategoricalAccuracy": Alias("accuracy", "Keras", "it compares the argmax with class ids, not one-hot labels"),
    "AUC": Alias("auc", "Keras and torchmetrics"),
    "AUROC": Alias("auc", "torchmetrics"),
    "roc_auc_score": Alias("auc", "scikit-learn"),
    "RootMeanSquaredError": Alias("rmse", "Keras"),
    "MeanAbsoluteError": Alias("mae", "Keras and torchmetrics"),
    "mean_absolute_error": Alias("mae", "Keras and scikit-learn"),
    "log_loss": Alias("logloss", "scikit-learn"),
    "Perplexity": Alias("perplexity", "torchmetrics and Keras-NLP"),
})

OBJECTIVE_NAMES: Mapping[str, Alias | Planned] = MappingProxyType({
    "autoencoder": Alias("reconstruction", ""),
    "dcgan": Alias("gan", "", "the DCGAN paper's non-saturating loss"),
    "classification": Alias("supervised", ""),
})

_TORCH_INIT = "torch.nn.init's in-place names end in _; dslc's drop it"
_KERAS_TRUNCATED = "Keras's draws a truncated normal; dslc's is torch's, untruncated"

INITIALIZER_NAMES: Mapping[str, Alias | Planned] = MappingProxyType({
    **{f"{name}_": Alias(name, "torch", _TORCH_INIT) for name in INITIALIZERS},
    "he_normal": Alias("kaiming_normal", "Keras", _KERAS_TRUNCATED),
    "HeNormal": Alias("kaiming_normal", "Keras", _KERAS_TRUNCATED),
    "he_uniform": Alias("kaiming_uniform", "Keras"),
    "HeUniform": Alias("kaiming_uniform", "Keras"),
    "glorot_uniform": Alias("xavier_uniform", "Keras and Flax"),
    "GlorotUniform": Alias("xavier_uniform", "Keras"),
    "glorot_normal": Alias("xavier_normal", "Keras and Flax", _KERAS_TRUNCATED),
    "GlorotNormal": Alias("xavier_normal", "Keras", _KERAS_TRUNCATED),
    "lecun_normal": Alias("kaiming_normal", "Keras and Flax", "it is kaiming_normal: {nonlinearity: linear}, "
                                                              "untruncated"),
    "random_normal": Alias("normal", "Keras", "Keras's stddev is dslc's std (Keras's default 0.05, dslc's 1)"),
    "RandomNormal": Alias("normal", "Keras", "Keras's stddev is dslc's std (Keras's default 0.05, dslc's 1)"),
    "random_uniform": Alias("uniform", "Keras", "Keras's minval and maxval are dslc's a and b"),
    "RandomUniform": Alias("uniform", "Keras", "Keras's minval and maxval are dslc's a and b"),
    "truncated_normal": Alias("trunc_normal", "Keras", "dslc's a and b are values, not multiples of std"),
    "TruncatedNormal": Alias("trunc_normal", "Keras", "dslc's a and b are values, not multiples of std"),
    "Zeros": Alias("zeros", "Keras"),
    "Ones": Alias("ones", "Keras"),
    "Constant": Alias("constant", "Keras"),
    "Orthogonal": Alias("orthogonal", "Keras"),
})

PREFIXES = (
    "torch.nn.init.", "nn.init.", "keras.initializers.", "jax.nn.initializers.", "initializers.",
    "torch.nn.functional.", "torch.nn.", "torch.optim.lr_scheduler.", "torch.optim.", "torchvision.datasets.",
    "torchvision.transforms.", "torchmetrics.",
    "tf.keras.layers.", "tf.keras.", "keras.layers.", "keras.losses.", "keras.optimizers.", "keras.metrics.",
    "keras.datasets.", "keras.", "flax.linen.", "flax.nnx.", "nnx.", "jax.nn.", "optax.", "sklearn.datasets.",
    "lr_scheduler.", "optim.", "layers.", "losses.", "optimizers.", "metrics.", "datasets.", "nn.", "F.",
)
"""Module paths stripped before a lookup, the more specific first: ``torch.nn.Linear`` is looked up as ``Linear``."""

CATALOGS: Mapping[str, Mapping | tuple] = MappingProxyType({
    "op": OPS, "loss": LOSSES, "optimizer": OPTIMIZERS, "dataset": DATASETS, "metric": METRICS,
    "objective": OBJECTIVES, "augmentation": AUGMENTATIONS, "initializer": INITIALIZERS, "schedule": SCHEDULES,
})
TABLES: Mapping[str, Mapping[str, Alias | Planned]] = MappingProxyType({
    "op": OP_NAMES, "loss": LOSS_NAMES, "optimizer": OPTIMIZER_NAMES, "dataset": DATASET_NAMES,
    "metric": METRIC_NAMES, "objective": OBJECTIVE_NAMES, "augmentation": AUGMENTATION_NAMES,
    "initializer": INITIALIZER_NAMES, "schedule": SCHEDULE_NAMES,
})
PLURALS = MappingProxyType({"op": "ops", "loss": "losses", "optimizer": "optimizers", "dataset": "datasets",
                            "metric": "metrics", "objective": "objectives", "augmentation": "augmentations",
                            "initializer": "initializers", "schedule": "schedules"})


def _fold(table: Mapping[str, Alias | Planned]) -> MappingProxyType:
    """The table keyed by lower case; two spellings that differ only in case must mean the same name."""
    folded: dict[str, Alias | Planned] = {}
    for key, entry in table.items():
        if folded.setdefault(key.lower(), entry).name != entry.name:
            raise ValueError(f"'{key}' and another spelling of it map to different names")
    return MappingProxyType(folded)


_FOLDED = MappingProxyType({kind: _fold(table) for kind, table in TABLES.items()})


def unknown_name(kind: str, name: object) -> str:
    """The one-line error for a ``kind`` ('op', 'loss', ...) named ``name`` that dslc does not have.

    ``unknown op 'Dense': that is the Keras and Flax name; dslc's is 'linear' (linear: {out_features: N});
    valid ops: linear: linear, identity, add_bias; conv: conv2d; ...``
    """
    if not isinstance(name, str):
        article = "an" if kind[0] in "aeiou" else "a"
        return f"{article} {kind} is a name, not {_preview(name)}; valid {PLURALS[kind]}: {valid_names(kind)}"
    return f"unknown {kind} '{name}'{suggestion(kind, name)}; valid {PLURALS[kind]}: {valid_names(kind)}"


def valid_names(kind: str) -> str:
    """The valid names of ``kind``: ops by category (``linear: linear, identity, add_bias; conv: conv2d; ...``)."""
    if kind == "op":
        return "; ".join(f"{group}: {', '.join(names)}" for group, names in OP_GROUPS.items())
    return ", ".join(CATALOGS[kind])


def suggestion(kind: str, name: str) -> str:
    """What to write instead of ``name``, as a message suffix ('' when nothing fits).

    Order: the tables as written, then without a prefix; dslc's own names ignoring case; the
    tables ignoring case; last a close spelling of one of dslc's names.
    """
    names, table, bare = CATALOGS[kind], TABLES[kind], strip_prefix(name)
    entry = table.get(name) or table.get(bare)
    if entry is None:
        lowered = {n.lower(): n for n in names}
        if bare.lower() in lowered:
            return f"; did you mean '{lowered[bare.lower()]}'?"
        entry = _FOLDED[kind].get(bare.lower())
    if entry is None:
        return did_you_mean(bare, names)
    return _describe(kind, entry)


def strip_prefix(name: str) -> str:
    """``torch.nn.Linear`` -> ``Linear``; ``keras.layers.Dense`` -> ``Dense``; other names unchanged."""
    for prefix in PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return strip_prefix(name[len(prefix):])
    return name


def _describe(kind: str, entry: Alias | Planned) -> str:
    if isinstance(entry, Planned):
        where = f" (planned in {entry.where})" if entry.where else ""
        return f": that is the {entry.by} name for {entry.name}, not supported yet{where}"
    if entry.by:
        head = f": that is the {entry.by} name; dslc's is '{entry.name}'"
    else:
        head = f"; did you mean '{entry.name}'?"
    return head + _usage(kind, entry.name) + (f"; {entry.note}" if entry.note else "")


def _usage(kind: str, name: str) -> str:
    """`` (linear: {out_features: N})`` for an op with required arguments, else ''."""
    if kind != "op":
        return ""
    required = [key for key, field in OPS[name].params.model_fields.items() if field.is_required()]
    return f" ({name}: {{{', '.join(f'{key}: N' for key in required)}}})" if required else ""


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
