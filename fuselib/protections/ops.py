"""``ops``: the one-pixel shortcut (Wu et al., ICLR 2023).

For each class, one pixel position and one extreme colour (each channel 0 or 255) are chosen
to stand out most consistently from that class's images: the score of a (position, colour)
pair is the mean over the class's images and channels of ``|colour − pixel|`` divided by its
standard deviation. That pixel is then set to the colour in every image of the class. An
exact (position, colour) pair taken by an earlier class is not reused (a position may be, in
another colour) — as in the official code (cychomatica/One-Pixel-Shotcut). L0 = 1: not
L∞-bounded (the pixel moves by up to 255), so ``apply`` does not clip it.
"""
import torch

from . import REGISTRY
from .base import Protection

COLOURS = torch.tensor([[(v >> 2) & 1, (v >> 1) & 1, v & 1] for v in range(8)],
                       dtype=torch.float32)  # R is the high bit, as in the official code


def search_pixel(images: torch.Tensor, taken=()) -> tuple:
    """Best ``(row, col, colour_index)`` for uint8 ``images`` (N, 3, H, W) of one class."""
    x = images.float().div(255).flatten(2).permute(2, 0, 1)   # (H*W, N, 3)
    best, arg = -1.0, None
    for v, colour in enumerate(COLOURS):
        d = (colour - x).abs().flatten(1)                      # (H*W, N*3)
        score = d.mean(1) / d.std(1, unbiased=False).clamp_min(1e-12)
        for pos, tv in taken:
            if tv == v:
                score[pos] = 0.0
        s, p = score.max(0)
        if float(s) > best:
            best, arg = float(s), (int(p), v)
    pos, v = arg
    w = images.shape[-1]
    return pos // w, pos % w, v


@REGISTRY.register("ops")
class OnePixelShortcut(Protection):
    norm = None
    budget_text = "L0: one pixel per image"  # for the methods table (apply only clips)
    state_keys = ("pixels",)
    paper = "Wu et al., ICLR 2023"
    official = "cychomatica/One-Pixel-Shotcut"
    deviation = "none known"

    def __init__(self, seed: int = 0):
        super().__init__(eps=1.0, seed=seed)
        self.pixels = None

    def _fit(self, images, labels):
        w = images.shape[-1]
        taken, rows = [], []
        for c in range(int(labels.max()) + 1):
            members = images[labels == c]
            if len(members) == 0:
                rows.append((0, 0, 0))
                continue
            r, col, v = search_pixel(members, taken)
            taken.append((r * w + col, v))
            rows.append((r, col, v))
        self.pixels = torch.tensor(rows, dtype=torch.int64)  # (C, 3): row, col, colour

    def perturb(self, x, labels):
        if labels is None:
            raise ValueError("ops needs labels at apply()")
        if int(labels.max()) >= self.pixels.shape[0]:
            raise ValueError(f"label {int(labels.max())} was not seen at fit")
        out = x.clone()
        r, c, v = self.pixels[labels].unbind(1)
        idx = torch.arange(x.shape[0])
        out[idx, :, r, c] = COLOURS[v]
        return out
