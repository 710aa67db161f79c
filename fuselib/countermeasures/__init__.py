"""Countermeasures (the attacker's side), by name.

>>> cm = fuselib.countermeasures.get("lowpass", cutoff=0.25)
>>> cm = fuselib.countermeasures.get("lowpass:0.25")     # the same, as a spec string
>>> fuselib.countermeasures.names()
"""
from ..registry import Registry

REGISTRY = Registry("countermeasure")

from .base import Countermeasure  # noqa: E402
from . import filters, squeeze, training, projection, purify, chain  # noqa: E402,F401  (registers)
from . import rsk, coin, sdaan  # noqa: E402,F401
from .training import defences  # noqa: E402


# the whole suite, with the Deep Hiding protocol's settings (shared/reference/protocol.md);
# grid(countermeasures="all") sweeps it
SUITE = (
    "none", "lowpass:0.25", "highpass:0.25", "bandstop:lo=0.25,hi=0.5",
    "mean", "median", "gaussian", "bdr", "grayscale", "noise", "jpeg:10", "jpeg:50",
    "cutout", "cutmix", "mixup", "adv:linf", "adv:l2", "ueraser",
    "orthogonal", "dvae", "early_stop", "rsk",
)


def names() -> list:
    return REGISTRY.names()


def get(spec: str, **kwargs) -> Countermeasure:
    """A countermeasure by name or spec string (``"lowpass:cutoff=0.3,basis=fft"``);
    ``"a+b"`` chains them (``"jpeg:10+lowpass:0.25"``: JPEG, then the low-pass filter)."""
    if isinstance(spec, str) and "+" in spec:
        if kwargs:
            raise ValueError(f"a chained spec {spec!r} takes its parameters inside the spec")
        return REGISTRY.get("chain", steps=spec.split("+"))
    return REGISTRY.get(spec, **kwargs)


__all__ = ["Countermeasure", "REGISTRY", "SUITE", "defences", "get", "names"]
