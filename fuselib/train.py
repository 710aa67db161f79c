"""Train a classifier from scratch and report clean test accuracy — where the compute goes.

Three recipes, one loop (``train(..., recipe="fast" | "standard" | "vit")``):

* ``fast`` — in the spirit of Keller Jordan's airbench: the whole training set lives on the
  device as one uint8 tensor, augmentation (flip, translate) is a few tensor ops per batch,
  label smoothing, a triangular one-cycle learning rate, channels_last, bf16 autocast where
  the hardware has it, optional ``torch.compile``. No data-dependent initialisation (no
  whitening layer fitted to the images): poisoned data must not shape the model before
  training starts.
* ``standard`` — the recipe of the unlearnable-examples papers: ResNet-18, SGD lr 0.1,
  momentum 0.9, weight decay 5e-4, batch 128, cosine schedule, random crop (zero pad 4) and
  horizontal flip, fp32 and channels_last. Epochs are a parameter (the papers use 60–200; the
  cpu and full scales shorten the schedule and halve the batch: ``experiments.scales``).
  bf16 autocast (``amp="auto"``) about doubles ResNet-18's training throughput on a CPU with
  AVX512-BF16 (``bench/evaluator.py --archs``). The recipe's default stays fp32; a plan turns
  bf16 on where a clean run in bf16 has stayed within 1 point of fp32 over the same seeds
  (plans ``victims_bf16`` against ``victims``: the victims after tier 1 train in bf16;
  ``experiments.plans.BF16``).
* ``vit`` — the standard recipe's data path for Vision Transformers, trained as transformers
  are (DeiT; APBench's ViT runs): AdamW, lr 1e-3, weight decay 0.05, a linear warm-up over the
  first 10% of the steps, then cosine.

Both return the final and the **peak** test accuracy with the per-epoch curve: an attacker can
early-stop, so the peak is what a protection must hold down. Inputs are scaled to
``[-0.5, 0.5]`` (``x/255 - 0.5``), as in the Deep Hiding protocol. Runs are deterministic
given ``seed`` on the CPU: every random draw comes from one seeded CPU generator.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import models
from .data import check_images, check_labels, subset
from .utils import atomic_save, default_device, load_checkpoint, progress_bar


@dataclass(frozen=True)
class Recipe:
    arch: str = "fastnet"
    epochs: int = 10
    batch_size: int = 512
    lr: float = 0.4
    optimizer: str = "sgd"          # "sgd" (momentum, nesterov) or "adamw" (momentum = beta1)
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "onecycle"      # "onecycle" (linear up, linear down) or "cosine"
    warmup: float = 0.2             # fraction of steps spent rising (onecycle; cosine: a linear
                                    # warm-up before the cosine when > 0)
    label_smoothing: float = 0.2
    translate: int = 2              # random shift in pixels (pad, then crop)
    crop_scale: float = 0.0         # > 0: random resized crop of area share in [crop_scale, 1]
                                    # and aspect ratio in [3/4, 4/3] back to the image's size
                                    # (ImageNet-style training; 0: off)
    pad_mode: str = "reflect"       # "reflect" or "constant" (zeros)
    flip: bool = True
    tta: bool = True                # average the logits of the image and its mirror at test
    channels_last: bool = True
    amp: str = "auto"               # "bf16", "off", or "auto": bf16 where the device has it
    compile: bool = False
    model_kwargs: dict = field(default_factory=dict)
    # training-time defences (fuselib.countermeasures.training); off by default
    cutout: int = 0                 # square side in pixels (16 on 32x32 in the protocol)
    mix: str = "none"               # "none", "mixup" or "cutmix"
    mix_alpha: float = 1.0          # λ ~ Beta(α, α)
    adv: str = "none"               # adversarial training: "none", "linf" or "l2"
    adv_eps: float = 8 / 255
    adv_steps: int = 10
    adv_step: float = 2 / 255
    ueraser: int = 0                # K strong-augmentation draws per image (0: off)
    sda: float = 0.0                # stronger data augmentation's strength s in (0, 1] (0: off)
    # evaluation protocol: the per-epoch curve on a fixed, class-balanced subset of this many test
    # images (0: on all of them, every epoch); the last epoch is always tested on all of them
    curve_images: int = 0


RECIPES = {
    "fast": Recipe(),
    "standard": Recipe(arch="resnet18", epochs=60, batch_size=128, lr=0.1, nesterov=False,
                       schedule="cosine", warmup=0.0, label_smoothing=0.0, translate=4,
                       pad_mode="constant", tta=False, amp="off"),
    "vit": Recipe(arch="vit", epochs=60, batch_size=128, optimizer="adamw", lr=1e-3,
                  weight_decay=0.05, nesterov=False, schedule="cosine", warmup=0.1,
                  label_smoothing=0.0, translate=4, pad_mode="constant", tta=False, amp="off"),
}


def get_recipe(recipe="fast", **overrides) -> Recipe:
    """A recipe by name (or a :class:`Recipe`), with fields overridden by keyword."""
    if isinstance(recipe, str):
        if recipe not in RECIPES:
            raise KeyError(f"unknown trainer {recipe!r}; known: {', '.join(RECIPES)}")
        recipe = RECIPES[recipe]
    bad = set(overrides) - set(Recipe.__dataclass_fields__)
    if bad:
        raise ValueError(f"unknown recipe field(s) {sorted(bad)}; "
                         f"fields: {sorted(Recipe.__dataclass_fields__)}")
    r = replace(recipe, **overrides)
    if r.schedule not in ("onecycle", "cosine"):
        raise ValueError(f"schedule must be 'onecycle' or 'cosine', got {r.schedule!r}")
    if r.optimizer not in ("sgd", "adamw"):
        raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {r.optimizer!r}")
    if not 0.0 <= r.warmup < 1.0:
        raise ValueError(f"warmup is a fraction of the steps in [0, 1), got {r.warmup}")
    if r.amp not in ("auto", "bf16", "off"):
        raise ValueError(f"amp must be 'auto', 'bf16' or 'off', got {r.amp!r}")
    if r.epochs < 1 or r.batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    if r.mix not in ("none", "mixup", "cutmix"):
        raise ValueError(f"mix must be 'none', 'mixup' or 'cutmix', got {r.mix!r}")
    if r.adv not in ("none", "linf", "l2"):
        raise ValueError(f"adv must be 'none', 'linf' or 'l2', got {r.adv!r}")
    if not 0.0 <= r.crop_scale <= 1.0:
        raise ValueError(f"crop_scale must be in [0, 1] (0: no random resized crop), "
                         f"got {r.crop_scale}")
    if not 0.0 <= r.sda <= 1.0:
        raise ValueError(f"sda is a strength in [0, 1] (0: off), got {r.sda}")
    if r.cutout < 0 or r.ueraser < 0 or r.adv_steps < 0 or r.curve_images < 0:
        raise ValueError("cutout, ueraser, adv_steps and curve_images must be >= 0")
    return r


# --------------------------------------------------------------------------- helpers
def bf16_ok(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:  # native bf16 matmul/conv (AVX512-BF16 / AMX); emulated bf16 is slower than fp32
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def autocast(device: torch.device, amp: str):
    enabled = amp == "bf16" or (amp == "auto" and bf16_ok(device))
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def to_input(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 images -> the model's input scale, ``x/255 - 0.5``."""
    return x_uint8.float().div_(255.0).sub_(0.5)


