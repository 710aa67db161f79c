"""The small surrogate classifier that the model-based protections share (EM, REM, PUE, TAP's
helpers, GUE, UC): a ``fastnet`` of widths 32-64-128 on the CPU (:data:`SMALL`), trained with
the official unlearnable-examples settings — SGD lr 0.1, momentum 0.9, weight decay 5e-4,
gradient-norm clip 5, no augmentation (HanxunH/Unlearnable-Examples).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import models

SMALL = {"widths": (32, 64, 128)}  # the CPU surrogate's widths (fastnet)


class SurrogateMixin:
    """A surrogate classifier trained with the official UE settings (SGD 0.1, no aug)."""

    def _make_surrogate(self, n_classes: int, size: int, channels: int, device):
        kw = dict(SMALL) if self.surrogate == "fastnet" else {}
        model = models.get(self.surrogate, n_classes, image_size=size, in_channels=channels,
                           **kw).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9, weight_decay=5e-4)
        return model, opt

    @staticmethod
    def _step(model, opt, x, y):
        model.train()
        loss = F.cross_entropy(model(x - 0.5), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.item()

    @staticmethod
    @torch.no_grad()
    def _accuracy(model, x, y, batch_size=1000):
        model.eval()
        correct = 0
        for i in range(0, len(y), batch_size):
            correct += (model(x[i:i + batch_size] - 0.5).argmax(1) == y[i:i + batch_size]).sum()
        return correct.item() / len(y)
