"""Training-time defences: what an attacker changes in the training loop, not in the data.

Each defence is one countermeasure class here with its batch operation: the data pass through
unchanged, :attr:`recipe` names the :class:`fuselib.train.Recipe` fields it switches on (they
enter the run's config and hash), and :meth:`TrainingDefence.batch` is what the trainer calls on
every augmented batch. :func:`defences` turns a recipe back into the defences it switches on, in
the order the trainer applies them (UEraser, SDA, cutout, mixing, adversarial examples); the
experiment runner passes them to :func:`fuselib.train.train`. Settings default to the Deep
Hiding paper's protocol (``shared/reference/protocol.md``).

Batch inputs are model-scale tensors (``x/255 - 0.5``, so pixel range ``[-0.5, 0.5]``); every
random draw comes from the trainer's seeded CPU generator ``gen``.

* cutout (DeVries & Taylor 2017): one ``size``×``size`` square per image set to 0 (mid-grey).
* mixup (Zhang et al. 2018) / cutmix (Yun et al. 2019): mix each image with a random other
  one of the batch, weight ``λ ~ Beta(α, α)`` (α = 1: uniform in 0–1); the loss mixes the
  two labels by ``λ`` (cutmix: by the pasted box's area).
* adversarial training (Madry et al. 2018): train on PGD examples, L∞ (ε 8/255, step 2/255)
  or L2 (ε 1, step ε/4), 10 steps, random start.
* UEraser (Qin et al. 2023, "Learning the Unlearnable: Adversarial Augmentations Suppress
  Unlearnable Example Attacks"): strong random augmentation — plasma (smooth random field)
  brightness and contrast, channel shuffle, and one randomly chosen colour/geometry op —
  drawn ``K`` times per image; each image trains on its *highest-loss* draw. Deviation: the
  official code composes kornia's PlasmaBrightness/PlasmaContrast/ChannelShuffle with
  torchvision's TrivialAugment; here they are re-implemented as batched tensor ops.
* stronger data augmentation (SDA; Zhu, Yu and Gao, AAAI 2024, repository hala64/udp,
  ``sdaan.py``) at strength ``s``: a random resized crop of area share in ``[1 − 0.9s, 1]``,
  colour jitter (brightness, contrast and saturation factors in ``[1 − 0.4s, 1 + 0.4s]``, hue
  shifted by up to ``0.1s`` of a turn) with probability ``0.8s`` and grayscale with probability
  ``0.2s``, per image. Deviations: the jitter's four factors apply in a fixed order
  (torchvision: a random one), hue turns the chroma plane in YIQ space (torchvision: HSV), and the
  trainer's own flip and translation stay on. With adversarial noise it is ``sdaan``
  (:mod:`.sdaan`).
* early stopping: the attacker keeps the best epoch (no batch operation; the runner reads the
  undefended run's peak).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..registry import check_count
from . import REGISTRY
from .base import PassThrough

# --------------------------------------------------------------------------- batch operations
LO, HI = -0.5, 0.5  # pixel range at the model's input scale


def _uniform(shape, gen, device):
    return torch.rand(shape, generator=gen).to(device)


# --------------------------------------------------------------------------- cutout / mixing
def cutout(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """One ``size``×``size`` square per image (centre uniform, may overlap the border) set to 0."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=gen).to(x.device)
    cx = torch.randint(0, w, (b,), generator=gen).to(x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    top, left = (cy - size // 2)[:, None, None], (cx - size // 2)[:, None, None]
    inside = (ys >= top) & (ys < top + size) & (xs >= left) & (xs < left + size)
    return x.masked_fill(inside[:, None], 0.0)


def mix(x: torch.Tensor, kind: str, alpha: float, gen: torch.Generator):
    """Mixup or cutmix a batch with a shuffled copy of itself.

    Returns ``(mixed, partner_index, lam)``: the loss is ``lam·CE(y) + (1−lam)·CE(y[partner])``.
    """
    b, _, h, w = x.shape
    partner = torch.randperm(b, generator=gen).to(x.device)
    # Beta draws use torch's global generator, which train() seeds: still deterministic
    lam = float(torch.distributions.Beta(alpha, alpha).sample()) if alpha > 0 else 1.0
    if kind == "mixup":
        return lam * x + (1 - lam) * x[partner], partner, lam
    if kind == "cutmix":
        cut = math.sqrt(1.0 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy = int(torch.randint(0, h, (1,), generator=gen))
        cx = int(torch.randint(0, w, (1,), generator=gen))
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        out = x.clone()
        out[:, :, y0:y1, x0:x1] = x[partner, :, y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)
        return out, partner, lam
    raise ValueError(f"mix must be 'mixup' or 'cutmix', got {kind!r}")


# --------------------------------------------------------------------------- adversarial
def pgd(model, x, y, norm: str, eps: float, steps: int, step_size: float, gen):
    """Untargeted PGD examples for adversarial training (model in eval mode while attacking).

    ``eps`` and ``step_size`` are in image units ([0, 1] scale = model scale here)."""
    was = model.training
    model.eval()
    if norm == "linf":
        d = (_uniform(x.shape, gen, x.device) * 2 - 1) * eps
    elif norm == "l2":
        d = torch.randn(x.shape, generator=gen).to(x.device)
        d = d / d.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * eps * _uniform(
            (x.shape[0], 1, 1, 1), gen, x.device)
    else:
        raise ValueError(f"adversarial norm must be 'linf' or 'l2', got {norm!r}")
    d = ((x + d).clamp(LO, HI) - x).detach()
    for _ in range(steps):
        d.requires_grad_(True)
        loss = F.cross_entropy(model(x + d).float(), y)
        (g,) = torch.autograd.grad(loss, d)
        with torch.no_grad():
            if norm == "linf":
                d = (d + step_size * g.sign()).clamp(-eps, eps)
            else:
                g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                d = d + step_size * g
                n = d.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
                d = d * (eps / n).clamp(max=1.0)
            d = (x + d).clamp(LO, HI) - x
    model.train(was)
    return (x + d).detach()


# --------------------------------------------------------------------------- UEraser
def _plasma(b, h, w, gen, device, grain=4):
    """A smooth random field in [-1, 1] per image (bilinear upsampling of coarse noise)."""
    coarse = _uniform((b, 1, grain, grain), gen, device) * 2 - 1
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)


def strong_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One UEraser-style draw per image: plasma brightness and contrast, channel shuffle, then
    one of {identity, solarize, posterize, sharpness/blur, shear-like shift, grayscale}."""
    b, c, h, w = x.shape
    dev = x.device
    p = x + 0.5                                              # back to [0, 1]
    p = p + 0.4 * _plasma(b, h, w, gen, dev)                 # plasma brightness
    mean = p.mean(dim=(1, 2, 3), keepdim=True)
    p = (p - mean) * (1 + 0.6 * _plasma(b, h, w, gen, dev)) + mean  # plasma contrast
    p = p.clamp(0, 1)
    order = torch.argsort(_uniform((b, c), gen, dev), dim=1)  # channel shuffle
    p = torch.gather(p, 1, order[:, :, None, None].expand(-1, -1, h, w))
    op = torch.randint(0, 6, (b,), generator=gen).to(dev)
    sol = torch.where(p > 0.5, 1 - p, p)
    post = torch.floor(p * 4) / 4
    blur = F.avg_pool2d(F.pad(p, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    sharp = (2 * p - blur).clamp(0, 1)
    shift = torch.roll(p, shifts=(3, 3), dims=(2, 3))
    gray = (0.299 * p[:, :1] + 0.587 * p[:, 1:2] + 0.114 * p[:, 2:3]).expand(-1, c, -1, -1)
    choices = torch.stack([p, sol, post, sharp, shift, gray])  # (6, B, C, H, W)
    p = choices[op, torch.arange(b, device=dev)]
    return p - 0.5


def colour_jitter(p: torch.Tensor, s: float, gen: torch.Generator) -> torch.Tensor:
    """SDA's colour jitter on images ``p`` in ``[0, 1]``, one draw per image: brightness,
    contrast, saturation (factors in ``[1 − 0.4s, 1 + 0.4s]``) and hue (a turn of up to
    ``±0.1s``), applied with probability ``0.8s``; then grayscale with probability ``0.2s``."""
    b, dev = p.shape[0], p.device

    def factor(width):
        return (1 + (_uniform((b, 1, 1, 1), gen, dev) * 2 - 1) * width)

    def grey(q):
        return 0.299 * q[:, :1] + 0.587 * q[:, 1:2] + 0.114 * q[:, 2:3]

    q = (p * factor(0.4 * s)).clamp(0, 1)                                    # brightness
    m = grey(q).mean(dim=(1, 2, 3), keepdim=True)
    q = ((q - m) * factor(0.4 * s) + m).clamp(0, 1)                          # contrast
    g = grey(q)
    q = ((q - g) * factor(0.4 * s) + g).clamp(0, 1)                          # saturation
    turn = (_uniform((b,), gen, dev) * 2 - 1) * 0.1 * s * 2 * math.pi        # hue, in YIQ
    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322],
                        [0.211, -0.523, 0.312]], device=dev)
    c = torch.einsum("ij,bjhw->bihw", yiq, q)
    cos, sin = turn.cos().view(b, 1, 1), turn.sin().view(b, 1, 1)
    i, qq = c[:, 1] * cos - c[:, 2] * sin, c[:, 1] * sin + c[:, 2] * cos
    q = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(yiq),
                     torch.stack([c[:, 0], i, qq], 1)).clamp(0, 1)
    on = (_uniform((b, 1, 1, 1), gen, dev) < 0.8 * s)
    p = torch.where(on, q, p)
    gray = _uniform((b, 1, 1, 1), gen, dev) < 0.2 * s
    return torch.where(gray, grey(p).expand_as(p), p)


def sda_inputs(x: torch.Tensor, s: float, gen: torch.Generator) -> torch.Tensor:
    """One SDA draw per image of a model-scale batch: random resized crop, then colour jitter."""
    from ..train import random_resized_crop

    if s > 0:
        x = random_resized_crop(x, gen, 1 - 0.9 * s)
    return colour_jitter(x + 0.5, s, gen) - 0.5


def ueraser_inputs(model, x, y, k: int, gen, amp_ctx) -> torch.Tensor:
    """Of ``k`` strong augmentations per image, the one the current model finds hardest."""
    draws = [strong_augment(x, gen) for _ in range(k)]
    if k == 1:
        return draws[0]
    with torch.no_grad(), amp_ctx():
        losses = torch.stack([F.cross_entropy(model(d).float(), y, reduction="none")
                              for d in draws])          # (k, B)
    pick = losses.argmax(0)
    stacked = torch.stack(draws)                         # (k, B, C, H, W)
    return stacked[pick, torch.arange(x.shape[0], device=x.device)]


# --------------------------------------------------------------------------- the countermeasures
class TrainingDefence(PassThrough):
    """A training-time defence: the recipe fields it switches on, and its batch operation."""

    def batch(self, model, x, y, gen, amp_ctx):
        """One augmented batch ``x`` (labels ``y``) -> ``(inputs, partner index or None, λ)``;
        the loss is ``λ·CE(y) + (1−λ)·CE(y[partner])`` when a partner is returned."""
        raise NotImplementedError


@REGISTRY.register("cutout", primary="size")
class Cutout(TrainingDefence):
    """One random ``size``×``size`` square per training image blanked (16 px on 32×32)."""

    paper = "DeVries & Taylor, 2017"

    def __init__(self, size: int = 16):
        self.size = check_count("size", size)

    @property
    def recipe(self):
        return {"cutout": self.size}

    def batch(self, model, x, y, gen, amp_ctx):
        return cutout(x, self.size, gen), None, 1.0


@REGISTRY.register("mixup", primary="alpha")
class MixUp(TrainingDefence):
    """Blend each training image with a random other one, λ ~ Beta(α, α) (α 1: uniform), and
    the two labels by λ."""

    paper = "Zhang et al., ICLR 2018"

    mode = "mixup"

    def __init__(self, alpha: float = 1.0):
        if float(alpha) <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = float(alpha)

    @property
    def recipe(self):
        return {"mix": self.mode, "mix_alpha": self.alpha}

    def batch(self, model, x, y, gen, amp_ctx):
        return mix(x, self.mode, self.alpha, gen)


@REGISTRY.register("cutmix", primary="alpha")
class CutMix(MixUp):
    """Paste a random box (area fraction 1 − λ, λ ~ Beta(α, α)) from another image of the
    batch; labels mixed by area."""

    paper = "Yun et al., ICCV 2019"

    mode = "cutmix"


@REGISTRY.register("adv", primary="norm")
class AdversarialTraining(TrainingDefence):
    """Adversarial training with PGD (Madry et al.): ``norm`` "linf" (ε 8/255, step 2/255) or
    "l2" (ε 1, step 0.25), ``steps`` 10, random start. ``eps``/``step`` default per norm."""

    paper = "Madry et al., ICLR 2018"

    def __init__(self, norm: str = "linf", eps: float | None = None, steps: int = 10,
                 step: float | None = None):
        if norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2', got {norm!r}")
        self.norm = norm
        self.eps = float(eps) if eps is not None else (8 / 255 if norm == "linf" else 1.0)
        self.step = float(step) if step is not None else (
            2 / 255 if norm == "linf" else self.eps / 4)
        for name, v in (("eps", self.eps), ("step", self.step)):
            if not v > 0:
                raise ValueError(f"{name} must be > 0, got {v}")
        self.steps = check_count("steps", steps)

    @property
    def recipe(self):
        return {"adv": self.norm, "adv_eps": self.eps, "adv_steps": self.steps,
                "adv_step": self.step}

    def batch(self, model, x, y, gen, amp_ctx):
        return pgd(model, x, y, self.norm, self.eps, self.steps, self.step, gen), None, 1.0


@REGISTRY.register("ueraser", primary="k")
class UEraser(TrainingDefence):
    """UEraser-style adversarial augmentation: ``k`` strong random augmentations per image,
    train on the one with the highest loss (official K = 5)."""

    paper = "Qin et al., 2023 (UEraser)"
    official = "lafeat/ueraser"

    def __init__(self, k: int = 5):
        self.k = check_count("k", k)

    @property
    def recipe(self):
        return {"ueraser": self.k}

    def batch(self, model, x, y, gen, amp_ctx):
        return ueraser_inputs(model, x, y, self.k, gen, amp_ctx), None, 1.0


@REGISTRY.register("sda", primary="strength")
class StrongAugment(TrainingDefence):
    """Stronger data augmentation (SDA, the detection paper's defence without its adversarial
    noise): random resized crop, colour jitter and grayscale at ``strength`` s in (0, 1]
    (official 1.0)."""

    paper = "Zhu, Yu and Gao, AAAI 2024 (SDA)"
    official = "hala64/udp"

    def __init__(self, strength: float = 1.0):
        if not 0 < float(strength) <= 1:
            raise ValueError(f"strength must be in (0, 1], got {strength}")
        self.strength = float(strength)

    @property
    def recipe(self):
        return {"sda": self.strength}

    def batch(self, model, x, y, gen, amp_ctx):
        return sda_inputs(x, self.strength, gen), None, 1.0


@REGISTRY.register("early_stop")
class EarlyStop(PassThrough):
    """The attacker keeps the best epoch: the run's peak clean test accuracy is reported as its
    accuracy. An oracle (it picks the epoch by test accuracy), so an upper bound on what a
    held-out validation set would give; it reuses the ``none`` run rather than retraining."""

    uses_peak = True


def defences(recipe) -> list:
    """The training-time defences a :class:`fuselib.train.Recipe` switches on, in the order the
    trainer applies them to a batch: UEraser, SDA, cutout, mixup/cutmix, adversarial examples."""
    out = []
    if recipe.ueraser:
        out.append(UEraser(recipe.ueraser))
    if recipe.sda:
        out.append(StrongAugment(recipe.sda))
    if recipe.cutout:
        out.append(Cutout(recipe.cutout))
    if recipe.mix != "none":
        out.append((MixUp if recipe.mix == "mixup" else CutMix)(recipe.mix_alpha))
    if recipe.adv != "none":
        # eps and step given explicitly: the recipe's values, whatever the norm's defaults
        out.append(AdversarialTraining(recipe.adv, recipe.adv_eps, recipe.adv_steps,
                                       recipe.adv_step))
    return out
