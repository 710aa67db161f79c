"""fuselib: protect image data with unlearnable examples, and test whether a protection holds.

Also `python -m fuselib`, and under torchrun: `torchrun --nproc_per_node 2 -m fuselib fit fuse`."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import torch

from .experiments import SCALES
from .train import RECIPES

DESCRIPTION = """\
Protect image data with unlearnable examples, and test whether a protection holds.

Also run as: python -m fuselib ...
Under torchrun: torchrun --nproc_per_node 2 -m fuselib fit fuse --out fuse.pt"""

EPILOG = """\
protections and countermeasures are named by spec: a name, a name:value (its primary
parameter) or name:key=value,key=value (see fuselib info); a+b chains countermeasures.

environment:
  FUSELIB_RESULTS    the results cache (default: results/cache in a source checkout)
  FUSELIB_MEASURED   the shipped records (default: results/measured); FUSELIB_RECOMPUTE=1
                     ignores them
  FUSELIB_DATA       the dataset root (or --data-root)
  FUSELIB_DEBUG=1    show an error's traceback instead of its one line

examples:
  fuselib demo
  fuselib evaluate --protection fuse --countermeasure lowpass:0.25 --scale smoke
  fuselib grid none em fuse --countermeasures none lowpass:0.25 --scale smoke"""

PACKAGE = Path(__file__).resolve().parent
# errors that are messages to the user when fuselib raises them (a bad argument, a missing
# file, a failed check): one line and exit code 2, not a traceback
USER_ERRORS = (ValueError, KeyError, OSError, RuntimeError)


# --------------------------------------------------------------------------- argument checks
def _count(minimum: int = 1):
    """An argparse type: a whole number of at least ``minimum``."""

    def count(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return count


def _seed(text):
    """A seed: a whole number NumPy and torch both take, 0 to 2**32 - 1."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 4294967295, got "
                                         f"{text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"a positive number is needed, got {text!r}")
    return value


def _nonnegative(text):
    """An argparse type: a number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _budget(text):
    """An argparse type: an L∞ budget in (0, 1], as a number or a fraction (``8/255``)."""
    num, _, den = str(text).partition("/")
    try:
        value = float(num) / (float(den) if den else 1.0)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number or a fraction such as 8/255, got "
                                         f"{text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text} = {value:.4g}")
    return value


def _certify_setting(name: str, kind=float):
    """An argparse type for a setting of :func:`fuselib.certify.certify`, checked by its own
    range (so ``--q 2`` fails while parsing, naming ``--q``, before anything is trained)."""
    from .certify import setting_error

    def setting(text):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        why = setting_error(name, value)
        if why:
            raise argparse.ArgumentTypeError(why)
        return value

    return setting


def _check_specs(protection_specs=(), countermeasure_specs=()):
    """Build every protection and countermeasure named, once, before any work: a bad name or
    parameter fails now, in one line naming its spec (not after the first runs trained)."""
    from . import countermeasures, protections
    from .experiments.scales import split_source

    for spec in protection_specs:  # NAME@DATASET: NAME made on DATASET (its data checked later)
        protections.get(split_source(spec)[0])
    for spec in countermeasure_specs:
        countermeasures.get(spec)


def _check_cache(args):
    """Unless ``--no-cache``: the results cache must be writable, checked before the training
    whose result it would keep."""
    if not getattr(args, "no_cache", False):
        from .experiments.store import check_results_writable

        check_results_writable()


def _check_output_file(path, flag: str):
    """A file the command writes at its end (``--csv``): its folder must be writable now."""
    from .experiments.store import writable_dir

    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file name")
    writable_dir(path.parent, f"the folder of {flag} {path}")


def _short_warning(message, category, filename, lineno, line=None):
    """Warnings that fuselib gives (an unreadable cache file, ...) as one line each."""
    if Path(filename).resolve().is_relative_to(PACKAGE):
        return f"fuselib: warning: {message}\n"
    return _FORMAT_WARNING(message, category, filename, lineno, line)


_FORMAT_WARNING = warnings.formatwarning


def _origin(e: BaseException):
    """The innermost frame that raised ``e``: ``(file, line)``."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return None, None
    return Path(tb.tb_frame.f_code.co_filename).resolve(), tb.tb_lineno


def _report(e: BaseException) -> int:
    """One line for an error fuselib raised on purpose (exit 2). An error raised elsewhere (in
    torch, pandas, Python itself: a bare KeyError) may be a bug: its line also says where it
    came from and how to see the traceback (exit 1)."""
    message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    print(f"fuselib: error: {message}", file=sys.stderr)
    where, line = _origin(e)
    deliberate = (where is None or where.is_relative_to(PACKAGE)) and not (
        isinstance(e, KeyError) and not (isinstance(message, str) and " " in message))
    if deliberate:
        return 2
    print(f"fuselib: ({type(e).__name__} raised in {where}:{line}; FUSELIB_DEBUG=1 shows the "
          "traceback)", file=sys.stderr)
    return 1


def _header():
    from .version import __version__
    from .utils import default_device

    print(f"fuselib {__version__} | torch {torch.__version__} | device {default_device()} | "
          f"{torch.get_num_threads()} CPU threads")


def _data_line(dataset: str, root=None):
    from . import data

    info = data.info(dataset, root)
    what = {"official": "the official release",
            "jpeg75": "the local JPEG-75 re-encoding (see shared/data/cifar10/README.md)"}
    print(f"data: {dataset} at {info.path}\n      MD5 matched {info.variant!r}: "
          f"{what.get(info.variant, info.variant)}")
    return info


def cmd_info(args):
    _header()
    _data_line(args.dataset, args.data_root)
    from . import countermeasures, protections

    print("protections:    ", ", ".join(protections.names()))
    print("countermeasures:", ", ".join(countermeasures.names()))


