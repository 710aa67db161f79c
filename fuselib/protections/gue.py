"""``gue``: game-theoretic unlearnable examples (Liu et al., "Game-Theoretic Unlearnable Example
Generator", AAAI 2024 — GUE).

The protector (leader) and the trainer (follower) play a Stackelberg game: a generator ``G``
makes sample-wise noise ``δ = ε·tanh(·)``; the follower trains a classifier ``θ`` on
``clip(x + δ)``; the leader wants that classifier to fail on *clean* data. Solved with the
first-order bilevel method BOME, per batch:

1. **inner** — a copy ``θ'`` of the classifier trains ``inner_steps`` Adam steps on the poisoned
   batch, approximating the follower's best response;
2. **payoff** ``f(θ)`` — the classifier's clean-data loss for the leader, official form:
   ``mean_i max_{k≠y_i} CE(θ(x_i), k)``, small when every wrong class keeps probability, i.e.
   when the true class does not win (minimised, i.e. the clean error maximised);
3. **constraint** ``q = g(G, θ) − g(G, θ')`` with ``g`` the poisoned-data CE: ``θ`` must stay as
   good on the poisoned data as the follower's best response;
4. **λ-weighted step** — ``λ = max((η‖∇q‖² − ⟨∇f, ∇q⟩) / ‖∇q‖², 0)`` (``∇`` over (G, θ), ``f``
   depends on θ only); ``G ← G − lr_atk·λ∇_G q``, ``θ ← θ − lr_cls·(∇_θ f + λ∇_θ q)``.

Official code (hong-xian/gue, ``gue.py``, ``models/unet.py``): a U-Net generator (double
conv-BN-ReLU blocks of 64-128-256-512 channels, 2×2 average pooling, bilinear up-sampling with
concatenated skips, 1×1 conv + BatchNorm, tanh, times ε) against a ResNet-18; η 1.5; inner
steps 10 (Adam, lr 1e-4); classifier SGD lr 0.01; generator SGD lr 0.1; batch 256; 50 epochs
over CIFAR-10; ε 8/255.

**Deviations.** InstanceNorm instead of BatchNorm in the generator (``fuselib.protections.generators``'
blocks): each image's δ depends on that image only, not on the batch it is generated in. Sides
are padded (replicate) to a multiple of 8, at least 16, for the three poolings, then cropped.
Inputs are centred (``x − 0.5``) as everywhere in fuselib. **CPU default** (``cost``): generator
width 8 (8-16-32-64), a small ``fastnet`` classifier (widths 32-64-128) with SGD lr 0.05 and
momentum 0.9 like this package's other surrogates (official: ``lr_cls=0.01, momentum=0``),
``inner_steps=2``, batch 64 and a fixed ``steps=100`` BOME steps (not epochs), so the fit costs
the same at any data size (about a minute on 2 CPU cores). That is far less game than the
official loop, so these rows measure GUE at a CPU budget, not GUE as published (RESULTS.md, the
main table). ``paper_settings()`` gives the official loop (thousands of steps; a GPU's work).
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from .. import models
from ..registry import check_count
from ..utils import default_device
from . import REGISTRY
from .base import Protection
from .generators import UNet
from .surrogate import SMALL


def wrong_class_loss(logits, y):
    """GUE's leader payoff: ``mean_i max_{k≠y_i} CE(logits_i, k)``."""
    logp = F.log_softmax(logits, 1).masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("inf"))
    return -logp.min(1).values.mean()


