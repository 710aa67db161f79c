"""The countermeasure interface: what an unauthorised trainer does to the data it scraped.

A countermeasure is a callable from a uint8 batch ``(N, C, H, W)`` to a uint8 batch of the same
shape::

    cm = fuselib.countermeasures.get("lowpass", cutoff=0.25)
    seen_by_attacker = cm(protected)

Subclasses implement :meth:`transform` on float images in ``[0, 1]``; the base class
validates, works in chunks (bounded memory on 50k images), rounds and clips back to uint8.
"""
from __future__ import annotations

import torch

from ..data import check_images
from ..registry import Configurable


class Countermeasure(Configurable):
    chunk = 4096  # images per transform call

    def __init__(self):
        pass

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] -> float images (clipped to [0, 1] afterwards)."""
        raise NotImplementedError

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        images = check_images(images)
        out = torch.empty_like(images)
        for i in range(0, images.shape[0], self.chunk):
            x = images[i:i + self.chunk].float() / 255.0
            y = self.transform(x)
            out[i:i + self.chunk] = (y * 255.0).round().clamp_(0, 255).to(torch.uint8)
        return out