def cmd_demo(args):
    """The quick end-to-end check: data, its spectrum, one classifier trained and tested."""
    from . import data, experiments, protections, spectral

    _check_cache(args)
    t0 = time.perf_counter()
    _header()
    _data_line("cifar10", args.data_root)
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


def cmd_evaluate(args):
    from . import experiments

    _check_specs([args.protection], [args.countermeasure])
    _check_cache(args)
    r = experiments.run(protection=args.protection, countermeasure=args.countermeasure,
                        arch=args.arch, trainer=args.trainer, scale=args.scale,
                        seed=args.seed, epochs=args.epochs, data_root=args.data_root,
                        cache=not args.no_cache)
    if args.json:
        print(json.dumps(r, indent=1, default=str))
    else:
        print(f"{args.protection} | {args.countermeasure} | {r['recipe']['arch']} "
              f"({args.trainer}, {args.scale}): accuracy {r['accuracy']:.4f}, peak "
              f"{r['peak_accuracy']:.4f} (epoch {r['peak_epoch']}), {r['seconds']:.1f} s"
              f"{' [cached]' if r['cached'] else ''}")


def cmd_evaluate_folder(args):
    """Train on an image folder (a protected one, say), test on the clean test set."""
    from .experiments.folders import evaluate_folder

    _check_specs([], [args.countermeasure])
    _check_cache(args)
    if not Path(args.folder).is_dir():
        raise FileNotFoundError(f"image folder {args.folder} does not exist or is not a folder")
    r = evaluate_folder(args.folder, test=args.test, size=args.size,
                        countermeasure=args.countermeasure, seed=args.seed, scale=args.scale,
                        epochs=args.epochs, cache=not args.no_cache, data_root=args.data_root)
    if args.json:
        print(json.dumps(r, indent=1, default=str))
        return
    print(f"{args.folder} | {args.countermeasure} | {r['recipe']['arch']} at {args.size} px "
          f"({r['config']['train']['n']} images), tested on clean {r['config']['test']}: "
          f"accuracy {r['accuracy']:.4f}, peak {r['peak_accuracy']:.4f} (epoch "
          f"{r['peak_epoch']}), {r['seconds']:.1f} s{' [cached]' if r['cached'] else ''}")


def cmd_export_data(args):
    """A registered protection's protected training set, written as researchers share it."""
    from .experiments.audit import export_data

    _check_specs([args.protection])
    _check_cache(args)
    r = export_data(args.protection, args.dir, scale=args.scale, seed=args.seed,
                    dataset=args.dataset, fmt=args.format, clean=args.clean,
                    data_root=args.data_root, cache=not args.no_cache)
    print(f"wrote {r['n']} images protected by {args.protection} ({args.dataset}, scale "
          f"{args.scale}, seed {args.seed}) as {r['format']} to {r['path']} (digest "
          f"{r['digest']})" + (f"; the clean reference to {r['clean']}" if r["clean"] else ""))


def cmd_audit(args):
    """Check anyone's unlearnable data, then train on it after each countermeasure."""
    from . import plots, poisons
    from .experiments import audit
    from .utils import output_lock

    if args.plan and args.countermeasures:
        raise ValueError("give --plan or --countermeasures, not both")
    _check_cache(args)
    a = audit.prepare(args.poisoned, labels=args.labels, clean=args.clean, test=args.test,
                      plan=args.plan or "quick", countermeasures=args.countermeasures,
                      scale=args.scale, seed=args.seed, eps=args.eps, out=args.out,
                      epochs=args.epochs, data_root=args.data_root,
                      limits=poisons.Limits(int(args.max_gb * 2**30), args.max_pixels),
                      reference=args.reference)
    for w in a.warnings:
        print(f"fuselib: warning: {w}", file=sys.stderr)
    print(f"{a.path}: {a.images.shape[0]} images of {a.images.shape[-2]}x{a.images.shape[-1]} "
          f"({a.format}, digest {a.digest}); {len(a.countermeasures)} countermeasure(s) at "
          f"scale {a.scale}, tested on clean {a.test}")
    if a.distance is not None:
        d = a.distance
        listed = ", ".join(map(str, d["over"][:20])) + (", ..." if d["n_over"] > 20 else "")
        print(f"distance to {a.clean_path}: max L-inf {d['linf_max']}/255, mean "
              f"{d['linf_mean']:.2f}/255, max L2 {d['l2_max']:.3f}; {d['n_over']} of "
              f"{a.images.shape[0]} images over the {d['budget_levels']}/255 budget"
              + (f" ({listed})" if d["n_over"] else ""))

    def row(r):
        clean = ("" if r.get("clean_accuracy") is None else
                 f" (clean data {r['clean_accuracy']:.4f})")
        print(f"  {r['countermeasure']:28s} accuracy {r['accuracy']:.4f}{clean}, peak "
              f"{r['peak_accuracy']:.4f} (epoch {r['peak_epoch']}), {r['seconds']:.1f} s"
              f"{' [cached]' if r['cached'] else ''}")

    with output_lock(a.out, "--out"):  # one writer per report folder
        report = audit.run(a, cache=not args.no_cache, on_row=row)
        if report["profile"]:
            print("energy of poisoned - clean (DCT; low / mid / high thirds): "
                  + " / ".join(f"{f:.1%}" for f in report["profile"]["fractions"])
                  + " (white noise: " + " / ".join(f"{f:.1%}" for f in
                                                    report["profile"]["white_noise"]) + ")")
        out = audit.write(report, a.out, a.per_image, figure=plots.audit_figure,
                          inputs=a.inputs)
    print(f"wrote {out}/audit.md, accuracy.csv, accuracy.png"
          + (", distances.csv" if a.per_image else "") + ", audit.json")


