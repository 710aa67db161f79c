"""``uc``: Unlearnable Clusters (Zhang et al., "Unlearnable Clusters: Towards Label-agnostic
Unlearnable Examples", CVPR 2023).

Label-agnostic: the perturbation of an image depends on the *cluster* it falls in, not on its
label, so it still works when the protector does not know the labels an attacker will train
with. Three stages:

1. **Clusters.** Embed every image with a surrogate feature extractor ``f`` (its penultimate
   features, the input of its last linear layer) and run K-means with ``clusters`` centres
   ``c_1..c_K``.
2. **One generator per cluster.** Generator ``G_i`` maps a *fixed* uniform-noise image ``z_i``
   to one perturbation ``δ_i = clip(G_i(z_i), −ε, ε)``, shared by every image. It is trained so
   that the features of ``x + δ_i`` for *all* training images ``x`` move towards the centroid of
   another cluster, ``t = (i + target_offset) mod K``::

       min  KL( softmax(c_t) ‖ softmax(f(clip(x + δ_i))) )     (KLDivLoss(log_softmax(f(·)),
                                                                softmax(c_t)), batch mean)

   i.e. δ_i is a universal, feature-space *targeted* perturbation that scrambles the clusters.
3. **Cluster-wise noise.** Each image gets the δ of its own cluster.

Official code (jiamingzhang94/Unlearnable-Clusters, ``preprocess.py`` + ``main.py`` +
``models/generator.py``): ``f`` is a *pretrained* ImageNet or CLIP ResNet-50 (CLIP is the
paper's headline surrogate); sklearn K-means with K = 10; per cluster a pix2pix
``ResnetGenerator`` (ngf 64, 2 stride-2 down/up-samplings, 6 residual blocks, BatchNorm, ReLU,
tanh output; kept in train mode, so BatchNorm normalises over the noise image's pixels) fed a
fixed ``U(0, 1)`` image; Adam lr 1e-4, weight decay 5e-4, cosine schedule to 1e-6 over 50
epochs of batch 256 over the whole training set, whose images are randomly cropped (resize 256
→ crop 224) and flipped before δ is added; L∞ ε = 16/255; ``target_offset`` 1.

**Substitutions and deviations here.**

* **Surrogate.** No pretrained CLIP/ImageNet network is available offline, so ``f`` is a
  classifier trained *locally* on the images given to :meth:`fit` with the ``fast`` trainer
  (:func:`fuselib.train.train`). With ``surrogate_labels="labels"`` (default) it is trained on
  the given labels: they only shape the feature extractor — clusters, generators and
  :meth:`apply` never see them. ``surrogate_labels="kmeans"`` makes the whole method
  label-agnostic: the surrogate is trained on pseudo-labels, K-means clusters of 4×4-average-
  pooled pixels (the labels passed to ``fit`` are then ignored entirely).
* **Budget.** ε = 8/255 (the FUSE protocol), not the official 16/255.
* **Resolution.** δ is generated at the images' own size (official: at 224×224, then resized
  to each image's size with nearest-neighbour interpolation).
* **Assignment.** The official code keeps the K-means index of each training image; here
  :meth:`apply` assigns each image to its nearest centroid in ``f``'s feature space (what
  sklearn's ``predict`` does), so any images, in any order, can be protected. The saved state
  is the K perturbations, the centroids and ``f``'s weights.
* **K-means.** A seeded torch implementation (k-means++ seeding, one run, Lloyd iterations
  until no assignment changes), not sklearn's (greedy k-means++, several runs).
* **Augmentation** of the clean images during generator training is this package's batched
  flip + translation by up to 4 px (reflect padding), not resize + random crop.

**CPU default** (``cost``): a small ``fastnet`` surrogate (widths 32-64-128) trained
``surrogate_epochs=5`` (fp32 on the CPU, where bf16 autocast is slower); small generators
(``gen_width=16``, ``gen_blocks=2``) trained ``gen_steps=30`` Adam steps of batch 32 each at the
official lr 1e-4 and cosine schedule — a fixed step count, not epochs, since δ is universal:
on CIFAR-10 its (almost fully ±ε-saturated) pattern settles within a few dozen steps, larger
learning rates or more steps reached the same feature-space distances. ``paper_settings()``
gives the official generator schedule (ngf 64, 6 blocks, 50 epochs of batch 256) with a
ResNet-18 surrogate. ``clusters=10`` as in the official configs (= the classes of CIFAR-10).

What limits it (CPU default, 5,000 CIFAR-10 training images): each δ_i lowers the objective
and the distance to its target centroid, but at 8/255 only a few percent of the protected
images cross into the target cluster; signed-gradient optimisation of δ_i directly (no
generator) reached the same distances, so the limit is the budget and this small surrogate,
not the generator. Unlike the paper's externally pretrained ``f``, this surrogate has seen the
very images it protects.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import models
from ..train import augment, train
from ..registry import check_count
from ..utils import default_device
from . import REGISTRY
from .base import Protection, as_float, to_steps
from .generators import ResnetGenerator
from .surrogate import SMALL

SURROGATE_LABELS = ("labels", "kmeans")


# --------------------------------------------------------------------------- K-means
def _sq_dists(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances between rows of ``x`` (N, D) and ``c`` (K, D)."""
    return ((x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)).clamp_min_(0)


