"""The protection interface every unlearnable-example method implements.

A protection turns clean uint8 training images into protected uint8 images::

    p = fuselib.protections.get("random", eps=8/255, seed=0)
    p.fit(images, labels)                 # train a surrogate/generator; no-op for some methods
    protected = p.apply(images, labels)   # uint8, same shape, within the budget after rounding
    p.save("random.pt"); p2 = fuselib.protections.load("random.pt")

Subclasses implement :meth:`fit` (when they learn something) and :meth:`perturb`, which
works on float images in ``[0, 1]``. :meth:`apply` validates the input, calls ``perturb`` and
enforces the budget on the *uint8* result, so the guarantee ``‖protected − images‖∞ ≤
round(ε·255)`` holds for every image whatever ``perturb`` returns.

Parameters follow the scikit-learn habit (:class:`fuselib.registry.Configurable`): every
``__init__`` argument is stored as an attribute of the same name, which is how ``config()`` and
:meth:`save` rebuild an object.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from ..data import check_images, check_labels
from ..registry import Configurable
from ..utils import atomic_save

NORMS = ("linf", "l2", "l0", None)
CHUNK = 512  # images rounded to uint8 at a time by Protection.to_uint8


@contextlib.contextmanager
def reproducible_cuda():
    """cuDNN in deterministic mode, without TF32, for the duration (restored after).

    A protection's output is rounded to uint8, so the tiny float differences between two cuDNN
    convolution algorithms (or TF32 against full fp32) turn into ±1 changes of a few pixels:
    without this, applying the same fitted network twice on one GPU need not give the same
    images. Nothing changes on a machine without CUDA."""
    if not torch.cuda.is_available():
        yield
        return
    b = torch.backends
    saved = (b.cudnn.deterministic, b.cudnn.benchmark, b.cudnn.allow_tf32,
             b.cuda.matmul.allow_tf32)
    b.cudnn.deterministic, b.cudnn.benchmark = True, False
    b.cudnn.allow_tf32 = b.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        (b.cudnn.deterministic, b.cudnn.benchmark, b.cudnn.allow_tf32,
         b.cuda.matmul.allow_tf32) = saved


def check_eps(eps, upper: float = 1.0) -> float:
    """Validate a budget: a number in ``(0, upper]`` (images are in [0, 1])."""
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"eps must be a number in (0, {upper:g}], got {eps!r}") from None
    if not 0.0 < eps <= upper:
        hint = "; 8/255 is usual for L-inf" if upper == 1.0 else ""
        raise ValueError(f"eps must be in (0, {upper:g}] (images are in [0, 1]{hint}), "
                         f"got {eps}")
    return eps


def linf_step(x: torch.Tensor, d: torch.Tensor, grad: torch.Tensor, step: float,
              radius: float) -> torch.Tensor:
    """One signed-gradient step of a perturbation ``d`` of images ``x`` in [0, 1] (``step`` < 0
    descends), projected to ``‖d‖∞ ≤ radius`` and to valid images; detached."""
    with torch.no_grad():
        d = (d + step * grad.sign()).clamp(-radius, radius)
        return ((x + d).clamp(0, 1) - x).detach()


def to_steps(delta: torch.Tensor) -> torch.Tensor:
    """A float perturbation (image units, [0, 1] scale) as int8 uint8-steps: 4× smaller to keep
    and, since clean uint8 images are whole steps, ``apply()`` rounds to the same result."""
    return (delta.detach().cpu().float() * 255).round().clamp(-127, 127).to(torch.int8)


def as_float(delta: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_steps` (float tensors pass through)."""
    return delta.float() / 255 if delta.dtype == torch.int8 else delta


