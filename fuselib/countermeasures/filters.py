"""Spectral filters as countermeasures (FUSE's central attack). Frequencies follow the
convention of :mod:`fuselib.spectral`: normalised radial frequency, 1 = highest."""
from .. import spectral
from . import REGISTRY
from .base import Countermeasure


@REGISTRY.register("none")
class Identity(Countermeasure):
    """The attacker trains on the data as published."""

    def __call__(self, images):
        from ..data import check_images

        return check_images(images).clone()


@REGISTRY.register("lowpass", primary="cutoff")
class LowPass(Countermeasure):
    """Keep radial frequencies ``r ≤ cutoff`` of each channel (``basis`` "dct" or "fft";
    ``profile`` "ideal" or "gaussian"); cutoff 1 is the identity, 0 keeps only the mean."""

    def __init__(self, cutoff: float = 0.25, basis: str = "dct", profile: str = "ideal"):
        self.cutoff = float(cutoff)
        self.basis = basis
        self.profile = profile
        # validate now, not at the first call
        spectral.filter_mask((4, 4), self.cutoff, "low", basis, profile)

    def transform(self, x):
        return spectral.lowpass(x, self.cutoff, self.basis, self.profile)
