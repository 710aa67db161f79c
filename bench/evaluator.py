"""Time-to-accuracy of the ``fast`` trainer against the ``standard`` ResNet-18 recipe.

Both run in this one process on the same machine, on clean CIFAR-10, at one scale; the table
gives each recipe's per-epoch test accuracy against its cumulative training time (evaluation
excluded) and the ratio of the times the two need to reach the same accuracy. When the
standard recipe does not reach a threshold within its epochs, the ratio is a lower bound
(">").

    python bench/evaluator.py --scale ci                 # a minute or two on 2 CPU cores
    python bench/evaluator.py --scale full --standard-epochs 1
    python bench/evaluator.py --scale paper              # on a GPU
    python bench/evaluator.py --scale cpu --standard-epochs 0 --curve-images 2000

``--curve-images N`` also trains the fast recipe with the evaluation protocol that tests every
epoch but the last on a fixed class-balanced subset of N test images (the last on all of them)
and reports its wall time as a ratio against the plain fast run of the same command, and the
two final accuracies (the same training, so they must agree). ``--standard-epochs 0`` skips the
standard recipe.

``--compile`` also trains the fast recipe under ``torch.compile`` (the recipe's ``compile``
field; inductor's C++ backend on the CPU) and reports its wall time, compilation included, and
its training time as ratios against the plain fast run, with both final accuracies.

``--batched-seeds K`` trains K seeds of the fast recipe as one grouped model
(:func:`fuselib.batched.train_seeds`) and the same K seeds one after another, and reports the
ratio of the wall times and each seed's final accuracy both ways.

Images/second and achieved TFLOP/s (counted with torch.utils.flop_counter on one training
step) are printed for both.

``--archs fastnet,resnet18,...`` measures instead the training throughput of each network under
its trainer (fastnet: fast; vit: vit; the rest: standard), in fp32 (``amp=off``) against bf16
autocast, each in the same process, and prints the ratios. ``--amp-check`` adds the accuracy
check: the clean ResNet-18 run of plan ``schedule_paper`` (fp32, the paper's batch and lr)
against the same run in bf16 (plan ``victims_amp``) at ``--scale``, read from the records or
trained (one seed each; the check over seeds at the chosen schedule, plans ``victims`` against
``victims_bf16``, is :func:`fuselib.experiments.victims.precision`, RESULTS.md's precision
table)::

    python bench/evaluator.py --archs fastnet,resnet18,vgg11,densenet121,resnet50,vit \
        --threads 2 --amp-check --scale cpu
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import fuselib  # noqa: E402
from fuselib import experiments, models  # noqa: E402
from fuselib.train import autocast, get_recipe, train  # noqa: E402
from fuselib.utils import default_device  # noqa: E402


def train_flops_per_image(recipe, device) -> float:
    """Forward + backward FLOPs of one training image, counted on a batch of 8."""
    m = models.get(recipe.arch, 10, **recipe.model_kwargs).to(device)
    x = torch.randn(8, 3, 32, 32, device=device)
    with FlopCounterMode(display=False) as fc:
        with autocast(device, recipe.amp):
            m(x).float().sum().backward()
    return fc.get_total_flops() / 8


def throughput(arch, amp, device, steps=4, threads=None) -> float:
    """Training images/s of ``arch`` under its trainer with ``amp`` ("off" or "auto"): the real
    training loop (augmentation, optimiser, schedule) over ``steps`` batches, timed after one
    warm-up epoch of the same length."""
    trainer = {"fastnet": "fast", "vit": "vit"}.get(arch, "standard")
    r = get_recipe(trainer, arch=arch, amp=amp, epochs=2, tta=False, model_kwargs={})
    n = r.batch_size * steps
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.arange(n) % 10
    res = train(x, y, x[:10], y[:10], r, seed=0, device=device)
    return n / (res["epoch_seconds"][1] - res["epoch_seconds"][0])


def archs_report(args, device):
    """fp32 against bf16 training throughput for each of ``args.archs``, then (``--amp-check``)
    a whole clean ResNet-18 run both ways."""
    from fuselib.train import bf16_ok

    print(f"\ntraining throughput, images/s (batch: the trainer's; {torch.get_num_threads()} "
          f"threads; native bf16: {'yes' if bf16_ok(device) else 'no'})")
    print(f"  {'network':12} {'fp32':>8} {'bf16':>8} {'ratio':>7}")
    out = {}
    for arch in args.archs.split(","):
        f32 = throughput(arch, "off", device)
        b16 = throughput(arch, "auto", device)
        out[arch] = {"fp32": f32, "bf16": b16, "ratio": b16 / f32}
        print(f"  {arch:12} {f32:8.0f} {b16:8.0f} {b16 / f32:6.2f}x", flush=True)
    if args.amp_check:
        from fuselib.experiments import plans

        runs = {}
        for name in ("schedule_paper", "victims_amp"):
            plan = plans.get(name)
            df = plan.run(args.scale, seeds=[0], cached_only=not args.train,
                          **({"device": device} if args.train else {}))
            row = df[(df.protection == "none") & (df.countermeasure == "none")]
            runs[name] = None if row.empty else row.iloc[0]
        f, b = runs["schedule_paper"], runs["victims_amp"]
        if b is None or f is None:
            print(f"\naccuracy check: not measured at {args.scale} (plans schedule_paper and "
                  f"victims_amp,"
                  f" clean seed 0); add --train to train them")
        else:
            d = 100 * (b.accuracy - f.accuracy)
            print(f"\naccuracy check, clean ResNet-18 at {args.scale}, seed 0: bf16 "
                  f"{b.accuracy:.2%} (peak {b.peak_accuracy:.2%}, {b.seconds:.0f} s) against "
                  f"fp32 {f.accuracy:.2%} (peak {f.peak_accuracy:.2%}, {f.seconds:.0f} s): "
                  f"{d:+.2f} points, wall ratio {f.seconds / b.seconds:.2f}x "
                  f"({'within' if abs(d) <= 1 else 'NOT within'} 1 point)")
            out["amp_check"] = {"bf16": b.to_dict(), "fp32": f.to_dict()}
    return out


def time_to(result, threshold):
    for acc, t in zip(result["curve"], result["epoch_seconds"]):
        if acc >= threshold:
            return t
    return None


def batched_seeds(args, sc, xtr, ytr, xte, yte, device, runs):
    """K seeds as one grouped model against the same K seeds trained one after another."""
    import time

    from fuselib.batched import train_seeds

    over = dict(sc.get("fast", {}))
    if args.fast_epochs is not None:
        over["epochs"] = args.fast_epochs
    seeds = list(range(args.seed, args.seed + args.batched_seeds))
    t0 = time.perf_counter()
    alone = [train(xtr, ytr, xte, yte, get_recipe("fast", **over), seed=s, device=device)
             for s in seeds]
    t_alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    together = train_seeds(xtr, ytr, xte, yte, "fast", seeds=seeds, device=device, **over)
    t_together = time.perf_counter() - t0
    print(f"\nbatched seeds {seeds}: one grouped model {t_together:.1f} s wall against "
          f"{t_alone:.1f} s for {len(seeds)} separate runs, ratio {t_alone / t_together:.2f}x")
    print(f"  {'seed':>5} {'separate':>9} {'batched':>9}")
    for s, a, b in zip(seeds, alone, together):
        print(f"  {s:5d} {a['accuracy']:9.4f} {b['accuracy']:9.4f}")
    for r in (*alone, *together):
        r.pop("model")
    runs["batched_seeds"] = {"seeds": seeds, "separate_seconds": t_alone,
                             "batched_seconds": t_together, "separate": alone,
                             "batched": together}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", default="ci", choices=list(experiments.SCALES))
    ap.add_argument("--standard-epochs", type=int, default=None,
                    help="epochs of the standard recipe (default: the scale's preset)")
    ap.add_argument("--fast-epochs", type=int, default=None)
    ap.add_argument("--thresholds", default="0.4,0.5,0.6,0.7,0.8,0.85,0.9,0.93")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--curve-images", type=int, default=0,
                    help="also time the subset evaluation protocol with this many test images")
    ap.add_argument("--compile", action="store_true",
                    help="also time the fast recipe under torch.compile")
    ap.add_argument("--batched-seeds", type=int, default=0,
                    help="also time K seeds trained as one grouped model against K separate runs")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    ap.add_argument("--archs", default=None,
                    help="comma-separated networks: measure fp32 against bf16 training "
                         "throughput for each instead of the fast/standard comparison")
    ap.add_argument("--amp-check", action="store_true",
                    help="with --archs: the clean ResNet-18 run of plans schedule_paper and "
                         "victims_amp at --scale, bf16 against fp32")
    ap.add_argument("--train", action="store_true",
                    help="with --amp-check: train the runs that are not measured yet")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = default_device()
    if args.archs:
        print(f"fuselib {fuselib.__version__}, torch {torch.__version__}, {device}, "
              f"{platform.processor() or platform.machine()}")
        out = archs_report(args, device)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1, default=str))
        return
    sc = experiments.SCALES[args.scale]
    xtr, ytr = fuselib.data.load("cifar10", "train")
    xte, yte = fuselib.data.load("cifar10", "test")
    xtr, ytr = fuselib.data.subset(xtr, ytr, sc["n_train"], args.seed)
    xte, yte = fuselib.data.subset(xte, yte, sc["n_test"], args.seed)
    print(f"fuselib {fuselib.__version__}, torch {torch.__version__}, {device}"
          f"{' ' + torch.cuda.get_device_name() if device.type == 'cuda' else ''}, "
          f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads; "
          f"data {fuselib.data.info('cifar10').key}; {len(ytr)} train / {len(yte)} test")

    runs = {}
    jobs = [("fast", args.fast_epochs, {}), ("standard", args.standard_epochs, {})]
    if args.standard_epochs == 0:
        jobs.pop()
    if args.curve_images:
        jobs.append(("fast", args.fast_epochs, {"curve_images": args.curve_images}))
    if args.compile:
        jobs.append(("fast", args.fast_epochs, {"compile": True}))
    for name, ep, extra in jobs:
        over = {**sc.get(name, {}), **extra}
        if ep is not None:
            over["epochs"] = ep
        r = get_recipe(name, **over)
        res = train(xtr, ytr, xte, yte, r, seed=args.seed, device=device)
        res.pop("model")
        res["flops_per_image"] = train_flops_per_image(r, device)
        res["tflops"] = res["flops_per_image"] * res["images_per_second"] / 1e12
        key = name + "".join(f"+{k}={v}" for k, v in extra.items())
        runs[key] = res
        print(f"\n{key}: {r.arch}, {r.epochs} epochs, batch {r.batch_size}, amp {r.amp}, "
              f"wall {res['seconds']:.1f} s (training {res['train_seconds']:.1f} s)")
        print(f"  {'epoch':>5} {'train s':>9} {'test acc':>9}")
        for i, (t, a) in enumerate(zip(res["epoch_seconds"], res["curve"]), 1):
            print(f"  {i:5d} {t:9.1f} {a:9.4f}")
        print(f"  {res['images_per_second']:.0f} images/s, "
              f"{res['flops_per_image'] / 1e9:.2f} GFLOP per training image, "
              f"{res['tflops']:.3f} TFLOP/s achieved")

    fast = runs["fast"]
    if args.batched_seeds:
        batched_seeds(args, sc, xtr, ytr, xte, yte, device, runs)
    if args.curve_images:
        sub = runs[f"fast+curve_images={args.curve_images}"]
        print(f"\nevaluation protocol (curve on {args.curve_images} test images, last epoch on all "
              f"{len(yte)}): wall {sub['seconds']:.1f} s against {fast['seconds']:.1f} s, ratio "
              f"{fast['seconds'] / sub['seconds']:.2f}x faster; final accuracy "
              f"{sub['accuracy']:.4f} against {fast['accuracy']:.4f} "
              f"(difference {100 * (sub['accuracy'] - fast['accuracy']):+.2f} points); training "
              f"alone {sub['train_seconds']:.1f} s against {fast['train_seconds']:.1f} s")
    if args.compile:
        c = runs["fast+compile=True"]
        print(f"\ntorch.compile: wall {c['seconds']:.1f} s (compilation included) against "
              f"{fast['seconds']:.1f} s, ratio {fast['seconds'] / c['seconds']:.2f}x; training "
              f"{c['train_seconds']:.1f} s against {fast['train_seconds']:.1f} s, ratio "
              f"{fast['train_seconds'] / c['train_seconds']:.2f}x; final accuracy "
              f"{c['accuracy']:.4f} against {fast['accuracy']:.4f}")
    if "standard" not in runs:
        if args.json:
            Path(args.json).write_text(json.dumps(runs, indent=1, default=str))
        return
    std = runs["standard"]
    print(f"\ntime to accuracy (training seconds, evaluation excluded)")
    print(f"  {'target':>7} {'fast':>9} {'standard':>10} {'ratio std/fast':>15}")
    for th in (float(t) for t in args.thresholds.split(",")):
        tf, ts = time_to(fast, th), time_to(std, th)
        if tf is None and ts is None:
            continue
        f = f"{tf:9.1f}" if tf is not None else f"{'—':>9}"
        s = f"{ts:10.1f}" if ts is not None else f"{'>' + format(std['train_seconds'], '.0f'):>10}"
        if tf is not None and ts is not None:
            ratio = f"{ts / tf:15.1f}"
        elif tf is not None:
            ratio = f"{'>' + format(std['train_seconds'] / tf, '.1f'):>15}"
        else:
            ratio = f"{'<' + format(ts / fast['train_seconds'], '.2f'):>15}"
        print(f"  {th:7.2f} {f} {s} {ratio}")
    print(f"\nfast: final {fast['accuracy']:.4f} (peak {fast['peak_accuracy']:.4f}) in "
          f"{fast['train_seconds']:.1f} s of training; standard: final {std['accuracy']:.4f} "
          f"in {std['train_seconds']:.1f} s; throughput ratio "
          f"{fast['images_per_second'] / std['images_per_second']:.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1, default=str))


if __name__ == "__main__":
    main()
