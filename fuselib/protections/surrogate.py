"""The small surrogate classifier that the model-based protections share (EM, REM, PUE, TAP's
helpers, GUE, UC): a ``fastnet`` of widths 32-64-128 on the CPU (:data:`SMALL`), trained with
the official unlearnable-examples settings — SGD lr 0.1, momentum 0.9, weight decay 5e-4,
gradient-norm clip 5, no augmentation (HanxunH/Unlearnable-Examples).

``fast=True`` (a protection's setting, off by default so shipped fits keep their keys) runs the
surrogate's passes in bf16 autocast where the device has native bf16, channels_last: the fit's
cost, not its objective (``bench/fits.py em em:fast=True``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import models
from ..train import autocast

SMALL = {"widths": (32, 64, 128)}  # the CPU surrogate's widths (fastnet)


def forward(model, x: torch.Tensor, fast: bool = False) -> torch.Tensor:
    """The surrogate's logits for images ``x`` in [0, 1] (input scale ``x - 0.5``); with
    ``fast``, in bf16 autocast where the device has it and channels_last (float32 logits)."""
    if not fast:
        return model(x - 0.5)
    with autocast(x.device, "auto"):
        return model((x - 0.5).contiguous(memory_format=torch.channels_last)).float()


class SurrogateMixin:
    """A surrogate classifier trained with the official UE settings (SGD 0.1, no aug)."""

    def _make_surrogate(self, n_classes: int, size: int, channels: int, device):
        kw = dict(SMALL) if self.surrogate == "fastnet" else {}
        model = models.get(self.surrogate, n_classes, image_size=size, in_channels=channels,
                           **kw).to(device)
        if getattr(self, "fast", False):
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr=self.lr, momentum=0.9, weight_decay=5e-4)
        return model, opt

    def _logits(self, model, x):
        return forward(model, x, getattr(self, "fast", False))

    def _step(self, model, opt, x, y):
        model.train()
        loss = F.cross_entropy(self._logits(model, x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        return loss.item()

    @torch.no_grad()
    def _accuracy(self, model, x, y, batch_size=1000):
        model.eval()
        correct = 0
        for i in range(0, len(y), batch_size):
            logits = self._logits(model, x[i:i + batch_size])
            correct += (logits.argmax(1) == y[i:i + batch_size]).sum()
        return correct.item() / len(y)
