"""``cuda``: convolution-based unlearnable dataset (Sadasivan et al., CVPR 2023).

Each class owns a private random 3×3 filter: entries ``U(0, blur)`` (blur parameter 0.3 for
CIFAR-10) with one randomly placed entry set to 1, the same filter for all three channels.
Every image of the class is convolved with it (depthwise, zero padding) and divided by its own
maximum. **Not norm-bounded**: the change to an image is not limited by any ε — results with
CUDA are not comparable to ε = 8/255 methods on budget, which tables should say. ``seed`` is the
private key. Model-free.

Deviation from the official code (vinusankars/Convolution-based-Unlearnability): filters come
from torch's generator rather than NumPy's, and uint8 conversion rounds where the official
code truncates.
"""
import torch
import torch.nn.functional as F

from ..registry import check_count
from . import REGISTRY
from .base import Protection


@REGISTRY.register("cuda", primary="blur")
class ConvolutionUnlearnable(Protection):
    norm = None
    state_keys = ("filters",)
    paper = "Sadasivan et al., CVPR 2023"
    official = "vinusankars/Convolution-based-Unlearnability"
    deviation = "filters from torch's generator, not NumPy's; rounds where the code truncates"

    def __init__(self, blur: float = 0.3, seed: int = 0, kernel_size: int = 3):
        super().__init__(eps=1.0, seed=seed)
        if not 0.0 <= float(blur) <= 1.0:
            raise ValueError(f"blur must be in [0, 1], got {blur}")
        self.blur = float(blur)
        self.kernel_size = check_count("kernel_size", kernel_size)
        if self.kernel_size % 2 == 0:  # an even kernel would change the image size
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.filters = None

    def _fit(self, images, labels):
        gen = torch.Generator().manual_seed(self.seed)
        k = self.kernel_size
        filters = []
        for _ in range(int(labels.max()) + 1):
            w = torch.rand(k, k, generator=gen) * self.blur
            w.view(-1)[torch.randint(0, k * k, (1,), generator=gen)] = 1.0
            filters.append(w)
        self.filters = torch.stack(filters)  # (C, k, k), shared by the colour channels

    def perturb(self, x, labels):
        if labels is None:
            raise ValueError("cuda needs labels at apply()")
        if int(labels.max()) >= self.filters.shape[0]:
            raise ValueError(f"label {int(labels.max())} was not seen at fit")
        out = torch.empty_like(x)
        ch = x.shape[1]
        for c in torch.unique(labels).tolist():
            idx = (labels == c).nonzero().flatten()
            w = self.filters[c].expand(ch, 1, -1, -1)
            y = F.conv2d(x[idx], w, padding=self.kernel_size // 2, groups=ch)
            out[idx] = y / y.flatten(1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)
        return out