def cmd_detect(args):
    """Is this data unlearnable? Shortcut detection without a clean reference."""
    from .experiments import detect

    if args.calibrate:
        if args.data is not None:
            raise ValueError("--calibrate takes no DATA (it scores clean subsets)")
        table = detect.calibrate(data_root=args.data_root)
        print(f"wrote {detect.write_calibration(table)}")
        return
    if args.data is None:
        raise ValueError("give DATA (a data file or folder, or a protection spec) or --calibrate")
    if args.out is not None:
        detect.check_out(args.out)
    images, labels, source, warns = detect.load_source(
        args.data, args.labels, args.scale, args.seed, args.dataset, args.data_root)
    for w in warns:
        print(f"fuselib: warning: {w}", file=sys.stderr)
    detect.check_data(images, labels)
    report = detect.detect(images, labels, args.seed)
    print(detect.markdown(report, source), end="")
    if args.out is not None:
        out = detect.write(report, args.out, labels, source)
        print(f"wrote {out}/detect.md, per_image.csv, detect.json")


def cmd_protect_proof(args):
    """``fuselib protect`` on Imagenette's train split, then evaluate-folder on it and on the
    clean copy (fuselib.experiments.folders.protect_proof)."""
    from .experiments.folders import protect_proof

    if not args.cached_only:
        _check_cache(args)
    fit = {} if args.epochs is None else {"epochs": args.epochs}
    df = protect_proof(args.workdir, scale=args.scale, size=args.size, seed=args.seed,
                       data_root=args.data_root, cached_only=args.cached_only, **fit)
    if df.empty:
        print(f"nothing recorded at scale {args.scale}, {args.size} px, seed {args.seed}")
        return
    tab = df.pivot(index="label", columns="countermeasure", values="accuracy") * 100
    print(f"clean Imagenette val accuracy (%) of a classifier trained on each {args.size}-px "
          f"training folder, scale {args.scale}, seed {args.seed}:")
    print(tab.round(2).to_string())


def _print_share(plan, args, worker):
    """Which of a plan's fits (and so runs) worker ``(i, n)`` makes."""
    from .experiments import sweeps

    fits = plan.fits(args.scale, args.seeds, data_root=args.data_root)
    mine = plan.share(args.scale, worker, args.seeds, data_root=args.data_root)
    print(f"worker {worker[0]} of {worker[1]}: {len(sweeps.share(fits, worker))} of the plan's "
          f"{len(fits)} fits, with every run that uses them: "
          + ", ".join(f"{p} seed {s}" for p, s in mine))


def cmd_grid(args):
    """Every protection × countermeasure (or a named plan), one table of clean test accuracy."""
    from . import countermeasures, experiments
    from .experiments import sweeps

    if args.list and not args.plan:
        raise ValueError("--list lists a plan's runs: give --plan NAME (fuselib grid --plan "
                         "NAME --list)")
    common = dict(data_root=args.data_root, cache=not args.no_cache,
                  measured=not args.recompute)
    if args.trainer is not None:  # else a plan's own trainer, or fast
        common["trainer"] = args.trainer
    worker = None
    if args.worker:
        worker = sweeps.parse_worker(args.worker)
        if args.cached_only or args.no_cache:
            raise ValueError("--worker shares out the runs to train through the cache: not "
                             "with --cached-only or --no-cache")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.export:
        if args.no_cache or args.cached_only:
            raise ValueError("--export ships what a run writes to the cache: not with "
                             "--no-cache or --cached-only")
        from .experiments.store import shipped_dir, writable_dir

        # the shipped records: results/measured, or the folder FUSELIB_MEASURED names
        dest = writable_dir(os.environ.get("FUSELIB_MEASURED") or shipped_dir(),
                            "--export: the shipped records folder")

        def ship(r):  # every run trained here is shipped as soon as it ends
            if not r["cached"]:
                experiments.export(args.scale, dest)
                print(f"  shipped {r['key']} ({r['accuracy']:.2%}) to {dest}", flush=True)

        common["on_run"] = ship
    if args.csv:
        _check_output_file(args.csv, "--csv")
    if args.plan:
        if args.protections or args.countermeasures or args.archs:
            raise ValueError("--plan names the runs: give no protections, --countermeasures "
                             "or --archs")
        plan = experiments.plans.get(args.plan)
        if plan.kind != "grid":
            raise ValueError(f"plan {plan.name!r} holds certificates: {plan.command(args.scale)}")
        print(f"plan {plan.name}: {plan.title} | {plan.size(args.scale)} runs at scale "
              f"{args.scale}")
        if worker is not None:
            _print_share(plan, args, worker)
        if args.list:
            for b in plan.blocks_for(args.scale):
                print(f"  {' '.join(b.protections)} x {' '.join(b.countermeasures)} | seeds "
                      f"{list(b.seeds)}" + (f" | archs {list(b.archs)}" if b.archs != (None,)
                                            else "")
                      + (f" | poison ratios {list(b.poison_ratios)}"
                         if b.poison_ratios != (1.0,) else ""))
            return
        if not args.cached_only:
            _check_cache(args)
        df = plan.run(args.scale, seeds=args.seeds, cached_only=args.cached_only,
                      worker=worker, **common)
        rows, cols, labels = plan.rows, plan.cols, (plan.labels.get(plan.rows),
                                                   plan.labels.get(plan.cols))
        row_order, col_order = plan.order(rows, args.scale), plan.order(cols, args.scale)
    else:
        if not args.protections:
            raise ValueError("name the protections to run, or a plan with --plan NAME")
        cms = args.countermeasures or ["none"]
        cms = "all" if cms == ["all"] else cms
        _check_specs(args.protections, [] if cms == "all" else cms)
        if not args.cached_only:
            _check_cache(args)
        df = experiments.grid(protections=args.protections, countermeasures=cms,
                              archs=args.archs or [None], scale=args.scale,
                              seeds=args.seeds or [0],
                              cached_only=args.cached_only, worker=worker, **common)
        # the longer list runs down the rows: a suite of countermeasures reads as a column per
        # protection, a zoo of protections as a row each
        n_cm = len(countermeasures.SUITE) if cms == "all" else len(cms)
        rows, cols = (("countermeasure", "protection") if n_cm > len(args.protections)
                      else ("protection", "countermeasure"))
        labels = row_order = col_order = None
    if df.empty:
        print(f"nothing measured yet for these runs at scale {args.scale} "
              f"(--cached-only trains nothing; drop it to run them)")
        return
    table = sweeps.table(df, rows, cols, args.markdown, row_order, col_order, labels)
    seeds = sorted(set(df.seed))
    print(f"clean test accuracy, final (peak) | trainer {df.trainer.iloc[0]}, scale {args.scale}, "
          f"seeds {seeds}, {df.arch.iloc[0]}" + (", mean ± std over seeds (points)"
                                                 if len(seeds) > 1 else ""))
    print(sweeps.markdown(table) if args.markdown else table.to_string())
    print(f"{len(df)} runs, {int(df.cached.sum())} from the cache "
          f"({int(df.measured.sum())} of them shipped in results/measured), "
          f"{df.seconds[~df.cached].sum():.0f} s computed"
          + (" (--cached-only: blank cells are not measured yet)" if args.cached_only else ""))
    if args.csv:
        from .utils import atomic_write

        with atomic_write(args.csv) as tmp:
            df.to_csv(tmp, index=False)
        print(f"wrote {args.csv}")


