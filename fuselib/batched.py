"""Several seeds of the fast trainer as one model: ``train_seeds(..., seeds=(0, 1, 2))``.

K copies of ``fastnet`` become one network whose convolutions have ``groups=K`` (copy k reads
input channels ``3k..3k+2`` and owns its own filters, BatchNorm channels and head), trained on
the sum of the K losses. The sum's gradient with respect to copy k's weights is copy k's own
gradient, and SGD with momentum and weight decay acts on each weight separately, so the K
copies train exactly as K separate runs would: each starts from the weights ``train()`` would
initialise for its seed and draws its own batches and augmentations from its own seeded
generator, in the same order. What differs is floating-point arithmetic (a grouped
convolution sums in another order than a dense one), so the runs agree with separate ones in
distribution, not bit for bit; ``tests/test_batched.py`` bounds the difference.

Whether it pays depends on the machine: on a GPU a small network leaves most of the chip idle
and K copies cost about as much as one; on 2 CPU cores the work is already compute-bound
(``bench/evaluator.py --batched-seeds 3`` measures the ratio against K separate runs).
Only the plain fast recipe (fastnet, no training-time defences, no checkpoint) is batched.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import models
from .data import check_images, check_labels
from .train import (lr_factor, make_optimizer, augment, autocast, curve_subset, defences_in,
                    eval_logits, evaluation_of, get_recipe, to_input)
from .utils import default_device, progress_bar


class GroupedFastNet(nn.Module):
    """K ``FastNet`` copies side by side (``groups=K``); ``forward`` takes ``(B, K·C, H, W)``
    (copy k's images in channels ``kC..kC+C-1``) and returns logits ``(B, K, classes)``."""

    def __init__(self, nets: list):
        super().__init__()
        k = self.k = len(nets)
        layers = []
        for mods in zip(*(n.features for n in nets)):
            m = mods[0]
            if isinstance(m, nn.Conv2d):
                g = nn.Conv2d(k * m.in_channels, k * m.out_channels, m.kernel_size, m.stride,
                              m.padding, bias=False, groups=k)
                g.weight.data.copy_(torch.cat([c.weight.data for c in mods]))
            elif isinstance(m, nn.BatchNorm2d):
                g = nn.BatchNorm2d(k * m.num_features, m.eps, m.momentum)
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(g, name).data.copy_(torch.cat([getattr(b, name).data for b in mods]))
            else:  # GELU, MaxPool2d: no weights, act on each channel alone
                g = m
            layers.append(g)
        self.features = nn.Sequential(*layers)
        self.head = nn.Parameter(torch.stack([n.head.weight.data for n in nets]))  # (K, out, in)
        self.scale = nets[0].scale

    def forward(self, x):
        x = F.adaptive_max_pool2d(self.features(x), 1).flatten(1)        # (B, K·in)
        x = x.view(x.shape[0], self.k, -1)
        return torch.einsum("bki,koi->bko", x, self.head) * self.scale

    def split(self, template: nn.Module) -> list:
        """The K copies as ordinary ``FastNet`` models (``template``: one of their shape)."""
        out = [copy.deepcopy(template) for _ in range(self.k)]
        singles = [list(n.features) for n in out]
        for j, g in enumerate(self.features):
            if isinstance(g, nn.Conv2d):
                for k, w in enumerate(g.weight.data.chunk(self.k)):
                    singles[k][j].weight.data.copy_(w)
            elif isinstance(g, nn.BatchNorm2d):
                for name in ("weight", "bias", "running_mean", "running_var"):
                    for k, v in enumerate(getattr(g, name).data.chunk(self.k)):
                        getattr(singles[k][j], name).data.copy_(v)
        for k, net in enumerate(out):
            net.head.weight.data.copy_(self.head.data[k])
        return out


@torch.no_grad()
def _evaluate(model: GroupedFastNet, images, labels, device, amp, tta, channels_last,
              batch_size=1000) -> list:
    model.eval()
    correct = torch.zeros(model.k)
    for i in range(0, images.shape[0], batch_size):
        x = to_input(images[i:i + batch_size].to(device)).repeat(1, model.k, 1, 1)
        logits = eval_logits(model, x, amp, tta, channels_last)
        y = labels[i:i + batch_size].to(device)
        correct += (logits.argmax(-1) == y[:, None]).sum(0).cpu()
    model.train()
    return (correct / images.shape[0]).tolist()


def train_seeds(train_images, train_labels, test_images, test_labels, recipe="fast", *,
                seeds=(0, 1, 2), device=None, num_classes: int | None = None, progress=None,
                **overrides) -> list:
    """Train ``recipe`` once per seed, all seeds as one grouped model; returns one result dict
    per seed, with the fields of :func:`fuselib.train.train` (``seconds`` is the shared wall
    time, ``batched`` the number of seeds trained together).

    ``train_images`` / ``train_labels``: one training set for every seed, or a list with one
    per seed (several protections' data, or each seed's own protected data), all of the same
    size; every copy is tested on the same test set."""
    r = get_recipe(recipe, **overrides)
    if r.arch != "fastnet":
        raise ValueError(f"train_seeds batches fastnet only, not {r.arch!r}")
    if defences_in(r) or r.compile:
        raise ValueError("train_seeds runs the plain recipe: no training-time defences, no compile")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must not be empty")
    sets = isinstance(train_images, (list, tuple))
    if not sets and len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct on one training set, got {seeds}")
    images = list(train_images) if sets else [train_images] * len(seeds)
    labels = list(train_labels) if isinstance(train_labels, (list, tuple)) else \
        [train_labels] * len(images)
    if len(images) != len(seeds) or len(labels) != len(seeds):
        raise ValueError(f"{len(images)} training sets and {len(labels)} label sets for "
                         f"{len(seeds)} seeds: give one per seed")
    images = [check_images(x, f"train_images[{i}]") for i, x in enumerate(images)]
    labels = [check_labels(y, x.shape[0], f"train_labels[{i}]")
              for i, (x, y) in enumerate(zip(images, labels))]
    if len({x.shape for x in images}) != 1:
        raise ValueError(f"the training sets differ in shape: {sorted({tuple(x.shape) for x in images})}")
    test_images = check_images(test_images, "test_images")
    test_labels = check_labels(test_labels, test_images.shape[0], "test_labels")
    device = torch.device(device) if device is not None else default_device()
    n_cls = num_classes or int(max(max(y.max() for y in labels), test_labels.max())) + 1
    k = len(seeds)

    nets, gens = [], []
    for s in seeds:  # the same initialisation and random stream as train(seed=s)
        torch.manual_seed(s)
        nets.append(models.get(r.arch, n_cls, image_size=images[0].shape[-1],
                               in_channels=images[0].shape[1], **r.model_kwargs))
        gens.append(torch.Generator().manual_seed(s))
    model = GroupedFastNet(nets).to(device)
    if r.channels_last:
        model = model.to(memory_format=torch.channels_last)

    xs = [x.to(device) for x in images]
    ys = [y.to(device) for y in labels]
    n = xs[0].shape[0]
    bs = min(r.batch_size, n)
    steps_per_epoch = n // bs
    total = steps_per_epoch * r.epochs
    opt = make_optimizer(model, r)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(r, s, total))
    curve_set = curve_subset(test_images, test_labels, r.curve_images)

    curves, train_curves, epoch_seconds = [], [], []
    train_time = 0.0
    t0 = time.perf_counter()
    bar = progress_bar(r.epochs, f"train {k}× {r.arch}", progress)
    for epoch in range(r.epochs):
        t_ep = time.perf_counter()
        model.train()
        perms = [torch.randperm(n, generator=g).to(device) for g in gens]
        correct = torch.zeros(k, device=device)
        for i in range(steps_per_epoch):
            idx = [p[i * bs:(i + 1) * bs] for p in perms]
            x = torch.cat([augment(to_input(xk[j]), g, r.translate, r.pad_mode, r.flip)
                           for xk, j, g in zip(xs, idx, gens)], dim=1)
            y = torch.stack([yk[j] for yk, j in zip(ys, idx)], 1)        # (B, K)
            if r.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device, r.amp):
                logits = model(x).float()                                # (B, K, classes)
                loss = F.cross_entropy(logits.reshape(-1, n_cls), y.reshape(-1),
                                       label_smoothing=r.label_smoothing) * k
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            correct += (logits.argmax(-1) == y).sum(0)
        train_time += time.perf_counter() - t_ep
        epoch_seconds.append(train_time)
        train_curves.append((correct / (steps_per_epoch * bs)).tolist())
        last = epoch + 1 == r.epochs
        xe, ye = (test_images, test_labels) if last or curve_set is None else curve_set
        curves.append(_evaluate(model, xe, ye, device, r.amp, r.tta, r.channels_last))
        bar.set_postfix(test="/".join(f"{a:.3f}" for a in curves[-1]))
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t0
    evaluation = evaluation_of(curve_set, test_images, r)
    singles = model.split(nets[0].to(device))
    out = []
    for j, s in enumerate(seeds):
        curve = [c[j] for c in curves]
        peak = max(range(len(curve)), key=curve.__getitem__)
        out.append({"seed": s, "accuracy": curve[-1], "peak_accuracy": curve[peak],
                    "peak_epoch": peak + 1, "curve": curve,
                    "train_accuracy": [t[j] for t in train_curves], "seconds": seconds,
                    "train_seconds": train_time, "epoch_seconds": epoch_seconds,
                    "images_per_second": k * total * bs / train_time if train_time else
                    float("nan"), "recipe": asdict(r), "evaluation": evaluation,
                    "device": str(device), "batched": k, "model": singles[j]})
    return out