def augment(x: torch.Tensor, gen: torch.Generator, translate: int, pad_mode: str,
            flip: bool) -> torch.Tensor:
    """Random horizontal flip and random translation by up to ``translate`` pixels, as batched
    tensor ops (one random draw per image from the CPU generator ``gen``)."""
    b, _, h, w = x.shape
    if flip:
        m = (torch.rand(b, generator=gen) < 0.5).to(x.device)
        x = torch.where(m[:, None, None, None], x.flip(-1), x)
    if translate:
        t = translate
        xp = F.pad(x, (t, t, t, t), mode=pad_mode)
        dy = torch.randint(0, 2 * t + 1, (b,), generator=gen).to(x.device)
        dx = torch.randint(0, 2 * t + 1, (b,), generator=gen).to(x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
        bi = torch.arange(b, device=x.device)[:, None, None]
        x = xp[bi, :, rows, cols].permute(0, 3, 1, 2)  # (B,H,W,C) -> (B,C,H,W), channels_last
    return x


def random_resized_crop(x: torch.Tensor, gen: torch.Generator, scale_min: float,
                        ratio=(3 / 4, 4 / 3)) -> torch.Tensor:
    """torchvision's ``RandomResizedCrop`` for a whole batch at once: for each image a box of
    area share ``U(scale_min, 1)`` and aspect ratio log-uniform in ``ratio`` (shrunk to fit the
    image), resampled bilinearly back to the image's size by one ``roi_align`` call. One set of
    random draws per image from the CPU generator ``gen``."""
    from torchvision.ops import roi_align

    b, _, h, w = x.shape
    area = torch.empty(b).uniform_(scale_min, 1.0, generator=gen) * h * w
    logr = torch.empty(b).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=gen)
    aspect = logr.exp()
    bw = (area * aspect).sqrt().clamp(1, w)
    bh = (area / aspect).sqrt().clamp(1, h)
    x0 = torch.rand(b, generator=gen) * (w - bw)
    y0 = torch.rand(b, generator=gen) * (h - bh)
    boxes = torch.stack([torch.arange(b, dtype=torch.float32), x0, y0, x0 + bw, y0 + bh], 1)
    out = roi_align(x.float(), boxes.to(x.device), (h, w), spatial_scale=1.0,
                    sampling_ratio=1, aligned=True)  # one sample a bin: crops only enlarge
    return out.to(x.dtype)


