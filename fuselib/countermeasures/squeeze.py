"""Image shortcut squeezing and common preprocessing (Liu et al., "Image Shortcut Squeezing:
Countering Perturbative Availability Poisons with Compression", ICML 2023), with the settings
of the Deep Hiding paper's protocol (``shared/reference/protocol.md``): 3×3 mean, median and
Gaussian (σ 0.1) filters, 2-bit depth reduction, grayscale, Gaussian noise σ 0.1, JPEG at
quality 10 and 50 (a real codec round trip through Pillow)."""
from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import check_count
from . import REGISTRY
from .base import Countermeasure, Seeded


def _pad(x, k):
    return F.pad(x, (k // 2,) * 4, mode="reflect")


@REGISTRY.register("mean", primary="size")
class MeanFilter(Countermeasure):
    """``size``×``size`` box blur (reflect padding)."""

    def __init__(self, size: int = 3):
        self.size = check_count("size", size)
        if self.size % 2 == 0:
            raise ValueError(f"size must be an odd number >= 1, got {size}")

    def transform(self, x):
        return F.avg_pool2d(_pad(x, self.size), self.size, stride=1)


@REGISTRY.register("median", primary="size")
class MedianFilter(MeanFilter):
    """``size``×``size`` median filter (reflect padding)."""

    chunk = 256  # the unfolded patches are size² times the images: keep them in cache

    def transform(self, x):
        k = self.size
        b, c, h, w = x.shape
        patches = F.unfold(_pad(x, k).reshape(b * c, 1, h + k - 1, w + k - 1), k)
        return patches.median(dim=1).values.reshape(b, c, h, w)


@REGISTRY.register("gaussian", primary="sigma")
class GaussianFilter(MeanFilter):
    """``size``×``size`` Gaussian blur with standard deviation ``sigma`` pixels. The protocol's
    σ = 0.1 makes a 3×3 kernel nearly the identity (off-centre weights ≈ e⁻⁵⁰); it is kept
    because that is the published setting — try ``gaussian:sigma=1`` for a real blur."""

    def __init__(self, sigma: float = 0.1, size: int = 3):
        super().__init__(size)
        if float(sigma) <= 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = float(sigma)

    def transform(self, x):
        t = torch.arange(self.size, dtype=torch.float64) - self.size // 2
        g = torch.exp(-t**2 / (2 * self.sigma**2))
        k = (g[:, None] * g[None, :]) / (g.sum() ** 2)
        c = x.shape[1]
        w = k.to(x.dtype).expand(c, 1, -1, -1)
        return F.conv2d(_pad(x, self.size), w, groups=c)


@REGISTRY.register("bdr", primary="bits")
class BitDepthReduction(Countermeasure):
    """Quantise each channel to ``bits`` bits (2 in the protocol: 4 levels)."""

    def __init__(self, bits: int = 2):
        self.bits = check_count("bits", bits)
        if self.bits > 8:
            raise ValueError(f"bits must be in 1..8, got {bits}")

    def transform(self, x):
        levels = 2**self.bits - 1
        return torch.round(x * levels) / levels


@REGISTRY.register("grayscale")
class Grayscale(Countermeasure):
    """ITU-R 601 luma (0.299 R + 0.587 G + 0.114 B) copied to every channel."""

    def transform(self, x):
        if x.shape[1] != 3:
            return x
        g = 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        return g.expand_as(x)


@REGISTRY.register("noise", primary="sigma")
class GaussianNoise(Seeded):
    """Add N(0, σ²) noise to every pixel (σ 0.1 in [0, 1] units), drawn once per image from a
    generator seeded with ``seed``, so the same call gives the same images."""

    def __init__(self, sigma: float = 0.1, seed: int = 0):
        if float(sigma) < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.sigma, self.seed = float(sigma), int(seed)

    def transform(self, x):
        return x + self.sigma * torch.randn(x.shape, generator=self.gen)


@REGISTRY.register("jpeg", primary="quality")
class JPEG(Countermeasure):
    """A real JPEG round trip (Pillow, 4:2:0 chroma subsampling as its default) at
    ``quality`` 1–100."""

    def __init__(self, quality: int = 10):
        self.quality = check_count("quality", quality)
        if self.quality > 100:
            raise ValueError(f"quality must be in 1..100, got {quality}")

    def __call__(self, images, labels=None):
        from PIL import Image

        images, _ = self._check(images, labels)
        arr = images.permute(0, 2, 3, 1).numpy()
        out = np.empty_like(arr)
        mode = "RGB" if arr.shape[-1] == 3 else "L"
        for i, a in enumerate(arr):
            buf = io.BytesIO()
            Image.fromarray(a if mode == "RGB" else a[..., 0]).save(
                buf, format="JPEG", quality=self.quality)
            buf.seek(0)
            dec = np.asarray(Image.open(buf).convert(mode))
            out[i] = dec if mode == "RGB" else dec[..., None]
        return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
