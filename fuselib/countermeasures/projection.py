"""Orthogonal projection (Sandoval-Segura et al., "What Can We Learn from Unlearnable
Datasets?", NeurIPS 2023): class-wise perturbations are nearly linearly separable, so a linear
model trained on the protected set finds them; projecting its class directions out of every
image removes them, and a network trained afterwards learns the content.

Official code (psandovalsegura/learn-from-unlearnable, ``orthogonal_projection_step_1.py``):
a bias-free linear layer on flattened [0, 1] images, SGD lr 0.1, batch 1024, 20 epochs, lr ×0.1
at 50% and 75%; the weight rows are normalised, orthonormalised (QR), and each image's component
along them is subtracted. Deviation: the projection is taken about the dataset's mean image
(``x − Σ⟨x − μ, q⟩ q``) and clipped to [0, 1], because the classifier here reads uint8 images in
the original range; the official trains on the unclipped float projection.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import check_count
from . import REGISTRY
from .base import Countermeasure


@REGISTRY.register("orthogonal", primary="epochs")
class OrthogonalProjection(Countermeasure):
    paper = "Sandoval-Segura et al., NeurIPS 2023"
    official = "psandovalsegura/learn-from-unlearnable"
    kind = "learned"
    needs_labels = True

    def __init__(self, epochs: int = 20, lr: float = 0.1, batch_size: int = 1024, seed: int = 0):
        if not float(lr) > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        self.epochs, self.lr = check_count("epochs", epochs), float(lr)
        self.batch_size, self.seed = check_count("batch_size", batch_size), int(seed)

    def fit_directions(self, images, labels) -> torch.Tensor:
        """Train the linear model; return its orthonormalised class directions ``(C, D)``."""
        torch.manual_seed(self.seed)
        x = images.flatten(1).float() / 255
        n_cls = int(labels.max()) + 1
        w = torch.zeros(n_cls, x.shape[1], requires_grad=True)
        torch.nn.init.kaiming_uniform_(w, a=5 ** 0.5)  # nn.Linear's default init
        opt = torch.optim.SGD([w], lr=self.lr)
        sched = torch.optim.lr_scheduler.MultiStepLR(
            opt, [int(self.epochs * 0.5), int(self.epochs * 0.75)])
        for _ in range(self.epochs):
            for i in range(0, len(labels), self.batch_size):  # unshuffled, as the official
                loss = F.cross_entropy(x[i:i + self.batch_size] @ w.T, labels[i:i + self.batch_size])
                opt.zero_grad()
                loss.backward()
                opt.step()
            sched.step()
        with torch.no_grad():
            self.linear_accuracy = float(((x @ w.T).argmax(1) == labels).float().mean())
            v = w.detach() / w.detach().norm(dim=1, keepdim=True).clamp_min(1e-12)
            q, _ = torch.linalg.qr(v.T.double())
        return q.T.float()

    def __call__(self, images, labels=None):
        images, labels = self._check(images, labels)
        q = self.fit_directions(images, labels)
        self.directions = q
        x = images.flatten(1).float() / 255
        mu = x.mean(0, keepdim=True)
        out = x - ((x - mu) @ q.T) @ q
        return (out.view_as(images.float()) * 255).round().clamp(0, 255).to(torch.uint8)
