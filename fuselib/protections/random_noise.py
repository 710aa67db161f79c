"""``random``: uniform noise in [-ε, ε], class-wise or sample-wise — the control.

Random noise of the same budget as an unlearnable example should *not* stop learning; it is
the baseline that shows a protection's effect comes from its structure, not its size. Class-wise
noise is still one fixed pattern a class, which a long enough training can learn as a shortcut:
RESULTS.md's main table measures it at ``cpu`` and ``full`` scale.
"""
import torch

from . import REGISTRY
from .base import Protection


@REGISTRY.register("random", primary="eps")
class RandomNoise(Protection):
    """Uniform noise ``δ ~ U[-ε, ε]``.

    ``mode="class"``: one noise image per class, drawn at :meth:`fit` (needs labels at apply).
    ``mode="sample"``: fresh noise for every image, drawn from ``seed`` at apply time.
    """

    state_keys = ("deltas",)
    paper = ""
    official = ""
    deviation = "none known"

    def __init__(self, eps: float = 8 / 255, seed: int = 0, mode: str = "class"):
        super().__init__(eps, seed)
        if mode not in ("class", "sample"):
            raise ValueError(f"mode must be 'class' or 'sample', got {mode!r}")
        self.mode = mode
        self.needs_fit = mode == "class"
        self.state_keys = ("deltas",) if mode == "class" else ()
        self.deltas = None

    def _uniform(self, shape) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        return (torch.rand(shape, generator=g) * 2 - 1) * self.eps

    def _fit(self, images, labels):
        if self.mode == "class":
            n_classes = int(labels.max()) + 1
            self.deltas = self._uniform((n_classes, *images.shape[1:]))

    def perturb(self, x, labels):
        if self.mode == "sample":
            return x + self._uniform(x.shape)
        if labels is None:
            raise ValueError("class-wise random noise needs labels at apply()")
        if x.shape[1:] != self.deltas.shape[1:]:
            raise ValueError(f"images of shape {tuple(x.shape[1:])} do not match the fitted "
                             f"noise {tuple(self.deltas.shape[1:])}")
        if int(labels.max()) >= self.deltas.shape[0]:
            raise ValueError(f"label {int(labels.max())} was not seen at fit "
                             f"({self.deltas.shape[0]} classes)")
        return x + self.deltas[labels]
