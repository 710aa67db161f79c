"""The quick checks: versions and data (``info``), one run end to end (``demo``)."""
from __future__ import annotations

import time

import torch

from ..experiments import SCALES
from .common import check_cache, header, data_line


def cmd_info(args):
    header()
    data_line(args.dataset, args.data_root)
    from .. import countermeasures, protections

    print("protections:    ", ", ".join(protections.names()))
    print("countermeasures:", ", ".join(countermeasures.names()))


def cmd_demo(args):
    """The quick end-to-end check: data, its spectrum, one classifier trained and tested."""
    from .. import data, experiments, protections, spectral

    check_cache(args)
    t0 = time.perf_counter()
    header()
    data_line("cifar10", args.data_root)
    x, y = data.load("cifar10", "train", args.data_root)
    xt, _ = data.load("cifar10", "test", args.data_root)
    print(f"      train {tuple(x.shape)} {x.dtype}, test {tuple(xt.shape)}, "
          f"{torch.bincount(y).tolist()[0]} images per class")

    n_bands = 8
    sample = x[:2000]
    p = protections.get("random", seed=args.seed).fit(sample, y[:2000])
    delta = p.apply(sample, y[:2000]).float() - sample.float()
    clean = spectral.energy_profile(sample.float() / 255, n_bands, remove_mean=True)
    noise = spectral.energy_profile(delta / 255, n_bands)
    idx = spectral.band_index((32, 32), n_bands)
    share = torch.bincount(idx.flatten(), minlength=n_bands).float() / idx.numel()
    edges = spectral.band_edges(n_bands)
    print(f"\nspectral energy profile (orthonormal DCT, radial bands, r = 1 highest frequency)")
    print(f"  {'band':>11}  {'coeffs':>7}  {'CIFAR-10 (mean removed)':>23}  "
          f"{'random noise 8/255':>18}")
    for k in range(n_bands):
        print(f"  {edges[k]:.3f}-{edges[k + 1]:.3f}  {share[k]:7.1%}  {clean[k]:23.2%}  "
              f"{noise[k]:18.2%}")
    print("  natural images put their energy in the lowest bands; white noise spreads it "
          "like the coefficients.")

    sc = experiments.SCALES[args.scale]
    print(f"\ntraining {args.trainer!r} at scale {args.scale!r} "
          f"({sc['n_train']} train / {sc['n_test']} test images) on clean CIFAR-10 ...")
    r = experiments.run(protection="none", countermeasure="none", trainer=args.trainer,
                        scale=args.scale, seed=args.seed, data_root=args.data_root,
                        cache=not args.no_cache)
    curve = " ".join(f"{a:.3f}" for a in r["curve"])
    print(f"  {r['recipe']['arch']}, {r['recipe']['epochs']} epochs: test accuracy "
          f"{r['accuracy']:.2%} (peak {r['peak_accuracy']:.2%} at epoch {r['peak_epoch']})"
          f"{'  [cached result]' if r['cached'] else ''}")
    print(f"  per-epoch test accuracy: {curve}")
    print(f"  training run {r['seconds']:.1f} s; demo total {time.perf_counter() - t0:.1f} s")


def add(sub, f) -> None:
    """Register this module's commands on ``sub``; ``f``: the shared flags."""
    scale, trainer, seed, no_cache = f.scale, f.trainer, f.seed, f.no_cache
    p = sub.add_parser("info", help="versions, data integrity, registered methods")
    p.add_argument("--dataset", default="cifar10", help="dataset to check (default cifar10)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="the quick end-to-end check")
    p.add_argument("--scale", **scale)
    p.add_argument("--trainer", **trainer)
    p.add_argument("--seed", **seed)
    p.add_argument("--no-cache", **no_cache)
    p.set_defaults(func=cmd_demo)