def kmeans(x: torch.Tensor, k: int, seed: int = 0, iters: int = 100):
    """Seeded K-means on the rows of ``x``: k-means++ seeding, then Lloyd iterations until no
    assignment changes (at most ``iters``). An emptied cluster is re-seeded with the point
    farthest from its centre. Computed in float64 on the CPU.

    Returns ``(centroids (k, D) float32, assignment (N,) int64)``.
    """
    x = x.detach().to("cpu", torch.float64).flatten(1)
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k-means needs 1 <= k <= number of points ({n}), got k={k}")
    gen = torch.Generator().manual_seed(int(seed))
    first = int(torch.randint(n, (1,), generator=gen))
    centres = [x[first]]
    d2 = _sq_dists(x, x[first:first + 1]).squeeze(1)
    for _ in range(1, k):
        total = float(d2.sum())
        if total > 0:
            j = int(torch.multinomial(d2 / total, 1, generator=gen))
        else:  # fewer distinct points than k: any point
            j = int(torch.randint(n, (1,), generator=gen))
        centres.append(x[j])
        d2 = torch.minimum(d2, _sq_dists(x, x[j:j + 1]).squeeze(1))
    c = torch.stack(centres)
    assign = None
    for _ in range(max(1, int(iters))):
        d = _sq_dists(x, c)
        new = d.argmin(1)
        if assign is not None and torch.equal(new, assign):
            break
        assign = new
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        nonempty = counts > 0
        c[nonempty] = sums[nonempty] / counts[nonempty, None].to(x.dtype)
        for j in (~nonempty).nonzero().flatten().tolist():
            far = int(d.gather(1, assign[:, None]).squeeze(1).argmax())
            c[j] = x[far]
    return c.float(), _sq_dists(x, c).argmin(1)




