"""``fuse``: FUSE — Full-spectrum Unlearnable Examples via Spectral Equalization (Cai et al.,
ICML 2026), whole: its config, objective (RSM + CBG), trainer and the registered protection.
Class-wise, L∞ ε = 8/255; every :class:`FuseConfig` field is a parameter of the protection::

    p = fuselib.protections.get("fuse", epochs=10, rsm=True, cbg=True).fit(x, y)
    p = fuselib.protections.get("fuse:rsm=False")          # the ablations by spec string

A class-wise perturbation generator (:class:`fuselib.protections.generators.Generator`) is made
unlearnable in every frequency band.

The loop (min–min, after VTG — the closest published relative, see
``shared/reference/fuse-method.md``): each epoch, ``surrogate_steps`` SGD steps of a surrogate
classifier on ``clip(x + δ_y)``, then one generator step per batch of the generator's subset,
minimising

    L = CE(f(x + RSM(δ_y)), y)                                   unlearnability under masking
      + cbg_weight · [ CE(f(x + δ_low), y) + cbg_high · CE(f(x + δ_high), y)
                       + cbg_kl · symKL(f(x + δ_low), f(x + δ_high)) ]   cross-band guidance

* ``δ_y`` is class-wise: by default each class feeds the generator its own fixed, seeded noise
  image (``input="noise"``); ``input="images"`` is VTG's construction instead — the generator
  runs on every image and its outputs are averaged per class. Noise inputs are the default
  because the class mean of per-image outputs partly cancels, which shrinks the perturbation
  (``fuselib grid "fuse:input=images" fuse --countermeasures none lowpass:0.25`` compares them).
  ``‖δ‖∞ ≤ ε`` by construction (``ε·tanh``) and is clipped again at the end.
* **Random Spectral Masking** (``rsm``): per image, a random contiguous band of radial
  frequency ``[lo, hi]`` (width ``U[rsm_min_width, rsm_max_width]``, centre chosen so every
  radius — the DC end included — is removed equally often; :func:`fuselib.spectral.sample_bands`)
  is zeroed in ``δ`` before the unlearnability loss. No band can carry the effect alone, so over
  training every band, the lowest included, must carry some of it. With widths up to 0.5 the
  strongest low-pass this rehearses is cutoff 0.5 (the band [0.5, 1]). ``rsm_lowpass`` (off by
  default, the paper's reading) makes that share of the draws a low-pass instead, the band
  ``[c, 1]`` with ``c ~ U[rsm_lowpass_min, 1)``, so that strong low-passes are rehearsed too
  (plans ``fuse_leads`` and ``fuse_fix`` measure it). ``rsm_images`` (off by default) applies
  the drawn band to the whole image ``x + δ``, as the attacker's filter does, in the
  generator's loss and in the surrogate's training, so that the generator is optimised against
  a learner that sees filtered data.
* **Which reading is the default.** The paper's reading (RSM bands 0.1–0.5 wide, no low-pass
  rehearsal): it is what the paper describes and what the shipped records of ``fuse`` measure.
  The low-pass rehearsal is the named spec ``fuse:rsm_lowpass=0.5``
  (``fuselib.experiments.plans.FIX``); RESULTS.md compares the two with seeds.
* ``lowband`` (off by default): the applied perturbation is
  ``share·lowpass(g) + (1 − share)·highpass(g)`` at that cutoff, ``g`` the generator's output,
  which holds a share of the L∞ budget below the cutoff (:func:`band_budget`). With
  ``lowband_share=1`` the whole perturbation lives below the cutoff: the reference for what any
  class-wise perturbation of this budget can do against a low-pass at that cutoff (only its
  part below the cutoff survives the filter, and this one spends all of its budget there).
* ``fast`` (off by default, so the shipped fits keep their keys): the surrogate's passes in
  bf16 autocast where the machine has native bf16, and channels_last — a cost setting, not a
  change of objective (``bench/fits.py fuse fuse:fast=True``).
* **Cross-Band Guidance** (``cbg``): ``δ`` is split at ``cbg_cutoff`` into ``δ_low + δ_high``.
  Each part alone must make the surrogate predict ``y`` (the low part's CE has weight 1: this is
  what strengthens low-frequency unlearnability; the high part's ``cbg_high`` = 0.5 keeps it
  useful but second), and the symmetric KL between the two predictions makes the parts agree,
  so the high-frequency part cannot carry a shortcut of its own that the low part lacks.

The paper does not state the transform, band parameterisation, CBG formula or weights
(``fuse-method.md``): every one of them is a parameter here, with the defaults above. Defaults
and their reasons: DCT (no wrap-around, what JPEG and our low-pass attack use); ``cbg_cutoff``
0.25 (the low-pass cutoff at which prior UEs are tested here); widths 0.1–0.5 (a masked band
large enough to matter, never most of the spectrum); generator width 8 with 4 residual blocks
(VTG's size). CPU defaults (``cost``): a small fastnet surrogate, 10 epochs on VTG's 50%
subset with batch 128 (a smaller subset or a larger batch leaves too few generator steps in
10 epochs to protect at ``ci`` scale); VTG's setting is ResNet-18, 30 epochs, batch 512.

Checkpoints: with ``checkpoint=path`` the full training state (generator, surrogate, both
optimisers, every random generator, the epoch) is written atomically after each epoch and
resumed from when present, so an interrupted run finishes exactly as an uninterrupted one (on
CPU); ``checkpoint`` is an attribute of the protection, not part of its config. Multi-process:
``torchrun --nproc_per_node N -m fuselib fit fuse --out fuse.pt ...`` (:func:`fit_distributed`;
``python -m fuselib fit fuse --help``); each process
takes its share of every batch, DistributedDataParallel averages gradients (``gloo`` on CPU,
``nccl`` on GPU), rank 0 writes checkpoints and the result.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .. import models, spectral
from ..data import stratified_indices
from ..train import autocast
from ..registry import check_count
from ..utils import FitClock, atomic_save, default_device, load_checkpoint, progress_bar
from . import REGISTRY
from .base import Protection
from .generators import Generator, class_mean, per_image


@dataclass
class FuseConfig:
    eps: float = 8 / 255
    seed: int = 0
    epochs: int = 10
    batch_size: int = 128
    portion: float = 0.5            # share of the training set the generator trains on (VTG)
    gen_lr: float = 1e-3
    gen_width: int = 8
    gen_res: int = 4
    input: str = "noise"            # "noise" (a seeded input per class) or "images" (VTG)
    surrogate: str = "fastnet"
    surrogate_steps: int = 10
    surrogate_lr: float = 0.1
    basis: str = "dct"
    rsm: bool = True
    rsm_min_width: float = 0.1
    rsm_max_width: float = 0.5
    rsm_lowpass: float = 0.0         # share of RSM draws that are a low-pass (the band [c, 1])
    rsm_lowpass_min: float = 0.1     # ... at a cutoff c ~ U[rsm_lowpass_min, 1)
    rsm_images: bool = False         # RSM filters the whole image x + δ, as the attacker does,
                                     # for the generator's loss and the surrogate's training
    lowband: float = 0.0             # > 0: δ = share·lowpass(g) + (1 - share)·highpass(g) at this
    lowband_share: float = 0.5       # cutoff, g the generator's output (a budget for the low band)
    fast: bool = False               # the surrogate in bf16 autocast (where the CPU/GPU has it)
                                     # and channels_last: the fit's cost, not its objective
    cbg: bool = True
    cbg_cutoff: float = 0.25
    cbg_weight: float = 1.0
    cbg_high: float = 0.5
    cbg_kl: float = 1.0

    def check(self) -> "FuseConfig":
        if self.input not in ("images", "noise"):
            raise ValueError(f"input must be 'images' or 'noise', got {self.input!r}")
        if not 0 < self.portion <= 1:
            raise ValueError(f"portion must be in (0, 1], got {self.portion}")
        for name, least in (("epochs", 1), ("batch_size", 1), ("gen_width", 1), ("gen_res", 0),
                            ("surrogate_steps", 0)):
            check_count(name, getattr(self, name), least)
        spectral.sample_bands(1, self.rsm_min_width, self.rsm_max_width, lowpass=self.rsm_lowpass,
                              lowpass_min=self.rsm_lowpass_min)  # validates widths and shares
        spectral.filter_mask((4, 4), self.cbg_cutoff)                     # validates cutoff
        if self.lowband:
            spectral.filter_mask((4, 4), self.lowband)
        if not 0 <= self.lowband_share <= 1:
            raise ValueError(f"lowband_share must be in [0, 1], got {self.lowband_share}")
        return self


# what each FuseConfig field does, in a line (``fuselib fit fuse --help`` shows them)
FIELD_HELP = {
    "eps": "the L-inf budget of the perturbation, a number or a fraction such as 8/255",
    "seed": "seeds the generator's inputs, initialisation, masks and batches",
    "epochs": "passes of the generator's training over its share of the images",
    "batch_size": "images a generator step",
    "portion": "share of the training images the generator trains on, in (0, 1]",
    "gen_lr": "the generator's Adam learning rate",
    "gen_width": "channels of the generator's first layer (doubled per resolution step)",
    "gen_res": "residual blocks of the generator",
    "input": "the generator's input: noise (one seeded input a class) or images (VTG's)",
    "surrogate": "the surrogate classifier the perturbations are made against",
    "surrogate_steps": "surrogate SGD steps between two generator steps",
    "surrogate_lr": "the surrogate's SGD learning rate",
    "basis": "the spectral transform of masking and guidance: dct or fft",
    "rsm": "Random Spectral Masking: remove a random contiguous band of the perturbation a step",
    "rsm_min_width": "the narrowest band RSM removes (radial frequency, in [0, 1])",
    "rsm_max_width": "the widest band RSM removes",
    "rsm_lowpass": "share of RSM draws that are a low-pass instead of a band",
    "rsm_lowpass_min": "the lowest cutoff of those low-passes",
    "rsm_images": "RSM filters the whole image x + delta, as the attacker would",
    "lowband": "> 0: split the budget at this cutoff (lowband_share of it below)",
    "lowband_share": "the budget's share below lowband, in [0, 1]",
    "fast": "the surrogate in bf16 autocast and channels_last (the fit's cost, not its objective)",
    "cbg": "Cross-Band Guidance: the perturbation's low and high bands must each mislead the "
           "surrogate, and agree",
    "cbg_cutoff": "the cutoff between CBG's low and high bands",
    "cbg_weight": "the weight of the CBG term in the generator's loss",
    "cbg_high": "the weight of the high band's loss inside CBG",
    "cbg_kl": "the weight of the symmetric KL between the two bands' predictions inside CBG",
}


# settings added after records were shipped, with their defaults: config() leaves them out when
# at the default, so earlier fits and runs keep their keys
LATER_DEFAULTS = {"rsm_lowpass": 0.0, "rsm_lowpass_min": 0.1, "rsm_images": False,
                  "lowband": 0.0, "lowband_share": 0.5, "fast": False}


def config_dict(cfg: "FuseConfig") -> dict:
    """The config as a dict, settings in :data:`LATER_DEFAULTS` left out at their default."""
    return {k: v for k, v in asdict(cfg).items()
            if k not in LATER_DEFAULTS or v != LATER_DEFAULTS[k]}


def band_budget(d, cfg: "FuseConfig"):
    """The generator's class perturbations as they are applied: with ``cfg.lowband`` set,
    ``share·lowpass(d) + (1 - share)·highpass(d)`` at that cutoff, so a share of the L∞ budget
    is held in the band below it (what a strong low-pass leaves) and the rest above it."""
    if not cfg.lowband:
        return d
    low = spectral.lowpass(d, cfg.lowband, cfg.basis)
    return cfg.lowband_share * low + (1 - cfg.lowband_share) * (d - low)


def cross_band_consistency(a_logits, b_logits):
    """Symmetric KL between the surrogate's predictions on ``x + δ_low`` and ``x + δ_high``:
    zero exactly when the two bands lead to the same predictions."""
    la, lb = F.log_softmax(a_logits, 1), F.log_softmax(b_logits, 1)
    return 0.5 * (F.kl_div(la, lb, log_target=True, reduction="batchmean")
                  + F.kl_div(lb, la, log_target=True, reduction="batchmean"))


def _dist(device_type: str | None = None):
    """(rank, world size); initialises the process group under torchrun: ``nccl`` when the
    processes train on CUDA, ``gloo`` on the CPU (also on a machine that has a GPU)."""
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        if not dist.is_initialized():
            if device_type is None:
                device_type = "cuda" if torch.cuda.is_available() else "cpu"
            dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class FuseTrainer:
    """Trains the generator; :meth:`fit` returns the class-wise perturbations ``(C, ch, H, W)``."""

    CHECKPOINT_FORMAT = "fuselib.fuse-checkpoint/1"

    def __init__(self, config: FuseConfig, device=None, checkpoint=None, progress=None):
        self.cfg = config.check()
        self.device = torch.device(device) if device else default_device()
        self.checkpoint = checkpoint
        self.progress = progress
        self.history: list = []   # per epoch: dict of mean losses

    # ------------------------------------------------------------------ pieces
    def _inputs(self, x, y):
        return x if self.cfg.input == "images" else self.noise[y]

    def _deltas(self, gen_model, x, y):
        """Per-image class-wise perturbations for a batch (class mean of the generator)."""
        return per_image(band_budget(class_mean(gen_model(self._inputs(x, y)), y,
                                                 self.n_classes), self.cfg), y)

    def _logits(self, model, x, d):
        inp = (x + d).clamp(0, 1) - 0.5
        if not self.cfg.fast:
            return model(inp)
        with autocast(self.device, "auto"):
            return model(inp.contiguous(memory_format=torch.channels_last)).float()

    def generator_loss(self, model, x, y, d, gen):
        """The FUSE objective on one batch; returns (loss, parts)."""
        c = self.cfg
        parts = {}
        d_ue = d
        if c.rsm:
            lo, hi = spectral.sample_bands(len(y), c.rsm_min_width, c.rsm_max_width, gen, x.device,
                                           c.rsm_lowpass, c.rsm_lowpass_min)
            d_ue = spectral.remove_band(d, lo, hi, c.basis)
            if c.rsm_images:  # the attacker's view: the filter acts on x + δ, not on δ alone
                x = spectral.remove_band(x, lo, hi, c.basis)
        loss = parts["ue"] = F.cross_entropy(self._logits(model, x, d_ue), y)
        if c.cbg and c.cbg_weight > 0:
            low = spectral.lowpass(d, c.cbg_cutoff, c.basis)
            lo_logits, hi_logits = self._logits(model, x, low), self._logits(model, x, d - low)
            parts["ce_low"] = F.cross_entropy(lo_logits, y)
            parts["ce_high"] = F.cross_entropy(hi_logits, y)
            parts["kl"] = cross_band_consistency(lo_logits, hi_logits)
            loss = loss + c.cbg_weight * (parts["ce_low"] + c.cbg_high * parts["ce_high"]
                                          + c.cbg_kl * parts["kl"])
        return loss, {k: float(v.detach()) for k, v in parts.items()}

    # ------------------------------------------------------------------ state
    def _state(self, epoch, gen):
        return {"format": self.CHECKPOINT_FORMAT, "config": config_dict(self.cfg),
                "epoch": epoch, "generator": self.G.state_dict(),
                "surrogate": self.f.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_f": self.opt_f.state_dict(), "gen_rng": gen.get_state(),
                "torch_rng": torch.get_rng_state(), "history": self.history,
                "noise": getattr(self, "noise", torch.empty(0)).cpu(),
                "seconds": self.clock.seconds()}

    def _save(self, epoch, gen):
        atomic_save(self._state(epoch, gen), self.checkpoint)

    def _resume(self, gen) -> int:
        s = load_checkpoint(self.checkpoint, self.CHECKPOINT_FORMAT,
                            {"config": config_dict(self.cfg)}, "a FUSE fit")
        if s is None:
            return 0
        self.clock.resume(s)  # the fit's time before it stopped
        self.G.load_state_dict(s["generator"])
        self.f.load_state_dict(s["surrogate"])
        self.opt_g.load_state_dict(s["opt_g"])
        self.opt_f.load_state_dict(s["opt_f"])
        gen.set_state(s["gen_rng"])
        torch.set_rng_state(s["torch_rng"])
        self.history = list(s["history"])
        return int(s["epoch"])

    # ------------------------------------------------------------------ training
    def fit(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        c, dev = self.cfg, self.device
        rank, world = _dist(self.device.type)
        self.clock = FitClock()
        torch.manual_seed(c.seed)
        gen = torch.Generator().manual_seed(c.seed)
        self.n_classes = int(labels.max()) + 1
        sel = stratified_indices(labels, c.portion, gen)
        x_all = images[sel].to(dev)
        y_all = labels[sel].to(dev)
        n, ch, size = len(y_all), images.shape[1], images.shape[-1]
        self.noise = torch.rand((self.n_classes, ch, *images.shape[-2:]), generator=gen).to(dev)
        self.G = Generator(c.eps, ch, c.gen_width, c.gen_res).to(dev)
        kw = {"widths": (32, 64, 128)} if c.surrogate == "fastnet" else {}
        self.f = models.get(c.surrogate, self.n_classes, image_size=size, in_channels=ch,
                            **kw).to(dev)
        if c.fast:
            self.f = self.f.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=c.gen_lr)
        self.opt_f = torch.optim.SGD(self.f.parameters(), lr=c.surrogate_lr, momentum=0.9,
                                     weight_decay=5e-4)
        start = self._resume(gen)
        G, f = self.G, self.f
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            G, f = DDP(self.G), DDP(self.f)
        bs = min(c.batch_size, n)
        local = max(1, bs // world)
        bar = progress_bar(c.epochs, "FUSE", self.progress if rank == 0 else False)
        bar.update(start)
        for epoch in range(start, c.epochs):
            # 1) the surrogate learns the current perturbed data (min over the model)
            self.G.eval()
            f.train()
            perm = torch.randperm(n, generator=gen).to(dev)
            for s in range(c.surrogate_steps):
                idx = perm[(s * bs) % n:][:bs][rank * local:(rank + 1) * local]
                xb, yb = x_all[idx].float() / 255, y_all[idx]
                with torch.no_grad():
                    d = self._deltas(self.G, xb, yb)
                    if c.rsm and c.rsm_images:  # the surrogate learns filtered data too
                        lo, hi = spectral.sample_bands(len(yb), c.rsm_min_width, c.rsm_max_width,
                                                       gen, dev, c.rsm_lowpass, c.rsm_lowpass_min)
                        xb = spectral.remove_band((xb + d).clamp(0, 1), lo, hi, c.basis)
                        d = torch.zeros_like(d)
                loss = F.cross_entropy(self._logits(f, xb, d), yb)
                self.opt_f.zero_grad(set_to_none=True)
                loss.backward()
                self.opt_f.step()
            # 2) the generator makes the perturbed data easy in every band (min over δ)
            self.G.train()
            self.f.train()  # batch statistics: a signal from the first epoch (running stats lag)
            for p in self.f.parameters():
                p.requires_grad_(False)
            perm = torch.randperm(n, generator=gen).to(dev)
            sums, steps = {}, 0
            for i in range(0, n - bs + 1, bs):  # the ragged last batch is dropped
                idx = perm[i:i + bs][rank * local:(rank + 1) * local]
                xb, yb = x_all[idx].float() / 255, y_all[idx]
                d = per_image(band_budget(class_mean(G(self._inputs(xb, yb)), yb,
                                                      self.n_classes), self.cfg), yb)
                loss, parts = self.generator_loss(self.f, xb, yb, d, gen)
                self.opt_g.zero_grad(set_to_none=True)
                loss.backward()
                self.opt_g.step()
                for k, v in {"loss": float(loss.detach()), **parts}.items():
                    sums[k] = sums.get(k, 0.0) + v
                steps += 1
            for p in self.f.parameters():
                p.requires_grad_(True)
            self.history.append({k: v / max(steps, 1) for k, v in sums.items()})
            if self.checkpoint and rank == 0:
                self._save(epoch + 1, gen)
            if world > 1:
                dist.barrier()
            bar.set_postfix(loss=f"{self.history[-1].get('loss', 0):.3f}")
            bar.update(1)
        bar.close()
        return self.generate(images, labels)

    @torch.no_grad()
    def generate(self, images, labels, batch_size: int = 1000) -> torch.Tensor:
        """Class-wise perturbations from the trained generator: the per-class mean of its
        outputs over ``images`` (or the class noise inputs), clipped to ε."""
        self.G.eval()
        n_classes = int(labels.max()) + 1
        ch, h, w = images.shape[1:]
        total = torch.zeros(n_classes, ch, h, w, device=self.device)
        counts = torch.zeros(n_classes, device=self.device)
        if self.cfg.input == "noise":
            d = band_budget(self.G(self.noise[:n_classes]), self.cfg)
            return d.clamp(-self.cfg.eps, self.cfg.eps).cpu()
        for i in range(0, len(labels), batch_size):
            x = images[i:i + batch_size].to(self.device).float() / 255
            y = labels[i:i + batch_size].to(self.device)
            onehot = F.one_hot(y, n_classes).float().T  # matmul: deterministic, unlike index_add
            total += (onehot @ self.G(x).flatten(1)).view_as(total)
            counts += onehot.sum(1)
        d = band_budget(total / counts.clamp_min(1).view(-1, 1, 1, 1), self.cfg)
        return d.clamp(-self.cfg.eps, self.cfg.eps).cpu()


# --------------------------------------------------------------------------- the protection
@REGISTRY.register("fuse", primary="epochs")
class FUSE(Protection):
    state_keys = ("deltas", "generator", "noise")
    checkpoints = True  # every epoch, to self.checkpoint when set
    paper = "Cai et al., ICML 2026 (FUSE)"
    official = ""
    deviation = "transform, bands, CBG formula, weights unstated in the paper (ours); fastnet"

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
        """Every setting; those added after records were shipped appear only when set, so the
        configs (and keys) of earlier fits and runs stay as they were."""
        return config_dict(self.cfg)

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
        self.resumed_seconds = trainer.clock.before
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
        d = band_budget(total / counts.view(-1, 1, 1, 1), self.cfg)
        return d.clamp(-self.eps, self.eps)

    def perturb(self, x, labels):
        if labels is None:
            raise ValueError("fuse is class-wise: apply() needs labels")
        if int(labels.max()) >= self.deltas.shape[0]:
            raise ValueError(f"label {int(labels.max())} was not seen at fit")
        if x.shape[1:] != self.deltas.shape[1:]:
            raise ValueError(f"fuse was fitted on {tuple(self.deltas.shape[1:])} images, got "
                             f"{tuple(x.shape[1:])}; use perturbations_for(images, labels)")
        return x + self.deltas[labels]


# --------------------------------------------------------------------------- several processes
def torchrun_device(device=None) -> torch.device:
    """The device of this process under ``torchrun``: ``device`` when given, else one GPU per
    process by its local rank, else the CPU."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    return torch.device("cpu")


