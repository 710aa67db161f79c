"""``em``: error-minimizing noise (Huang et al., "Unlearnable Examples", ICLR 2021).

A min–min bilevel problem: the noise ``δ`` *minimises* a surrogate's training loss on
``x + δ`` while the surrogate itself is trained on ``x + δ``, so the noise becomes an easy
shortcut the network learns instead of the image content. Alternate, until the surrogate's
error on the perturbed data is below ``stop_error``:

1. ``train_steps`` SGD steps of the surrogate on ``clip(x + δ)`` (lr 0.1, momentum 0.9,
   weight decay 5e-4, gradient-norm clip 5, no augmentation — as the official code);
2. one pass of PGD over the data, ``pgd_steps`` signed *descent* steps of size ``step_size``
   per batch, projected to ``‖δ‖∞ ≤ ε`` and to valid images.

``mode="class"``: one δ per class; after each batch's PGD the class's δ becomes the mean of the
batch's per-sample results for that class (official ``universal`` update), generated on a
stratified ``portion`` of the data (official scripts: 20%). ``mode="sample"``: one δ per image
(apply() then needs the very images given to fit, in the same order).

Official defaults (HanxunH/Unlearnable-Examples): ResNet-18 surrogate, batch 512, ε 8/255,
step 0.8/255, class-wise 1 PGD step, sample-wise 20, stop at error 0.01. **CPU default here**
(``cost``): a small ``fastnet`` surrogate (widths 32-64-128), the same steps and stopping rule,
at most ``max_rounds`` outer rounds; pass ``surrogate="resnet18"`` for the paper setting.

Checkpoints: with ``checkpoint=path`` (an attribute, not part of the config) the loop's whole
state (δ, the surrogate and its optimiser, the random generators, the data cursor, the history)
is written after every round, and a fit started again with the same config resumes from the
last finished round with the same result as an uninterrupted fit (on the CPU). The experiment
runner sets it (``results/cache/partial/fit-KEY.pt``), so an interrupted long fit (sample-wise
EM on all of CIFAR-10, class-wise on 128-px Imagenette) is not lost. PUE inherits it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data import stratified_indices
from ..registry import check_count
from ..utils import FitClock, atomic_save, default_device, load_checkpoint
from . import REGISTRY
from .base import Protection, as_float, linf_step, to_steps
from .surrogate import SurrogateMixin

@REGISTRY.register("em", primary="mode")
class ErrorMinimizing(SurrogateMixin, Protection):
    state_keys = ("deltas",)
    paper = "Huang et al., ICLR 2021 (Unlearnable Examples)"
    official = "HanxunH/Unlearnable-Examples"
    deviation = "CPU default: small fastnet surrogate, at most 40 rounds (official: ResNet-18)"
    later_defaults = {"fast": False}
    checkpoints = True  # every round, to self.checkpoint when set
    CHECKPOINT_FORMAT = "fuselib.em-checkpoint/1"

    def __init__(self, eps: float = 8 / 255, seed: int = 0, mode: str = "class",
                 surrogate: str = "fastnet", train_steps: int = 10, pgd_steps: int | None = None,
                 step_size: float = 0.8 / 255, stop_error: float = 0.01, max_rounds: int = 40,
                 batch_size: int = 512, lr: float = 0.1, portion: float | None = None,
                 fast: bool = False):
        super().__init__(eps, seed)
        if mode not in ("class", "sample"):
            raise ValueError(f"mode must be 'class' or 'sample', got {mode!r}")
        self.mode, self.surrogate = mode, surrogate
        self.train_steps, self.step_size = check_count("train_steps", train_steps), float(step_size)
        self.pgd_steps = check_count("pgd_steps", pgd_steps if pgd_steps is not None
                                     else (1 if mode == "class" else 20))
        self.stop_error, self.max_rounds = float(stop_error), check_count("max_rounds", max_rounds)
        self.batch_size = check_count("batch_size", batch_size)
        self.lr, self.fast = float(lr), bool(fast)
        self.portion = float(portion if portion is not None else (0.2 if mode == "class" else 1.0))
        for name, v, ok, want in (("step_size", self.step_size, self.step_size > 0, "> 0"),
                                  ("lr", self.lr, self.lr > 0, "> 0"),
                                  ("stop_error", self.stop_error, 0 <= self.stop_error <= 1,
                                   "in [0, 1]"),
                                  ("portion", self.portion, 0 < self.portion <= 1, "in (0, 1]")):
            if not ok:
                raise ValueError(f"{name} must be {want}, got {v}")
        self.deltas = None
        self.history: list = []  # (round, surrogate loss, accuracy on perturbed data)
        self.device = default_device()
        self.checkpoint = None

    @property
    def cost(self) -> str:
        return (f"surrogate {self.surrogate}; up to {self.max_rounds} rounds of "
                f"{self.train_steps} SGD steps + one PGD pass ({self.pgd_steps} steps/batch) "
                f"over {self.portion:.0%} of the data")

    def _pgd(self, model, x, d, y):
        """Signed descent on CE, projected to the ε-ball and to valid images."""
        model.eval()
        d = d.clone()
        for _ in range(self.pgd_steps):
            d.requires_grad_(True)
            loss = F.cross_entropy(self._logits(model, (x + d).clamp(0, 1)), y)
            (g,) = torch.autograd.grad(loss, d)
            d = linf_step(x, d, g, -self.step_size, self.eps)
        return d

    def _fit(self, images, labels):
        dev = self.device
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        n_classes = int(labels.max()) + 1
        if self.mode == "class":
            sel = stratified_indices(labels, self.portion, gen)
        else:
            sel = torch.arange(len(labels))
        x = images[sel].to(dev).float() / 255
        y = labels[sel].to(dev)
        n = len(y)
        shape = (n_classes if self.mode == "class" else n, *x.shape[1:])
        delta = torch.zeros(shape, device=dev)
        model, opt = self._make_surrogate(n_classes, x.shape[-1], x.shape[1], dev)
        bs = min(self.batch_size, n)
        cursor, perm = 0, torch.randperm(n, generator=gen)
        self.history = []
        start, done = 0, False
        self.clock = FitClock()
        saved = load_checkpoint(self.checkpoint, self.CHECKPOINT_FORMAT,
                                {"config": self.config()}, self.name)
        if saved is not None:
            start, done, cursor, perm = self._restore(saved, delta, model, opt, gen)
        for rnd in range(start, start if done else self.max_rounds):
            losses = []
            for _ in range(self.train_steps):
                if cursor + bs > n:
                    cursor, perm = 0, torch.randperm(n, generator=gen)
                idx = perm[cursor:cursor + bs].to(dev)
                cursor += bs
                d = delta[y[idx]] if self.mode == "class" else delta[idx]
                losses.append(self._step(model, opt, (x[idx] + d).clamp(0, 1), y[idx]))
            order = torch.randperm(n, generator=gen).to(dev)
            for i in range(0, n, bs):
                idx = order[i:i + bs]
                yb = y[idx]
                if self.mode == "class":
                    d = self._pgd(model, x[idx], delta[yb], yb)
                    for c in torch.unique(yb):
                        delta[c] = d[yb == c].mean(0).clamp(-self.eps, self.eps)
                else:
                    delta[idx] = self._pgd(model, x[idx], delta[idx], yb)
            d_all = delta[y] if self.mode == "class" else delta
            acc = self._accuracy(model, (x + d_all).clamp(0, 1), y)
            self.history.append((rnd + 1, sum(losses) / len(losses), acc))
            done = 1.0 - acc <= self.stop_error
            if self.checkpoint:
                self._save(rnd + 1, done, delta, model, opt, gen, cursor, perm)
            if done:
                break
        self.resumed_seconds = self.clock.before
        self.deltas = delta.cpu() if self.mode == "class" else to_steps(delta)  # int8 steps
        self.surrogate_model = model.eval()  # kept for inspection; not part of the saved state

    # ------------------------------------------------------------------ checkpoints
    def _generators(self, gen) -> dict:
        """The random generators the loop draws from, by name (PUE adds its weight noise)."""
        return {"data": gen}

    def _save(self, rnd, done, delta, model, opt, gen, cursor, perm):
        atomic_save({"format": self.CHECKPOINT_FORMAT, "config": self.config(), "round": rnd,
                     "done": done, "delta": delta.detach().cpu(), "surrogate": model.state_dict(),
                     "opt": opt.state_dict(), "torch_rng": torch.get_rng_state(),
                     "rng": {k: g.get_state() for k, g in self._generators(gen).items()},
                     "cursor": cursor, "perm": perm, "history": [list(h) for h in self.history],
                     "seconds": self.clock.seconds()},
                    self.checkpoint)

    def _restore(self, saved, delta, model, opt, gen):
        """The inverse of :meth:`_save`: the state back in place; the loop's position returned."""
        delta.copy_(saved["delta"].to(delta.device))
        model.load_state_dict(saved["surrogate"])
        opt.load_state_dict(saved["opt"])
        for k, g in self._generators(gen).items():
            g.set_state(saved["rng"][k])
        torch.set_rng_state(saved["torch_rng"])
        self.history = [tuple(h) for h in saved["history"]]
        self.clock.resume(saved)  # the fit's time before it stopped
        return saved["round"], saved["done"], saved["cursor"], saved["perm"]

    def perturb(self, x, labels):
        if self.mode == "class":
            if labels is None:
                raise ValueError("class-wise em needs labels at apply()")
            if int(labels.max()) >= self.deltas.shape[0]:
                raise ValueError(f"label {int(labels.max())} was not seen at fit")
            return x + self.deltas[labels]
        if x.shape != self.deltas.shape:
            raise ValueError(f"sample-wise em was fitted on {tuple(self.deltas.shape)} images; "
                             f"apply() got {tuple(x.shape)} (pass the same images, same order)")
        return x + as_float(self.deltas)
