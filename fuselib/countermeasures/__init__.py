"""Countermeasures (the attacker's side), by name.

>>> cm = fuselib.countermeasures.get("lowpass", cutoff=0.25)
>>> cm = fuselib.countermeasures.get("lowpass:0.25")     # the same, as a spec string
>>> fuselib.countermeasures.names()
"""
from ..registry import Registry

REGISTRY = Registry("countermeasure")

from .base import Countermeasure  # noqa: E402
from . import filters  # noqa: E402,F401  (registers the members)


def names() -> list:
    return REGISTRY.names()


def get(spec: str, **kwargs) -> Countermeasure:
    """A countermeasure by name or spec string (``"lowpass:cutoff=0.3,basis=fft"``)."""
    return REGISTRY.get(spec, **kwargs)


__all__ = ["Countermeasure", "REGISTRY", "get", "names"]
