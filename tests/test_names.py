"""Names from Keras, Flax and torch lead to dslc's, and every unknown name lists the valid ones.

Each case goes through ``dsl.loads`` of a small spec with the name in one place (a layer, the
loss, the optimizer, the dataset or a metric) and checks the whole one-line message: where it
points, the exact suggestion, and the list of valid names it ends with.
"""

from __future__ import annotations

import json

import pytest

import dsl
from backends.data import load_dataset
from dsl.names import CATALOGS, CORE, PLURALS, RUN, SEQUENCE, TABLES, VISION, Alias, Planned, suggestion, unknown_name
from dsl.ops import OP_GROUPS
from dsl.schema import json_schema

SPEC = """\
name: t
input: {shape: [1, 8, 8]}
model:
  - flatten
  - linear: {out_features: 10, init: {bias: zeros}}
data: {dataset: digits, augment: [horizontal_flip]}
train: {loss: cross_entropy, optimizer: adam, metrics: [accuracy], objective: supervised, schedule: cosine}
"""

# Where each kind's name sits in SPEC, as (line, text replaced).
PLACES = {
    "op": (4, "flatten"),
    "loss": (7, "cross_entropy"),
    "optimizer": (7, "adam"),
    "dataset": (6, "digits"),
    "metric": (7, "accuracy"),
    "objective": (7, "supervised"),
    "augmentation": (6, "horizontal_flip"),
    "initializer": (5, "zeros"),
    "schedule": (7, "cosine"),
}

LINEAR = ": that is the Keras and Flax name; dslc's is 'linear' (linear: {out_features: N})"
CONV = " (conv2d: {out_channels: N, kernel_size: N})"
CHANNELS_FIRST = "; dslc is channels first (torch's order): input.shape is [C, H, W]"
CHANNELS_FIRST_1D = "; dslc is channels first (torch's order): input.shape is [C, L]"
CONV_T = " (conv_transpose2d: {out_channels: N, kernel_size: N})"
CONV_1D = " (conv1d: {out_channels: N, kernel_size: N})"
TORCH_NAME = ": that is the torch name; dslc's is "
ADAPTIVE_AVG = " (adaptive_avg_pool2d: {output_size: N})"

