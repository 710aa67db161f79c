"""``coin``: random multiplicative bilinear interpolation, COIN ("Corrupting Convolution-based
Unlearnable Datasets with Pixel-based Image Transformations", Wang et al., AAAI 2025,
arXiv 2311.18403; repository wxldragon/COIN, ``train.py``), aimed at convolution-based
unlearnable examples such as CUDA.

CUDA's shortcut is a per-class convolution: a fixed linear mixing of each pixel with its
neighbours. COIN resamples every image on a randomly jittered grid: each output pixel ``(i, j)``
is the bilinear interpolation of the image at ``(i + dy, j + dx)`` with ``dx, dy`` drawn
uniformly in ``[−alpha, alpha]``, independently for every pixel (the same offsets for the three
channels), the grid wrapping around the image's edges. The interpolation weights are products of
the random offsets' fractional parts — a random, pixel-varying mixing of neighbours that breaks
the fixed mixing a convolution applies, while the image's content moves at most ``alpha`` px.
Official default: severity 4, ``alpha = 2.0`` (its list 0.8, 1.2, ..., 3.2). ``alpha = 0`` is
the identity.

Deviations from the official code: it applies COIN as a training augmentation (a fresh draw
each time an image is loaded, after random crop and flip) with ``scipy.ndimage.map_coordinates``
(``order=1, mode="wrap"``); here it is preprocessing, one draw per image from a generator seeded
with ``seed`` (as ``rsk``), and the wrap is the periodic one (coordinate ``H`` is row 0) where
SciPy's legacy ``"wrap"`` mode has a period of ``H − 1``.
"""
import torch

from . import REGISTRY
from .base import Seeded


def jitter_resample(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of images ``x`` ``(B, C, H, W)`` at ``(i + dy, j + dx)``, offsets
    ``(B, H, W)`` shared by the channels, coordinates wrapping around the edges."""
    b, c, h, w = x.shape
    yy = torch.arange(h, dtype=x.dtype, device=x.device).view(1, h, 1) + dy
    xx = torch.arange(w, dtype=x.dtype, device=x.device).view(1, 1, w) + dx
    y0, x0 = yy.floor(), xx.floor()
    wy, wx = (yy - y0).unsqueeze(1), (xx - x0).unsqueeze(1)
    y0, x0 = y0.long(), x0.long()
    flat = x.reshape(b, c, h * w)

    def at(yi, xi):
        idx = ((yi % h) * w + (xi % w)).view(b, 1, h * w).expand(b, c, h * w)
        return flat.gather(2, idx).view(b, c, h, w)

    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bottom = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return top * (1 - wy) + bottom * wy


@REGISTRY.register("coin", primary="alpha")
class Coin(Seeded):
    paper = "Wang et al., COIN, AAAI 2025"
    official = "wxldragon/COIN"

    def __init__(self, alpha: float = 2.0, seed: int = 0):
        if not 0 <= float(alpha) <= 16:
            raise ValueError(f"alpha must be in [0, 16] (pixels of jitter), got {alpha}")
        self.alpha, self.seed = float(alpha), int(seed)

    def transform(self, x):
        b, _, h, w = x.shape
        d = (torch.rand(2, b, h, w, generator=self.gen) * 2 - 1) * self.alpha
        return jitter_resample(x, d[0].to(x.dtype), d[1].to(x.dtype))
