"""The countermeasure interface: what an unauthorised trainer does to learn from the data it
scraped.

Three kinds share one call, ``cm(images, labels=None) -> uint8 images`` (same shape):

* **preprocessing** (filters, squeezing, JPEG): subclasses implement :meth:`transform` on float
  images in ``[0, 1]``; the base class validates, works in chunks (bounded memory on 50k
  images), rounds and clips back to uint8;
* **learned preprocessing** (orthogonal projection, purification): override :meth:`__call__`,
  learn from the protected set itself (labels when ``needs_labels``), then transform it;
* **training-time defences** (cutout, mixup, adversarial training, UEraser...): the data pass
  through unchanged and :attr:`recipe` returns the trainer options to switch on
  (:class:`fuselib.train.Recipe` fields), which the experiment runner merges into its config.

::

    cm = fuselib.countermeasures.get("lowpass", cutoff=0.25)
    seen_by_attacker = cm(protected)
"""
from __future__ import annotations

import torch

from ..data import check_images, check_labels
from ..registry import Configurable


class Countermeasure(Configurable):
    chunk = 4096          # images per transform call
    needs_labels = False  # True for countermeasures that learn from the labels
    kind = "preprocessing"  # "preprocessing", "learned" or "training"
    uses_peak = False     # True: the attacker keeps the best epoch (early stopping)

    def __init__(self):
        pass

    @property
    def recipe(self) -> dict:
        """Trainer options this countermeasure switches on (``Recipe`` fields)."""
        return {}

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Float images in [0, 1] -> float images (clipped to [0, 1] afterwards)."""
        raise NotImplementedError

    def _check(self, images, labels):
        images = check_images(images)
        if labels is not None:
            labels = check_labels(labels, images.shape[0])
        elif self.needs_labels:
            raise ValueError(f"countermeasure {self.name!r} learns from the labels: "
                             f"call it as cm(images, labels)")
        return images, labels

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        images, labels = self._check(images, labels)
        out = torch.empty_like(images)
        for i in range(0, images.shape[0], self.chunk):
            x = images[i:i + self.chunk].float() / 255.0
            y = self.transform(x)
            out[i:i + self.chunk] = (y * 255.0).round().clamp_(0, 255).to(torch.uint8)
        return out


class Seeded(Countermeasure):
    """A countermeasure that draws random numbers (``self.seed`` set by the subclass): one
    generator, seeded afresh at every call, so the same call on the same images gives the same
    images; :attr:`gen` also serves ``transform`` called on its own."""

    seed = 0
    _gen = None

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self._gen = torch.Generator().manual_seed(self.seed)
        return super().__call__(images, labels)

    @property
    def gen(self) -> torch.Generator:
        if self._gen is None:
            self._gen = torch.Generator().manual_seed(self.seed)
        return self._gen


class PassThrough(Countermeasure):
    """Data unchanged (a copy); subclasses change the training instead."""

    kind = "training"

    def __call__(self, images, labels=None):
        images, _ = self._check(images, labels)
        return images.clone()
