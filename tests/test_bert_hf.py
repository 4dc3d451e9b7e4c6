"""specs/bert_tiny_hf.yaml is Hugging Face's BertForSequenceClassification: same state_dict, same logits.

A randomly initialised transformers model (LayerNorms made non-trivial, so their
weights matter) saved by ``save_pretrained`` (safetensors) loads strictly into dslc, and ``dslc predict``
on both targets reproduces its eval-mode logits on padded rows of two segments,
under both of its attention implementations ("sdpa" and "eager"). transformers is
a test dependency only; dslc itself never imports it.
"""

import numpy as np
import pytest
import torch

import cli
import dsl
from backends.predict import predict
from backends.weights import load_weights
from tests.conftest import REPO

transformers = pytest.importorskip("transformers")

SPEC = REPO / "specs" / "bert_tiny_hf.yaml"
CONFIG = dict(vocab_size=30522, hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512,
              max_position_embeddings=512, type_vocab_size=2, num_labels=4)
PARAMETERS = 4_386_436  # sum(p.numel() for p in BertForSequenceClassification(BertConfig(**CONFIG)).parameters())
LENGTHS = (128, 90, 17, 3)
"""Real tokens per row: one full row, the rest right-padded with id 0 (attention_mask 0)."""


@pytest.fixture(scope="module")
def hf_model():
    """BertForSequenceClassification with seeded random weights, in eval mode.

    initializer_range 0.2 (not 0.02) and random LayerNorm weights make logits of order 1 (0.08 with Hugging Face's
    own init), so a 1e-4 tolerance means something.
    """
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(transformers.BertConfig(initializer_range=0.2, **CONFIG))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    return model.eval()


@pytest.fixture(scope="module")
def weights(hf_model, tmp_path_factory):
    """The file ``save_pretrained`` writes (model.safetensors, beside config.json), as a user would make it."""
    folder = tmp_path_factory.mktemp("bert")
    hf_model.save_pretrained(folder)
    return folder / "model.safetensors"


@pytest.fixture(scope="module")
def loaded():
    return dsl.load(SPEC)


def padded_batch(seed: int = 0) -> dict[str, np.ndarray]:
    """Hugging Face's three columns for ``LENGTHS``: [CLS]-like id 101 first, segment 1 from half the real length."""
    rng, positions = np.random.default_rng(seed), np.arange(128)
    lengths = np.array(LENGTHS)[:, None]
    mask = (positions < lengths).astype(np.int64)
    ids = np.where(mask, rng.integers(1000, CONFIG["vocab_size"], mask.shape), 0)
    ids[:, 0] = 101
    segments = ((positions >= lengths // 2) & (mask == 1)).astype(np.int64)
    return {"input_ids": ids, "token_type_ids": segments, "attention_mask": mask}


def hf_logits(model, batch: dict[str, np.ndarray], attention: str) -> np.ndarray:
    model.set_attn_implementation(attention)
    with torch.no_grad():
        return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.numpy()


def test_bert_has_hugging_faces_keys_shapes_and_parameter_count(hf_model, loaded):
    """Every key in Hugging Face's order; its ``position_ids`` buffer is non-persistent, so not among them."""
    _, graph = loaded
    expected = {k: tuple(v.shape) for k, v in hf_model.state_dict().items()}
    assert list(graph.state_dict_spec()) == list(expected)
    assert {k: tuple(w.shape) for k, w in graph.state_dict_spec().items()} == expected
    assert graph.num_parameters == sum(p.numel() for p in hf_model.parameters()) == PARAMETERS


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_hugging_face_checkpoint_predicts_its_logits_on_both_targets(hf_model, weights, loaded, tmp_path, capsys,
                                                                     attention):
    """``dslc predict`` (``cli.main``, in this process) on an .npz of the three columns, 4 rows of 128, 3 to 128
    real tokens. Measured max |dslc - transformers| (transformers 5.24, logits up to 3.2): "sdpa" torch 0, jax
    8.1e-6; "eager" torch 5.3e-6, jax 3.9e-6. The file takes ~15 s of CPU, ~5 s of it importing transformers."""
    load_weights(weights, loaded[1])  # strict: names, shapes and dtypes
    batch = padded_batch()
    np.savez(tmp_path / "x.npz", **batch)
    expected = hf_logits(hf_model, batch, attention)
    errors = {}
    for target in ("torch", "jax"):
        out = tmp_path / f"{target}.npy"
        assert cli.main(["predict", str(SPEC), "--weights", str(weights), "--input", str(tmp_path / "x.npz"),
                         "--output", str(out), "--target", target]) == 0
        assert "[4, 4] float32" in capsys.readouterr().out
        errors[target] = float(np.abs(np.load(out) - expected).max())
    print(f"{attention}: max |dslc - transformers| {errors} (logits max {np.abs(expected).max():.2f})")
    assert max(errors.values()) <= 1e-4, errors


def test_padding_is_masked_on_both_targets(weights, loaded):
    """New ids and segments at every padded position (attention_mask 0) leave the logits as they were: the mask
    adds finfo(float32).min to those keys' scores, so their softmax weights are exactly 0. Measured difference: 0
    on both targets."""
    spec, graph = loaded
    state = load_weights(weights, graph)
    batch = padded_batch()
    padding = batch["attention_mask"] == 0
    changed = dict(batch, input_ids=np.where(padding, np.random.default_rng(1).integers(1, 30522, padding.shape), 0),
                   token_type_ids=np.where(padding, 1, batch["token_type_ids"]))
    changed["input_ids"] = np.where(padding, changed["input_ids"], batch["input_ids"])
    for target in ("torch", "jax"):
        before, after = (predict(spec, graph, target, state, b) for b in (batch, changed))
        assert np.abs(after - before).max() <= 1e-6, target
