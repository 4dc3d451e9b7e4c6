"""The op catalog is the single source of truth: every op has both lowerings, examples and docs."""

import dsl
from backends.data import sources  # noqa: F401  (datasets are declared in dsl.DATASETS)
from backends.jax.ops import JAX_OPS
from backends.jax.training import JAX_LOSSES, JAX_OPTIMIZERS
from backends.torch.ops import TORCH_OPS
from backends.torch.training import TORCH_LOSSES, TORCH_OPTIMIZERS
from dsl.ops import FLOAT
from dsl.training import OBJECTIVES
from tests.helpers import example_cases, single_op_graph

REQUIRED_OPS = {"linear", "conv2d", "max_pool2d", "avg_pool2d", "flatten", "dropout", "relu", "leaky_relu", "gelu",
                "tanh", "sigmoid", "silu", "softmax", "log_softmax", "identity", "batch_norm1d", "batch_norm2d"}


def test_every_op_has_a_torch_and_a_jax_lowering():
    assert set(dsl.OPS) == set(TORCH_OPS) == set(JAX_OPS)


def test_the_issue_ops_are_all_in_the_catalog():
    assert REQUIRED_OPS <= set(dsl.OPS)


def test_every_op_has_examples_and_a_doc():
    for name, op in dsl.OPS.items():
        assert op.name == name
        assert op.examples, f"{name} has no examples for the parity tests"
        assert op.doc.strip(), f"{name} has no doc line"


def test_every_loss_and_optimizer_is_lowered_by_both_backends():
    assert set(dsl.LOSSES) == set(TORCH_LOSSES) == set(JAX_LOSSES) == {"cross_entropy", "ctc", "mse", "bce_with_logits"}
    assert set(dsl.OPTIMIZERS) == set(TORCH_OPTIMIZERS) == set(JAX_OPTIMIZERS) == {"sgd", "adam", "adamw",
                                                                                  "sparse_adam"}


def test_every_objective_is_lowered_by_both_backends():
    from backends.jax.objectives import JAX_OBJECTIVES
    from backends.torch.objectives import TORCH_OBJECTIVES

    assert set(OBJECTIVES) == set(TORCH_OBJECTIVES) == set(JAX_OBJECTIVES) == {"supervised", "reconstruction", "gan"}
    for name, objective in OBJECTIVES.items():
        assert objective.doc.strip(), name


def test_every_metric_is_lowered_by_both_backends_or_computed_from_the_split():
    from backends.jax.training import JAX_METRICS
    from backends.split_metrics import SPLIT_METRICS
    from backends.torch.training import TORCH_METRICS

    summed = {name for name, metric in dsl.METRICS.items() if metric.per != "split"}
    assert summed == set(TORCH_METRICS) == set(JAX_METRICS) == {"accuracy", "iou", "perplexity", "rmse", "mae",
                                                                "logloss"}
    assert set(dsl.METRICS) - summed == set(SPLIT_METRICS) == {"auc"}
    for name, metric in dsl.METRICS.items():
        assert metric.name == name and metric.doc.strip() and set(metric.losses) <= set(dsl.LOSSES), name


def test_datasets():
    assert set(dsl.DATASETS) == {"digits", "mnist", "fashion_mnist", "cifar10", "shapes", "glyphs", "synthetic", "npy",
                                 "npz", "image_folder", "planted_tokens", "reverse", "synthetic_speech",
                                 "text_classification", "ag_news", "parallel_text", "planted_ratings", "planted_clicks",
                                 "movielens", "criteo"}


def test_stochastic_ops_declare_valid_deterministic_arguments():
    """dslc check and the op parity tests run stochastic ops with these; they must still be the op's arguments."""
    assert {name for name, op in dsl.OPS.items() if op.stochastic} == {
        "dropout", "dropout2d", "lstm", "gru", "scaled_dot_product_attention", "multi_head_attention",
        "transformer_encoder_layer", "transformer_decoder_layer"}
    for name, op in dsl.OPS.items():
        for example in op.examples if op.stochastic else ():
            params = op.deterministic(op.params.model_validate(dict(example.params)))
            assert op.params.model_validate(params.model_dump()) == params, name


def test_every_weight_is_a_parameter_or_a_buffer_with_a_known_dtype():
    kinds = set()
    for _, op, example in example_cases():
        for key, weight in single_op_graph(op, example).state_dict_spec().items():
            assert weight.kind in ("parameter", "buffer") and weight.trainable == (weight.kind == "parameter"), key
            assert weight.dtype in (FLOAT, "int64"), key
            assert weight.trainable or weight.dtype != "int64" or weight.shape == (), key  # counters are scalars
            kinds.add(weight.kind)
    assert kinds == {"parameter", "buffer"}
