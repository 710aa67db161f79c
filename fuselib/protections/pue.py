"""``pue``: provably unlearnable examples (Wang et al., "Provably Unlearnable Data Examples",
NDSS 2025).

Class-wise error-minimising noise — the min–min loop of :mod:`fuselib.protections.em`,
reused, not copied — and, with ``robust=True``, its robust variant: every surrogate training
step and every PGD step is taken at Gaussian-perturbed surrogate weights ``θ + ε``,
``ε ~ N(0, s²)`` over every parameter, a fresh draw each time. The noise then has to lower the
loss of a whole neighbourhood of classifiers, which is what lowers the certified
(q, η)-learnability of :mod:`fuselib.certify` (parametric smoothing over the same kind of
weight noise).

Official code (Provably-Unlearnable-Examples/PUE, ``make_pue.py``, ``toolbox.py``,
``trainer.py``): ResNet-18 surrogate; noise shape 10×3×32×32, ε 8/255, one PGD step of 0.8/255
per batch, 10 surrogate steps per round, batch 128, a 20% subset (``--use_subset``; here
class-balanced), stop once the surrogate's error on the perturbed subset is ≤ 0.5; class noise =
mean of the batch's per-sample results (as EM). Robust: the weight-noise scale ramps ``s = 0,
0.05, …, 1.0`` (``robust_noise`` 1.0, step 0.05: 21 levels), one optimiser step per level
averaging 100 draws (training) and one signed step per level averaging 10 draws (PGD); it
switches on once the surrogate's accuracy on the perturbed data exceeds 50% — which, with the
default stop error 0.5, is the round the loop stops in, so it only acts with a lower stop error.

**Deviations / CPU default** (``cost``): a small ``fastnet`` surrogate, at most
``max_rounds`` rounds. Robust noise is on from the first round (not after the 50% switch), at
one level ``s = weight_sigma = 0.01`` with one draw per step (``sigma_levels``,
``train_draws``, ``pgd_draws`` = 1): 0.01 is the default smoothing σ of
:func:`fuselib.certify.certify`, where it is measured — σ of 0.1 or more already puts this
small net at chance. The official schedule is ``weight_sigma=1.0, sigma_levels=21,
train_draws=100, pgd_draws=10, surrogate="resnet18"`` (levels ``linspace(0, weight_sigma,
sigma_levels)``): 2100 forward/backward passes per training step and 210 per PGD step instead
of one. RESULTS.md measures both readings (plans ``main_table``, ``rivals_lowpass`` and
``certificates``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models import weight_noise
from ..registry import check_count
from . import REGISTRY
from .base import linf_step
from .em import ErrorMinimizing


@REGISTRY.register("pue", primary="robust")
class ProvablyUnlearnable(ErrorMinimizing):
    paper = "Wang et al., NDSS 2025 (Provably Unlearnable Data Examples)"
    official = "Provably-Unlearnable-Examples/PUE"
    deviation = "CPU default: fastnet surrogate; robust noise at σ 0.01 from the first round"

    def __init__(self, eps: float = 8 / 255, seed: int = 0, robust: bool = False,
                 surrogate: str = "fastnet", train_steps: int = 10, pgd_steps: int = 1,
                 step_size: float = 0.8 / 255, stop_error: float = 0.5, max_rounds: int = 40,
                 batch_size: int = 128, lr: float = 0.1, portion: float = 0.2,
                 weight_sigma: float = 0.01, sigma_levels: int = 1, train_draws: int = 1,
                 pgd_draws: int = 1, fast: bool = False):
        super().__init__(eps, seed, "class", surrogate, train_steps, pgd_steps, step_size,
                         stop_error, max_rounds, batch_size, lr, portion, fast)
        self.robust, self.weight_sigma = bool(robust), float(weight_sigma)
        if self.weight_sigma < 0:
            raise ValueError(f"weight_sigma must be >= 0, got {weight_sigma}")
        self.sigma_levels = check_count("sigma_levels", sigma_levels)
        self.train_draws = check_count("train_draws", train_draws)
        self.pgd_draws = check_count("pgd_draws", pgd_draws)

    @property
    def cost(self) -> str:
        extra = (f"; robust: {self.sigma_levels} noise level(s) up to σ={self.weight_sigma:g}, "
                 f"{self.train_draws}/{self.pgd_draws} weight draws per training/PGD step"
                 if self.robust else "")
        return super().cost + extra

    def _levels(self) -> list:
        if self.sigma_levels == 1:
            return [self.weight_sigma]
        return torch.linspace(0, self.weight_sigma, self.sigma_levels).tolist()

    def _fit(self, images, labels):
        self._wgen = torch.Generator().manual_seed(self.seed + 1)  # the weight noise
        super()._fit(images, labels)

    def _generators(self, gen) -> dict:
        return {**super()._generators(gen), "weights": self._wgen}

    def _step(self, model, opt, x, y):
        if not self.robust:
            return super()._step(model, opt, x, y)
        model.train()
        losses = []
        for s in self._levels():  # one optimiser step per noise level, averaged over draws
            opt.zero_grad(set_to_none=True)
            for _ in range(self.train_draws):
                with weight_noise(model, s, self._wgen):
                    loss = F.cross_entropy(self._logits(model, x), y)
                    (loss / self.train_draws).backward()
                losses.append(loss.item())
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
        return sum(losses) / len(losses)

    def _pgd(self, model, x, d, y):
        if not self.robust:
            return super()._pgd(model, x, d, y)
        model.eval()
        d = d.clone()
        for _ in range(self.pgd_steps):
            for s in self._levels():  # one signed step per level, its gradient over draws
                d.requires_grad_(True)
                g = torch.zeros_like(d)
                for _ in range(self.pgd_draws):
                    with weight_noise(model, s, self._wgen):
                        loss = F.cross_entropy(self._logits(model, (x + d).clamp(0, 1)), y)
                        g += torch.autograd.grad(loss, d)[0]
                d = linf_step(x, d, g, -self.step_size, self.eps)
        return d