# (kind, the name a user brings, what the message says right after the quoted name)
CASES = [
    # ops: Keras, Flax (nn. / flax.linen.) and torch (nn. / torch.nn. / F.)
    ("op", "Dense", LINEAR),
    ("op", "dense", LINEAR),
    ("op", "nn.Dense", LINEAR),
    ("op", "keras.layers.Dense", LINEAR),
    ("op", "nn.Linear", ": that is the torch and Flax nnx name; dslc's is 'linear' (linear: {out_features: N})"),
    ("op", "torch.nn.Linear", ": that is the torch and Flax nnx name; dslc's is 'linear' (linear: {out_features: N})"),
    ("op", "Conv2D", ": that is the Keras name; dslc's is 'conv2d'" + CONV + CHANNELS_FIRST),
    ("op", "nn.Conv2d", ": that is the torch name; dslc's is 'conv2d'" + CONV),
    ("op", "nn.Conv", ": that is the Flax name; dslc's is 'conv2d'" + CONV + CHANNELS_FIRST),
    ("op", "layers.MaxPooling2D",
     ": that is the Keras name; dslc's is 'max_pool2d' (max_pool2d: {kernel_size: N})" + CHANNELS_FIRST),
    ("op", "nn.MaxPool2d", ": that is the torch name; dslc's is 'max_pool2d' (max_pool2d: {kernel_size: N})"),
    ("op", "nn.max_pool", ": that is the Flax name; dslc's is 'max_pool2d' (max_pool2d: {kernel_size: N}); "
                          "stride defaults to kernel_size (torch's default), not Flax's 1"),
    ("op", "AveragePooling2D",
     ": that is the Keras name; dslc's is 'avg_pool2d' (avg_pool2d: {kernel_size: N})" + CHANNELS_FIRST),
    ("op", "nn.AvgPool2d", ": that is the torch name; dslc's is 'avg_pool2d' (avg_pool2d: {kernel_size: N})"),
    ("op", "flax.linen.avg_pool", ": that is the Flax name; dslc's is 'avg_pool2d' (avg_pool2d: {kernel_size: N}); "
                                  "stride defaults to kernel_size (torch's default), not Flax's 1"),
    ("op", "Flatten", ": that is the Keras and torch name; dslc's is 'flatten'; "
                      "it flattens [C, H, W] in torch's order"),
    ("op", "nn.Dropout", ": that is the Keras, Flax and torch name; dslc's is 'dropout'; "
                         "its probability is p (Keras's and Flax's rate)"),
    ("op", "nn.ReLU", ": that is the Keras and torch name; dslc's is 'relu'"),
    ("op", "LeakyReLU", ": that is the Keras and torch name; dslc's is 'leaky_relu'; "
                        "negative_slope defaults to 0.01 (torch's), not Keras's 0.3"),
    ("op", "nn.GELU", ": that is the torch name; dslc's is 'gelu'"),
    ("op", "nn.gelu", ": that is the Flax name; dslc's is 'gelu'; "
                      "dslc's gelu is exact (erf) unless gelu: {approximate: tanh}, which is jax.nn.gelu's default"),
    ("op", "Softmax", ": that is the Keras and torch name; dslc's is 'softmax'"),
    ("op", "nn.LogSoftmax", ": that is the torch name; dslc's is 'log_softmax'"),
    ("op", "nn.Tanh", ": that is the torch name; dslc's is 'tanh'"),
    ("op", "Sigmoid", ": that is the torch name; dslc's is 'sigmoid'"),
    ("op", "nn.SiLU", ": that is the torch name; dslc's is 'silu'"),
    ("op", "swish", ": that is the Keras and Flax name; dslc's is 'silu'"),
    ("op", "nn.ReLU6", ": that is the torch name; dslc's is 'relu6'"),
    ("op", "nn.Hardswish", ": that is the torch name; dslc's is 'hardswish'"),
    ("op", "jax.nn.hard_swish", ": that is the Keras 3 and Flax name; dslc's is 'hardswish'"),
    ("op", "nn.hard_sigmoid", ": that is the Keras 3 and Flax name; dslc's is 'hardsigmoid'; "
                              "relu6(x + 3) / 6; Keras 2's was 0.2·x + 0.5"),
    ("op", "ELU", ": that is the Keras and torch name; dslc's is 'elu'"),
    ("op", "nn.Softplus", ": that is the torch name; dslc's is 'softplus'"),
    ("op", "nn.softplus", "; did you mean 'softplus'?"),
    ("op", "layers.Reshape", ": that is the Keras name; dslc's is 'reshape' (reshape: {shape: N}); shape is per "
                             "example, as Keras's target_shape, read in torch's [C, H, W] order"),
    ("op", "keras.layers.Permute", ": that is the Keras name; dslc's is 'permute' (permute: {dims: N}); dims count "
                                   "the batch too, from 0 (torch.permute's): Keras's Permute((2, 1)) is "
                                   "permute: {dims: [0, 2, 1]}"),
    ("op", "nn.Identity", ": that is the Keras and torch name; dslc's is 'identity'"),
    ("op", "F.relu", "; did you mean 'relu'?"),
    ("op", "jax.nn.sigmoid", "; did you mean 'sigmoid'?"),
    ("op", "RELU", "; did you mean 'relu'?"),
    ("op", "rleu", "; did you mean 'relu'?"),
    # ops that are planned
    ("op", "BatchNormalization", ": that is the Keras name; dslc's is 'batch_norm2d'; momentum is the new batch's "
                                 "weight, as in torch (default 0.1): Keras's momentum m is dslc's 1 - m; "
                                 "batch_norm1d for [N, C]"),
    ("op", "nn.BatchNorm2d", ": that is the torch name; dslc's is 'batch_norm2d'"),
    ("op", "torch.nn.BatchNorm1d", ": that is the torch name; dslc's is 'batch_norm1d'"),
    ("op", "nn.BatchNorm", ": that is the Flax name; dslc's is 'batch_norm2d'; momentum is the new batch's weight, "
                           "as in torch (default 0.1): Flax's momentum m is dslc's 1 - m; batch_norm1d for [N, C]"),
    ("op", "nn.Embed", ": that is the Flax name; dslc's is 'embedding' (embedding: {num_embeddings: N, "
                       "embedding_dim: N}); initialized N(0, 1) as torch's, not Flax's std 1/sqrt(D)"),
    ("op", "Embedding", ": that is the Keras and torch name; dslc's is 'embedding' (embedding: {num_embeddings: N, "
                        "embedding_dim: N})"),
    ("op", "nn.LSTM", ": that is the Keras and torch name; dslc's is 'lstm' (lstm: {hidden_size: N}); torch's: "
                      "hidden_size (Keras's units), batch first, gives output [N, T, D*H] and the final states "
                      "[N, D*num_layers, H] as name[h_n] (whatever Keras's return_sequences says)"),
    ("op", "nn.MultiheadAttention", ": that is the torch name; dslc's is 'multi_head_attention' (multi_head_attention: "
                                    "{num_heads: N}); batch first; it "
                                    "returns the output only, without the attention weights"),
    ("op", "GRU", ": that is the Keras and torch name; dslc's is 'gru' (gru: {hidden_size: N}); torch's: hidden_size "
                  "(Keras's units), batch first, gives output [N, T, D*H] and the final states [N, D*num_layers, H] "
                  "as name[h_n] (whatever Keras's return_sequences says)"),
    ("op", "MultiHeadAttention", ": that is the Keras name; dslc's is 'multi_head_attention' (multi_head_attention: "
                                 "{num_heads: N}); inputs are [query, "
                                 "key, value] (Keras's call takes query, value, key); its weights are torch's "
                                 "packed in_proj_weight"),
    ("op", "nn.LayerNorm", ": that is the torch and Flax name; dslc's is 'layer_norm'; eps defaults to 1e-5 "
                           "(torch's), not Flax's 1e-6; normalized_shape lists the trailing dims it normalizes"),
    ("op", "LayerNormalization", ": that is the Keras name; dslc's is 'layer_norm'; "
                                 "eps defaults to 1e-5 (torch's), not Keras's 1e-3"),
    ("op", "nn.GroupNorm", ": that is the torch and Flax name; dslc's is 'group_norm' (group_norm: {num_groups: N}); "
                           "eps defaults to 1e-5 (torch's), not Flax's 1e-6; num_groups is required "
                           "(Flax's defaults to 32)"),
    ("op", "nn.InstanceNorm2d", ": that is the torch name; dslc's is 'instance_norm2d'"),
    ("op", "SpatialDropout2D", ": that is the Keras name; dslc's is 'dropout2d'; its probability is p "
                               "(Keras's rate); dslc is channels first (torch's order): input.shape is [C, H, W]"),
    ("op", "nn.PReLU", ": that is the Keras, Flax and torch name; dslc's is 'prelu'; one slope, or one per channel "
                       "(num_parameters: C), starting at 0.25 (torch's), not Flax's 0.01 or Keras's 0"),
    ("op", "nn.TransformerEncoderLayer", ": that is the torch name; dslc's is 'transformer_encoder_layer' "
                                         "(transformer_encoder_layer: {nhead: N}); batch first"),
    ("op", "Conv2DTranspose", ": that is the Keras name; dslc's is 'conv_transpose2d'" + CONV_T + CHANNELS_FIRST),
    ("op", "nn.ConvTranspose2d", ": that is the torch name; dslc's is 'conv_transpose2d'" + CONV_T),
    ("op", "nn.ConvTranspose", ": that is the Flax name; dslc's is 'conv_transpose2d'" + CONV_T + CHANNELS_FIRST
                               + "; weight is torch's (in, out, kH, kW), the kernel flipped"),
    ("op", "layers.Conv1D", ": that is the Keras name; dslc's is 'conv1d'" + CONV_1D + CHANNELS_FIRST_1D),
    ("op", "torch.nn.Conv1d", ": that is the torch name; dslc's is 'conv1d'" + CONV_1D),
    ("op", "nn.MaxPool1d", ": that is the torch name; dslc's is 'max_pool1d' (max_pool1d: {kernel_size: N})"),
    ("op", "AveragePooling1D",
     ": that is the Keras name; dslc's is 'avg_pool1d' (avg_pool1d: {kernel_size: N})" + CHANNELS_FIRST_1D),
    ("op", "GlobalAveragePooling2D", TORCH_NAME.replace("torch", "Keras") + "'adaptive_avg_pool2d'" + ADAPTIVE_AVG
     + "; use output_size: 1; the output is [N, C, 1, 1] (torch's), not [N, C]: add a flatten after it"),
    ("op", "nn.AdaptiveAvgPool2d", TORCH_NAME + "'adaptive_avg_pool2d'" + ADAPTIVE_AVG),
    ("op", "nn.AdaptiveMaxPool2d", TORCH_NAME + "'adaptive_max_pool2d'" + ADAPTIVE_AVG.replace("avg", "max")),
    ("op", "nn.Upsample", TORCH_NAME + "'upsample'"),
    ("op", "F.interpolate", TORCH_NAME + "'upsample'"),
    ("op", "nn.UpsamplingBilinear2d", TORCH_NAME + "'upsample'; it is upsample: {mode: bilinear, align_corners: true}"),
    ("op", "UpSampling2D", ": that is the Keras name; dslc's is 'upsample'; Keras's size is dslc's scale_factor"
                           + CHANNELS_FIRST),
    ("op", "jax.image.resize", ": that is the JAX name; dslc's is 'upsample'; nearest takes torch's source pixel, "
                               "floor(dst / scale), not resize's half-pixel one, and bilinear does not antialias"),
    ("op", "layers.ZeroPadding2D", ": that is the Keras name; dslc's is 'zero_pad2d' (zero_pad2d: {padding: N}); "
                                   "padding is [left, right, top, bottom] (torch's), not Keras's "
                                   "((top, bottom), (left, right))"),
    # losses
    ("loss", "categorical_crossentropy", ": that is the Keras name; dslc's is 'cross_entropy'; "
                                         "it takes logits and class ids, as torch does, not probabilities and one-hot "
                                         "labels"),
    ("loss", "sparse_categorical_crossentropy", ": that is the Keras name; dslc's is 'cross_entropy'; "
                                                "it takes logits (Keras's from_logits=True)"),
    ("loss", "nn.CrossEntropyLoss", ": that is the torch name; dslc's is 'cross_entropy'"),
    ("loss", "optax.softmax_cross_entropy", ": that is the optax name; dslc's is 'cross_entropy'; "
                                            "it takes class ids, not one-hot labels"),
    ("loss", "softmax_cross_entropy_with_integer_labels", ": that is the optax name; dslc's is 'cross_entropy'"),
    ("loss", "F.cross_entropy", "; did you mean 'cross_entropy'?"),
    ("loss", "mean_squared_error", ": that is the Keras name; dslc's is 'mse'"),
    ("loss", "nn.MSELoss", ": that is the torch name; dslc's is 'mse'"),
    ("loss", "F.mse_loss", ": that is the torch name; dslc's is 'mse'"),
    ("loss", "optax.l2_loss", ": that is the optax name; dslc's is 'mse'; "
                              "optax's l2_loss is HALF the squared error, dslc's mse the full mean (torch's)"),
    ("loss", "binary_crossentropy", ": that is the Keras name; dslc's is 'bce_with_logits'; "
                                    "it takes logits (Keras's from_logits=True): put no sigmoid before it"),
    ("loss", "nn.BCEWithLogitsLoss", ": that is the torch name; dslc's is 'bce_with_logits'"),
    ("loss", "optax.sigmoid_binary_cross_entropy", ": that is the optax name; dslc's is 'bce_with_logits'"),
    ("loss", "nn.BCELoss", ": that is the torch name; dslc's is 'bce_with_logits'; "
                           "it takes logits: put no sigmoid before it"),
    # optimizers
    ("optimizer", "Adam", ": that is the Keras and torch name; dslc's is 'adam'"),
    ("optimizer", "torch.optim.Adam", ": that is the Keras and torch name; dslc's is 'adam'"),
    ("optimizer", "optax.adam", "; did you mean 'adam'?"),
    ("optimizer", "optim.SGD", ": that is the Keras and torch name; dslc's is 'sgd'"),
    ("optimizer", "keras.optimizers.AdamW", ": that is the Keras and torch name; dslc's is 'adamw'; "
                                            "weight_decay defaults to 0.01 (torch's; Keras's is 0.004)"),
    ("optimizer", "optax.adamw", ": that is the optax name; dslc's is 'adamw'; "
                                 "weight_decay defaults to 0.01 (torch's), not optax's 1e-4"),
    ("optimizer", "RMSprop", ": that is the Keras, torch and optax name for rmsprop, not supported yet"),
    ("optimizer", "optax.rmsprop", ": that is the Keras, torch and optax name for rmsprop, not supported yet"),
    ("optimizer", "adagrad", ": that is the Keras, torch and optax name for adagrad, not supported yet"),
    ("optimizer", "torch.optim.Adagrad", ": that is the Keras, torch and optax name for adagrad, not supported yet"),
    ("optimizer", "optax.adagrad", ": that is the Keras, torch and optax name for adagrad, not supported yet"),
    # datasets
    ("dataset", "MNIST", ": that is the torchvision name; dslc's is 'mnist'"),
    ("dataset", "torchvision.datasets.FashionMNIST", ": that is the torchvision name; dslc's is 'fashion_mnist'"),
    ("dataset", "fashion-mnist", "; did you mean 'fashion_mnist'?"),
    ("dataset", "load_digits", ": that is the scikit-learn name; dslc's is 'digits'"),
    ("dataset", "CIFAR10", ": that is the torchvision name; dslc's is 'cifar10'"),
    ("dataset", "ImageFolder", ": that is the torchvision name; dslc's is 'image_folder'"),
    # augmentations
    ("augmentation", "torchvision.transforms.RandomCrop", ": that is the torchvision name; dslc's is 'random_crop'"),
    ("augmentation", "RandomFlip", ": that is the Keras name; dslc's is 'horizontal_flip'; it is "
                                   "RandomFlip('horizontal'); dslc has no vertical flip"),
    # initializers
    ("initializer", "torch.nn.init.kaiming_normal_", ": that is the torch name; dslc's is 'kaiming_normal'; "
                                                     "torch.nn.init's in-place names end in _; dslc's drop it"),
    ("initializer", "he_normal", ": that is the Keras name; dslc's is 'kaiming_normal'; Keras's draws a truncated "
                                 "normal; dslc's is torch's, untruncated"),
    ("initializer", "keras.initializers.GlorotUniform", ": that is the Keras name; dslc's is 'xavier_uniform'"),
    ("initializer", "Normal", "; did you mean 'normal'?"),
    ("initializer", "kaiming_norm", "; did you mean 'kaiming_normal'?"),
    # metrics
    ("metric", "acc", ": that is the Keras name; dslc's is 'accuracy'"),
    ("metric", "Accuracy", ": that is the Keras and torchmetrics name; dslc's is 'accuracy'"),
    ("metric", "sparse_categorical_accuracy", ": that is the Keras name; dslc's is 'accuracy'"),
    ("metric", "categorical_accuracy", ": that is the Keras name; dslc's is 'accuracy'; "
                                       "it compares the argmax with class ids, not one-hot labels"),
    ("metric", "AUC", ": that is the Keras and torchmetrics name; dslc's is 'auc'"),
    ("metric", "roc_auc_score", ": that is the scikit-learn name; dslc's is 'auc'"),
    ("metric", "RootMeanSquaredError", ": that is the Keras name; dslc's is 'rmse'"),
    ("metric", "log_loss", ": that is the scikit-learn name; dslc's is 'logloss'"),
    ("objective", "autoencoder", "; did you mean 'reconstruction'?"),
    ("objective", "dcgan", "; did you mean 'gan'?; the DCGAN paper's non-saturating loss"),
    ("objective", "classification", "; did you mean 'supervised'?"),
    # schedules: torch.optim.lr_scheduler's and optax's names
    ("schedule", "CosineAnnealingLR", TORCH_NAME + "'cosine'"),
    ("schedule", "torch.optim.lr_scheduler.OneCycleLR", TORCH_NAME + "'one_cycle'"),
    ("schedule", "lr_scheduler.StepLR", TORCH_NAME + "'step'"),
    ("schedule", "MultiStepLR", TORCH_NAME + "'multistep'"),
    ("schedule", "ExponentialLR", TORCH_NAME + "'exponential'"),
    ("schedule", "optax.exponential_decay", ": that is the optax name; dslc's is 'exponential'; torch's ExponentialLR: "
                                            "gamma per interval, no staircase (step: {step_size: N} is the staircase)"),
    ("schedule", "cosine_decay_schedule", ": that is the optax name; dslc's is 'cosine'; T_max intervals from the "
                                          "optimizer's lr to eta_min (optax's alpha times lr)"),
    ("schedule", "cosine_onecycle_schedule", ": that is the optax name; dslc's is 'one_cycle'; torch's OneCycleLR, "
                                             "whose steps differ from optax's by one"),
    ("schedule", "ReduceLROnPlateau", ": that is the Keras and torch name for reduce_on_plateau, not supported yet"),
    ("schedule", "CosineAnnealingWarmRestarts", ": that is the torch name for cosine_restarts, not supported yet"),
    ("schedule", "PolynomialLR", ": that is the torch name for polynomial, not supported yet"),
    ("schedule", "cosin", "; did you mean 'cosine'?"),
]


