"""specs/resnet18.yaml is torchvision's ResNet-18: same state_dict, same outputs.

A torchvision checkpoint (random weights, BatchNorm buffers made non-trivial so the
eval-mode statistics matter) saved as safetensors loads strictly into dslc, and
``dslc predict`` on both targets reproduces torchvision's eval-mode logits.
"""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torchvision.models import resnet18

import dsl
from backends.predict import predict_file
from backends.weights import load_weights
from tests.conftest import REPO

SPEC = REPO / "specs" / "resnet18.yaml"
PARAMETERS = 11_689_512  # torchvision's count for resnet18()


@pytest.fixture(scope="module")
def torchvision_model():
    """resnet18() with seeded random weights and random running statistics, in eval mode."""
    torch.manual_seed(0)
    model = resnet18()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)  # torchvision zero-inits no gamma by default; make it non-trivial
                module.bias.normal_(0, 0.1)
                module.num_batches_tracked.fill_(1234)
    return model.eval()


@pytest.fixture(scope="module")
def graph():
    return dsl.load(SPEC)


def test_resnet18_has_torchvisions_keys_shapes_and_parameter_count(torchvision_model, graph):
    _, graph = graph
    expected = {k: tuple(v.shape) for k, v in torchvision_model.state_dict().items()}
    assert {k: tuple(w.shape) for k, w in graph.state_dict_spec().items()} == expected
    assert list(graph.state_dict_spec()) == list(expected)  # the same order, too
    assert graph.num_parameters == sum(p.numel() for p in torchvision_model.parameters()) == PARAMETERS


def test_torchvision_checkpoint_predicts_torchvisions_outputs_on_both_targets(torchvision_model, graph, tmp_path):
    """Measured max |dslc - torchvision| on 2 inputs, float32 (logits up to 7.1): torch 1.4e-6, jax 3.8e-6;
    the test took 39 s on a busy 2-core CPU.

    The inputs are already normalized (``--transformed``): the spec's dataset is synthetic.
    """
    spec, graph = graph
    weights = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in torchvision_model.state_dict().items()}, str(weights))
    state = load_weights(weights, graph)  # strict: names, shapes and dtypes checked
    assert state["layer2.0.downsample.1.num_batches_tracked"] == 1234
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    with torch.no_grad():
        expected = torchvision_model(torch.from_numpy(x)).numpy()
    for target in ("torch", "jax"):
        out = predict_file(spec, graph, target, weights, tmp_path / "x.npy", tmp_path / f"{target}.npy",
                           transformed=True)
        assert out.shape == (2, 1000) and out.dtype == np.float32
        error = float(np.abs(out - expected).max())
        print(f"{target}: max |dslc - torchvision| = {error:.2e} (logits max {np.abs(expected).max():.2f})")
        assert error <= 1e-4, target
