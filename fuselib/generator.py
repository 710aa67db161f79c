"""The FUSE perturbation generator: a small fully convolutional encoder–decoder.

Shape (after VTG's ``models/GAN.py``, the closest published relative of FUSE; see
``shared/reference/fuse-method.md``), with skip connections added as the FUSE issue asks::

    x ─ conv3×3 (w) ─┬─ conv3×3/2 (2w) ─┬─ conv3×3/2 (4w) ─ n_res × residual(4w) ─┐
                     │                  └──────────────── + ◄── up ×2 (2w) ◄──────┘
                     └──────────────────────────────────── + ◄── up ×2 (w) ─ conv3×3 → 3
    δ = eps · tanh(·)

InstanceNorm + ReLU after every convolution but the last. The output is bounded by ``eps``
by construction (``eps·tanh``), so every perturbation it makes — and every average of them —
is within the L∞ budget. Being fully convolutional it works at any image size; sides that are
not multiples of 4 are padded (reflect) and the output is cropped back.

Class-wise use (:mod:`fuselib.fuse`): ``input="images"`` (default, VTG) runs the generator on
each training image and averages the outputs per class; ``input="noise"`` gives each class a
fixed seeded noise image as its input instead.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _block(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.InstanceNorm2d(cout, affine=True),
                         nn.ReLU(inplace=True))


def _up(cin, cout):
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1),
                         nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(ch, ch, 3, 1, 1), nn.InstanceNorm2d(ch, affine=True),
                                  nn.ReLU(inplace=True), nn.Conv2d(ch, ch, 3, 1, 1),
                                  nn.InstanceNorm2d(ch, affine=True))

    def forward(self, x):
        return x + self.body(x)


class Generator(nn.Module):
    """``G(x) -> δ`` with ``‖δ‖∞ ≤ eps``; ``x`` is a float image batch in [0, 1]."""

    def __init__(self, eps: float = 8 / 255, channels: int = 3, width: int = 8, n_res: int = 4):
        super().__init__()
        if not 0 < eps <= 1:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        self.eps = float(eps)
        w = int(width)
        self.e1, self.e2, self.e3 = _block(channels, w), _block(w, 2 * w, 2), _block(2 * w, 4 * w, 2)
        self.res = nn.Sequential(*[_Residual(4 * w) for _ in range(int(n_res))])
        self.u2, self.u1 = _up(4 * w, 2 * w), _up(2 * w, w)
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
