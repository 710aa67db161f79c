"""Cross-dataset transfer (the paper's claim 5): perturbations made on one dataset, moved onto
another's training images. Pure tensor code; the runner fits the source and calls :func:`move`.

A protection spec ``"fuse@imagenette:128"`` is FUSE fitted on Imagenette at 128 px (the run's
seed, its ``n_train`` subset of the source, cached like any fit), its perturbations moved to the
run's dataset. The perturbation of a source image is what its protection did to it,
``δ = protected − clean`` in whole uint8 steps (so ``|δ| ≤`` the budget, clipping at 0 and 255
included). Every target image of class ``c`` gets ``δ`` of a source image of class ``c`` (class
index to class index: the two datasets must have the same number of classes; which source image
is drawn from a permutation of the class's source images seeded by the run's seed, so that
each is used about equally often), moved to the target's size:

* the source is **larger** (Imagenette 128 px → CIFAR-10 32 px): a random crop of the target's
  size from ``δ``, its offset drawn per image from the same generator — the paper's method for
  transfer ("the saved perturbations randomly cropped to the target size");
* the source is **smaller** (CIFAR-10 32 px → Imagenette 64 px): ``δ`` **tiled** to the target's
  size, anchored at the top-left corner. Tiling keeps the pattern at its native pixel scale, as
  ``fuselib protect`` does for large photos; resizing would blur it into the image's content
  band (a bilinearly stretched pattern is a smooth blob at the new size, where the attacker's
  augmentation and any low-pass treat it as part of the photo);
* the **same size**: ``δ`` as it is.

Then ``protected = clip(target + δ, 0, 255)`` as uint8, and the budget is checked on the result
(a violation raises). An L∞ budget holds by construction (a crop or a tile of ``δ`` has the same
largest step). An **L2** budget (AR, LSP) does not: it is a norm over the whole image, so a crop
of a 128-px AR sample keeps about a quarter of its norm, and two-by-two tiles double it. Each
moved ``δ`` of an L2 protection is therefore rescaled to the protection's radius ``eps`` (what
AR does to each of its samples at any size) and re-quantised as
:meth:`fuselib.protections.base.Protection.to_uint8` does (rounded to whole steps, truncated
toward zero where rounding goes over), so it is compared at the same norm as the perturbation
made on the target itself. Unbounded protections (OPS, CUDA) are
moved as they are.
"""
from __future__ import annotations

import torch

# the moved perturbations' draws (source image, crop offset) use the run's seed plus this, so
# that they are not the same stream as the data subset's permutation
SEED_OFFSET = 50_021
CHUNK = 1024  # target images moved per step (bounds the int16 copies of δ)


def method(source_size: int, target_size: int, norm: str | None = "linf") -> str:
    """How a ``source_size``-px perturbation is moved to ``target_size`` px: ``"crop"``
    (larger source: a random crop), ``"tile"`` (smaller: tiled) or ``"as is"``; an L2
    protection adds ``", L2 rescaled"`` (its norm is set to ``eps`` after the move)."""
    s, t = int(source_size), int(target_size)
    if s <= 0 or t <= 0:
        raise ValueError(f"image sizes must be positive, got {s} and {t}")
    how = "crop" if s > t else "tile" if s < t else "as is"
    return how + (", L2 rescaled" if norm == "l2" else "")


def _n_classes(labels: torch.Tensor) -> int:
    return int(labels.max()) + 1 if labels.numel() else 0


def check_classes(source_classes: int, target_classes: int, source: str = "the source",
                  target: str = "the target") -> None:
    """Class-wise transfer maps class index to class index: the counts must agree."""
    if int(source_classes) != int(target_classes):
        raise ValueError(f"cannot transfer perturbations from {source} ({source_classes} "
                         f"classes) to {target} ({target_classes} classes): class index maps to "
                         "class index, so both need the same number of classes")


def choose(source_labels: torch.Tensor, target_labels: torch.Tensor,
           gen: torch.Generator) -> torch.Tensor:
    """For every target image, the index of a source image of the same class: the class's
    source images in a seeded random order, cycled (each used about equally often)."""
    source_labels, target_labels = source_labels.long(), target_labels.long()
    check_classes(_n_classes(source_labels), _n_classes(target_labels))
    out = torch.empty(len(target_labels), dtype=torch.long)
    for c in torch.unique(target_labels).tolist():
        pool = (source_labels == c).nonzero().flatten()
        if len(pool) == 0:
            raise ValueError(f"class {c} has target images but no source image to take a "
                             "perturbation from")
        want = (target_labels == c).nonzero().flatten()
        order = pool[torch.randperm(len(pool), generator=gen)]
        out[want] = order[torch.arange(len(want)) % len(pool)]
    return out