# --------------------------------------------------------------------------- the method
@REGISTRY.register("uc", primary="clusters")
class UnlearnableClusters(Protection):
    state_keys = ("deltas", "centroids", "extractor", "surrogate_classes")
    paper = "Zhang et al., CVPR 2023 (Unlearnable Clusters)"
    official = "jiamingzhang94/Unlearnable-Clusters"
    deviation = "locally trained fastnet surrogate, not pretrained CLIP; ε 8/255 (official 16/255)"

    def __init__(self, eps: float = 8 / 255, seed: int = 0, clusters: int = 10,
                 surrogate: str = "fastnet", surrogate_epochs: int = 5,
                 surrogate_labels: str = "labels", gen_width: int = 16, gen_blocks: int = 2,
                 gen_steps: int | None = 30, gen_epochs: int = 50, batch_size: int = 32,
                 lr: float = 1e-4, target_offset: int = 1, augment: bool = True,
                 kmeans_iters: int = 100):
        super().__init__(eps, seed)
        if surrogate_labels not in SURROGATE_LABELS:
            raise ValueError(f"surrogate_labels must be one of {SURROGATE_LABELS}, "
                             f"got {surrogate_labels!r}")
        for name, v in (("clusters", clusters), ("surrogate_epochs", surrogate_epochs),
                        ("gen_width", gen_width), ("gen_epochs", gen_epochs),
                        ("batch_size", batch_size), ("kmeans_iters", kmeans_iters)):
            if int(v) < 1:
                raise ValueError(f"{name} must be >= 1, got {v}")
        if gen_steps is not None and int(gen_steps) < 1:
            raise ValueError(f"gen_steps must be >= 1 or None (use gen_epochs), got {gen_steps}")
        if int(clusters) < 2:
            raise ValueError("clusters must be >= 2 (each δ targets another cluster)")
        if int(target_offset) % int(clusters) == 0:
            raise ValueError(f"target_offset {target_offset} maps each cluster to itself")
        self.clusters, self.surrogate = int(clusters), surrogate
        self.surrogate_epochs, self.surrogate_labels = int(surrogate_epochs), surrogate_labels
        self.gen_width, self.gen_blocks = int(gen_width), check_count("gen_blocks", gen_blocks, 0)
        self.gen_steps = None if gen_steps is None else int(gen_steps)
        self.gen_epochs, self.batch_size = int(gen_epochs), int(batch_size)
        self.lr, self.target_offset = float(lr), int(target_offset)
        self.augment, self.kmeans_iters = bool(augment), int(kmeans_iters)
        self.deltas = self.centroids = self.extractor = self.surrogate_classes = None
        self.history: list = []  # per cluster: (cluster, target, first loss, last loss)
        self.device = default_device()
        self._model, self._shape = None, None

    @staticmethod
    def paper_settings() -> dict:
        """The official generator schedule (ngf 64, 6 blocks, 50 epochs, batch 256, lr 1e-4);
        the official surrogate is a pretrained CLIP ResNet-50, here stood in for by a ResNet-18
        trained on the data (ε stays 8/255, the FUSE protocol; the paper uses 16/255)."""
        return dict(surrogate="resnet18", surrogate_epochs=40, gen_width=64, gen_blocks=6,
                    gen_steps=None, gen_epochs=50, batch_size=256, lr=1e-4)

    def _steps(self, n: int) -> int:
        if self.gen_steps is not None:
            return self.gen_steps
        return self.gen_epochs * math.ceil(n / min(self.batch_size, n))

    @property
    def cost(self) -> str:
        steps = (f"{self.gen_steps} Adam steps" if self.gen_steps is not None
                 else f"{self.gen_epochs} epochs")
        return (f"surrogate {self.surrogate} trained {self.surrogate_epochs} epochs on "
                f"{self.surrogate_labels}; K-means (K={self.clusters}) on its features; "
                f"{self.clusters} generators (width {self.gen_width}, {self.gen_blocks} blocks) "
                f"x {steps} of batch {self.batch_size} through the surrogate")

    # ------------------------------------------------------------------ the feature extractor
    def _model_kwargs(self) -> dict:
        return dict(SMALL) if self.surrogate == "fastnet" else {}

    def feature_model(self) -> nn.Module:
        """The surrogate (eval mode, frozen, on ``self.device``), rebuilt from the state."""
        if self._model is None:
            if self.extractor is None:
                raise RuntimeError("uc: call fit() first")
            c, _, h = self.deltas.shape[1:] if self.deltas is not None else self._shape
            m = models.get(self.surrogate, int(self.surrogate_classes), image_size=h,
                           in_channels=c, **self._model_kwargs())
            m.load_state_dict(self.extractor)
            for p in m.parameters():
                p.requires_grad_(False)
            self._model = m.to(self.device).eval()
        return self._model

    @staticmethod
    def _features(model: nn.Module, z: torch.Tensor) -> torch.Tensor:
        """Penultimate features: the input of the model's last linear layer (z in [0, 1])."""
        head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
        store = {}
        hook = head.register_forward_pre_hook(lambda mod, inp: store.__setitem__("f", inp[0]))
        try:
            model(z - 0.5)
        finally:
            hook.remove()
        return store["f"].flatten(1)

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Surrogate features (CPU, float32) of float images ``x`` in [0, 1]."""
        model = self.feature_model()
        out = [self._features(model, x[i:i + batch_size].to(self.device).float()).float().cpu()
               for i in range(0, x.shape[0], batch_size)]
        return torch.cat(out)

    def _nearest(self, feats: torch.Tensor) -> torch.Tensor:
        return _sq_dists(feats.double(), self.centroids.double()).argmin(1)

    def assign(self, images: torch.Tensor) -> torch.Tensor:
        """The cluster of each uint8 image: its nearest centroid in feature space."""
        return self._nearest(self.features(images.float() / 255))

    # ------------------------------------------------------------------ fit
    def _surrogate(self, images, labels):
        dev = self.device
        if self.surrogate_labels == "kmeans":
            pix = F.avg_pool2d(images.float() / 255, 4)
            _, labels = kmeans(pix, self.clusters, self.seed, self.kmeans_iters)
        n_classes = int(labels.max()) + 1
        probe = torch.arange(0, len(labels), max(1, len(labels) // 1000))
        res = train(images, labels, images[probe], labels[probe], "fast", seed=self.seed,
                    device=dev, num_classes=n_classes, arch=self.surrogate,
                    epochs=self.surrogate_epochs, progress=False,
                    batch_size=min(512, max(32, len(labels) // 8)),  # >= 8 steps an epoch
                    model_kwargs=self._model_kwargs(),
                    amp="off" if dev.type == "cpu" else "auto")  # CPU bf16 is slower here
        self.surrogate_accuracy = res["accuracy"]  # on a probe of the training data
        self.extractor = {k: v.detach().cpu().contiguous().clone()
                          for k, v in res["model"].state_dict().items()}
        self.surrogate_classes = n_classes
        self._model = None

    def _train_generator(self, i, target, x_all, gen):
        dev, n = self.device, x_all.shape[0]
        model = self.feature_model()
        torch.manual_seed(self.seed * 7919 + i)
        g = ResnetGenerator(x_all.shape[1], self.gen_width, self.gen_blocks).to(dev).train()
        z = torch.rand((1, *x_all.shape[1:]), generator=gen).to(dev)
        opt = torch.optim.Adam(g.parameters(), lr=self.lr, weight_decay=5e-4)
        total = self._steps(n)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total, eta_min=min(1e-6, self.lr))
        anchor = F.softmax(self.centroids[target].to(dev), -1)
        bs = min(self.batch_size, n)
        cursor, perm = n, None
        losses = []
        for _ in range(total):
            if cursor + bs > n:
                cursor, perm = 0, torch.randperm(n, generator=gen)
            idx = perm[cursor:cursor + bs]
            cursor += bs
            x = x_all[idx].to(dev).float() / 255
            if self.augment:
                x = augment(x, gen, translate=4, pad_mode="reflect", flip=True)
            d = g(z).clamp(-self.eps, self.eps)
            f = self._features(model, (x + d).clamp(0, 1))
            loss = F.kl_div(F.log_softmax(f, -1), anchor.expand_as(f), reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        with torch.no_grad():  # train mode, as the official code generates δ
            d = g(z).clamp(-self.eps, self.eps)
        self.history.append((i, target, losses[0], losses[-1]))
        return d[0].cpu()

    def _fit(self, images, labels):
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        if images.shape[0] < self.clusters:
            raise ValueError(f"uc: {images.shape[0]} images cannot form {self.clusters} clusters")
        self.deltas, self._shape = None, tuple(images.shape[1:])
        self._surrogate(images, labels)
        feats = self.features(images.float() / 255)
        self.centroids, _ = kmeans(feats, self.clusters, self.seed, self.kmeans_iters)
        self.assignments = self._nearest(feats)  # for inspection; apply() recomputes
        self.history = []
        deltas = [self._train_generator(i, (i + self.target_offset) % self.clusters, images, gen)
                  for i in range(self.clusters)]
        self.deltas = to_steps(torch.stack(deltas))  # int8 uint8-steps: exact after rounding
        self.surrogate_model = self.feature_model()  # kept for inspection

    # ------------------------------------------------------------------ apply
    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._model = None

    def perturb(self, x, labels):
        """Labels are ignored: each image gets the δ of its nearest centroid."""
        if x.shape[1:] != self.deltas.shape[1:]:
            raise ValueError(f"uc was fitted on {tuple(self.deltas.shape[1:])} images, got "
                             f"{tuple(x.shape[1:])}")
        clusters = self._nearest(self.features(x))
        return x + as_float(self.deltas)[clusters]
