"""``fuse``: FUSE — Full-spectrum Unlearnable Examples via Spectral Equalization (Cai et al.,
ICML 2026). Class-wise, L∞ ε = 8/255. The method, its defaults and their reasons are in
:mod:`fuselib.fuse`; every :class:`fuselib.fuse.FuseConfig` field is a parameter here::

    p = fuselib.protections.get("fuse", epochs=10, rsm=True, cbg=True).fit(x, y)
    p = fuselib.protections.get("fuse:rsm=False")          # the ablations by spec string

``checkpoint`` (an attribute, not part of the config) makes fit() resumable.
"""
from __future__ import annotations

from dataclasses import asdict, fields

import torch

from ..fuse import FuseConfig, FuseTrainer
from ..generator import Generator
from . import REGISTRY
from .base import Protection
from .em import default_device


@REGISTRY.register("fuse", primary="epochs")
class FUSE(Protection):
    state_keys = ("deltas", "generator", "noise")

    def __init__(self, eps: float = 8 / 255, seed: int = 0, **settings):
        super().__init__(eps, seed)
        known = {f.name for f in fields(FuseConfig)} - {"eps", "seed"}
        bad = set(settings) - known
        if bad:
            raise ValueError(f"fuse: unknown setting(s) {sorted(bad)}; known: {sorted(known)}")
        self.cfg = FuseConfig(eps=self.eps, seed=self.seed, **settings).check()
        self.deltas = self.generator = self.noise = None
        self.history: list = []
        self.checkpoint = None
        self.device = default_device()

    def config(self) -> dict:
        return asdict(self.cfg)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "history": self.history}  # per-epoch losses, to inspect

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.history = list(state.pop("history", []))
        super().load_state_dict(state)

    @property
    def cost(self) -> str:
        c = self.cfg
        return (f"generator (width {c.gen_width}, {c.gen_res} residual blocks) and surrogate "
                f"{c.surrogate}: {c.epochs} epochs of {c.surrogate_steps} surrogate steps + one "
                f"generator pass over {c.portion:.0%} of the data (batch {c.batch_size}; "
                f"RSM {'on' if c.rsm else 'off'}, CBG {'on' if c.cbg else 'off'})")

    def _fit(self, images, labels):
        trainer = FuseTrainer(self.cfg, self.device, self.checkpoint)
        self.deltas = trainer.fit(images, labels)
        self.generator = {k: v.cpu() for k, v in trainer.G.state_dict().items()}
        self.noise = trainer.noise.cpu()
        self.history = trainer.history
        self.surrogate_model = trainer.f.eval()  # kept for inspection; not saved

    def save_previews(self, folder, scale: int = 4) -> list:
        """One PNG per class of its perturbation, mapped from [-ε, ε] to [0, 255] and enlarged
        ``scale``× (nearest neighbour), plus ``all.png`` with the classes side by side."""
        from pathlib import Path

        from PIL import Image

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vis = ((self.deltas / (2 * self.eps) + 0.5).clamp(0, 1) * 255).round().to(torch.uint8)
        vis = vis.repeat_interleave(scale, -1).repeat_interleave(scale, -2)
        paths = []
        for c, v in enumerate(vis):
            paths.append(folder / f"class_{c:03d}.png")
            Image.fromarray(v.permute(1, 2, 0).numpy().squeeze()).save(paths[-1])
        strip = torch.cat(list(vis), dim=-1)
        paths.append(folder / "all.png")
        Image.fromarray(strip.permute(1, 2, 0).numpy().squeeze()).save(paths[-1])
        return paths

    def generator_model(self) -> Generator:
        """The trained generator (e.g. to perturb images of another size)."""
        c = self.cfg
        g = Generator(c.eps, self.noise.shape[1], c.gen_width, c.gen_res)
        g.load_state_dict(self.generator)
        return g.eval()

    @torch.no_grad()
    def perturbations_for(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Class-wise perturbations for a new image set (any size): the class means of the
        trained generator's outputs on it (``input="images"``)."""
        if self.cfg.input == "noise":
            raise ValueError("fuse with input='noise' has fixed 32x32 class inputs; "
                             "train with input='images' to perturb other image sizes")
        g = self.generator_model()
        n_classes = int(labels.max()) + 1
        total = torch.zeros(n_classes, *images.shape[1:])
        for i in range(0, len(labels), 256):
            onehot = torch.nn.functional.one_hot(labels[i:i + 256], n_classes).float().T
            total += (onehot @ g(images[i:i + 256].float() / 255).flatten(1)).view_as(total)
        counts = torch.bincount(labels, minlength=n_classes).clamp_min(1).float()
        return (total / counts.view(-1, 1, 1, 1)).clamp(-self.eps, self.eps)

    def perturb(self, x, labels):
        if labels is None:
            raise ValueError("fuse is class-wise: apply() needs labels")
        if int(labels.max()) >= self.deltas.shape[0]:
            raise ValueError(f"label {int(labels.max())} was not seen at fit")
        if x.shape[1:] != self.deltas.shape[1:]:
            raise ValueError(f"fuse was fitted on {tuple(self.deltas.shape[1:])} images, got "
                             f"{tuple(x.shape[1:])}; use perturbations_for(images, labels)")
        return x + self.deltas[labels]