def fit_distributed(images, labels, out, checkpoint=None, device=None, report_sync=False,
                    **settings) -> "FUSE":
    """Fit FUSE with every process that ``torchrun`` started (or just this one) and let rank 0
    write the protection to ``out`` (:func:`fuselib.protections.load` reads it); ``settings``
    are :class:`FuseConfig` fields. ``report_sync``: each rank prints a hash of its generator
    (a DistributedDataParallel sanity check). The command line's ``fuselib fit fuse`` calls it."""
    import hashlib
    import sys

    device = torchrun_device(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    rank, world = _dist(device.type)
    p = FUSE(**settings)
    p.device = device
    p.checkpoint = checkpoint
    p.fit(images, labels)
    if report_sync:
        blob = b"".join(v.cpu().numpy().tobytes() for v in p.generator.values())
        # one write(2) of a short line: the ranks share the pipe, and print() writes the text and
        # the newline separately, so two ranks' lines could interleave ("rank 0 ...rank 1 ...").
        sys.stdout.flush()
        line = f"rank {rank}/{world} generator {hashlib.sha256(blob).hexdigest()[:16]}\n"
        os.write(sys.stdout.fileno(), line.encode())
    if rank == 0:
        p.save(out)
        print(f"wrote {out}: {p.cost}; last epoch {p.history[-1] if p.history else {}}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return p