def eval_logits(model: nn.Module, x: torch.Tensor, amp: str, tta: bool,
                channels_last: bool) -> torch.Tensor:
    """Float logits of a model input batch at test time (with its mirror's added under TTA)."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast(x.device, amp):
        logits = model(x).float()
        if tta:
            logits = logits + model(x.flip(-1)).float()
    return logits


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, device=None,
             amp: str = "auto", tta: bool = False, batch_size: int = 1000,
             channels_last: bool = True) -> float:
    """Top-1 accuracy of ``model`` on uint8 ``images``."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    correct = 0
    for i in range(0, images.shape[0], batch_size):
        logits = eval_logits(model, to_input(images[i:i + batch_size].to(device)), amp, tta,
                             channels_last)
        correct += (logits.argmax(1).cpu() == labels[i:i + batch_size].cpu()).sum().item()
    model.train(was_training)
    return correct / images.shape[0]


def lr_factor(r: Recipe, step: int, total: int) -> float:
    """The learning-rate multiplier of ``r``'s schedule at ``step`` of ``total``."""
    if r.schedule == "cosine":
        up = int(r.warmup * total)
        if step < up:  # linear warm-up from lr/up, as timm and DeiT do
            return (step + 1) / up
        return 0.5 * (1 + math.cos(math.pi * (step - up) / max(1, total - up)))
    up = max(1, int(r.warmup * total))
    if step < up:
        return 0.1 + 0.9 * step / up
    return max(0.0, (total - step) / max(1, total - up))


def param_groups(model: nn.Module, weight_decay: float):
    """Weight decay on the weights of convolutions and linear layers, not on normalisation
    layers, biases or a ViT's class token and position embeddings."""
    skip = set(getattr(model, "no_weight_decay", ()))  # timm's convention for embeddings
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.dim() > 1 and name not in skip else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, r: Recipe) -> torch.optim.Optimizer:
    """The recipe's optimiser over ``model``'s parameter groups (:func:`param_groups`)."""
    groups = param_groups(model, r.weight_decay)
    if r.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=r.lr, betas=(r.momentum, 0.999))
    return torch.optim.SGD(groups, lr=r.lr, momentum=r.momentum, nesterov=r.nesterov)


def curve_subset(test_images, test_labels, n: int):
    """The test images the per-epoch curve is measured on under ``curve_images=n``: a
    class-balanced subset chosen by a permutation of seed 0, the same for every run whatever its
    seed (None when ``n`` is 0 or not smaller than the test set: the curve uses all of it)."""
    if not 0 < n < test_images.shape[0]:
        return None
    return subset(test_images, test_labels, n, 0)


def evaluation_of(curve_set, test_images, r: Recipe) -> dict:
    """What a run's curve and final accuracy were measured on (the records' ``evaluation``)."""
    n = int(test_images.shape[0])
    return {"curve_images": int(curve_set[1].shape[0]) if curve_set else n, "final_images": n,
            "tta": r.tta}