def cmd_export(args):
    """Copy the cached run records of a scale (and its FUSE generator) to results/measured."""
    from . import experiments

    if args.dest:
        experiments.store.writable_dir(args.dest, f"--dest {args.dest}")
    files = experiments.export(args.scale, args.dest, fits=tuple(args.fits),
                               runs=not args.fits_only)
    print(f"wrote {len(files)} files" + (f" to {files[0].parent}" if files else ""))


def cmd_profile(args):
    """Spectral energy of each protection's perturbations in low / mid / high radial bands."""
    from . import experiments, spectral

    _check_specs(args.protections)
    _check_cache(args)
    edges = [0, 1 / 3, 2 / 3, 1]
    r = spectral.radial_frequency((32, 32))
    share = [float(((r >= lo) & ((r <= hi) if hi == 1 else (r < hi))).float().mean())
             for lo, hi in zip(edges[:-1], edges[1:])]
    print(f"energy of protected - clean, orthonormal DCT, radial r in [0, 1] | scale "
          f"{args.scale}, seed {args.seed}")
    print(f"{'protection':40s} {'low <1/3':>9} {'mid':>9} {'high >=2/3':>11}")
    print(f"{'(white noise = share of coefficients)':40s} {share[0]:9.1%} {share[1]:9.1%} "
          f"{share[2]:11.1%}")
    for p in args.protections:
        e = experiments.spectral_profile(p, scale=args.scale, seed=args.seed,
                                         data_root=args.data_root)
        print(f"{p:40s} {e[0]:9.1%} {e[1]:9.1%} {e[2]:11.1%}")


def cmd_verify(args):
    """Recompute shipped run records from scratch and compare (fuselib.experiments.verify)."""
    from . import experiments

    _header()
    if args.fits:
        tol = 0.5 if args.tolerance is None else args.tolerance
        df = experiments.verify_fits(args.scale, names=args.fits or None, tolerance=tol)
        if df.empty:
            raise FileNotFoundError(f"no shipped {args.scale}-scale fits"
                                    + (f" of {' '.join(args.fits)}" if args.fits else ""))
        for r in df.itertuples():
            verdict = "ok" if r.reproduces else "DIFFERS"
            print(f"{r.key}  {r.protection:28s} n_train {r.n_train:6d}  equal pixels "
                  f"{r.equal_pixels:7.2%}  mean |diff| {r.mean_abs_diff:.3f}/255  max "
                  f"{r.max_abs_diff:.0f}/255  {r.seconds:5.0f} s  {verdict}")
        bad = int((~df.reproduces).sum())
        print(f"{len(df) - bad} of {len(df)} shipped fit(s) reproduced "
              f"(tolerance: mean |diff| <= {tol}/255)")
        if bad:
            raise RuntimeError(f"{bad} shipped fit(s) did not reproduce")
        return
    tol = 0.005 if args.tolerance is None else args.tolerance
    df = experiments.verify(args.scale, sample=args.sample, seed=args.seed, keys=args.keys,
                            tolerance=tol)
    for r in df.itertuples():
        verdict = "ok" if r.reproduces else ("CONFIG DIFFERS" if not r.same_config else "DIFFERS")
        print(f"{r.key}  {r.protection:28s} {r.countermeasure:22s} shipped {r.shipped:7.2%}  "
              f"recomputed {r.recomputed:7.2%}  {r.seconds:5.0f} s  {verdict}")
    bad = int((~df.reproduces).sum())
    print(f"{len(df) - bad} of {len(df)} shipped record(s) reproduced "
          f"(tolerance {tol:.2%})")
    if bad:
        raise RuntimeError(f"{bad} shipped record(s) did not reproduce")


def cmd_certify(args):
    """Certified learnability bound (fuselib.certify) of each protection's training data."""
    from . import experiments
    from .certify import check_settings

    settings = {k: getattr(args, k) for k in experiments.CERTIFY_SETTINGS}
    jobs = [(p, args.countermeasure, args.seed) for p in args.protections]
    if args.plan:
        plan = experiments.plans.get(args.plan)
        if plan.kind != "certify" or args.protections:
            raise ValueError(f"--plan takes a plan of certificates and no protections; "
                             f"{plan.name!r} is run by: {plan.command(args.scale)}")
        settings = plan.settings_for(args.scale)
        jobs = [(p, cm, s) for b in plan.blocks_for(args.scale) for p in b.protections
                for cm in b.countermeasures for s in b.seeds]
    elif not jobs:
        raise ValueError("name the protections to certify, or a plan with --plan NAME")
    # every setting, spec and the cache checked before any classifier is trained (the flags
    # were checked while parsing; a plan's settings are checked here)
    check_settings(**settings)
    _check_specs({p for p, _, _ in jobs}, {cm for _, cm, _ in jobs})
    _check_cache(args)
    _header()
    print(f"scale {args.scale}, " + ", ".join(f"{k} {v}" for k, v in settings.items()))
    print(f"{'protection':40s} {'accuracy':>9s} {'mean(σ)':>9s} {'bound':>9s} {'seconds':>8s}")
    rows = []
    for p, cm, seed in jobs:
        c = experiments.certify_protection(p, scale=args.scale, seed=seed, countermeasure=cm,
                                           data_root=args.data_root, cache=not args.no_cache,
                                           **settings)
        bound = "abstain" if c["abstain"] else f"{c['bound']:.2%}"
        print(f"{p:40s} {c['accuracy']:9.2%} {c['mean']:9.2%} {bound:>9s} "
              f"{c['seconds']:8.0f}{' (cached)' if c['cached'] else ''}")
        rows.append(c)
    return rows