def _offsets(n: int, source: int, target: int, gen: torch.Generator) -> torch.Tensor:
    """Per-image crop offsets along one side: random when the source is larger, else 0."""
    if source > target:
        return torch.randint(0, source - target + 1, (n,), generator=gen)
    return torch.zeros(n, dtype=torch.long)


def moved_deltas(source_clean: torch.Tensor, source_protected: torch.Tensor,
                 index: torch.Tensor, size: tuple, tops: torch.Tensor,
                 lefts: torch.Tensor) -> torch.Tensor:
    """``δ`` of the source images ``index`` (int16 steps), each tiled to cover ``size`` when
    smaller and cut at ``(top, left)`` to ``size`` = ``(h, w)``."""
    h, w = size
    hs, ws = source_clean.shape[-2:]
    d = source_protected[index].to(torch.int16) - source_clean[index].to(torch.int16)
    if hs < h or ws < w:
        d = d.repeat(1, 1, -(-h // hs), -(-w // ws))
    if d.shape[-2:] == (h, w):
        return d
    rows = tops.view(-1, 1) + torch.arange(h).view(1, -1)       # (n, h)
    cols = lefts.view(-1, 1) + torch.arange(w).view(1, -1)      # (n, w)
    n = torch.arange(len(index)).view(-1, 1, 1, 1)
    ch = torch.arange(d.shape[1]).view(1, -1, 1, 1)
    return d[n, ch, rows.view(len(index), 1, h, 1), cols.view(len(index), 1, 1, w)]


def move(source_clean: torch.Tensor, source_protected: torch.Tensor,
         source_labels: torch.Tensor, target: torch.Tensor, target_labels: torch.Tensor,
         seed: int = 0, norm: str | None = "linf", eps: float = 8 / 255) -> torch.Tensor:
    """The target images protected with the source's perturbations (uint8, the target's
    shape): see the module's docstring. ``norm`` and ``eps`` are the source protection's budget
    (``"linf"``, ``"l2"`` or None), checked on the result."""
    for name, t in (("source_clean", source_clean), ("source_protected", source_protected),
                    ("target", target)):
        if t.dtype != torch.uint8 or t.dim() != 4:
            raise ValueError(f"{name} must be uint8 (N, C, H, W), got {t.dtype} "
                             f"{tuple(t.shape)}")
    if source_clean.shape != source_protected.shape:
        raise ValueError(f"source_clean {tuple(source_clean.shape)} and source_protected "
                         f"{tuple(source_protected.shape)} differ in shape")
    if source_clean.shape[1] != target.shape[1]:
        raise ValueError(f"the source has {source_clean.shape[1]} channels, the target "
                         f"{target.shape[1]}")
    if len(source_labels) != len(source_clean) or len(target_labels) != len(target):
        raise ValueError("one label per image, for the source and the target")
    if norm not in ("linf", "l2", None):
        raise ValueError(f"norm must be 'linf', 'l2' or None, got {norm!r}")
    gen = torch.Generator().manual_seed(int(seed) + SEED_OFFSET)
    index = choose(source_labels, target_labels, gen)
    (hs, ws), (h, w) = source_clean.shape[-2:], target.shape[-2:]
    tops, lefts = _offsets(len(target), hs, h, gen), _offsets(len(target), ws, w, gen)
    budget = int(round(eps * 255))
    out = torch.empty_like(target)
    for i in range(0, len(target), CHUNK):
        sl = slice(i, i + CHUNK)
        d = moved_deltas(source_clean, source_protected, index[sl], (h, w), tops[sl],
                         lefts[sl])
        x = target[sl].to(torch.int16)
        if norm == "l2":
            df = d.float()
            n = df.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
            scaled = df * torch.where(n > 0, eps * 255.0 / n.clamp_min(1e-12),
                                      torch.zeros_like(n))
            r = scaled.round()  # re-quantised as Protection.to_uint8 does: rounded, and
            over = r.flatten(1).norm(dim=1) > eps * 255.0  # truncated where that is over
            r[over] = scaled[over].trunc()
            d = r.to(torch.int16)
        q = (x + d).clamp_(0, 255)
        if norm == "linf":
            worst = int((q - x).abs().max()) if q.numel() else 0
            if worst > budget:
                raise RuntimeError(f"moved perturbation of {worst} steps exceeds the L-inf "
                                   f"budget {budget}")
        elif norm == "l2":
            worst = float((q - x).float().flatten(1).norm(dim=1).max()) if q.numel() else 0.0
            if worst > eps * 255.0 + 1e-3:
                raise RuntimeError(f"moved perturbation of L2 norm {worst / 255:.4f} exceeds "
                                   f"the budget {eps:.4f}")
        out[sl] = q.to(torch.uint8)
    return out
