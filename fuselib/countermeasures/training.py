"""Training-time defences as countermeasures: the data pass unchanged, the trainer changes.

Each returns :class:`fuselib.train.Recipe` options through ``recipe``; the batch operations
live in :mod:`fuselib.defenses` (settings of the Deep Hiding paper's protocol by default).
"""
from __future__ import annotations

from . import REGISTRY
from .base import PassThrough


@REGISTRY.register("cutout", primary="size")
class Cutout(PassThrough):
    """One random ``size``×``size`` square per training image blanked (16 px on 32×32)."""

    def __init__(self, size: int = 16):
        if int(size) < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.size = int(size)

    @property
    def recipe(self):
        return {"cutout": self.size}


@REGISTRY.register("mixup", primary="alpha")
class MixUp(PassThrough):
    """Blend each training image with a random other one, λ ~ Beta(α, α) (α 1: uniform), and
    the two labels by λ."""

    mode = "mixup"

    def __init__(self, alpha: float = 1.0):
        if float(alpha) <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    @property
    def recipe(self):
        return {"mix": self.mode, "mix_alpha": self.alpha}


@REGISTRY.register("cutmix", primary="alpha")
class CutMix(MixUp):
    """Paste a random box (area fraction 1 − λ, λ ~ Beta(α, α)) from another image of the
    batch; labels mixed by area."""

    mode = "cutmix"


@REGISTRY.register("adv", primary="norm")
class AdversarialTraining(PassThrough):
    """Adversarial training with PGD (Madry et al.): ``norm`` "linf" (ε 8/255, step 2/255) or
    "l2" (ε 1, step 0.25), ``steps`` 10, random start. ``eps``/``step`` default per norm."""

    def __init__(self, norm: str = "linf", eps: float | None = None, steps: int = 10,
                 step: float | None = None):
        if norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
        self.norm = norm
        self.eps = float(eps) if eps is not None else (8 / 255 if norm == "linf" else 1.0)
        self.step = float(step) if step is not None else (
            2 / 255 if norm == "linf" else self.eps / 4)
        if self.eps <= 0 or self.step <= 0 or int(steps) < 1:
            raise ValueError("eps and step must be > 0 and steps >= 1")
        self.steps = int(steps)

    @property
    def recipe(self):
        return {"adv": self.norm, "adv_eps": self.eps, "adv_steps": self.steps,
                "adv_step": self.step}


@REGISTRY.register("ueraser", primary="k")
class UEraser(PassThrough):
    """UEraser-style adversarial augmentation: ``k`` strong random augmentations per image,
    train on the one with the highest loss (official K = 5)."""

    def __init__(self, k: int = 5):
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = int(k)

    @property
    def recipe(self):
        return {"ueraser": self.k}


@REGISTRY.register("early_stop")
class EarlyStop(PassThrough):
    """The attacker keeps the best epoch: the run's peak clean test accuracy is reported as its
    accuracy. An oracle (it picks the epoch by test accuracy), so an upper bound on what a
    held-out validation set would give; it reuses the ``none`` run rather than retraining."""

    uses_peak = True