def defences_in(r: Recipe) -> list:
    """The names of the training-time defence fields ``r`` switches on."""
    return [k for k, off in (("ueraser", 0), ("sda", 0.0), ("cutout", 0), ("mix", "none"),
                             ("adv", "none"))
            if getattr(r, k) != off]


# --------------------------------------------------------------------------- the loop
def train(train_images, train_labels, test_images, test_labels, recipe="fast", *,
          seed: int = 0, device=None, num_classes: int | None = None, progress=None,
          checkpoint=None, defences=None, **overrides) -> dict:
    """Train ``recipe`` from scratch on uint8 ``train_images`` and test on ``test_images``.

    Returns a dict: ``accuracy`` (after the last epoch), ``peak_accuracy`` and ``peak_epoch``,
    ``curve`` (test accuracy after each epoch; with ``curve_images`` set, every epoch but the
    last on that fixed subset of the test set, the last on all of it, so ``accuracy`` is the
    whole test set's whatever the protocol), ``evaluation`` (what they were measured on),
    ``train_accuracy`` (per epoch, on the
    augmented training batches), ``seconds``, ``images_per_second``, ``recipe`` and
    ``device``. Keyword overrides change recipe fields (``epochs=20``, ``arch="vgg11"``...).

    With ``checkpoint=path`` the training state (model, optimiser, schedule, random state,
    curves) is written there after every epoch but the last, and an existing checkpoint of the
    same recipe, seed and data is resumed from: an interrupted run then finishes exactly as an
    uninterrupted one would (on the CPU). ``resumed_from_epoch`` says where it picked up, and
    ``seconds`` / ``train_seconds`` include the time spent before the interruption. The
    checkpoint stays when training ends (:func:`fuselib.experiments.run` removes it once the
    run's record is written).

    ``defences``: the training-time defences the recipe switches on (its ``cutout``, ``mix``,
    ``adv``, ``ueraser`` and ``sda`` fields), as objects with a ``batch(model, x, y, gen, amp_ctx)``
    operation — ``fuselib.countermeasures.defences(recipe)`` builds them (the experiment runner
    does). The trainer knows no defence itself, so it sits below the countermeasures.
    """
    r = get_recipe(recipe, **overrides)
    train_images = check_images(train_images, "train_images")
    train_labels = check_labels(train_labels, train_images.shape[0], "train_labels")
    test_images = check_images(test_images, "test_images")
    test_labels = check_labels(test_labels, test_images.shape[0], "test_labels")
    defences = list(defences or [])
    covered = {k for d in defences for k in d.recipe}
    if set(defences_in(r)) - covered:
        raise ValueError(f"the recipe switches on training-time defence(s) "
                         f"{sorted(set(defences_in(r)) - covered)}: pass "
                         "defences=fuselib.countermeasures.defences(recipe)")
    for d in defences:
        differs = {k: v for k, v in d.recipe.items() if getattr(r, k) != v}
        if differs:
            raise ValueError(f"defence {d.name!r} wants recipe fields {differs}, the recipe has "
                             f"{ {k: getattr(r, k) for k in differs} }")
    device = torch.device(device) if device is not None else default_device()
    n_cls = num_classes or int(max(train_labels.max(), test_labels.max())) + 1

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = models.get(r.arch, n_cls, image_size=train_images.shape[-1],
                       in_channels=train_images.shape[1], **r.model_kwargs).to(device)
    if r.channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if r.compile else model

    xs, ys = train_images.to(device), train_labels.to(device)
    n = xs.shape[0]
    bs = min(r.batch_size, n)
    steps_per_epoch = n // bs  # drop the ragged last batch: tiny batches upset BatchNorm
    total = steps_per_epoch * r.epochs
    opt = make_optimizer(model, r)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(r, s, total))

    # the evaluation protocol: the curve's epochs before the last on a fixed subset (seed 0, the
    # same for every run), the last on the whole test set — so the final accuracy is unchanged
    curve_set = curve_subset(test_images, test_labels, r.curve_images)
    evaluation = evaluation_of(curve_set, test_images, r)
    curve, train_curve, epoch_seconds = [], [], []
    train_time = before = 0.0
    start = 0
    if checkpoint is not None:
        rec = {k: v for k, v in asdict(r).items()  # fields added later: as before them when off
               if (k not in ("curve_images", "crop_scale", "sda") or v)
               and not (k == "optimizer" and v == "sgd")}
        stamp = {"recipe": rec, "seed": int(seed), "num_classes": n_cls,
                 "data": _fingerprint(train_images, train_labels, test_images, test_labels)}
        state = load_checkpoint(checkpoint, CHECKPOINT_FORMAT, stamp, "a training run")
        if state is not None:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
            gen.set_state(state["gen_rng"])
            torch.set_rng_state(state["torch_rng"])
            curve, train_curve = list(state["curve"]), list(state["train_curve"])
            epoch_seconds = list(state["epoch_seconds"])
            start, before = int(state["epoch"]), state["seconds"]
            train_time = state["train_seconds"]
    t0 = time.perf_counter() - before
    bar = progress_bar(r.epochs, f"train {r.arch}", progress)
    bar.update(start)
    for epoch in range(start, r.epochs):
        t_ep = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        correct = seen = 0
        for i in range(steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            x = to_input(xs[idx])
            if r.crop_scale:
                x = random_resized_crop(x, gen, r.crop_scale)
            x = augment(x, gen, r.translate, r.pad_mode, r.flip)
            y = ys[idx]
            y2, lam = None, 1.0
            for d in defences:
                x, partner, mixed = d.batch(step_model, x, y, gen, lambda: autocast(device, r.amp))
                if partner is not None:
                    y2, lam = y[partner], mixed
            if r.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, r.amp):
                logits = step_model(x)
                loss = F.cross_entropy(logits.float(), y, label_smoothing=r.label_smoothing)
                if y2 is not None:
                    loss = lam * loss + (1 - lam) * F.cross_entropy(
                        logits.float(), y2, label_smoothing=r.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            correct += (logits.argmax(1) == y).sum().item()
            seen += y.numel()
        train_time += time.perf_counter() - t_ep
        epoch_seconds.append(train_time)
        train_curve.append(correct / max(seen, 1))
        last = epoch + 1 == r.epochs
        xe, ye = (test_images, test_labels) if last or curve_set is None else curve_set
        curve.append(evaluate(model, xe, ye, device, r.amp, r.tta,
                              channels_last=r.channels_last))
        bar.set_postfix(test=f"{curve[-1]:.3f}", train=f"{train_curve[-1]:.3f}")
        bar.update(1)
        if checkpoint is not None and epoch + 1 < r.epochs:
            atomic_save({**stamp, "format": CHECKPOINT_FORMAT, "epoch": epoch + 1,
                         "model": model.state_dict(), "opt": opt.state_dict(),
                         "sched": sched.state_dict(), "gen_rng": gen.get_state(),
                         "torch_rng": torch.get_rng_state(), "curve": curve,
                         "train_curve": train_curve, "epoch_seconds": epoch_seconds,
                         "train_seconds": train_time,
                         "seconds": time.perf_counter() - t0}, checkpoint)
    bar.close()
    peak = max(range(len(curve)), key=curve.__getitem__)
    return {
        "accuracy": curve[-1],
        "peak_accuracy": curve[peak],
        "peak_epoch": peak + 1,
        "curve": curve,
        "train_accuracy": train_curve,
        "seconds": time.perf_counter() - t0,
        "train_seconds": train_time,
        "epoch_seconds": epoch_seconds,  # cumulative training time (no evaluation) per epoch
        "images_per_second": total * bs / train_time if train_time > 0 else float("nan"),
        "recipe": asdict(r),
        "evaluation": evaluation,  # what the curve and the final accuracy were measured on
        "device": str(device),
        "model": model,
        "resumed_from_epoch": start,
        "seconds_before_resume": before,  # of the interrupted part (0 for a fresh run)
    }


CHECKPOINT_FORMAT = "fuselib.train-checkpoint/1"


def _fingerprint(*tensors) -> str:
    """A digest of the training and test tensors, so a checkpoint never resumes on other data."""
    import hashlib

    h = hashlib.sha1()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(str((tuple(t.shape), str(t.dtype))).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()
