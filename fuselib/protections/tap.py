"""``tap``: targeted adversarial poisoning (Fowl et al., NeurIPS 2021).

Train a surrogate classifier on the clean data, then push every training image towards a
*wrong* class with targeted PGD (error-maximising for the true label): ``y → (y + 1) mod C``,
``‖δ‖∞ ≤ ε``. A network trained on the result learns features that point at the wrong classes.
Sample-wise: apply() needs the very images given to fit, in the same order.

Official code (lhfowl/adversarial_poisons, ``anneal.py --recipe targeted --eps 8``):
ResNet-18 surrogate trained 40 epochs on clean data; 250 signed PGD steps per image of size
0.05·ε, random start, 8 restarts (the README suggests 1 to save time), differentiable flip +
translation augmentation at every step, surrogate in eval mode. **CPU default here**
(``cost``): the ``fast`` trainer's fastnet surrogate (``surrogate_epochs``), ``steps=40`` of size
``2.5·ε/steps``, one restart, the same augmentation (``fast=True``: the PGD passes in bf16
autocast where the device has it); ``steps=250, step_size=0.05*eps,
surrogate="resnet18"`` for the paper setting.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import check_count
from ..train import augment, autocast, train
from ..utils import default_device
from . import REGISTRY
from .base import Protection, as_float, linf_step, to_steps


@REGISTRY.register("tap")
class TargetedAdversarialPoisoning(Protection):
    state_keys = ("deltas",)
    paper = "Fowl et al., NeurIPS 2021"
    official = "lhfowl/adversarial_poisons"
    deviation = "CPU default: fastnet surrogate, 40 PGD steps (official: ResNet-18, 250 steps)"
    later_defaults = {"fast": False}

    def __init__(self, eps: float = 8 / 255, seed: int = 0, steps: int = 40,
                 step_size: float | None = None, surrogate: str = "fastnet",
                 surrogate_epochs: int = 10, batch_size: int = 512, augment: bool = True,
                 fast: bool = False):
        super().__init__(eps, seed)
        self.steps, self.surrogate = check_count("steps", steps), surrogate
        if step_size is not None and not float(step_size) > 0:
            raise ValueError(f"step_size must be > 0 (or None: 2.5·eps/steps), got {step_size}")
        self.step_size = float(step_size) if step_size is not None else 2.5 * self.eps / self.steps
        self.surrogate_epochs = check_count("surrogate_epochs", surrogate_epochs)
        self.batch_size = check_count("batch_size", batch_size)
        self.augment, self.fast = bool(augment), bool(fast)
        self.deltas = None
        self.device = default_device()

    @property
    def cost(self) -> str:
        return (f"surrogate {self.surrogate} trained {self.surrogate_epochs} epochs on clean "
                f"data; {self.steps} targeted PGD steps per image")

    def _fit(self, images, labels):
        dev = self.device
        n_classes = int(labels.max()) + 1
        probe = torch.arange(0, len(labels), max(1, len(labels) // 1000))
        res = train(images, labels, images[probe], labels[probe], "fast", seed=self.seed,
                    device=dev, num_classes=n_classes, arch=self.surrogate,
                    epochs=self.surrogate_epochs, progress=False,
                    batch_size=min(512, max(32, len(labels) // 8)))  # >= 8 steps an epoch
        model = res["model"].eval()
        self.surrogate_accuracy = res["accuracy"]
        for p in model.parameters():
            p.requires_grad_(False)
        gen = torch.Generator().manual_seed(self.seed)
        deltas = torch.empty(images.shape, dtype=torch.float32)
        for i in range(0, len(labels), self.batch_size):
            x = images[i:i + self.batch_size].to(dev).float() / 255
            target = (labels[i:i + self.batch_size].to(dev) + 1) % n_classes
            d = (torch.randn(x.shape, generator=gen) * self.eps).clamp(-self.eps, self.eps).to(dev)
            for _ in range(self.steps):
                d.requires_grad_(True)
                z = (x + d).clamp(0, 1) - 0.5
                if self.augment:
                    z = augment(z, gen, translate=4, pad_mode="constant", flip=True)
                loss = F.cross_entropy(self._logits(model, z), target)
                (g,) = torch.autograd.grad(loss, d)
                d = linf_step(x, d, g, -self.step_size, self.eps)
            deltas[i:i + self.batch_size] = d.cpu()
        self.deltas = to_steps(deltas)  # int8 uint8-steps: exact after apply()'s rounding
        self.surrogate_model = model  # kept for inspection; not part of the saved state

    def _logits(self, model, z):
        """The surrogate on model-scale inputs ``z``; ``fast``: bf16 autocast where the device
        has it, channels_last (the surrogate itself is always trained by the fast recipe)."""
        if not self.fast:
            return model(z.contiguous())
        with autocast(z.device, "auto"):
            return model(z.contiguous(memory_format=torch.channels_last)).float()

    def perturb(self, x, labels):
        if x.shape != self.deltas.shape:
            raise ValueError(f"tap was fitted on {tuple(self.deltas.shape)} images; apply() got "
                             f"{tuple(x.shape)} (pass the same images, same order)")
        return x + as_float(self.deltas)
