"""Protections (unlearnable-example methods), by name.

>>> import fuselib
>>> fuselib.protections.names()                  # every registered method
>>> p = fuselib.protections.get("random", eps=8/255, seed=0)
>>> p = fuselib.protections.get("random:0.0314")  # a spec string: the primary parameter (eps)
"""
from pathlib import Path

import torch

from ..registry import Registry

REGISTRY = Registry("protection")

from .base import Protection, check_eps  # noqa: E402
from . import none, random_noise, ar, lsp, ops, cuda, em, tap, rem, dh, uc, fuse  # noqa: E402,F401  (registers)
from . import gue, pue, vtg, pil  # noqa: E402,F401


def names() -> list:
    return REGISTRY.names()


def get(spec: str, **kwargs) -> Protection:
    """A protection by name (or spec string such as ``"random:eps=0.0314,mode=sample"``)."""
    return REGISTRY.get(spec, **kwargs)


def load(path) -> Protection:
    """Rebuild a protection written by :meth:`Protection.save`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no saved protection at {path}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "fuselib.protection/1":
        raise ValueError(f"{path} is not a fuselib protection file")
    p = get(blob["name"], **blob["config"])
    p.load_state_dict(blob["state"])
    return p


__all__ = ["Protection", "REGISTRY", "get", "load", "names", "check_eps"]
