"""Certified learnability by parametric smoothing (Wang et al., "Provably Unlearnable Data
Examples", NDSS 2025; official code: Provably-Unlearnable-Examples/PUE, ``certify.py``).

**What the certificate says.** Take a classifier ``θ`` trained on the protected data and smooth
it in *weight* space: ``θ+ε``, ``ε ~ N(0, σ²I)`` over every parameter (BatchNorm statistics and
other buffers stay as trained). Its clean test accuracy is then a random variable ``A(θ+ε)``;
the *(q, η)-learnability* is the ``q``-quantile of that accuracy for the worst classifier ``θ'``
within ``‖θ' − θ‖₂ ≤ η``. Quantile smoothing (Chiang et al., 2020) bounds it by a higher
quantile at ``θ`` itself, ``q̄ = Φ(Φ⁻¹(q) + η/σ)``, and ``n_samples`` draws give a
distribution-free upper confidence bound on that quantile: the ``k``-th smallest sampled
accuracy, ``k`` the smallest order with ``P(Binomial(n, q̄) ≤ k − 1) ≥ 1 − α`` (the
Clopper–Pearson construction for a quantile). So with probability at least ``1 − α`` over the
draws,

    q-quantile of A(θ' + ε)  ≤  bound     for every θ' with ‖θ' − θ‖₂ ≤ η.

Too few draws for the requested confidence: the routine *abstains* and returns the trivial
bound 1.0. ``eta=0`` certifies the smoothed classifier at ``θ`` only.

**Assumptions** (what it does *not* say). The accuracy is that on the given test images, not
the population. The certified set is a weight-space ball around *this* trained ``θ``: an
attacker with another architecture, another training recipe or weights farther than ``η`` is
outside it, so the certificate measures how learnable the data were *for this training run*,
smoothed — not for every learner. The classifier certified is the smoothed one, whose accuracy
at large ``σ`` can sit far below the unsmoothed model's. ``mean_bound`` (Hoeffding, for the
*expected* smoothed accuracy at ``θ``) is reported beside it.

Defaults: ``q`` 0.7 and confidence 0.99 as the official script; ``n_samples`` 100 (the official
default of 10 always abstains at these settings: ``1 − 0.7¹⁰ < 0.99``); ``sigma`` 0.01, not the
official script's 0.1 (its surrogate is a ResNet-18): on the small fastnet, weight noise of
σ 0.03 already costs a large part of the clean accuracy and σ 0.1 smooths the net to chance,
where whatever it learnt certifies chance; σ 0.01 keeps the smoothed net close to the trained
one. Cost: ``n_samples + 1`` evaluations of the test set (10,000 images take about
10–18 s an evaluation with the fastnet on 2 CPU cores; ``n_eval`` certifies on a prefix of the
test set). Deterministic given ``seed``: the noise comes from one seeded CPU generator and
evaluation runs in fp32.
"""
from __future__ import annotations

import math

import torch

from .models import weight_noise
from .train import evaluate
from .utils import progress_bar


def order_statistic(n: int, q: float, alpha: float) -> int | None:
    """The smallest ``k`` (1-based) such that the ``k``-th smallest of ``n`` draws is at least
    the ``q``-quantile with probability ``≥ 1 − alpha``; None when even the largest is not."""
    from scipy.stats import binom

    for k in range(1, n + 1):
        if binom.cdf(k - 1, n, q) >= 1 - alpha:
            return k
    return None


# each setting of certify(): (whether a value is in range, what the range is)
RANGES = {"sigma": (lambda v: v > 0, "> 0"), "n_samples": (lambda v: v >= 1, ">= 1"),
          "alpha": (lambda v: 0 < v < 1, "in (0, 1)"), "q": (lambda v: 0 < v < 1, "in (0, 1)"),
          "eta": (lambda v: v >= 0, ">= 0"),
          "n_eval": (lambda v: v is None or v >= 1, ">= 1 (or None: all)")}


def setting_error(name: str, value) -> str | None:
    """Why ``value`` is out of range for the setting ``name`` of :func:`certify` ("must be > 0,
    got -1"), or None when it is fine (NaN never is)."""
    ok, want = RANGES[name]
    try:
        good = bool(ok(value))
    except TypeError:
        good = False
    return None if good else f"must be {want}, got {value}"


def check_settings(sigma=0.01, n_samples=100, alpha=0.01, q=0.7, eta=0.0, n_eval=None) -> None:
    """Raise a ValueError naming the first setting of :func:`certify` that is out of range."""
    for name, value in (("sigma", sigma), ("n_samples", n_samples), ("alpha", alpha), ("q", q),
                        ("eta", eta), ("n_eval", n_eval)):
        why = setting_error(name, value)
        if why:
            raise ValueError(f"certify: {name} {why}")


def certify(model, test_images, test_labels, sigma: float = 0.01, n_samples: int = 100,
            alpha: float = 0.01, q: float = 0.7, eta: float = 0.0, n_eval: int | None = None,
            seed: int = 0, device=None, progress=None) -> dict:
    """Certified (q, η)-learnability of ``model`` (see the module docstring).

    Returns a dict: ``bound`` (in [0, 1]; 1.0 when abstaining), ``abstain``, ``order`` (the
    order statistic used, 1-based), ``q_bar``, ``accuracies`` (sorted, one per weight draw),
    ``mean``, ``mean_bound`` (Hoeffding upper bound on the expected smoothed accuracy, η = 0),
    ``clean_accuracy`` (the unsmoothed model) and the settings. ``n_eval`` certifies on the
    first ``n_eval`` test images only (None: all of them), which divides the cost.
    """
    from scipy.stats import norm

    check_settings(sigma, n_samples, alpha, q, eta)
    if n_eval is not None:
        if not 1 <= int(n_eval) <= len(test_images):
            raise ValueError(f"n_eval={n_eval} must be between 1 and the {len(test_images)} "
                             "test images given")
        test_images, test_labels = test_images[:int(n_eval)], test_labels[:int(n_eval)]
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(device).eval()
    kw = dict(device=device, amp="off", tta=False)
    clean = evaluate(model, test_images, test_labels, **kw)
    gen = torch.Generator().manual_seed(int(seed))
    accs = []
    with progress_bar(int(n_samples), "certify", progress) as bar:
        for _ in range(int(n_samples)):
            with weight_noise(model, sigma, gen):
                accs.append(evaluate(model, test_images, test_labels, **kw))
            bar.update(1)
    accs.sort()
    q_bar = float(norm.cdf(norm.ppf(q) + eta / sigma))
    k = order_statistic(len(accs), q_bar, alpha) if q_bar < 1 else None
    mean = sum(accs) / len(accs)
    return {"bound": accs[k - 1] if k else 1.0, "abstain": k is None, "order": k,
            "q_bar": q_bar, "accuracies": accs, "mean": mean,
            "mean_bound": min(1.0, mean + math.sqrt(math.log(1 / alpha) / (2 * len(accs)))),
            "clean_accuracy": clean, "sigma": sigma, "n_samples": int(n_samples),
            "alpha": alpha, "q": q, "eta": eta, "n_eval": len(test_images), "seed": int(seed)}
