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

Parameters follow the scikit-learn habit: every ``__init__`` argument is stored as an
attribute of the same name, which is how :meth:`config` and :meth:`save` rebuild an object.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path

import torch

from ..data import check_images, check_labels

NORMS = ("linf", "l2", "l0", None)


def check_eps(eps) -> float:
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"eps must be a number in (0, 1], got {eps!r}") from None
    if not 0.0 < eps <= 1.0:
        raise ValueError(f"eps must be in (0, 1] (images are in [0, 1]; 8/255 is usual), "
                         f"got {eps}")
    return eps


def atomic_save(obj, path) -> Path:
    """``torch.save`` to a temporary name beside ``path``, then rename: never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


class Protection:
    """Base class: a named, configurable, savable perturbation of a training set."""

    name = "?"            # set by the registry
    primary = None        # the parameter a spec's bare value sets ("random:0.03" -> eps)
    norm = "linf"         # which budget apply() enforces: "linf", "l2", "l0" or None
    needs_fit = True      # apply() refuses to run before fit() when True
    state_keys: tuple = ()  # attributes holding the fitted state (tensors), saved by save()

    def __init__(self, eps: float = 8 / 255, seed: int = 0):
        self.eps = check_eps(eps)
        self.seed = int(seed)
        self.fitted = False

    # ------------------------------------------------------------------ description
    def config(self) -> dict:
        """The constructor arguments that rebuild this protection."""
        params = inspect.signature(type(self).__init__).parameters
        return {p: getattr(self, p) for p in params if p != "self"}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

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
        out = self.perturb(images.float() / 255.0, labels)
        if out.shape != images.shape:
            raise RuntimeError(f"{self.name}.perturb returned shape {tuple(out.shape)} "
                               f"for images {tuple(images.shape)}")
        return self.to_uint8(images, out)

    def to_uint8(self, images: torch.Tensor, protected: torch.Tensor) -> torch.Tensor:
        """Round to uint8 and enforce the budget there (after rounding, for every image)."""
        q = (protected.detach().to("cpu", torch.float32) * 255.0).round()
        if self.norm == "linf":
            lo = images.float() - self.budget
            q = torch.minimum(torch.maximum(q, lo), images.float() + self.budget)
        return q.clamp_(0, 255).to(torch.uint8)

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
        from .. import __version__

        if self.needs_fit and not self.fitted:
            raise RuntimeError(f"{self.name}: nothing to save before fit()")
        return atomic_save({"format": "fuselib.protection/1", "version": __version__,
                            "name": self.name, "config": self.config(),
                            "state": self.state_dict()}, path)