def cmd_fit(args):
    """Fit FUSE on a class-balanced subset of a dataset, with every process torchrun started."""
    from dataclasses import fields

    from . import data
    from .protections.fuse import FuseConfig, fit_distributed

    settings = {f.name: getattr(args, f.name) for f in fields(FuseConfig)}
    FuseConfig(**settings).check()  # bad settings fail before the data is read
    _check_output_file(args.out, "--out")
    if args.checkpoint:
        _check_output_file(args.checkpoint, "--checkpoint")
    x, y = data.load(args.dataset, "train", args.data_root)
    x, y = data.subset(x, y, args.images, settings["seed"])
    fit_distributed(x, y, args.out, checkpoint=args.checkpoint, device=args.device,
                    report_sync=args.report_sync, **settings)


def cmd_results(args):
    """Write RESULTS.md and the README's generated blocks from the shipped records."""
    from .experiments import report

    changed = report.write(check=args.check)
    if args.check:
        if changed:
            raise RuntimeError(f"out of date: {', '.join(map(str, changed))} (run: make results)")
        print("RESULTS.md and the README's generated blocks are up to date")
    else:
        print("wrote " + (", ".join(map(str, changed)) if changed else "nothing (up to date)"))


def cmd_protect(args):
    """Protect an ImageFolder tree with FUSE (see fuselib.protect)."""
    from .protect import DEFAULT_TRAINING, protect_folder

    training = {"--epochs": args.epochs, "--portion": args.portion,
                "--batch-size": args.batch_size, "--seed": args.seed, "--device": args.device,
                "--save-protection": args.save_protection}
    if args.checkpoint:
        given = [flag for flag, v in training.items() if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply when training on the spot; "
                             f"--checkpoint {args.checkpoint} is already trained: drop them")
        settings = {}
    else:
        settings = {k: v if v is not None else DEFAULT_TRAINING[k] for k, v in
                    {"epochs": args.epochs, "portion": args.portion,
                     "batch_size": args.batch_size}.items()}
    t0 = time.perf_counter()
    try:
        s = protect_folder(args.input, args.output, checkpoint=args.checkpoint, size=args.size,
                           seed=args.seed, device=args.device,
                           save_protection=args.save_protection, resume=args.resume,
                           overwrite=args.overwrite, force=args.force,
                           **({"max_pixels": args.max_pixels} if args.max_pixels else {}),
                           **settings)
    except KeyboardInterrupt as e:
        print(f"fuselib: {e.args[0] if e.args else 'interrupted'}", file=sys.stderr)
        raise SystemExit(130) from None
    for w in s["warnings"]:
        print(f"fuselib: warning: {w}", file=sys.stderr)
    if args.save_protection:
        print(f"saved the FUSE protection to {args.save_protection} (reuse with --checkpoint; "
              "keep it private: it holds the class patterns)")
    kept = f" (kept {s['resumed']} from the earlier run)" if s["resumed"] else ""
    quality = (f"max |δ| {s['max_abs_delta']}/255, min PSNR {s['min_psnr_db']:.1f} dB"
               if s["min_psnr_db"] is not None else "no image written")
    print(f"wrote {s['written']} protected PNGs{kept} to {args.output} ({quality}; patterns "
          f"{s['size'][0]}x{s['size'][1]}) in {time.perf_counter() - t0:.0f} s; manifest "
          f"{s['manifest']}")
    if s["skipped"]:
        print(f"skipped {s['skipped']} file(s): see the manifest's status column",
              file=sys.stderr)


def _one_run_flags(p, scale: dict, seed: dict, no_cache: dict) -> None:
    """The flags of a command that trains one classifier (evaluate, evaluate-folder)."""
    p.add_argument("--scale", **scale)
    p.add_argument("--seed", **seed)
    p.add_argument("--epochs", type=_count(), default=None,
                   help="training epochs (default: the scale's for the trainer)")
    p.add_argument("--no-cache", **no_cache)
    p.add_argument("--json", action="store_true", help="print the full result as JSON")


def _parse_bool(text: str) -> bool:
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def _fit_fuse_parser(p):
    from dataclasses import fields

    from .protections.fuse import FuseConfig

    p.add_argument("--out", required=True, help="where rank 0 writes the fitted protection")
    p.add_argument("--dataset", default="cifar10", help="dataset to fit on (default cifar10)")
    p.add_argument("--images", type=_count(), default=None,
                   help="training images, a class-balanced subset (default: all)")
    p.add_argument("--checkpoint", default=None, help="resume from / write to this file")
    p.add_argument("--device", default=None,
                   help="default: one GPU per process by its local rank, else the CPU")
    p.add_argument("--report-sync", action="store_true",
                   help="each rank prints a hash of its generator (a DDP sanity check)")
    for f in fields(FuseConfig):
        kind = _parse_bool if f.type in ("bool", bool) else type(f.default)
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default,
                       help=f"(default {f.default:.6g})" if isinstance(f.default, float)
                       else f"(default {f.default})")
    p.set_defaults(func=cmd_fit)