def spec_with(kind: str, name: str) -> tuple[str, int, int]:
    """SPEC with ``name`` (quoted) where ``kind``'s name goes, and the 1-based line:col of the quote."""
    line, old = PLACES[kind]
    lines = SPEC.splitlines(keepends=True)
    quoted = json.dumps(name)
    col = lines[line - 1].index(old) + 1
    lines[line - 1] = lines[line - 1].replace(old, quoted, 1)
    return "".join(lines), line, col


def error_for(text: str) -> dsl.SpecError:
    with pytest.raises(dsl.SpecError) as info:
        dsl.loads(text)
    return info.value


def valid_list(kind: str) -> str:
    if kind == "op":
        return "; ".join(f"{group}: {', '.join(names)}" for group, names in OP_GROUPS.items())
    return ", ".join(CATALOGS[kind])


@pytest.mark.parametrize("kind, name, hint", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_foreign_name_gets_dslcs_name_in_one_located_line(kind, name, hint):
    text, line, col = spec_with(kind, name)
    err = error_for(text)
    expected = f"unknown {kind} '{name}'{hint}; valid {PLURALS[kind]}: {valid_list(kind)}"
    assert str(err) == f"<string>:{line}:{col}: {expected}"
    assert "\n" not in str(err)


def test_enough_cases_from_every_kind_and_every_table_entry_reached():
    assert len(CASES) >= 20
    assert {kind for kind, _, _ in CASES} == set(TABLES)
    planned = {entry.name for table in TABLES.values() for entry in table.values() if isinstance(entry, Planned)}
    assert planned == {hint.split(" name for ")[1].split(",")[0] for _, _, hint in CASES if "not supported yet" in hint}


def test_the_cli_dataset_flag_gets_the_same_message():
    spec, graph = dsl.loads(SPEC.replace("data: {dataset: digits, augment: [horizontal_flip]}\n", ""))
    for name in ("FashionMNIST", "MNIST", "CIFAR10", "mnsit"):
        with pytest.raises(dsl.DataError) as info:
            load_dataset(spec, graph, name=name)
        assert str(info.value) == unknown_name("dataset", name)
    assert str(info.value) == ("unknown dataset 'mnsit'; did you mean 'mnist'?; "
                               "valid datasets: digits, mnist, fashion_mnist, cifar10, shapes, glyphs, synthetic, npy, "
                               "npz, image_folder, planted_tokens, reverse, synthetic_speech, text_classification, "
                               "ag_news, parallel_text, planted_ratings, planted_clicks, movielens, criteo")


@pytest.mark.parametrize("kind", list(TABLES))
def test_a_name_with_no_hint_still_lists_every_valid_name(kind):
    text, _, _ = spec_with(kind, "zzz_nothing_like_it")
    message = error_for(text).message
    assert message == f"unknown {kind} 'zzz_nothing_like_it'; valid {PLURALS[kind]}: {valid_list(kind)}"
    assert all(f" {name}" in message for name in CATALOGS[kind])


def test_ops_are_listed_by_category_and_every_op_once():
    assert [name for names in OP_GROUPS.values() for name in names] == list(dsl.OPS)
    assert list(OP_GROUPS) == ["linear", "conv", "pooling", "resample", "normalization", "activation", "reshape",
                            "dropout", "embedding", "merge", "sequence", "recurrent", "attention", "interaction",
                            "reduction"]
    assert valid_list("op").startswith("linear: linear, identity, add_bias; conv: conv2d, conv1d, conv_transpose2d; "
                                       "pooling: max_pool2d, avg_pool2d, max_pool1d, avg_pool1d; ")


def test_a_keyed_foreign_op_points_at_its_key():
    err = error_for(SPEC.replace("- linear: {out_features: 10, init: {bias: zeros}}",
                                 "- nn.Linear: {in_features: 64, out_features: 10}"))
    assert (err.location.line, err.location.col) == (5, 5)
    assert err.message.startswith("unknown op 'nn.Linear': that is the torch and Flax nnx name; dslc's is 'linear'")


def test_a_value_that_is_not_a_name():
    text = SPEC.replace("metrics: [accuracy]", "metrics: [accuracy, 3]")
    col = text.splitlines()[6].index("3]") + 1
    assert str(error_for(text)) == (f"<string>:7:{col}: a metric is a name, not 3; valid metrics: accuracy, iou, "
                                    f"perplexity, rmse, mae, logloss, auc")
    err = error_for(SPEC.replace("dataset: digits", "dataset: [digits]"))
    assert err.message.startswith("a dataset is a name, not ['digits']; valid datasets: digits, mnist")


# --- the tables cannot rot ---

@pytest.mark.parametrize("kind", list(TABLES))
def test_every_alias_names_something_dslc_has_and_every_planned_name_something_it_lacks(kind):
    for key, entry in TABLES[kind].items():
        if isinstance(entry, Alias):
            assert entry.name in CATALOGS[kind], f"{key} -> {entry.name}: no such {kind}"
        else:
            assert isinstance(entry, Planned)
            assert entry.name not in CATALOGS[kind], f"{entry.name} exists now: make {key} an Alias"
            assert entry.where in (CORE, SEQUENCE, VISION, RUN, "")


@pytest.mark.parametrize("kind", list(TABLES))
def test_every_table_key_is_reached_and_is_not_already_a_dslc_name(kind):
    for key, entry in TABLES[kind].items():
        assert key not in CATALOGS[kind], f"'{key}' is dslc's own {kind}; the entry is never used"
        assert f" {entry.name}" in suggestion(kind, key) or f"'{entry.name}'" in suggestion(kind, key), key


def test_the_json_schema_still_lists_datasets_and_metrics():
    defs = json_schema()["$defs"]
    bare, keyed = defs["DataSpec"]["properties"]["dataset"]["anyOf"]  # digits, or {movielens: {variant: 1m}}
    assert bare["enum"] == keyed["propertyNames"]["enum"] == list(dsl.DATASETS)
    assert keyed["maxProperties"] == 1
    as_list, per_output = defs["TrainSpec"]["properties"]["metrics"]["anyOf"]
    assert as_list["items"]["enum"] == per_output["additionalProperties"]["items"]["enum"] == list(dsl.METRICS)
