"""Perturbation generator networks: FUSE's, GUE's and Unlearnable Clusters'.

* :class:`Generator` — **FUSE**: a small fully convolutional encoder–decoder (after VTG's
  ``models/GAN.py``, the closest published relative of FUSE; ``shared/reference/fuse-method.md``),
  with skip connections::

      x ─ conv3×3 (w) ─┬─ conv3×3/2 (2w) ─┬─ conv3×3/2 (4w) ─ n_res × residual(4w) ─┐
                       │                  └──────────────── + ◄── up ×2 (2w) ◄──────┘
                       └──────────────────────────────────── + ◄── up ×2 (w) ─ conv3×3 → 3
      δ = eps · tanh(·)

  InstanceNorm + ReLU after every convolution but the last. The output is bounded by ``eps``
  by construction (``eps·tanh``), so every perturbation it makes — and every average of them —
  is within the L∞ budget. Being fully convolutional it works at any image size; sides that
  are not multiples of 4 are padded (reflect) and the output is cropped back. Class-wise use
  (:mod:`fuselib.protections.fuse`): ``input="images"`` (VTG) runs it on each training image
  and averages the outputs per class; ``input="noise"`` gives each class a fixed seeded noise
  image as its input.
* :class:`UNet` — **GUE**'s generator (4 levels, average pooling down, bilinear up).
* :class:`ResnetGenerator` — **UC**'s pix2pix-style ResNet generator.

:func:`class_mean` and :func:`per_image` move between per-image and class-wise perturbations
with matmuls (deterministic on a multi-threaded CPU, unlike ``index_add``).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- FUSE
def conv_block(cin, cout, stride=1):
    """conv3×3 → InstanceNorm (affine) → ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.InstanceNorm2d(cout, affine=True),
                         nn.ReLU(inplace=True))


def up_block(cin, cout):
    """Transposed conv3×3, stride 2 (doubles the size) → InstanceNorm (affine) → ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1),
                         nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class Residual(nn.Module):
    """``x + (conv → norm → ReLU → conv → norm)(x)``."""

    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.InstanceNorm2d(ch, affine=True),
                                  nn.ReLU(inplace=True), nn.Conv2d(ch, ch, 3, 1, 1),
                                  nn.InstanceNorm2d(ch, affine=True))

    def forward(self, x):
        return x + self.body(x)


class Generator(nn.Module):
    """FUSE's generator (see the module docstring): ``G(x) -> δ`` with ``‖δ‖∞ ≤ eps``; ``x`` is a float image batch in [0, 1]."""

    def __init__(self, eps: float = 8 / 255, channels: int = 3, width: int = 8, n_res: int = 4):
        super().__init__()
        if not 0 < eps <= 1:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        self.eps = float(eps)
        w = int(width)
        self.e1, self.e2, self.e3 = conv_block(channels, w), conv_block(w, 2 * w, 2), conv_block(2 * w, 4 * w, 2)
        self.res = nn.Sequential(*[Residual(4 * w) for _ in range(int(n_res))])
        self.u2, self.u1 = up_block(4 * w, 2 * w), up_block(2 * w, w)
        self.out = nn.Conv2d(w, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        z = x - 0.5
        if ph or pw:
            z = F.pad(z, (0, pw, 0, ph), mode="reflect" if min(h, w) > 4 else "replicate")
        s1 = self.e1(z)
        s2 = self.e2(s1)
        b = self.res(self.e3(s2))
        y = self.u1(self.u2(b) + s2) + s1
        return self.eps * torch.tanh(self.out(y))[..., :h, :w]


def per_image(class_delta: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``class_delta[labels]`` as a matmul: indexing's backward (index_add) is not
    deterministic on a multi-threaded CPU, a matmul is."""
    onehot = torch.nn.functional.one_hot(labels, class_delta.shape[0]).to(class_delta.dtype)
    return (onehot @ class_delta.flatten(1)).view(len(labels), *class_delta.shape[1:])


def class_mean(delta: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-class mean of per-image perturbations, ``(n_classes, C, H, W)`` (zeros for a class
    absent from the batch). Differentiable."""
    flat = delta.flatten(1)
    onehot = torch.nn.functional.one_hot(labels, n_classes).to(flat.dtype).T  # (classes, B)
    # a matmul, not index_add: multi-threaded index_add on the CPU is not deterministic
    sums = onehot @ flat
    counts = onehot.sum(1).clamp_min(1)
    return (sums / counts[:, None]).view(n_classes, *delta.shape[1:])


# --------------------------------------------------------------------------- GUE
def double_block(cin, cout):
    """Two :func:`conv_block` s."""
    return nn.Sequential(conv_block(cin, cout), conv_block(cout, cout))


class UNet(nn.Module):
    """GUE's generator: 4 levels of two conv-norm-ReLU blocks (widths w, 2w, 4w, 8w), average
    pooling down, bilinear up with concatenated skips, 1×1 conv + norm, ``eps·tanh``."""

    def __init__(self, eps: float = 8 / 255, channels: int = 3, width: int = 64):
        super().__init__()
        self.eps = float(eps)
        w = [int(width) * m for m in (1, 2, 4, 8)]
        self.down = nn.ModuleList([double_block(channels, w[0])] +
                                  [double_block(a, b) for a, b in zip(w, w[1:])])
        self.up = nn.ModuleList([double_block(w[i + 1] + w[i], w[i]) for i in (2, 1, 0)])
        self.out = nn.Sequential(nn.Conv2d(w[0], channels, 1),
                                 nn.InstanceNorm2d(channels, affine=True))

    def forward(self, x):
        h, w = x.shape[-2:]
        ph, pw = max(16, -(-h // 8) * 8) - h, max(16, -(-w // 8) * 8) - w
        z = F.pad(x - 0.5, (0, pw, 0, ph), mode="replicate") if ph or pw else x - 0.5
        skips = []
        for i, block in enumerate(self.down):
            z = block(z if i == 0 else F.avg_pool2d(z, 2))
            skips.append(z)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            z = F.interpolate(z, scale_factor=2, mode="bilinear", align_corners=True)
            z = block(torch.cat([z, skip], 1))
        return self.eps * torch.tanh(self.out(z))[..., :h, :w]


# --------------------------------------------------------------------------- Unlearnable Clusters
class ResnetBlock(nn.Module):
    """pix2pix's residual block: reflection-padded conv3×3 → BatchNorm → ReLU, twice, no bias."""

    def __init__(self, dim):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.BatchNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=False), nn.BatchNorm2d(dim))

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """A pix2pix-style ResNet generator (the official UC generator's layout): 7×7 stem, two
    stride-2 down-samplings, ``blocks`` residual blocks, two transposed-conv up-samplings,
    7×7 output conv, tanh. BatchNorm and ReLU; ``width`` is the stem's channel count."""

    def __init__(self, channels: int = 3, width: int = 64, blocks: int = 6):
        super().__init__()
        w = width
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, w, 7, bias=False),
                  nn.BatchNorm2d(w), nn.ReLU(True)]
        for m in (1, 2):
            layers += [nn.Conv2d(w * m, w * m * 2, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(w * m * 2), nn.ReLU(True)]
        layers += [ResnetBlock(w * 4) for _ in range(blocks)]
        for m in (4, 2):
            layers += [nn.ConvTranspose2d(w * m, w * m // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=False),
                       nn.BatchNorm2d(w * m // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, channels, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        out = self.net(z)
        if out.shape[-2:] != z.shape[-2:]:  # sizes not divisible by 4
            out = F.interpolate(out, size=z.shape[-2:], mode="bilinear", align_corners=False)
        return out
