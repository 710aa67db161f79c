"""``rem``: robust error-minimizing noise (Fu et al., "Robust Unlearnable Examples: Protecting
Data Against Adversarial Learning", ICLR 2022).

EM noise is undone by adversarial training; REM makes the noise minimise the loss of a model
that *is* adversarially trained. A min–min–max problem over sample-wise noise ``δ_u``
(``‖δ_u‖∞ ≤ ε``) and an attacker's adversarial perturbation ``δ_a`` (``‖δ_a‖∞ ≤ ρ``), with an
expectation over the training augmentation ``T`` (flip + crop with padding 4)::

    min_θ  min_δu  E_T  max_δa  CE(f_θ(T(x + δ_u) + δ_a), y)

Alternated, as the official ``generate_robust_em.py``:

1. every ``perturb_freq`` model steps, the current batch's ``δ_u`` is re-optimised from a random
   start: ``steps`` signed descent steps; each gradient is averaged over ``eot`` draws of ``T``,
   each with its own ``adv_steps``-step PGD attacker ``δ_a`` (random start) against it;
2. every step, one SGD step of the surrogate on ``T(x + δ_u) + δ_a`` (adversarial training);
3. after ``train_steps`` steps, ``δ_u`` of *every* image is regenerated against the final model.

Official defaults (fshp971/robust-unlearnable-examples, README CIFAR-10 command): ResNet-18,
SGD lr 0.1 momentum 0.9 wd 5e-4, batch 128, 5000 steps, lr ×0.1 every 2000 steps;
``δ_u``: ε 8/255, 10 steps of 1.6/255; ``δ_a``: ρ 4/255, 10 steps of 0.8/255; ``eot=5``;
``perturb_freq=10``. Its cost is why REM is rarely rerun (the CUDA paper reports 22.6 GPU-hours
on a V100). **CPU default here** (``cost``): a small ``fastnet`` surrogate, 300 model steps,
``steps=5``, ``adv_steps=3``, ``eot=1`` (one random transform per step: a stochastic estimate of
the same expectation), step sizes rescaled so that each PGD can still travel twice its radius
(official ratio). ``paper_settings()`` gives the official configuration.

Deviations: the learning-rate decay points are placed at 40% and 80% of ``train_steps``
(official: steps 2000 and 4000 of 5000), and augmentation is this package's batched
flip/translate (zero padding) rather than torchvision's per-image transforms.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..train import augment
from ..registry import check_count
from ..utils import default_device
from . import REGISTRY
from .base import Protection, as_float, linf_step, to_steps
from .surrogate import SurrogateMixin


@REGISTRY.register("rem", primary="rho")
class RobustErrorMinimizing(SurrogateMixin, Protection):
    state_keys = ("deltas",)
    paper = "Fu et al., ICLR 2022 (Robust Unlearnable Examples)"
    official = "fshp971/robust-unlearnable-examples"
    deviation = "CPU default: fastnet surrogate, 300 model steps, 5 PGD steps, one transform a step"
    later_defaults = {"fast": False}

    def __init__(self, eps: float = 8 / 255, seed: int = 0, rho: float = 4 / 255,
                 surrogate: str = "fastnet", train_steps: int = 300, perturb_freq: int = 10,
                 steps: int = 5, step_size: float | None = None, adv_steps: int = 3,
                 adv_step_size: float | None = None, eot: int = 1, batch_size: int = 128,
                 lr: float = 0.1, regen_batch_size: int = 256, fast: bool = False):
        super().__init__(eps, seed)
        if not 0.0 <= float(rho) <= 1.0:
            raise ValueError(f"rho (the attacker's L-inf radius) must be in [0, 1], got {rho}")
        for name, v in (("train_steps", train_steps), ("perturb_freq", perturb_freq),
                        ("steps", steps), ("eot", eot), ("batch_size", batch_size),
                        ("regen_batch_size", regen_batch_size)):
            check_count(name, v)
        check_count("adv_steps", adv_steps, minimum=0)  # 0: no attacker (plain EM on T(x))
        self.rho, self.surrogate = float(rho), surrogate
        self.train_steps, self.perturb_freq = int(train_steps), int(perturb_freq)
        self.steps, self.adv_steps, self.eot = int(steps), int(adv_steps), int(eot)
        self.step_size = float(step_size) if step_size is not None else 2 * self.eps / self.steps
        self.adv_step_size = (float(adv_step_size) if adv_step_size is not None
                              else 2 * self.rho / max(1, self.adv_steps))
        self.batch_size, self.lr = int(batch_size), float(lr)
        self.regen_batch_size, self.fast = int(regen_batch_size), bool(fast)
        self.deltas = None
        self.history: list = []  # (step, training loss on T(x+δu)+δa)
        self.device = default_device()

    @staticmethod
    def paper_settings() -> dict:
        """The official CIFAR-10 configuration (ResNet-18; many GPU-hours)."""
        return dict(surrogate="resnet18", train_steps=5000, perturb_freq=10, steps=10,
                    step_size=1.6 / 255, adv_steps=10, adv_step_size=0.8 / 255, eot=5,
                    batch_size=128, lr=0.1)

    @property
    def cost(self) -> str:
        per_image = self.steps * self.eot * (self.adv_steps + 1)
        return (f"surrogate {self.surrogate}, {self.train_steps} adversarial-training steps "
                f"(batch {self.batch_size}); {per_image} forward/backward passes per image to "
                f"regenerate the noise ({self.steps} steps x {self.eot} EOT x "
                f"{self.adv_steps}+1 attacker passes)")

    # ------------------------------------------------------------------ the three players
    def _transform(self, z, gen):
        return augment(z, gen, translate=4, pad_mode="constant", flip=True)

    def _attack(self, model, z, y, gen):
        """The attacker: ``adv_steps`` of PGD ascent in the ρ-ball around ``z`` (detached)."""
        if self.adv_steps == 0 or self.rho == 0:
            return torch.zeros_like(z)
        z = z.detach()
        a = (torch.rand(z.shape, generator=gen).to(z.device) * 2 - 1) * self.rho
        for _ in range(self.adv_steps):
            a.requires_grad_(True)
            loss = F.cross_entropy(self._logits(model, (z + a).clamp(0, 1)), y)
            (g,) = torch.autograd.grad(loss, a)
            a = linf_step(z, a, g, self.adv_step_size, self.rho)
        return a

    def _defend(self, model, x, y, gen):
        """The protector: δ_u minimising the expected loss under the attacker, random start."""
        model.eval()
        d = (torch.rand(x.shape, generator=gen).to(x.device) * 2 - 1) * self.eps
        d = (x + d).clamp(0, 1) - x
        for _ in range(self.steps):
            d.requires_grad_(True)
            grad = torch.zeros_like(x)
            for _ in range(self.eot):
                z = self._transform((x + d).clamp(0, 1), gen)
                a = self._attack(model, z, y, gen)
                loss = F.cross_entropy(self._logits(model, (z + a).clamp(0, 1)), y)
                grad += torch.autograd.grad(loss, d)[0]
            d = linf_step(x, d, grad, -self.step_size, self.eps)
        return d

    def _fit(self, images, labels):
        dev = self.device
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        n_classes = int(labels.max()) + 1
        n = len(labels)
        deltas = torch.zeros(images.shape, dtype=torch.float32)
        model, opt = self._make_surrogate(n_classes, images.shape[-1], images.shape[1], dev)
        decay = {int(0.4 * self.train_steps), int(0.8 * self.train_steps)}
        bs = min(self.batch_size, n)
        cursor, perm = 0, torch.randperm(n, generator=gen)
        self.history = []
        for step in range(self.train_steps):
            if cursor + bs > n:
                cursor, perm = 0, torch.randperm(n, generator=gen)
            idx = perm[cursor:cursor + bs]
            cursor += bs
            x = images[idx].to(dev).float() / 255
            y = labels[idx].to(dev)
            if step % self.perturb_freq == 0:
                deltas[idx] = self._defend(model, x, y, gen).cpu()
            z = self._transform((x + deltas[idx].to(dev)).clamp(0, 1), gen)
            model.eval()  # the attacker sees the model as it stands, BN frozen
            a = self._attack(model, z, y, gen)
            model.train()
            loss = F.cross_entropy(self._logits(model, (z + a).clamp(0, 1)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self.history.append((step + 1, loss.item()))
            if step + 1 in decay:
                for group in opt.param_groups:
                    group["lr"] *= 0.1
        for i in range(0, n, self.regen_batch_size):  # final regeneration, official
            x = images[i:i + self.regen_batch_size].to(dev).float() / 255
            y = labels[i:i + self.regen_batch_size].to(dev)
            deltas[i:i + self.regen_batch_size] = self._defend(model, x, y, gen).cpu()
        self.deltas = to_steps(deltas)  # int8 uint8-steps: exact after apply()'s rounding
        self.surrogate_model = model.eval()  # kept for inspection; not part of the saved state

    def perturb(self, x, labels):
        if x.shape != self.deltas.shape:
            raise ValueError(f"rem was fitted on {tuple(self.deltas.shape)} images; apply() got "
                             f"{tuple(x.shape)} (pass the same images, same order)")
        return x + as_float(self.deltas)
