"""``dh``: Deep Hiding (Meng, Yi, Yu, Yang, Shen & Kot, "Semantic Deep Hiding for Robust
Unlearnable Examples", arXiv:2406.17349, 2024; an earlier version was submitted to ICLR 2024 as
"Towards robust unlearnable examples via deep hiding"). No official code is public.

Instead of noise, DH hides a *semantic image* (the "secret") inside every training image (the
"cover") with an invertible neural network (INN), the way deep steganography does: the network
learns to produce a stego image close to the cover from which the secret can be revealed.
The change ``δ = stego − cover`` then carries the secret's high-level shapes, and secrets are
shared within a class, so a network trained on the result latches onto them. Pieces:

* **Haar DWT.** The INN works on wavelet subbands: a fixed, orthonormal 2-D Haar transform
  turns ``C×H×W`` into ``4C×H/2×W/2`` (LL, LH, HL, HH), exactly invertible (:func:`dwt`,
  :func:`idwt`).
* **INN** (HiNet-style affine coupling, Jing et al., ICCV 2021), ``blocks`` blocks on the pair
  (cover subbands ``x1``, secret subbands ``x2``)::

      y1 = x1 + φ(x2)
      y2 = x2 ⊙ exp(s(y1)) + η(y1),      s = clamp · tanh(ρ(y1))

  with small conv subnets φ, ρ, η (last layer zero-initialised, so training starts from
  stego = cover). The inverse is exact. ``idwt(y1)`` is the stego image, ``y2`` the "lost"
  part ``z``. **Reveal** runs the inverse from ``(dwt(stego), z = 0)``.
* **Losses** (per-element means; weights are parameters, defaults HiNet's ``5·reveal + 1·hide
  + 1·low`` — HiNet sums its losses, so relative to it the LL term weighs 4× more here):
  ``w_hide·‖stego − cover‖²`` (hiding),
  ``w_low·‖LL(dwt(stego)) − LL(dwt(cover))‖²`` (HiNet's low-frequency wavelet loss: keeps
  the hidden signal out of the low band),
  ``w_reveal·‖reveal(stego) − secret‖²`` (revealing, on the stego *as apply() outputs it*:
  ``δ`` clipped to ±ε and the image to [0, 1]), and ``w_lfc·`` **latent feature
  concentration**: latent features of the perturbations ``δ`` of each class are pulled to
  their class mean — the minibatch's intra-class variance of the features divided by their
  total variance (scale-free, in [0, 1]). Features: a fixed, seeded random 3×3 conv layer
  (``feature_dim`` maps) with ReLU on ``δ/ε``, average-pooled to 4×4.
* **Semantic secrets.** The paper generates them with Stable Diffusion + ControlNet ("Semantic
  Images Generation": similar images within a class, distinct between classes). That cannot
  run here, so this module **substitutes** procedurally drawn images: one per class, each a
  distinct seeded shape family (disc, ring, oriented stripes, checkerboard, polygon, star,
  cross, concentric squares, spiral, dot lattice — cycled with new parameters beyond ten
  classes) in two seeded, contrasting colours (:func:`semantic_images`).
  ``mode="class"`` hides the class's image in every image of the class (the paper's class-wise
  DH); ``mode="sample"`` hides a per-sample variant (random circular shift of up to 1/8 of the
  side and a ±15% per-channel colour gain), a stand-in for the paper's sample-wise DH (a
  different generated secret per image; how those differ is not reproduced).

``δ`` depends on the cover, so it is sample-wise even when secrets are class-wise: apply() runs
the trained INN on whatever images it is given (any order, unseen images too), and needs their
labels. In practice training makes ``δ`` close to class-wise all the same (measured on 1000
CIFAR-10 images after a 100-step, 2-block fit: within-class variance is ≈2% of the variance of
``δ``, and class centroids of ``δ`` classify the ``δ`` of 500 unseen images perfectly). The
output is bounded by ε = 8/255 in L∞ (the bound the paper uses): ``δ`` is clipped to
``[−ε, ε]`` before apply()'s rounding.

**CPU default here** (``cost``): ``blocks=3`` coupling blocks with 3-layer conv subnets of
``hidden=32`` channels, ``steps=300`` Adam steps (lr 1e-3) on minibatches of 64 drawn from the
data given to fit() (about 1.5 minutes on one loaded CPU core, whatever the data size; apply()
about 1 ms per image). ``paper_settings()`` gives HiNet's network depth and learning rate (16
blocks, lr 10^-4.5, clamp 2) with a longer schedule of our choosing — the paper's INN size and
schedule are not public.

Deviations from the paper: procedural secrets instead of diffusion-generated ones (above); the
latent features of the concentration loss come from a fixed random conv layer on ``δ`` (the
paper's feature extractor is not reproduced); the reveal loss sees the clipped stego and ``z = 0``
(HiNet samples ``z`` from a Gaussian); the hiding network is trained on the data given to
fit() only, for a few hundred steps (Adam with default betas; HiNet uses (0.5, 0.999) and
weight decay 1e-5); subnets are plain 3-layer convs, not HiNet's 5-layer dense blocks.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..registry import check_count
from ..utils import default_device
from . import REGISTRY
from .base import Protection

SHAPES = ("disc", "ring", "stripes", "checker", "polygon", "star", "cross", "squares",
          "spiral", "dots")


# ---------------------------------------------------------------------- Haar wavelets
def dwt(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D Haar transform: ``(N, C, H, W)`` → ``(N, 4C, H/2, W/2)``, subbands in
    the order LL, LH, HL, HH (each a group of C channels). H and W must be even."""
    if x.shape[-1] % 2 or x.shape[-2] % 2:
        raise ValueError(f"dh needs even image sides for the Haar transform, got "
                         f"{tuple(x.shape[-2:])}")
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return torch.cat([(a + b + c + d) / 2, (-a - b + c + d) / 2,
                      (-a + b - c + d) / 2, (a - b - c + d) / 2], dim=1)