@REGISTRY.register("gue", primary="steps")
class GUE(Protection):
    state_keys = ("generator",)
    paper = "Liu et al., AAAI 2024 (Game-Theoretic Unlearnable Example Generator)"
    official = "hong-xian/gue"
    deviation = "InstanceNorm generator, width 8, fastnet classifier, 100 game steps (CPU default)"

    def __init__(self, eps: float = 8 / 255, seed: int = 0, steps: int = 100,
                 batch_size: int = 64, inner_steps: int = 2, eta: float = 1.5,
                 lr_cls: float = 0.05, momentum: float = 0.9, lr_tmp: float = 1e-4,
                 lr_atk: float = 0.1, gen_width: int = 8, surrogate: str = "fastnet"):
        super().__init__(eps, seed)
        self.steps = check_count("steps", steps)
        self.batch_size = check_count("batch_size", batch_size)
        self.inner_steps = check_count("inner_steps", inner_steps, minimum=0)
        self.eta, self.lr_cls, self.momentum = float(eta), float(lr_cls), float(momentum)
        self.lr_tmp, self.lr_atk = float(lr_tmp), float(lr_atk)
        self.gen_width, self.surrogate = check_count("gen_width", gen_width), surrogate
        self.generator = None
        self.history: list = []  # per step: (payoff f, poisoned loss g, λ)
        self.device = default_device()

    @staticmethod
    def paper_settings(n_images: int = 50000) -> dict:
        """The official loop: 50 epochs of batch 256, 10 inner steps, U-Net 64, ResNet-18."""
        return dict(steps=50 * (n_images // 256), batch_size=256, inner_steps=10, lr_cls=0.01,
                    momentum=0.0, gen_width=64, surrogate="resnet18")

    @property
    def cost(self) -> str:
        return (f"U-Net width {self.gen_width} vs {self.surrogate}: {self.steps} BOME steps of "
                f"batch {self.batch_size}, each {self.inner_steps} inner steps + 3 classifier "
                f"passes + 1 generator pass; one generator pass per image to apply")

    def _fit(self, images, labels):
        dev = self.device
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        n, n_classes = len(labels), int(labels.max()) + 1
        x_all, y_all = images.to(dev), labels.to(dev)
        G = UNet(self.eps, images.shape[1], self.gen_width).to(dev)
        kw = dict(SMALL) if self.surrogate == "fastnet" else {}
        f = models.get(self.surrogate, n_classes, image_size=images.shape[-1],
                       in_channels=images.shape[1], **kw).to(dev)
        opt_g = torch.optim.SGD(G.parameters(), lr=self.lr_atk)
        opt_f = torch.optim.SGD(f.parameters(), lr=self.lr_cls, momentum=self.momentum)
        g_params, f_params = list(G.parameters()), list(f.parameters())
        bs = min(self.batch_size, n)
        cursor, perm = n, None
        self.history = []
        G.train()
        f.train()
        for _ in range(self.steps):
            if cursor + bs > n:
                cursor, perm = 0, torch.randperm(n, generator=gen).to(dev)
            idx = perm[cursor:cursor + bs]
            cursor += bs
            x, y = x_all[idx].float() / 255, y_all[idx]
            # 1) the follower's approximate best response: a copy trained on the poisoned batch
            tmp = copy.deepcopy(f)
            opt_t = torch.optim.Adam(tmp.parameters(), lr=self.lr_tmp)
            with torch.no_grad():
                xp = (x + G(x)).clamp(0, 1) - 0.5
            for _ in range(self.inner_steps):
                opt_t.zero_grad(set_to_none=True)
                F.cross_entropy(tmp(xp), y).backward()
                opt_t.step()
            tmp.requires_grad_(False)
            # 2) the leader's payoff on clean data and the constraint q = g(θ) − g(θ')
            payoff = wrong_class_loss(f(x - 0.5), y)
            grad_f = torch.autograd.grad(payoff, f_params)
            xp = (x + G(x)).clamp(0, 1) - 0.5
            g_theta = F.cross_entropy(f(xp), y)
            q = g_theta - F.cross_entropy(tmp(xp), y)
            grad_q_g = torch.autograd.grad(q, g_params, retain_graph=True)
            grad_q_f = torch.autograd.grad(g_theta, f_params)
            # 3) BOME's λ and the joint first-order step
            norm_q = sum((t * t).sum() for t in grad_q_f + grad_q_g)
            dot = sum((a * b).sum() for a, b in zip(grad_f, grad_q_f))
            lam = F.relu((self.eta * norm_q - dot) / (norm_q + 1e-8))
            for p, gq in zip(g_params, grad_q_g):
                p.grad = lam * gq
            for p, gf, gq in zip(f_params, grad_f, grad_q_f):
                p.grad = gf + lam * gq
            opt_g.step()
            opt_f.step()
            self.history.append((payoff.item(), g_theta.item(), lam.item()))
        self.generator = {k: v.detach().cpu() for k, v in G.state_dict().items()}
        self.surrogate_model = f.eval()  # kept for inspection; not part of the saved state

    def generator_model(self) -> UNet:
        g = UNet(self.eps, self.generator["out.0.weight"].shape[0], self.gen_width)
        g.load_state_dict(self.generator)
        return g.eval()

    @torch.no_grad()
    def perturb(self, x, labels):
        g = self.generator_model().to(self.device)
        out = torch.empty_like(x)
        for i in range(0, len(x), 500):
            xb = x[i:i + 500].to(self.device)
            out[i:i + 500] = (xb + g(xb)).cpu()
        return out
