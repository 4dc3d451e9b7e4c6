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

The sequence models: ``Bert`` is Hugging Face's ``BertForSequenceClassification``
written out in plain torch.nn (``BertEmbeddings``, ``BertSelfAttention``, ...), its
submodules named as transformers names them, so its ``state_dict`` is the spec's and
the transformers model's; attention is ``F.scaled_dot_product_attention`` with the
additive mask ``(1 - attention_mask) * finfo.min`` (transformers' ``sdpa`` path).
``HFBert`` is transformers' own model, the ``hf-torch`` variant. ``LSTMClassifier``
is ``nn.LSTM(batch_first=True)`` + ``nn.Linear`` on the last layer's ``h_n``.

``DeepFM`` is written as pytorch-fm writes it (``FeaturesLinear``, ``FeaturesEmbedding``,
``FactorizationMachine``, ``MultiLayerPerceptron``): ``nn.Embedding`` tables over all
fields' ids at once, field f's id i at row ``offsets[f] + i`` (a non-persistent buffer),
the FM term as ``0.5 * (square_of_sum - sum_of_square)``, the MLP an ``nn.Sequential``;
its attributes carry the spec's node names, so the canonical weights load strictly.
A model with one logit per example ([N]) trains with
``F.binary_cross_entropy_with_logits`` (``nn.BCEWithLogitsLoss``'s function) on float
0/1 labels and counts ``(logit > 0) == label`` as correct; class logits [N, C] with
``F.cross_entropy`` and the argmax.

``train_in_memory`` reads index batches from tensors already in memory, in the same
order dslc is given; a model with several inputs (BERT's ids, token types and mask)
gets them as a tuple, in the spec's order. ``DataLoaderPipeline`` is the article's way: a ``Dataset`` over
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


class LSTMClassifier(nn.Module):
    """``nn.LSTM`` over (N, T, F) frames, batch first; a linear layer on the last layer's final hidden state."""

    def __init__(self, features: int = 40, hidden: int = 128, layers: int = 2, num_classes: int = 10):
        super().__init__()
        self.lstm = nn.LSTM(features, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, x):
        _, (h_n, _) = self.lstm(x)
        return self.fc(h_n[-1])


BERT_TINY = {"vocab_size": 30522, "hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 512, "max_position_embeddings": 512, "type_vocab_size": 2, "num_labels": 4,
             "layer_norm_eps": 1e-12}
"""specs/bert_tiny_hf.yaml's configuration, in transformers.BertConfig's names."""


class BertEmbeddings(nn.Module):
    def __init__(self, c: dict, dropout: float):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"], padding_idx=0)
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x + self.position_embeddings(positions)))


class BertSelfAttention(nn.Module):
    def __init__(self, c: dict, dropout: float):
        super().__init__()
        hidden, self.heads, self.dropout = c["hidden_size"], c["num_attention_heads"], dropout
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))

    def forward(self, x, additive_mask):
        n, t, e = x.shape
        q, k, v = (f(x).view(n, t, self.heads, e // self.heads).transpose(1, 2)
                   for f in (self.query, self.key, self.value))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=additive_mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return out.transpose(1, 2).reshape(n, t, e)


class BertResidual(nn.Module):
    """BertSelfOutput and BertOutput: dense, dropout, add the residual, LayerNorm."""

    def __init__(self, inputs: int, c: dict, dropout: float):
        super().__init__()
        self.dense = nn.Linear(inputs, c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, c: dict, dropout: float):
        super().__init__()
        self.self = BertSelfAttention(c, dropout)
        self.output = BertResidual(c["hidden_size"], c, dropout)

    def forward(self, x, additive_mask):
        return self.output(self.self(x, additive_mask), x)


class BertIntermediate(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["intermediate_size"])

    def forward(self, x):
        return F.gelu(self.dense(x))  # exact (erf) GELU: transformers' "gelu"


class BertLayer(nn.Module):
    def __init__(self, c: dict, dropout: float):
        super().__init__()
        self.attention = BertAttention(c, dropout)
        self.intermediate = BertIntermediate(c)
        self.output = BertResidual(c["intermediate_size"], c, dropout)

    def forward(self, x, additive_mask):
        x = self.attention(x, additive_mask)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, c: dict, dropout: float):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(c, dropout) for _ in range(c["num_hidden_layers"]))

    def forward(self, x, additive_mask):
        for layer in self.layer:
            x = layer(x, additive_mask)
        return x


class BertPooler(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        self.dense = nn.Linear(c["hidden_size"], c["hidden_size"])

    def forward(self, x):
        return torch.tanh(self.dense(x[:, 0]))


class BertModel(nn.Module):
    def __init__(self, c: dict, dropout: float):
        super().__init__()
        self.embeddings = BertEmbeddings(c, dropout)
        self.encoder = BertEncoder(c, dropout)
        self.pooler = BertPooler(c)

    def forward(self, input_ids, token_type_ids, attention_mask):
        x = self.embeddings(input_ids, token_type_ids)
        additive_mask = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        return self.pooler(self.encoder(x, additive_mask))


class Bert(nn.Module):
    """BertForSequenceClassification: BERT, dropout on the pooled output, a linear classifier."""

    def __init__(self, dropout: float = 0.1, config: dict = BERT_TINY):
        super().__init__()
        self.bert = BertModel(config, dropout)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config["hidden_size"], config["num_labels"])

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.classifier(self.dropout(self.bert(input_ids, token_type_ids, attention_mask)))