def main(argv=None):
    from . import data, models
    from .experiments import plans
    from .version import __version__

    ap = argparse.ArgumentParser(prog="fuselib", description=DESCRIPTION, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action="version", version=f"fuselib {__version__}")
    ap.add_argument("--data-root", default=None,
                    help="dataset root (default: $FUSELIB_DATA, else see fuselib.data)")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    # flags shared by the commands that train
    scale = dict(default="ci", choices=list(SCALES),
                 help="how much data and training: " + ", ".join(SCALES) + " (default ci; smoke "
                      "takes seconds, ci 1-2 minutes a run on 2 CPU cores)")
    trainer = dict(default="fast", choices=list(RECIPES),
                   help="the classifier's recipe: fast (a small fastnet, CPU-friendly; default), "
                        "standard (the papers' ResNet-18 recipe) or vit (AdamW, warm-up, cosine)")
    seed = dict(type=_seed, default=0,
                help="seed of the classifier's training and of the protection's fit (default 0)")
    no_cache = dict(action="store_true",
                    help="recompute even if cached, and write nothing to the results cache")

    p = sub.add_parser("info", help="versions, data integrity, registered methods")
    p.add_argument("--dataset", default="cifar10", help="dataset to check (default cifar10)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("demo", help="the quick end-to-end check")
    p.add_argument("--scale", **scale)
    p.add_argument("--trainer", **trainer)
    p.add_argument("--seed", **seed)
    p.add_argument("--no-cache", **no_cache)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("evaluate", help="train on (protected, countermeasured) data, test clean")
    p.add_argument("--protection", default="none",
                   help="protection spec applied to the training data, e.g. fuse, em:sample, "
                        "random:eps=0.02 (default none: clean data)")
    p.add_argument("--countermeasure", default="none",
                   help="countermeasure spec the attacker applies, e.g. lowpass:0.25, jpeg:10, "
                        "jpeg:10+lowpass:0.25 (default none)")
    p.add_argument("--arch", default=None, choices=models.names(),
                   help="classifier architecture (default: the trainer's, fastnet for fast)")
    p.add_argument("--trainer", **trainer)
    one_run = dict(scale=scale, seed=seed, no_cache=no_cache)
    _one_run_flags(p, **one_run)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("evaluate-folder",
                       help="train on an image folder (e.g. fuselib protect's output), test on "
                            "a clean test set")
    p.add_argument("folder", help="ImageFolder tree FOLDER/<class>/<images>; its class names "
                                  "must be the test set's")
    p.add_argument("--test", default="imagenette", choices=["imagenette"],
                   help="the dataset whose clean test split is the test (default imagenette)")
    p.add_argument("--size", type=_count(8), default=64,
                   help="train and test at this many pixels square (default 64)")
    p.add_argument("--countermeasure", default="none",
                   help="filter the attacker applies to the folder's images, e.g. lowpass:0.25 "
                        "(default none)")
    _one_run_flags(p, **one_run)
    p.set_defaults(func=cmd_evaluate_folder)

    p = sub.add_parser("protect-proof",
                       help="protect Imagenette's train split with fuselib protect, then train "
                            "on it and on the clean copy (clean val accuracy)")
    p.add_argument("--workdir", default="results/cache/protect_proof",
                   help="where the resized copy, the protected folder and the protection go "
                        "(reused when there)")
    p.add_argument("--size", type=_count(8), default=64,
                   help="the resolution the images are published and trained at (default 64)")
    p.add_argument("--scale", **scale)
    p.add_argument("--seed", **seed)
    p.add_argument("--epochs", type=_count(), default=None,
                   help="FUSE fit epochs for protect (default protect's: 10 up to 32 px, 20 "
                        "above); rows are labelled fuse:epochs=N unless N is 10")
    p.add_argument("--cached-only", action="store_true",
                   help="print what is recorded, compute nothing")
    p.set_defaults(func=cmd_protect_proof, no_cache=False)

    p = sub.add_parser("export-data",
                       help="write a protection's protected training set as files (png, npy, "
                            "pt or CIFAR-style pickle), as fuselib's runs train on it")
    p.add_argument("protection", help="protection spec, e.g. ar, fuse, em:mode=sample")
    p.add_argument("dir", help="a new (or empty) folder to write")
    p.add_argument("--scale", required=True, choices=list(SCALES),
                   help="whose training subset: " + ", ".join(SCALES))
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the training subset and of the protection's fit (default 0)")
    p.add_argument("--dataset", default="cifar10",
                   help="the dataset protected (default cifar10)")
    from . import poisons
    from .poisons import FORMATS
    p.add_argument("--format", default="npy", choices=list(FORMATS),
                   help="png: DIR/<class>/<index>.png; npy: images.npy (N,H,W,3) uint8 + "
                        "labels.npy; pt: data.pt {images (N,3,H,W), labels}; pickle: CIFAR's "
                        "data_batch_1 + batches.meta (default npy)")
    p.add_argument("--clean", action="store_true",
                   help="also write the clean training set, the same way, to DIR-clean")
    p.add_argument("--no-cache", action="store_true",
                   help="fit the protection even if its fit is cached, and keep nothing")
    p.set_defaults(func=cmd_export_data)

    p = sub.add_parser("audit",
                       help="check anyone's unlearnable data (a PNG folder, .npy, .pt or CIFAR "
                            "pickle), then train on it after each countermeasure")
    p.add_argument("poisoned", help="the poisoned training set: a folder of class folders, a "
                                    "folder with images.npy + labels.npy or data.pt or "
                                    "data_batch_* files, or one .npy, .pt or pickle file")
    p.add_argument("--labels", default=None,
                   help="a labels file for arrays without their own (.npy, .txt one integer "
                        "a line, or .csv)")
    p.add_argument("--clean", default=None,
                   help="the clean reference (the same images in the same order, any format): "
                        "per-image distances, the images over --eps, the spectral profile")
    p.add_argument("--test", default="cifar10", choices=data.names(),
                   help="whose clean test split the classifier is tested on (default cifar10)")
    p.add_argument("--plan", default=None,
                   help="the countermeasures: quick (none, lowpass:0.25, jpeg:10; the "
                        "default), suite (the whole countermeasure suite) or a plan's name "
                        "(fuselib grid --plan)")
    p.add_argument("--countermeasures", nargs="+", default=None,
                   help="countermeasure specs instead of a plan, e.g. lowpass:0.25 jpeg:10")
    p.add_argument("--scale", **{**scale, "default": "cpu",
                                 "help": "the trainer's recipe and test subset: "
                                         + ", ".join(SCALES) + " (default cpu)"})
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the classifier's training and of the test subset (default 0)")
    p.add_argument("--eps", type=_budget, default=8 / 255,
                   help="the L-inf budget images are checked against, e.g. 8/255 (default) "
                        "or 0.03")
    p.add_argument("--out", default=None,
                   help="the report's folder (default results/audits/<digest12>); an earlier "
                        "audit there is replaced if it holds only its own files, unchanged")
    p.add_argument("--epochs", type=_count(), default=None,
                   help="training epochs (default: the scale's)")
    p.add_argument("--max-gb", type=_positive_float, default=4.0,
                   help="the most memory the data may take once decoded, in GiB, checked from "
                        "the files' headers before reading (default 4)")
    p.add_argument("--max-pixels", type=_count(), default=poisons.MAX_PIXELS,
                   help=f"the most pixels of one image (default {poisons.MAX_PIXELS:,})")
    p.add_argument("--reference", default="train", choices=["train", "records", "off"],
                   help="clean data beside each accuracy: the test set's own training images, "
                        "as many, under the same countermeasure and trainer — train: read the "
                        "shipped records and train what is missing (default); records: only "
                        "read them; off: none")
    p.add_argument("--no-cache", **no_cache)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("detect",
                       help="is this data unlearnable? linear and two-layer training accuracy "
                            "against clean data of the same size, and a score per image")
    p.add_argument("data", nargs="?", default=None,
                   help="the data: any format audit reads (a folder of class folders, "
                        "images.npy + labels.npy, data.pt, data_batch_*), or a protection spec "
                        "whose protected training set at --scale is scored")
    p.add_argument("--labels", default=None, help="a labels file for arrays without their own")
    p.add_argument("--scale", **{**scale, "default": "cpu",
                                 "help": "a protection spec's training subset: "
                                         + ", ".join(SCALES) + " (default cpu)"})
    p.add_argument("--dataset", default="cifar10",
                   help="the dataset a protection spec protects (default cifar10)")
    p.add_argument("--seed", type=_seed, default=0,
                   help="seed of the detection models (and of a protection's fit; default 0)")
    p.add_argument("--out", default=None,
                   help="a folder for detect.md, per_image.csv (a score per image) and "
                        "detect.json")
    p.add_argument("--calibrate", action="store_true",
                   help="re-measure clean data's scores (CIFAR-10 and Imagenette subsets) and "
                        "rewrite fuselib/experiments/detect_calibration.py")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("grid", help="protections x countermeasures (or a named plan) -> "
                                    "accuracy table")
    p.add_argument("protections", nargs="*", help="protection specs, e.g. none em tap:steps=10")
    p.add_argument("--countermeasures", nargs="+", default=None,
                   help="countermeasure specs, or 'all' for the whole suite (default: none)")
    p.add_argument("--plan", default=None, choices=plans.names(),
                   help="run (or with --cached-only, print) a named plan of "
                        "fuselib.experiments.plans")
    p.add_argument("--list", action="store_true", help="with --plan: list its runs, run nothing")
    p.add_argument("--trainer", default=None, choices=list(RECIPES),
                   help="the classifier's recipe: fast, standard (the papers' ResNet-18 recipe) "
                        "or vit (default: the plan's trainer, else fast)")
    p.add_argument("--scale", **scale)
    p.add_argument("--seeds", type=_seed, nargs="+", default=None,
                   help="classifier and fit seeds (default 0; a plan's own seeds)")
    p.add_argument("--archs", nargs="+", default=None, choices=models.names(),
                   help="the classifier architectures, each a run (default: the trainer's "
                        "network; not with --plan, whose blocks name theirs)")
    p.add_argument("--no-cache", **no_cache)
    p.add_argument("--recompute", action="store_true",
                   help="ignore the records shipped in results/measured (the cache still counts)")
    p.add_argument("--export", action="store_true",
                   help="copy each run to results/measured as soon as it ends (fuselib export "
                        "--scale S after every run): a long queue that stops keeps what it did")
    p.add_argument("--cached-only", action="store_true",
                   help="train nothing: the table of the runs already measured (cache and "
                        "shipped records)")
    p.add_argument("--worker", default=None, metavar="I/N",
                   help="run only worker I's share of N: start N of these side by side (e.g. "
                        "--worker 1/2 and --worker 2/2 --threads 1 on 2 cores); each fit and "
                        "the runs that use it go to one worker; --cached-only then reads the "
                        "whole table")
    p.add_argument("--threads", type=_count(), default=None,
                   help="CPU threads for this process (default torch's: every core)")
    p.add_argument("--markdown", action="store_true",
                   help="print the table as Markdown (final accuracy, peak in brackets if higher)")
    p.add_argument("--csv", default=None,
                   help="also write the tidy table (one row a run) to this CSV file")
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("export", help="copy cached run records of a scale to results/measured")
    p.add_argument("--scale", default="cpu", choices=list(SCALES),
                   help="the scale whose records are copied (default cpu)")
    p.add_argument("--dest", default=None, help="default: results/measured in this checkout")
    p.add_argument("--fits", nargs="*", default=["fuse"],
                   help="protections whose fitted state is copied too (default: fuse)")
    p.add_argument("--fits-only", action="store_true",
                   help="copy only those fits, no run records (runs then train on them)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("profile", help="spectral energy profile of protections' perturbations")
    p.add_argument("protections", nargs="+", help="protection specs, e.g. random lsp fuse")
    p.add_argument("--scale", **scale)
    p.add_argument("--seed", type=_seed, default=0, help="seed of the protection's fit (default 0)")
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("verify", help="recompute shipped records from scratch and compare")
    p.add_argument("--scale", default="cpu", choices=list(SCALES),
                   help="the scale of the shipped records (default cpu)")
    p.add_argument("--sample", type=_count(), default=3,
                   help="how many records, drawn at random (default 3)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the random draw")
    p.add_argument("--keys", nargs="*", default=None, help="verify these record keys instead")
    p.add_argument("--tolerance", type=_nonnegative, default=None,
                   help="largest accepted accuracy difference (default 0.005 = 0.5 points); "
                        "with --fits, mean grey-level difference (default 0.5 of 255)")
    p.add_argument("--fits", nargs="*", default=None,
                   help="refit the shipped fitted protections instead (all, or these names) "
                        "and compare the protected images")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("certify", help="certified learnability bound of protected training data")
    p.add_argument("protections", nargs="*", help="protection specs")
    p.add_argument("--plan", default=None, choices=[n for n in plans.names()
                                                    if plans.get(n).kind == "certify"],
                   help="certify a named plan (its protections and settings)")
    p.add_argument("--countermeasure", default="none",
                   help="countermeasure spec the classifier is trained under (default none)")
    p.add_argument("--scale", **scale)
    p.add_argument("--seed", **seed)
    p.add_argument("--sigma", type=_certify_setting("sigma"), default=0.01,
                   help="weight-noise std, > 0 (default 0.01)")
    p.add_argument("--n-samples", type=_certify_setting("n_samples", int), default=100,
                   help="weight draws, >= 1 (default 100)")
    p.add_argument("--n-eval", type=_certify_setting("n_eval", int), default=None,
                   help="certify on the first N test images (default all; each draw evaluates "
                        "them)")
    p.add_argument("--alpha", type=_certify_setting("alpha"), default=0.01,
                   help="1 - confidence, in (0, 1) (default 0.01)")
    p.add_argument("--q", type=_certify_setting("q"), default=0.7,
                   help="accuracy quantile, in (0, 1) (default 0.7)")
    p.add_argument("--eta", type=_certify_setting("eta"), default=0.0,
                   help="certified weight radius, >= 0 (default 0)")
    p.add_argument("--no-cache", **no_cache)
    p.set_defaults(func=cmd_certify)

    p = sub.add_parser("protect", help="protect an image folder (class = sub-folder) with FUSE")
    from .protect import DEFAULT_TRAINING
    p.add_argument("input", help="ImageFolder tree: INPUT/<class>/<images> (never written to)")
    p.add_argument("output", help="an empty (or new) folder for the protected PNG tree and "
                                  "manifest.csv")
    p.add_argument("--checkpoint", default=None,
                   help="a saved fuse protection to apply (else one is trained on the spot; "
                        "the training flags below are then an error)")
    p.add_argument("--size", "--train-size", dest="size", type=int, default=None,
                   help="working size S: the resolution the images will be used at; class "
                        "patterns are S×S, tiled over larger photos (default 64 when training, "
                        "the checkpoint's otherwise)")
    p.add_argument("--resume", action="store_true",
                   help="finish an earlier run into OUTPUT: keep the files its manifest lists "
                        "whose source and output hashes still match, write the rest")
    p.add_argument("--overwrite", action="store_true",
                   help="remove what an earlier run wrote into OUTPUT (per its manifest) first")
    p.add_argument("--force", action="store_true",
                   help="protect a folder of one class (one pattern for every image)")
    p.add_argument("--max-pixels", type=_count(), default=None,
                   help="images of more pixels are skipped before decoding, listed in the "
                        "manifest (default 100,000,000: a 100 MP photo)")
    p.add_argument("--save-protection", default=None,
                   help="training: save the trained protection here right after training "
                        "(outside INPUT and OUTPUT; keep it private)")
    p.add_argument("--epochs", type=int, default=None,
                   help="training: FUSE epochs (default by the working size: 10 up to 32 px, "
                        "20 above)")
    p.add_argument("--portion", type=float, default=None,
                   help="training: share of the images the generator trains on, in (0, 1] "
                        f"(default {DEFAULT_TRAINING['portion']})")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"training: batch size (default {DEFAULT_TRAINING['batch_size']})")
    p.add_argument("--seed", type=_seed, default=None, help="training: random seed (default 0)")
    p.add_argument("--device", default=None,
                   help="training: cpu, cuda, cuda:1, mps (default: a GPU when there is one)")
    p.set_defaults(func=cmd_protect)

    p = sub.add_parser("fit", help="fit FUSE (also under torchrun: one share of every batch a "
                                   "process) and save the protection")
    fit = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    _fit_fuse_parser(fit.add_parser("fuse", help="FUSE; every FuseConfig field is a flag"))

    p = sub.add_parser("results", help="write RESULTS.md and the README's generated blocks "
                                       "from results/measured")
    p.add_argument("--check", action="store_true",
                   help="write nothing; fail when a generated file is out of date")
    p.set_defaults(func=cmd_results)

    args = ap.parse_args(argv)
    # a bad argument, path or setting: one line and exit code 2; FUSELIB_DEBUG=1 re-raises
    debug = os.environ.get("FUSELIB_DEBUG", "0") not in ("", "0")
    warnings.formatwarning = _short_warning
    try:
        args.func(args)
    except USER_ERRORS as e:
        if debug:
            raise
        return _report(e)
    finally:
        warnings.formatwarning = _FORMAT_WARNING
    return 0


if __name__ == "__main__":
    sys.exit(main())