def idwt(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dwt` (exact up to float rounding)."""
    ll, lh, hl, hh = y.chunk(4, dim=1)
    n, ch, h, w = ll.shape
    x = y.new_empty(n, ch, 2 * h, 2 * w)
    x[..., 0::2, 0::2] = (ll - lh - hl + hh) / 2
    x[..., 0::2, 1::2] = (ll - lh + hl - hh) / 2
    x[..., 1::2, 0::2] = (ll + lh - hl - hh) / 2
    x[..., 1::2, 1::2] = (ll + lh + hl + hh) / 2
    return x


# ---------------------------------------------------------------------- the INN
def _subnet(channels: int, hidden: int) -> nn.Sequential:
    net = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.LeakyReLU(0.2),
                        nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.2),
                        nn.Conv2d(hidden, channels, 3, padding=1))
    nn.init.zeros_(net[-1].weight)  # HiNet/Glow habit: each block starts as the identity
    nn.init.zeros_(net[-1].bias)
    return net


class CouplingBlock(nn.Module):
    """HiNet's affine coupling: ``y1 = x1 + φ(x2)``, ``y2 = x2·exp(s(y1)) + η(y1)``."""

    def __init__(self, channels: int, hidden: int, clamp: float):
        super().__init__()
        self.clamp = float(clamp)
        self.phi, self.rho, self.eta = (_subnet(channels, hidden) for _ in range(3))

    def _s(self, y1):
        return self.clamp * torch.tanh(self.rho(y1))

    def forward(self, x1, x2):
        y1 = x1 + self.phi(x2)
        return y1, x2 * torch.exp(self._s(y1)) + self.eta(y1)

    def inverse(self, y1, y2):
        x2 = (y2 - self.eta(y1)) * torch.exp(-self._s(y1))
        return y1 - self.phi(x2), x2


class HidingINN(nn.Module):
    """A stack of :class:`CouplingBlock` on (cover, secret) subbands of ``4·channels`` each."""

    def __init__(self, channels: int = 3, blocks: int = 3, hidden: int = 32,
                 clamp: float = 2.0):
        super().__init__()
        self.blocks = nn.ModuleList(CouplingBlock(4 * channels, hidden, clamp)
                                    for _ in range(blocks))

    def forward(self, x1, x2):
        for b in self.blocks:
            x1, x2 = b(x1, x2)
        return x1, x2

    def inverse(self, y1, y2):
        for b in reversed(self.blocks):
            y1, y2 = b.inverse(y1, y2)
        return y1, y2

    def hide(self, cover, secret):
        """Images in, ``(stego, z)`` out (stego an image, z in subband layout)."""
        y1, z = self(dwt(cover), dwt(secret))
        return idwt(y1), z

    def reveal(self, stego, z=None):
        """The secret recovered from a stego image (``z = 0`` unless given)."""
        y1 = dwt(stego)
        _, x2 = self.inverse(y1, torch.zeros_like(y1) if z is None else z)
        return idwt(x2)


# ---------------------------------------------------------------------- semantic secrets
def _soft(sd: torch.Tensor, sharp: float) -> torch.Tensor:
    """An anti-aliased mask from a signed distance (inside < 0)."""
    return torch.sigmoid(-sd * sharp)


def _shape_mask(kind: str, u, v, p: torch.Tensor, sharp: float) -> torch.Tensor:
    """Mask in [0, 1] of a shape family on the grid (u, v) ∈ [−1, 1]², parameters p[0..5]."""
    cx, cy = (p[0] - 0.5) * 0.4, (p[1] - 0.5) * 0.4
    uu, vv = u - cx, v - cy
    r, phi = torch.sqrt(uu ** 2 + vv ** 2), torch.atan2(vv, uu)
    theta = p[2] * math.pi
    along = uu * math.cos(theta) + vv * math.sin(theta)
    across = -uu * math.sin(theta) + vv * math.cos(theta)
    if kind == "disc":
        return _soft(r - (0.35 + 0.3 * p[3]), sharp)
    if kind == "ring":
        return _soft((r - (0.4 + 0.25 * p[3])).abs() - (0.08 + 0.08 * p[4]), sharp)
    if kind == "stripes":
        return _soft(-torch.sin(along * (4 + 6 * p[3]) * math.pi), sharp / 8)
    if kind == "checker":
        f = (2 + 3 * p[3]) * math.pi
        return _soft(-torch.sin(along * f) * torch.sin(across * f), sharp / 8)
    if kind == "polygon":
        k = 3 + int(p[4] * 4)  # 3..6 sides
        sector = 2 * math.pi / k
        a = torch.remainder(phi - theta, sector) - sector / 2
        return _soft(r * torch.cos(a) - (0.35 + 0.25 * p[3]) * math.cos(math.pi / k), sharp)
    if kind == "star":
        k = 4 + int(p[4] * 4)  # 4..7 points
        return _soft(r - (0.45 + 0.15 * p[3]) * (1 + 0.45 * torch.cos(k * (phi - theta))),
                     sharp)
    if kind == "cross":
        w = 0.12 + 0.1 * p[3]
        return _soft(torch.minimum(along.abs(), across.abs()) - w, sharp)
    if kind == "squares":
        m = torch.maximum(along.abs(), across.abs())
        return _soft(-torch.sin(m * (3 + 4 * p[3]) * math.pi), sharp / 8)
    if kind == "spiral":
        arms = 1 + int(p[4] * 3)
        return _soft(-torch.sin(arms * (phi - theta) + r * (6 + 8 * p[3])), sharp / 8)
    if kind == "dots":
        f = (2 + 2 * p[3]) * math.pi
        return _soft(1.0 - (torch.cos(along * f) + torch.cos(across * f)), sharp / 4)
    raise ValueError(f"unknown shape {kind!r}")


def semantic_images(n_classes: int, size=(32, 32), channels: int = 3,
                    seed: int = 0) -> torch.Tensor:
    """One procedurally drawn "semantic" image per class, ``(n_classes, channels, H, W)`` in
    [0, 1]: class ``c`` gets shape family ``SHAPES[c % 10]`` with seeded parameters (position,
    angle, frequency, size) and a seeded pair of contrasting colours."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    v, u = torch.meshgrid(torch.linspace(-1, 1, h, dtype=torch.float64),
                          torch.linspace(-1, 1, w, dtype=torch.float64), indexing="ij")
    sharp = float(max(h, w))  # edges about two pixels wide
    out = []
    for c in range(n_classes):
        p = torch.rand(6, generator=gen, dtype=torch.float64)
        bg = torch.rand(3, generator=gen, dtype=torch.float64)
        fg = torch.rand(3, generator=gen, dtype=torch.float64)
        far = torch.where(bg < 0.5, bg + 0.6, bg - 0.6).clamp(0, 1)
        fg = torch.where((fg - bg).abs() < 0.45, far, fg)  # every channel keeps contrast
        m = _shape_mask(SHAPES[c % len(SHAPES)], u, v, p, sharp)
        img = bg.view(3, 1, 1) * (1 - m) + fg.view(3, 1, 1) * m
        if channels == 1:
            img = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]).unsqueeze(0)
        out.append(img)
    return torch.stack(out).float().clamp(0, 1)


def jitter(secrets: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Per-sample variants of secrets ``(N, C, H, W)``: circular shift by up to 1/8 of each
    side and a per-channel colour gain in [0.85, 1.15] (``mode="sample"``)."""
    n, ch, h, w = secrets.shape
    dy = torch.randint(-(h // 8), h // 8 + 1, (n,), generator=gen)
    dx = torch.randint(-(w // 8), w // 8 + 1, (n,), generator=gen)
    gain = 0.85 + 0.3 * torch.rand(n, ch, 1, 1, generator=gen)
    out = torch.stack([torch.roll(s, (int(a), int(b)), dims=(1, 2))
                       for s, a, b in zip(secrets, dy, dx)])
    return (out * gain).clamp(0, 1)


# ---------------------------------------------------------------------- the protection
@REGISTRY.register("dh", primary="mode")
class DeepHiding(Protection):
    state_keys = ("inn", "secrets")
    paper = "Meng et al., arXiv:2406.17349, 2024 (Semantic Deep Hiding)"
    official = ""
    deviation = "procedural secrets, not diffusion-made; random-conv LFC features; 3-block INN"

    def __init__(self, eps: float = 8 / 255, seed: int = 0, mode: str = "class",
                 steps: int = 300, batch_size: int = 64, lr: float = 1e-3, blocks: int = 3,
                 hidden: int = 32, clamp: float = 2.0, w_hide: float = 1.0,
                 w_low: float = 1.0, w_reveal: float = 5.0, w_lfc: float = 1.0,
                 feature_dim: int = 32):
        super().__init__(eps, seed)
        if mode not in ("class", "sample"):
            raise ValueError(f"mode must be 'class' or 'sample', got {mode!r}")
        for name, v, least in (("steps", steps, 0), ("batch_size", batch_size, 2),
                               ("blocks", blocks, 1), ("hidden", hidden, 1),
                               ("feature_dim", feature_dim, 1)):
            check_count(name, v, least)
        self.mode = mode
        self.steps, self.batch_size, self.lr = int(steps), int(batch_size), float(lr)
        self.blocks, self.hidden, self.clamp = int(blocks), int(hidden), float(clamp)
        self.w_hide, self.w_low = float(w_hide), float(w_low)
        self.w_reveal, self.w_lfc = float(w_reveal), float(w_lfc)
        self.feature_dim = int(feature_dim)
        self.inn = None      # the INN's weights: {name: tensor} (saved)
        self.secrets = None  # (classes, C, H, W) float in [0, 1] (saved)
        self.history: list = []  # (step, total, hide, low, reveal, lfc)
        self.device = default_device()

    @staticmethod
    def paper_settings() -> dict:
        """HiNet's depth, learning rate and clamp (16 blocks, 10^-4.5, 2.0) with a longer
        schedule (a GPU setting; the paper's own INN size and schedule are not public, and the
        number of steps is our choice)."""
        return dict(blocks=16, hidden=32, clamp=2.0, steps=20000, batch_size=64, lr=10 ** -4.5)

    @property
    def cost(self) -> str:
        return (f"INN of {self.blocks} affine-coupling blocks (3-layer conv subnets, width "
                f"{self.hidden}) on Haar subbands; {self.steps} Adam steps of batch "
                f"{self.batch_size} (hide + reveal pass each); apply(): one INN pass per image")

    # ------------------------------------------------------------------ pieces
    def network(self, device=None) -> HidingINN:
        """The trained INN (eval mode), rebuilt from the saved weights."""
        if self.inn is None:
            raise RuntimeError("dh: call fit(images, labels) first")
        net = HidingINN(self.secrets.shape[1], self.blocks, self.hidden, self.clamp)
        net.load_state_dict(self.inn)
        return net.to(device or "cpu").eval()

    def secrets_for(self, labels: torch.Tensor, gen: torch.Generator | None = None):
        """The secret image of each label (a per-sample variant in ``mode="sample"``)."""
        if int(labels.max()) >= self.secrets.shape[0]:
            raise ValueError(f"label {int(labels.max())} was not seen at fit")
        s = self.secrets[labels.cpu()]
        if self.mode == "sample":
            s = jitter(s, gen if gen is not None else torch.Generator().manual_seed(self.seed + 1))
        return s

    def _features(self, delta, weight):
        f = F.relu(F.conv2d(delta / self.eps, weight, padding=1))
        return F.adaptive_avg_pool2d(f, 4).flatten(1)

    @staticmethod
    def concentration(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Intra-class variance of ``features`` over their total variance (0 when every class
        is a single point; classes with one sample in the batch count as their own mean)."""
        classes, inv = torch.unique(labels, return_inverse=True)
        sums = torch.zeros(len(classes), features.shape[1], device=features.device,
                           dtype=features.dtype).index_add_(0, inv, features)
        counts = torch.bincount(inv, minlength=len(classes)).to(features.dtype).unsqueeze(1)
        intra = ((features - (sums / counts)[inv]) ** 2).sum()
        total = ((features - features.mean(0, keepdim=True)) ** 2).sum()
        return intra / (total + 1e-12)

    def _losses(self, net, x, s, y, fweight):
        cover, secret = dwt(x), dwt(s)
        y1, _ = net(cover, secret)
        stego = idwt(y1)
        delta = stego - x
        ch = x.shape[1]
        hide = F.mse_loss(stego, x)
        low = F.mse_loss(y1[:, :ch], cover[:, :ch])
        seen = (x + delta.clamp(-self.eps, self.eps)).clamp(0, 1)  # what apply() outputs
        reveal = F.mse_loss(net.reveal(seen), s)
        lfc = self.concentration(self._features(delta, fweight), y)
        total = (self.w_hide * hide + self.w_low * low + self.w_reveal * reveal
                 + self.w_lfc * lfc)
        return total, (hide, low, reveal, lfc)

    # ------------------------------------------------------------------ the interface
    def _fit(self, images, labels):
        dev = self.device
        n, ch, h, w = images.shape
        if h % 2 or w % 2:
            raise ValueError(f"dh needs even image sides for the Haar transform, got {(h, w)}")
        n_classes = int(labels.max()) + 1
        self.secrets = semantic_images(n_classes, (h, w), ch, self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = HidingINN(ch, self.blocks, self.hidden, self.clamp)
        fweight = (torch.randn(self.feature_dim, ch, 3, 3, generator=gen)
                   / math.sqrt(9 * ch)).to(dev)
        net = net.to(dev).train()
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        bs = min(self.batch_size, n)
        perm, cursor = torch.randperm(n, generator=gen), 0
        self.history = []
        log_every = max(1, self.steps // 20)
        for step in range(self.steps):
            if cursor + bs > n:
                perm, cursor = torch.randperm(n, generator=gen), 0
            idx = perm[cursor:cursor + bs]
            cursor += bs
            x = (images[idx].float() / 255).to(dev)
            y = labels[idx]
            s = self.secrets_for(y, gen).to(dev)
            loss, parts = self._losses(net, x, s, y.to(dev), fweight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % log_every == 0 or step == self.steps - 1:
                self.history.append((step + 1, loss.item(), *(p.item() for p in parts)))
        self.inn = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def perturb(self, x, labels, batch_size: int = 500):
        if labels is None:
            raise ValueError("dh needs labels at apply() (the secrets are class-wise)")
        if x.shape[1:] != self.secrets.shape[1:]:
            raise ValueError(f"dh was fitted on images {tuple(self.secrets.shape[1:])}; "
                             f"apply() got {tuple(x.shape[1:])}")
        secrets = self.secrets_for(labels)
        net = self.network(self.device)
        out = torch.empty_like(x)
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(self.device)
            stego, _ = net.hide(xb, secrets[i:i + batch_size].to(self.device))
            out[i:i + batch_size] = (xb + (stego - xb).clamp(-self.eps, self.eps)).cpu()
        return out

    @torch.no_grad()
    def reveal_error(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Mean squared error (images in [0, 1]) of the secrets revealed from ``apply()``'s
        uint8 output against the secrets hidden in it: how much of the secret ``δ`` carries."""
        stego = self.apply(images, labels).float() / 255
        s = self.secrets_for(labels)
        return float(F.mse_loss(self.network().reveal(stego), s))
