"""``rsk``: random sharpening kernels followed by a square DCT low-pass (Kim & Sandoval-Segura,
"Learning From Convolution-based Unlearnable Datasets", AdvML-Frontiers @ NeurIPS 2024;
repository aseriesof-tubes/RSK, ``augments.py``), the published answer to CUDA.

Per image, a random 3×3 sharpening kernel ``[[0, −n₁, 0], [−n₂, c, −n₃], [0, −n₄, 0]]`` with
centre ``c ~ N(1 + strength, std²)`` and each ``nᵢ ~ N((c − 1)/4, std²)`` (the kernel sums to
about 1, so brightness is kept), clip to [0, 1]; then each channel's orthonormal 2-D DCT keeps
only its top-left ``⌊keep·H⌋ × ⌊keep·W⌋`` coefficients (a square low-pass, unlike the radial
``lowpass``), inverse DCT, clip. Official settings: centre mean 2.5 (``strength=1.5``),
``std=0.1``, ``keep=0.3`` (30%: 9×9 of 32×32 — of 30×30 there). ``strength=0, std=0`` is the
identity kernel and ``keep=1`` keeps every coefficient: both together are the identity.

Deviations: the official code applies the transform as a training augmentation, a fresh kernel
every time an image is loaded, and convolves without padding (32 → 30 px, then random-crops
back with zero padding); here it is preprocessing, one kernel per image drawn from a generator
seeded with ``seed``, with reflect padding so the size is kept.
"""
import torch
import torch.nn.functional as F

from .. import spectral
from . import REGISTRY
from .base import Seeded


def square_lowpass(x: torch.Tensor, keep: float) -> torch.Tensor:
    """Keep the top-left ``⌊keep·H⌋ × ⌊keep·W⌋`` orthonormal DCT coefficients of each channel."""
    h, w = x.shape[-2:]
    mask = torch.zeros(h, w, dtype=x.dtype, device=x.device)
    mask[:int(keep * h), :int(keep * w)] = 1
    return spectral.idct2(spectral.dct2(x) * mask)


@REGISTRY.register("rsk", primary="keep")
class RandomSharpenLowPass(Seeded):
    paper = "Kim & Sandoval-Segura, AdvML-Frontiers @ NeurIPS 2024"
    official = "aseriesof-tubes/RSK"

    def __init__(self, keep: float = 0.3, strength: float = 1.5, std: float = 0.1, seed: int = 0):
        if not 0 < float(keep) <= 1:
            raise ValueError(f"keep must be in (0, 1] (share of DCT rows/columns), got {keep}")
        if float(std) < 0:
            raise ValueError(f"std must be >= 0, got {std}")
        self.keep, self.strength = float(keep), float(strength)
        self.std, self.seed = float(std), int(seed)

    def kernels(self, n: int) -> torch.Tensor:
        """``n`` random sharpening kernels, ``(n, 3, 3)``, from the call's generator."""
        z = torch.randn(n, 5, generator=self.gen, dtype=torch.float64) * self.std
        c = 1 + self.strength + z[:, 0]
        nb = ((c - 1) / 4)[:, None] + z[:, 1:]
        k = torch.zeros(n, 3, 3, dtype=torch.float64)
        k[:, 1, 1] = c
        k[:, 0, 1], k[:, 1, 0], k[:, 1, 2], k[:, 2, 1] = (-nb).unbind(1)
        return k

    def transform(self, x):
        b, ch, h, w = x.shape
        k = self.kernels(b).to(x.dtype).repeat_interleave(ch, 0)[:, None]  # one per image
        pad = F.pad(x.reshape(1, b * ch, h, w), (1, 1, 1, 1),
                    mode="reflect" if min(h, w) > 1 else "replicate")
        sharp = F.conv2d(pad, k, groups=b * ch).reshape(b, ch, h, w).clamp(0, 1)
        return square_lowpass(sharp, self.keep) if self.keep < 1 else sharp
