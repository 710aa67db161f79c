"""Spectral filters, FUSE's central attack. Frequencies follow the convention of
:mod:`fuselib.spectral`: normalised radial frequency ``r`` in [0, 1], 1 = highest; ``basis``
"dct" (orthonormal DCT-II, the default) or "fft"; ``profile`` "ideal" (a hard cut) or
"gaussian" (``exp(−r²/2c²)``)."""
import torch

from .. import spectral
from . import REGISTRY
from .base import Countermeasure, PassThrough


@REGISTRY.register("none")
class Identity(PassThrough):
    """The attacker trains on the data as published."""

    kind = "preprocessing"


@REGISTRY.register("lowpass", primary="cutoff")
class LowPass(Countermeasure):
    """Keep radial frequencies ``r ≤ cutoff`` of each channel; cutoff 1 is the identity,
    0 keeps only the mean."""

    def __init__(self, cutoff: float = 0.25, basis: str = "dct", profile: str = "ideal"):
        self.cutoff, self.basis, self.profile = float(cutoff), basis, profile
        spectral.filter_mask((4, 4), self.cutoff, "low", basis, profile)  # validate now

    def transform(self, x):
        return spectral.lowpass(x, self.cutoff, self.basis, self.profile)


@REGISTRY.register("highpass", primary="cutoff")
class HighPass(Countermeasure):
    """Remove radial frequencies ``r ≤ cutoff``. With ``keep_mean`` (default) each channel's
    mean (the DC term) is put back so the result is still a viewable image; without it the
    clip to [0, 1] would erase every negative value."""

    def __init__(self, cutoff: float = 0.25, basis: str = "dct", profile: str = "ideal",
                 keep_mean: bool = True):
        self.cutoff, self.basis, self.profile = float(cutoff), basis, profile
        self.keep_mean = bool(keep_mean)
        spectral.filter_mask((4, 4), self.cutoff, "high", basis, profile)

    def transform(self, x):
        y = spectral.highpass(x, self.cutoff, self.basis, self.profile)
        if self.keep_mean:
            y = y - y.mean(dim=(-2, -1), keepdim=True) + x.mean(dim=(-2, -1), keepdim=True)
        return y


@REGISTRY.register("bandstop", primary="lo")
class BandStop(Countermeasure):
    """Remove the band ``lo < r ≤ hi`` (ideal profile), keep the rest."""

    def __init__(self, lo: float = 0.25, hi: float = 0.5, basis: str = "dct"):
        self.lo, self.hi, self.basis = float(lo), float(hi), basis
        spectral.bandpass(torch.zeros(1, 1, 4, 4), self.lo, self.hi, basis)  # validate now

    def transform(self, x):
        return x - spectral.bandpass(x, self.lo, self.hi, self.basis)