class HFBert(nn.Module):
    """transformers' own ``BertForSequenceClassification`` (its default ``sdpa`` attention), called with the
    spec's inputs in order; its logits go to the same ``F.cross_entropy`` (transformers' loss for int labels)."""

    def __init__(self, dropout: float = 0.1, config: dict = BERT_TINY):
        super().__init__()
        from transformers import BertConfig, BertForSequenceClassification

        self.model = BertForSequenceClassification(BertConfig(**config, hidden_dropout_prob=dropout,
                                                              attention_probs_dropout_prob=dropout))

    def forward(self, input_ids, token_type_ids, attention_mask):
        return self.model(input_ids=input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask).logits


CRITEO_FIELDS = (1460, 583, 10131, 2202, 305, 24, 12517, 633, 3, 93145, 5683, 8351, 3194, 27, 14992, 5461, 10,
                 5652, 2173, 4, 7046, 18, 15, 28656, 105, 22166)
"""specs/deepfm_criteo.yaml's per-field vocab of its ``sparse`` input."""


class DeepFM(nn.Module):
    """Guo et al.'s DeepFM as pytorch-fm writes it: first-order weights per id plus a linear of the dense
    features, the FM's pairwise term over the field embeddings, and an MLP over [embeddings, dense]."""

    def __init__(self, fields: tuple[int, ...] = CRITEO_FIELDS, dense: int = 13, dim: int = 10,
                 hidden: int = 400, dropout: float = 0.2):
        super().__init__()
        self.register_buffer("offsets", torch.tensor((0, *itertools.accumulate(fields))[:-1]), persistent=False)
        self.field_bias = nn.Embedding(sum(fields), 1)  # pytorch-fm's FeaturesLinear.fc
        self.dense_linear = nn.Linear(dense, 1)           # its bias is the global w_0
        self.embeddings = nn.Embedding(sum(fields), dim)  # pytorch-fm's FeaturesEmbedding
        layers, width = [], len(fields) * dim + dense
        for _ in range(3):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.mlp = nn.Sequential(*layers, nn.Linear(hidden, 1))

    def forward(self, dense, sparse):
        ids = sparse + self.offsets
        v = self.embeddings(ids)
        first = self.field_bias(ids).sum(1) + self.dense_linear(dense)
        fm = 0.5 * (v.sum(1) ** 2 - (v ** 2).sum(1)).sum(1, keepdim=True)
        deep = self.mlp(torch.cat([v.flatten(1), dense], 1))
        return (first + fm + deep).squeeze(1)


MODELS = {"mlp": MLP, "cnn": CNN, "resnet20": ResNet20, "lstm": LSTMClassifier, "bert": Bert, "deepfm": DeepFM}
OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
"""The spec's optimizer name -> torch.optim class; dslc's argument names are these classes' own."""


def build(model: str, state: dict[str, np.ndarray] | None, optimizer, hf: bool = False, **kwargs):
    """The module (with canonical weights when given, loaded strictly: the names are torch's own) and the
    spec's optimizer (a ``bench.models.Optimizer``). ``hf``: transformers' model instead of the hand-written
    one; ``kwargs`` go to the model (``dropout=0.0`` in the parity test)."""
    module = HFBert(**kwargs) if hf else MODELS[model](**kwargs)
    target = module.model if hf else module
    if state is not None:
        target.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    return module, OPTIMIZERS[optimizer.name](module.parameters(), **optimizer.params)


def place(module: nn.Module, x: torch.Tensor | tuple, y: torch.Tensor, device: torch.device):
    """Module and data on ``device``; on a GPU, image models in ``channels_last`` (what an expert does there:
    cuDNN's NHWC kernels, fastest with bf16 autocast)."""
    image = not isinstance(x, tuple) and x.dim() == 4 and x.is_floating_point()
    memory_format = torch.channels_last if device.type == "cuda" and image else torch.preserve_format
    module = module.to(device, memory_format=memory_format)
    move = lambda a: a.to(device, memory_format=memory_format if a.dim() == 4 else torch.preserve_format)  # noqa: E731
    return module, tuple(map(move, x)) if isinstance(x, tuple) else move(x), y.to(device)


def train_in_memory(module: nn.Module, optimizer, x: torch.Tensor | tuple, y: torch.Tensor,
                    batches, bf16: bool = False) -> tuple[float, float, int]:
    """One step per index batch; returns (mean loss, accuracy, samples) after one sync at the end. ``x``: the
    input, or a tuple of the inputs (in the spec's order) for a model with several. ``bf16``: forward and loss
    under ``torch.autocast(dtype=torch.bfloat16)`` (float32 weights and optimizer)."""
    device = y.device
    index = (torch.from_numpy(i).to(device) for i in batches)
    if isinstance(x, tuple):
        return _train(module, optimizer, ((tuple(a[i] for a in x), y[i]) for i in index), bf16)
    return _train(module, optimizer, ((x[i], y[i]) for i in index), bf16)


def _train(module: nn.Module, optimizer, pairs, bf16: bool = False) -> tuple[float, float, int]:
    """The plain training loop over (inputs, targets) batches, loss and accuracy kept as tensors."""
    module.train()
    device = next(module.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    for inputs, targets in pairs:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = module(*inputs) if isinstance(inputs, tuple) else module(inputs)
            loss = _loss(logits, targets)
        loss.backward()
        optimizer.step()
        loss_sum += loss.detach() * len(targets)
        correct += _hits(logits.detach(), targets)
        seen += len(targets)
    return float(loss_sum) / seen, float(correct) / seen, seen


def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over class logits [N, C]; binary cross-entropy for one logit per example [N]."""
    if logits.ndim == 1:
        return F.binary_cross_entropy_with_logits(logits, targets)
    return F.cross_entropy(logits, targets)


def _hits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Correct predictions: the argmax against class ids, or the logit's sign against 0/1 labels."""
    predicted = (logits > 0).to(targets.dtype) if logits.ndim == 1 else logits.argmax(1)
    return (predicted == targets).sum()


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