class Protection(Configurable):
    """Base class: a named, configurable, savable perturbation of a training set."""

    norm = "linf"         # which budget apply() enforces: "linf", "l2" or None (see to_uint8)
    # for the README's methods table: citation, official repo ("owner/name"), deviation from it
    paper = ""
    official = ""
    deviation = ""
    eps_max = 1.0         # largest eps accepted (an L2 radius may exceed 1)
    needs_fit = True      # apply() refuses to run before fit() when True
    state_keys: tuple = ()  # attributes holding the fitted state (tensors), saved by save()
    checkpoints = False   # fit() saves its progress to, and resumes from, self.checkpoint (a path)

    def __init__(self, eps: float = 8 / 255, seed: int = 0):
        self.eps = check_eps(eps, self.eps_max)
        self.seed = int(seed)
        self.fitted = False

    @property
    def budget(self) -> int:
        """The L∞ budget in uint8 steps, ``round(ε·255)``."""
        return int(round(self.eps * 255))

    # ------------------------------------------------------------------ the interface
    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> "Protection":
        images = check_images(images)
        labels = check_labels(labels, images.shape[0])
        self._fit(images, labels)
        self.fitted = True
        return self

    def _fit(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Learn whatever the method needs (uint8 images, int64 labels)."""

    def perturb(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Return the protected version of float images ``x`` in [0, 1] (not yet rounded)."""
        raise NotImplementedError

    def apply(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        images = check_images(images)
        if labels is not None:
            labels = check_labels(labels, images.shape[0])
        if self.needs_fit and not self.fitted:
            raise RuntimeError(f"{self.name}: call fit(images, labels) before apply()")
        with reproducible_cuda():
            out = self.perturb(images.float().div_(255.0), labels)
        if out.shape != images.shape:
            raise RuntimeError(f"{self.name}.perturb returned shape {tuple(out.shape)} "
                               f"for images {tuple(images.shape)}")
        return self.to_uint8(images, out)

    def to_uint8(self, images: torch.Tensor, protected: torch.Tensor) -> torch.Tensor:
        """Round to uint8 and enforce the budget there (after rounding, for every image).

        ``linf``: each pixel is clipped to ``images ± round(ε·255)``. ``l2``: an image whose
        rounded perturbation exceeds ``‖δ‖₂ ≤ ε`` (in [0, 1] units) is re-quantised by
        truncation toward zero of its perturbation scaled to the budget, which cannot exceed
        it. ``None``: not norm-bounded (OPS, CUDA), only clipped to [0, 255].

        Every step is per image, so it runs :data:`CHUNK` images at a time: on a whole set at
        once its float temporaries are several times the set's float size
        (``bench/apply_memory.py``: ``apply`` on Imagenette's 9,469 training images at 128 px
        peaks at half the memory this way, 6.7 GB against 12.1 GB, with the same images).
        """
        out = torch.empty_like(images)
        for i in range(0, len(images), CHUNK):
            out[i:i + CHUNK] = self._to_uint8(images[i:i + CHUNK], protected[i:i + CHUNK])
        return out

    def _to_uint8(self, images: torch.Tensor, protected: torch.Tensor) -> torch.Tensor:
        x = images.float()
        q = (protected.detach().to("cpu", torch.float32) * 255.0).round().clamp_(0, 255)
        if self.norm == "linf":
            q = torch.minimum(torch.maximum(q, x - self.budget), x + self.budget)
        elif self.norm == "l2":
            d = protected.detach().to("cpu", torch.float32) * 255.0 - x
            over = (q - x).flatten(1).norm(dim=1) > self.eps * 255.0
            if bool(over.any()):
                dn = d[over].flatten(1).norm(dim=1).clamp_min(1e-12)
                scale = (self.eps * 255.0 / dn).clamp(max=1.0).view(-1, 1, 1, 1)
                q[over] = (x[over] + (d[over] * scale).trunc()).clamp(0, 255)
        return q.to(torch.uint8)

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.state_keys}

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.state_keys) - set(state)
        if missing:
            raise ValueError(f"{self.name}: saved state lacks {sorted(missing)}")
        for k in self.state_keys:
            setattr(self, k, state[k])
        self.fitted = True

    def save(self, path) -> Path:
        from ..version import __version__

        if self.needs_fit and not self.fitted:
            raise RuntimeError(f"{self.name}: nothing to save before fit()")
        return atomic_save({"format": "fuselib.protection/1", "version": __version__,
                            "name": self.name, "config": self.config(),
                            "state": self.state_dict()}, path)
