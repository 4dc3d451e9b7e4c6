"""Hand-written torch references: the models, an in-memory training loop, and the
article's per-sample DataLoader pipeline.

Written the plain way a torch expert writes them: ``nn.Module`` classes with the
layers as attributes (ResNet-20 as torchvision writes its ResNets: a ``BasicBlock``
with ``conv1``/``bn1``/``conv2``/``bn2``/``downsample`` and ``nn.Sequential`` stages,
so its ``state_dict`` keys are dslc's spec's), the spec's optimizer built the default
way (``torch.optim.Adam(lr=...)``, ``torch.optim.SGD(lr, momentum, weight_decay)``; no
``fused=``/``foreach=`` arguments), ``zero_grad(set_to_none=True)``, and running
loss/accuracy kept as detached tensors so no step waits on a host sync (one
``float()`` at the end).

``train_in_memory`` reads index batches from tensors already in memory, in the same
order dslc is given. ``DataLoaderPipeline`` is the article's way: a ``Dataset`` over
uint8 images that builds a PIL image per sample (as ``torchvision.datasets.MNIST``
does), ``ToTensor()`` + ``Normalize((0.5,), (0.5,))`` per sample, and
``DataLoader(batch_size=64, shuffle=True)`` with the default ``num_workers=0``.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(28 * 28, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3)
        self.fc1 = nn.Linear(32 * 13 * 13, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class BasicBlock(nn.Module):
    """torchvision's BasicBlock; ``downsample`` (option B: 1x1 conv + BN) where the shape changes."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + identity)


class ResNet20(nn.Module):
    """He et al.'s CIFAR ResNet-20: 3 stages of 3 BasicBlocks (16, 32, 64 channels), global average pool, fc."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.layer1 = self._make_layer(16, 16, stride=1)
        self.layer2 = self._make_layer(16, 32, stride=2)
        self.layer3 = self._make_layer(32, 64, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

    @staticmethod
    def _make_layer(inplanes: int, planes: int, stride: int, blocks: int = 3) -> nn.Sequential:
        return nn.Sequential(BasicBlock(inplanes, planes, stride),
                             *(BasicBlock(planes, planes) for _ in range(blocks - 1)))

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


MODELS = {"mlp": MLP, "cnn": CNN, "resnet20": ResNet20}
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
"""The spec's optimizer name -> torch.optim class; dslc's argument names are these classes' own."""


def build(model: str, state: dict[str, np.ndarray] | None, optimizer):
    """The module (with canonical weights when given, loaded strictly: the names are torch's own) and the
    spec's optimizer (a ``bench.models.Optimizer``)."""
    module = MODELS[model]()
    if state is not None:
        module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return module, OPTIMIZERS[optimizer.name](module.parameters(), **optimizer.params)


def train_in_memory(module: nn.Module, optimizer, x: torch.Tensor, y: torch.Tensor,
                    batches) -> tuple[float, float, int]:
    """One step per index batch; returns (mean loss, accuracy, samples) after one sync at the end."""
    return _train(module, optimizer, ((x[i], y[i]) for i in map(torch.from_numpy, batches)))


def _train(module: nn.Module, optimizer, pairs) -> tuple[float, float, int]:
    """The plain training loop over (inputs, targets) batches, loss and accuracy kept as tensors."""
    module.train()
    loss_sum = torch.zeros(())
    correct = torch.zeros((), dtype=torch.int64)
    seen = 0
    for inputs, targets in pairs:
        optimizer.zero_grad(set_to_none=True)
        logits = module(inputs)
        loss = F.cross_entropy(logits, targets)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(targets)
        correct += (logits.detach().argmax(1) == targets).sum()
        seen += len(targets)
    return float(loss_sum) / seen, float(correct) / seen, seen


class ImageDataset(torch.utils.data.Dataset):
    """uint8 (N, 28, 28) images and labels, served one PIL image at a time like torchvision's MNIST."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform=None):
        self.images, self.labels, self.transform = torch.from_numpy(images), torch.from_numpy(labels), transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        from PIL import Image

        image, label = Image.fromarray(self.images[index].numpy()), int(self.labels[index])  # uint8 2-D: mode "L"
        if self.transform is not None:
            image = self.transform(image)
        return image, label


class DataLoaderPipeline:
    """The article's pipeline: per-sample transforms in a shuffled DataLoader."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int = 64, seed: int = 0):
        from torchvision import transforms

        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
        self.dataset = ImageDataset(images, labels, transform)
        self.loader = torch.utils.data.DataLoader(self.dataset, batch_size=batch_size, shuffle=True,
                                                  generator=torch.Generator().manual_seed(seed))

    def train(self, module: nn.Module, optimizer, steps: int) -> tuple[float, float, int]:
        """``steps`` optimizer steps (starting a fresh shuffled pass, as an epoch does)."""
        return _train(module, optimizer, itertools.islice(self.loader, steps))
