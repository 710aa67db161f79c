"""``pil``: Perturbation-Induced Linearization (Jin et al., "Perturbation-Induced
Linearization: Constructing Unlearnable Data with Solely Linear Classifiers", ICLR 2026;
repository jinlinll/pil, ``attacks.py`` and ``main.py``): an unlearnable-example attack whose
only surrogate is a linear classifier, so it costs seconds on a CPU.

1. A linear surrogate ``f(x) = W₂ W₁ x`` (two bias-free linear maps, ``3·H·W → C → C``, as the
   official ``LinearModel``) is trained on the clean images in [0, 1] (no augmentation): SGD,
   momentum 0.9, no weight decay, cosine schedule, ``surrogate_epochs`` (official 30) epochs of
   ``batch_size`` (512) at rate ``lr`` (0.003).
2. Each image's noise ``n`` (``‖n‖∞ ≤ ε``, uniform random start) takes ``steps`` (30) signed
   gradient-descent steps of ``step_size`` (ε/10) on
   ``λ · CE(f(n), y) + (1 − λ) · KL(uniform ‖ softmax f(x − n))``, ``λ = 0.9``: the noise alone
   must be classified as the image's label by the linear model (a linear shortcut) while the
   image without it carries no linear evidence for any class. The protected image is
   ``clip(x − n, 0, 1)``.

Sample-wise, L∞ 8/255. Model-free at apply time apart from the fitted linear weights (saved),
so any images with labels can be protected after fit. Deviations from the official code: our
own surrogate training loop (seeded, on the CPU) and a seeded random start per batch of
:data:`BATCH` images (the official perturbs its loader's batches of 512 the same way).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..registry import check_count
from . import REGISTRY
from .base import Protection

BATCH = 512  # images perturbed at a time (each batch's random start has its own seed)


@REGISTRY.register("pil", primary="eps")
class PerturbationInducedLinearization(Protection):
    state_keys = ("w1", "w2")
    paper = "Jin et al., ICLR 2026"
    official = "jinlinll/pil"
    deviation = "own seeded surrogate loop on the CPU; per-batch seeded random start"

    def __init__(self, eps: float = 8 / 255, seed: int = 0, steps: int = 30,
                 step_size: float | None = None, lmd: float = 0.9, surrogate_epochs: int = 30,
                 lr: float = 0.003, batch_size: int = 512):
        super().__init__(eps, seed)
        self.steps = check_count("steps", steps)
        if step_size is not None and not float(step_size) > 0:
            raise ValueError(f"step_size must be > 0 (or None: eps/10), got {step_size}")
        self.step_size = float(step_size) if step_size is not None else self.eps / 10
        if not 0.0 <= float(lmd) <= 1.0:
            raise ValueError(f"lmd must be in [0, 1] (weight of the noise's CE term), got {lmd}")
        self.lmd = float(lmd)
        self.surrogate_epochs = check_count("surrogate_epochs", surrogate_epochs)
        if not float(lr) > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.lr = float(lr)
        self.batch_size = check_count("batch_size", batch_size)
        self.w1 = self.w2 = None

    @property
    def cost(self) -> str:
        return (f"linear surrogate trained {self.surrogate_epochs} epochs; {self.steps} signed "
                "steps per image")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w1.T @ self.w2.T

    def _fit(self, images, labels):
        n_classes = int(labels.max()) + 1
        dim = images[0].numel()
        gen = torch.Generator().manual_seed(self.seed)
        # nn.Linear's default init: uniform in ±1/sqrt(fan_in)
        w1 = ((torch.rand(n_classes, dim, generator=gen) * 2 - 1) / math.sqrt(dim))
        w2 = ((torch.rand(n_classes, n_classes, generator=gen) * 2 - 1) / math.sqrt(n_classes))
        w1.requires_grad_(True)
        w2.requires_grad_(True)
        opt = torch.optim.SGD([w1, w2], lr=self.lr, momentum=0.9, weight_decay=0.0)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.surrogate_epochs)
        n = images.shape[0]
        for _ in range(self.surrogate_epochs):
            perm = torch.randperm(n, generator=gen)
            for i in range(0, n, self.batch_size):
                idx = perm[i:i + self.batch_size]
                x = images[idx].float().div_(255).flatten(1)
                loss = F.cross_entropy(x @ w1.T @ w2.T, labels[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sched.step()
        self.w1, self.w2 = w1.detach(), w2.detach()

    def perturb(self, x, labels):
        if labels is None:
            raise ValueError("pil needs labels at apply()")
        n_classes = self.w2.shape[0]
        if int(labels.max()) >= n_classes:
            raise ValueError(f"label {int(labels.max())} was not seen at fit")
        if x[0].numel() != self.w1.shape[1]:
            raise ValueError(f"images of {tuple(x.shape[1:])} do not match the fitted "
                             f"surrogate's {self.w1.shape[1]} inputs")
        uniform = torch.full((n_classes,), 1.0 / n_classes)
        out = torch.empty_like(x)
        for b, i in enumerate(range(0, x.shape[0], BATCH)):
            xb, yb = x[i:i + BATCH], labels[i:i + BATCH]
            gen = torch.Generator().manual_seed(self.seed * 100003 + b)
            noise = (torch.rand(xb.shape, generator=gen) * 2 - 1) * self.eps
            for _ in range(self.steps):
                noise.requires_grad_(True)
                ce = F.cross_entropy(self.logits(noise), yb)
                logp = F.log_softmax(self.logits(xb - noise), 1)
                kl = F.kl_div(logp, uniform.expand_as(logp), reduction="batchmean")
                loss = self.lmd * ce + (1 - self.lmd) * kl
                grad, = torch.autograd.grad(loss, noise)
                noise = (noise.detach() - self.step_size * grad.sign()).clamp(-self.eps, self.eps)
            out[i:i + BATCH] = (xb - noise.detach()).clamp(0, 1)
        return out
