"""Purification by a rate-limited VAE trained on the protected data itself (the idea of D-VAE:
Yu et al., "Purify Unlearnable Examples via Rate-Constrained Variational Autoencoders",
ICML 2024, yuyi-sd/D-VAE).

A VAE whose KL term (the rate: how many nats the latent may carry about each image) is held
at or below a budget cannot afford to encode small, image-specific perturbations as well as the
image content; its reconstructions are used as the training set. The attacker needs no clean
data and no labels.

This is D-VAE's first stage only, at a CPU size: a small convolutional VAE (two stride-2 convolutions each way, latent
``latent``×8×8 on 32×32 images), Adam, ``epochs`` passes, loss ``MSE·(pixels) + β·max(KL −
rate·dims, 0)`` (a hinge keeps the rate under the budget). The official second stage (a
disentangling VAE that also models the perturbation) and its ResNet-scale networks are not
reproduced; say so when quoting numbers.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import check_count
from . import REGISTRY
from .base import Countermeasure


class _VAE(nn.Module):
    def __init__(self, ch: int, latent: int, width: int = 48):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(ch, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.Conv2d(width, 2 * latent, 3, padding=1))
        self.dec = nn.Sequential(
            nn.Conv2d(latent, width, 3, padding=1), nn.GELU(),
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1), nn.GELU(),
            nn.ConvTranspose2d(width, ch, 4, stride=2, padding=1))

    def forward(self, x, sample: bool = True):
        mu, logvar = self.enc(x - 0.5).chunk(2, dim=1)
        logvar = logvar.clamp(-10, 10)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if sample else mu
        recon = torch.sigmoid(self.dec(z))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).flatten(1).sum(1)
        return recon, kl


@REGISTRY.register("dvae", primary="rate")
class RateLimitedVAE(Countermeasure):
    paper = "Yu et al., ICML 2024 (D-VAE), first stage only"
    official = "yuyi-sd/D-VAE"
    kind = "learned"

    def __init__(self, rate: float = 0.5, latent: int = 8, epochs: int = 5, beta: float = 10.0,
                 lr: float = 1e-3, batch_size: int = 256, width: int = 48, seed: int = 0):
        if not float(rate) > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        for name, v in (("latent", latent), ("epochs", epochs), ("batch_size", batch_size),
                        ("width", width)):
            check_count(name, v)
        self.rate, self.latent, self.epochs, self.beta = float(rate), int(latent), int(epochs), float(beta)
        self.lr, self.batch_size, self.width, self.seed = float(lr), int(batch_size), int(width), int(seed)

    @property
    def cost(self) -> str:
        return f"a {self.width}-wide conv VAE trained {self.epochs} epochs on the protected set"

    def fit(self, images):
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        h, w = images.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(f"dvae needs image sides divisible by 4, got {h}x{w}")
        vae = _VAE(images.shape[1], self.latent, self.width)
        opt = torch.optim.Adam(vae.parameters(), lr=self.lr)
        n = images.shape[0]
        budget = self.rate * self.latent * (h // 4) * (w // 4)
        self.history = []
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=gen)
            tot = [0.0, 0.0, 0]
            for i in range(0, n, self.batch_size):
                x = images[perm[i:i + self.batch_size]].float() / 255
                recon, kl = vae(x)
                mse = F.mse_loss(recon, x, reduction="none").flatten(1).sum(1)
                loss = (mse + self.beta * F.relu(kl - budget)).mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot[0] += float(mse.detach().sum())
                tot[1] += float(kl.detach().sum())
                tot[2] += len(x)
            self.history.append((tot[0] / tot[2], tot[1] / tot[2]))  # (MSE sum, KL) per image
        self.model = vae.eval()
        return self

    def __call__(self, images, labels=None):
        images, _ = self._check(images, labels)
        with torch.enable_grad():
            self.fit(images)
        return self._reconstruct(images)

    @torch.no_grad()
    def _reconstruct(self, images):
        out = torch.empty_like(images)
        for i in range(0, images.shape[0], self.chunk):
            recon, _ = self.model(images[i:i + self.chunk].float() / 255, sample=False)
            out[i:i + self.chunk] = (recon * 255).round().clamp(0, 255).to(torch.uint8)
        return out
