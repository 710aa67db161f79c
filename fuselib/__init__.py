"""fuselib: unlearnable examples, their spectral failure, and FUSE.

The flow of every experiment: data (uint8 tensors) -> protection -> countermeasure ->
train a classifier from scratch -> clean test accuracy (``fuselib.experiments.run``).
"""
from .version import __version__

from . import data, spectral, models, protections, countermeasures  # noqa: E402
from . import train, batched, experiments, certify  # noqa: E402

__all__ = ["__version__", "data", "spectral", "models", "protections", "countermeasures",
           "train", "experiments", "certify"]
