"""Classifiers by name, for 32×32 inputs (CIFAR variants) and, via torchvision, larger ones.

>>> model = fuselib.models.get("resnet18", num_classes=10)

Every model takes float images scaled to ``[-0.5, 0.5]`` (``x/255 - 0.5``; the trainers do
this) and returns logits. CIFAR variants use a 3×3 stem and no initial max-pool.
``fastnet`` is the airbench-style network of the fast trainer: conv-BN-GELU blocks with
max-pooling and no residuals — and, unlike airbench, no whitening layer fitted to the training
data, because poisoned data must not shape the model before training.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F

_TORCHVISION = {"resnet18", "resnet50", "vgg11", "vgg19", "densenet121"}


# --------------------------------------------------------------------------- fastnet
def _conv_bn(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU()]


class FastNet(nn.Module):
    """stem conv → 3 × [conv, max-pool, BN, GELU, conv, BN, GELU] → global max-pool → linear."""

    def __init__(self, num_classes=10, widths=(64, 128, 256), stem=24, in_channels=3,
                 scale=1 / 8):
        super().__init__()
        layers = _conv_bn(in_channels, stem)
        cin = stem
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.MaxPool2d(2),
                       nn.BatchNorm2d(w), nn.GELU(), *_conv_bn(w, w)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes, bias=False)
        self.scale = scale  # airbench scales the logits down; it steadies the start of training

    def forward(self, x):
        x = self.features(x)
        x = F.adaptive_max_pool2d(x, 1).flatten(1)
        return self.head(x) * self.scale


# --------------------------------------------------------------------------- ResNet
def _shortcut(cin, cout, stride):
    if stride == 1 and cin == cout:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride=1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        return F.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, block, blocks, num_classes=10, in_channels=3):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin, stages = 64, []
        for i, (width, n) in enumerate(zip((64, 128, 256, 512), blocks)):
            for j in range(n):
                stages.append(block(cin, width, 2 if (i > 0 and j == 0) else 1))
                cin = width * block.expansion
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


# --------------------------------------------------------------------------- VGG
_VGG = {"vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
        "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                  512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]}


class VGG(nn.Module):
    def __init__(self, cfg, num_classes=10, in_channels=3):
        super().__init__()
        layers, cin = [], in_channels
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1, bias=False), nn.BatchNorm2d(v),
                           nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


# --------------------------------------------------------------------------- DenseNet
class _DenseLayer(nn.Module):
    def __init__(self, cin, growth):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 4 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class DenseNet(nn.Module):
    """DenseNet-BC for CIFAR (3×3 stem with 2·growth channels, compression 0.5)."""

    def __init__(self, blocks=(6, 12, 24, 16), growth=32, num_classes=10, in_channels=3):
        super().__init__()
        c = 2 * growth
        layers = [nn.Conv2d(in_channels, c, 3, padding=1, bias=False)]
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(_DenseLayer(c, growth))
                c += growth
            if i < len(blocks) - 1:
                layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False),
                           nn.AvgPool2d(2)]
                c //= 2
        self.features = nn.Sequential(*layers, nn.BatchNorm2d(c), nn.ReLU())
        self.fc = nn.Linear(c, num_classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


# --------------------------------------------------------------------------- ViT
class ViT(nn.Module):
    """A small Vision Transformer for 32×32 inputs (patch 4, 64 tokens + class token)."""

    no_weight_decay = ("cls", "pos")  # parameters the trainers leave out of weight decay

    def __init__(self, num_classes=10, image_size=32, patch=4, dim=192, depth=6, heads=3,
                 mlp_ratio=2, in_channels=3, dropout=0.0):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size {image_size} is not a multiple of patch {patch}")
        n = (image_size // patch) ** 2
        self.embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, dim * mlp_ratio, dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.norm(self.encoder(x))[:, 0])


# --------------------------------------------------------------------------- registry
def _build(name, num_classes, in_channels, image_size, **kw):
    if name == "fastnet":
        return FastNet(num_classes, in_channels=in_channels, **kw)
    if name == "resnet18":
        return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, in_channels)
    if name == "resnet50":
        return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, in_channels)
    if name in _VGG:
        return VGG(_VGG[name], num_classes, in_channels)
    if name == "densenet121":
        return DenseNet(num_classes=num_classes, in_channels=in_channels, **kw)
    if name == "vit":
        patch = kw.pop("patch", max(4, image_size // 8))
        return ViT(num_classes, image_size, patch, in_channels=in_channels, **kw)
    raise KeyError(f"unknown model {name!r}; known: {', '.join(names())}")


def names() -> list:
    return ["densenet121", "fastnet", "resnet18", "resnet50", "vgg11", "vgg19", "vit"]


def get(name: str, num_classes: int = 10, image_size: int = 32, in_channels: int = 3,
        **kwargs) -> nn.Module:
    """A freshly initialised classifier. Inputs larger than 64 px use torchvision's ImageNet
    architecture of the same name (random init) for the ResNets, VGGs and DenseNet."""
    if name not in names():
        raise KeyError(f"unknown model {name!r}; known: {', '.join(names())}")
    if image_size > 64 and name in _TORCHVISION:
        import torchvision.models as tvm

        if in_channels != 3:
            raise ValueError("torchvision models take 3-channel input")
        ctor = getattr(tvm, name)
        return ctor(weights=None, num_classes=num_classes, **kwargs)
    return _build(name, num_classes, in_channels, image_size, **kwargs)


@contextmanager
def weight_noise(model: nn.Module, sigma: float, generator: torch.Generator | None = None):
    """Inside the block, every parameter of ``model`` (not its buffers: BatchNorm statistics
    stay) carries added N(0, σ²) noise drawn from the CPU ``generator``; afterwards the exact
    original values are back. Gradients computed inside stay in ``.grad``, so an optimiser
    step after the block applies them to the clean weights (PUE's robust training)."""
    params = list(model.parameters())
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p in params:
            p.add_(torch.randn(p.shape, generator=generator).to(p.device, p.dtype), alpha=sigma)
    try:
        yield model
    finally:
        with torch.no_grad():
            for p, s in zip(params, saved):
                p.copy_(s)
