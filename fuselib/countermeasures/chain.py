"""Countermeasures one after another: ``"jpeg:10+lowpass:0.25"`` is JPEG, then a low-pass
filter (the FUSE paper's claim 4). Any mix of preprocessing and training-time steps works:
the data go through every step in order and the trainer options of all steps are merged."""
from __future__ import annotations

from . import REGISTRY
from .base import Countermeasure


@REGISTRY.register("chain", primary="steps")
class Chain(Countermeasure):
    """``steps``: a list of countermeasure spec strings, applied left to right."""

    def __init__(self, steps=("none",)):
        if isinstance(steps, str):
            steps = steps.split("+")
        if not isinstance(steps, (list, tuple)):
            raise ValueError(f"chain needs countermeasure specs joined by '+', got {steps!r}")
        self.steps = [str(s).strip() for s in steps]
        if not self.steps or any(not s for s in self.steps):
            raise ValueError(f"chain needs one or more countermeasure specs, got {steps!r}")
        if any(s.split(":")[0] in ("chain", "early_stop") for s in self.steps):
            raise ValueError("a chain cannot hold 'chain' or 'early_stop' "
                             "(early stopping reads the undefended run)")
        self.members = [REGISTRY.get(s) for s in self.steps]
        self.needs_labels = any(m.needs_labels for m in self.members)
        kinds = {m.kind for m in self.members}
        self.kind = "learned" if "learned" in kinds else (
            "preprocessing" if "preprocessing" in kinds else "training")

    def config(self) -> dict:
        return {"steps": list(self.steps)}

    @property
    def recipe(self) -> dict:
        merged = {}
        for m in self.members:
            for k, v in m.recipe.items():
                if k in merged and merged[k] != v:
                    raise ValueError(f"chain {'+'.join(self.steps)}: two steps set the "
                                     f"trainer option {k!r} differently")
                merged[k] = v
        return merged

    def __call__(self, images, labels=None):
        images, labels = self._check(images, labels)
        for m in self.members:
            images = m(images, labels) if m.needs_labels else m(images)
        return images
