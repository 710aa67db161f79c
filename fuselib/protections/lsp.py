"""``lsp``: linearly separable synthetic perturbations (Yu et al., KDD 2022).

Synthetic points are drawn from one Gaussian cluster per class in ``(32/patch)² · 3``
dimensions (48 for 8×8 patches), cluster centres on the vertices of a hypercube of side
``2 · class_sep`` — the recipe of scikit-learn's ``make_classification`` that the official
code calls. Each point is reshaped to a ``4×4×3`` grid, blown up to 32×32 by repeating every
value over an 8×8 patch (nearest neighbour), and the patch image is scaled to the L2 norm of a
uniform ``eps_pixel/255`` image: ``eps = 6/255·√3072 ≈ 1.30`` in [0, 1] units, the official
default. Each image gets its own point from its class's cluster. Model-free.

Deviation from the official code (dayu11/Availability-Attacks-Create-Shortcuts): the cluster
draw is our own implementation of make_classification's hypercube recipe (no sklearn
dependency), so the points are not bit-identical; uint8 conversion rounds where the official
code truncates.
"""
import math

import torch

from ..registry import check_count
from . import REGISTRY
from .base import Protection


@REGISTRY.register("lsp", primary="eps")
class LinearSeparablePerturbation(Protection):
    norm = "l2"
    eps_max = 64.0
    state_keys = ("centres", "transforms")
    paper = "Yu et al., KDD 2022"
    official = "dayu11/Availability-Attacks-Create-Shortcuts"
    deviation = "own hypercube cluster draw (not bit-identical); rounds where the code truncates"

    def __init__(self, eps: float = 6 / 255 * math.sqrt(3072), seed: int = 0, patch: int = 8,
                 class_sep: float = 10.0):
        super().__init__(eps, seed)
        self.patch = check_count("patch", patch)
        self.class_sep = float(class_sep)
        self.centres = self.transforms = None

    def _grid(self, size: int) -> int:
        if size % self.patch:
            raise ValueError(f"image size {size} is not a multiple of patch {self.patch}")
        return size // self.patch

    def _fit(self, images, labels):
        g = self._grid(images.shape[-1])
        dim = g * g * images.shape[1]
        n_classes = int(labels.max()) + 1
        if n_classes > 2 ** dim:
            raise ValueError(f"{n_classes} classes need more than {dim} dimensions")
        gen = torch.Generator().manual_seed(self.seed)
        vertices = set()
        while len(vertices) < n_classes:  # distinct hypercube vertices, one per class
            vertices.add(tuple(torch.randint(0, 2, (dim,), generator=gen).tolist()))
        v = torch.tensor(sorted(vertices), dtype=torch.float32)
        self.centres = (2 * v - 1) * self.class_sep
        self.transforms = 2 * torch.rand(n_classes, dim, dim, generator=gen) - 1

    def perturb(self, x, labels):
        if labels is None:
            raise ValueError("lsp needs labels at apply()")
        if int(labels.max()) >= self.centres.shape[0]:
            raise ValueError(f"label {int(labels.max())} was not seen at fit")
        n, c, h, w = x.shape
        g = self._grid(h)
        if g * g * c != self.centres.shape[1] or h != w:
            raise ValueError(f"images {tuple(x.shape[1:])} do not match the fitted patches")
        gen = torch.Generator().manual_seed(self.seed + 1)
        z = torch.randn(n, self.centres.shape[1], generator=gen)
        points = torch.bmm(z.unsqueeze(1), self.transforms[labels]).squeeze(1)
        points = points + self.centres[labels]
        grid = points.view(n, g, g, c).permute(0, 3, 1, 2)            # channels-last points
        delta = grid.repeat_interleave(self.patch, 2).repeat_interleave(self.patch, 3)
        delta = delta * (self.eps / delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1))
        return x + delta
