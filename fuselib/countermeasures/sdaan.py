"""``sdaan``: stronger data augmentation with adversarial noise, SDA+AN (Zhu, Yu and Gao,
"Detection and Defense of Unlearnable Examples", AAAI 2024; repository hala64/udp,
``sdaan.py``).

An unlearnable shortcut is nearly linearly separable, so a simple network fits it. The defence
turns that against the shortcut in two steps:

1. **adversarial noise (AN)**: a two-layer network (one hidden ReLU layer) is trained
   adversarially on the protected set — PGD at L∞ 8/255, step 2/255, 10 steps, SGD with
   momentum 0.9 and weight decay 5e-4, the learning rate ×0.1 at 75% and 90% of the epochs —
   then every training image gets its own PGD perturbation against that network added (within
   8/255, clipped to the image range): the noise pushes each image across the boundary the
   simple network learned, the shortcut's;
2. **stronger data augmentation (SDA)**: the classifier trains on the noised images with the
   ``sda`` training-time defence at ``strength`` (:class:`.training.StrongAugment`: random
   resized crop, colour jitter, grayscale), which the countermeasure switches on through its
   :attr:`recipe`.

Official settings: hidden layer as wide as the input (3,072 units on CIFAR-10), 100 epochs at
lr 0.01, batch 128, the AN recomputed every 10 epochs (the last kept), strength 1.0. Deviations
for the CPU: ``hidden`` 512 and ``epochs`` 20 by default (both settings), and the AN computed
once, after the last epoch.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import check_count
from . import REGISTRY
from .base import Countermeasure
from .training import pgd


def two_layer(dim: int, hidden: int, n_classes: int) -> nn.Module:
    """The AN network: flatten, one hidden ReLU layer, the class scores."""
    return nn.Sequential(nn.Flatten(), nn.Linear(dim, hidden), nn.ReLU(),
                         nn.Linear(hidden, n_classes))


@REGISTRY.register("sdaan", primary="strength")
class SdaAn(Countermeasure):
    paper = "Zhu, Yu and Gao, AAAI 2024 (SDA+AN)"
    official = "hala64/udp"
    kind = "learned"
    needs_labels = True

    def __init__(self, strength: float = 1.0, hidden: int = 512, epochs: int = 20,
                 eps: float = 8 / 255, lr: float = 0.01, batch_size: int = 128, seed: int = 0):
        if not 0 < float(strength) <= 1:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        if not 0 < float(eps) <= 1:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        if not float(lr) > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.strength, self.eps, self.lr = float(strength), float(eps), float(lr)
        self.hidden, self.epochs = check_count("hidden", hidden), check_count("epochs", epochs)
        self.batch_size, self.seed = check_count("batch_size", batch_size), int(seed)

    @property
    def recipe(self):
        return {"sda": self.strength}

    def _attack(self, model, x, y, gen):
        return pgd(model, x, y, "linf", self.eps, 10, 2 / 255, gen)

    def fit_network(self, x: torch.Tensor, y: torch.Tensor, gen: torch.Generator) -> nn.Module:
        """Adversarial training of the two-layer network on model-scale images ``x``."""
        model = two_layer(x[0].numel(), self.hidden, int(y.max()) + 1)
        opt = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9, weight_decay=5e-4)
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, [int(self.epochs * 0.75), int(self.epochs * 0.9)], gamma=0.1)
        for _ in range(self.epochs):
            perm = torch.randperm(len(y), generator=gen)
            for i in range(0, len(y), self.batch_size):
                idx = perm[i:i + self.batch_size]
                xa = self._attack(model, x[idx], y[idx], gen)
                loss = F.cross_entropy(model(xa), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
        return model

    def __call__(self, images, labels=None):
        images, labels = self._check(images, labels)
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        x = images.float() / 255 - 0.5  # the trainer's input scale, range [-0.5, 0.5]
        model = self.fit_network(x, labels, gen)
        out = torch.empty_like(images)
        for i in range(0, len(labels), 1024):
            xa = self._attack(model, x[i:i + 1024], labels[i:i + 1024], gen)
            out[i:i + 1024] = ((xa + 0.5) * 255).round().clamp(0, 255).to(torch.uint8)
        return out
