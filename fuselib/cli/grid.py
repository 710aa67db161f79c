"""Many runs at once: protections × countermeasures or a named plan (``grid``), shipped as records (``export``)."""
from __future__ import annotations

import os

import torch

from .. import models
from ..experiments import plans
from ..experiments import SCALES
from ..train import RECIPES
from .common import whole_number, seed_number, check_specs, check_cache, check_output_file


def _print_share(plan, args, worker):
    """Which of a plan's fits (and so runs) worker ``(i, n)`` makes."""
    shares = [plan.share(args.scale, (j, worker[1]), args.seeds, data_root=args.data_root)
              for j in range(1, worker[1] + 1)]
    mine = shares[worker[0] - 1]
    print(f"worker {worker[0]} of {worker[1]}: {len(mine)} of the {sum(map(len, shares))} fits"
          + (f" of seeds {args.seeds}" if args.seeds else "")
          + ", with every run that uses them: " + ", ".join(f"{p} seed {s}" for p, s in mine))


def _print_queue(queue, worker):
    """Each run's state (measured; part-trained, running or stopped, which resumes from its
    last checkpointed epoch; to run) in the order they are made, and what the rest costs at
    the measured runs' mean time."""
    print("runs, in the order " + (f"worker {worker[0]} makes them" if worker else "they run")
          + ":")
    done = [q for q in queue if q["record"] is not None]
    left = 0.0  # runs still to train, a stopped one counted by its epochs to go
    for q in queue:
        what = f"  seed {q['seed']}  {q['protection']:<12} {q['countermeasure']:<16}" + (
            f" {q['arch']:<11}" if q["arch"] else "") + (
            f" ratio {q['poison_ratio']:g}" if q["poison_ratio"] != 1.0 else "")
        r = q["record"]
        if r is not None:
            print(f"{what} measured {r['accuracy']:.2%}"
                  + (f" (peak {r['peak_accuracy']:.2%})" if r["peak_accuracy"] > r["accuracy"]
                     else "") + f", {r['seconds'] / 3600:.2f} h")
        elif q["epoch"] is not None:
            left += 1 - q["epoch"] / q["epochs"]
            print(f"{what} part-trained: epoch {q['epoch']} of {q['epochs']} checkpointed")
        else:
            left += 1
            print(f"{what} to run" + (" (its fit stopped midway: resumes there)"
                                      if q["fit"] == "partial" else ""))
    stopped = sum(q["epoch"] is not None for q in queue)
    line = (f"{len(done)} measured, {stopped} part-trained, "
            f"{len(queue) - len(done) - stopped} to run")
    if done and left:
        mean = sum(q["record"]["seconds"] for q in done) / len(done)
        line += (f"; at the measured runs' mean ({mean / 3600:.2f} h, over {len(done)}), about "
                 f"{left * mean / 3600:.1f} h of compute left" + ("" if worker else
                                                                 ", shared by the workers"))
    elif left:
        line += "; no run measured yet to estimate the cost from: time one first"
    print(line)


def cmd_grid(args):
    """Every protection × countermeasure (or a named plan), one table of clean test accuracy."""
    from .. import countermeasures, experiments
    from ..experiments import sweeps

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
        from ..experiments.store import shipped_dir, writable_dir

        # the shipped records: results/measured, or the folder FUSELIB_MEASURED names
        dest = writable_dir(os.environ.get("FUSELIB_MEASURED") or shipped_dir(),
                            "--export: the shipped records folder")

        def ship(r):  # every run trained here is shipped as soon as it ends
            if not r["cached"]:
                experiments.export(args.scale, dest)
                print(f"  shipped {r['key']} ({r['accuracy']:.2%}) to {dest}", flush=True)

        common["on_run"] = ship
    if args.csv:
        check_output_file(args.csv, "--csv")
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
            _print_queue(plan.queue(args.scale, seeds=args.seeds, worker=worker, **common),
                         worker)
            return
        if not args.cached_only:
            check_cache(args)
        df = plan.run(args.scale, seeds=args.seeds, cached_only=args.cached_only,
                      worker=worker, **common)
        rows, cols, labels = plan.rows, plan.cols, (plan.labels.get(plan.rows),
                                                   plan.labels.get(plan.cols))
        row_order, col_order = plan.order(rows, args.scale), plan.order(cols, args.scale)
    else:
        if not args.protections:
            raise ValueError("name the protections to run, or a plan with --plan NAME")
        common.setdefault("trainer", "fast")
        cms = args.countermeasures or ["none"]
        cms = "all" if cms == ["all"] else cms
        check_specs(args.protections, [] if cms == "all" else cms)
        if not args.cached_only:
            check_cache(args)
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
        from ..utils import atomic_write

        with atomic_write(args.csv) as tmp:
            df.to_csv(tmp, index=False)
        print(f"wrote {args.csv}")


def cmd_export(args):
    """Copy the cached run records of a scale (and its FUSE generator) to results/measured."""
    from .. import experiments

    if args.dest:
        experiments.store.writable_dir(args.dest, f"--dest {args.dest}")
    files = experiments.export(args.scale, args.dest, fits=tuple(args.fits),
                               runs=not args.fits_only)
    print(f"wrote {len(files)} files" + (f" to {files[0].parent}" if files else ""))


def add(sub, f) -> None:
    """Register this module's commands on ``sub``; ``f``: the shared flags."""
    scale, no_cache = f.scale, f.no_cache
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
    p.add_argument("--seeds", type=seed_number, nargs="+", default=None,
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
    p.add_argument("--threads", type=whole_number(), default=None,
                   help="CPU threads for this process (default torch's: every core)")
    p.add_argument("--markdown", action="store_true",
                   help="print the table as Markdown (final accuracy, peak in brackets if higher)")
    p.add_argument("--csv", default=None,
                   help="also write the tidy table (one row a run) to this CSV file")
    p.set_defaults(func=cmd_grid)

    p = sub.add_parser("export", help="copy cached run records of a scale to results/measured")
    p.add_argument("--scale", default="cpu", choices=list(SCALES),
                   help="the scale whose records are copied (default cpu, the scale the measurement "
                        "queues run at; the training commands default to the cheaper ci)")
    p.add_argument("--dest", default=None, help="default: results/measured in this checkout")
    p.add_argument("--fits", nargs="*", default=["fuse"],
                   help="protections whose fitted state is copied too (default: fuse)")
    p.add_argument("--fits-only", action="store_true",
                   help="copy only those fits, no run records (runs then train on them)")
    p.set_defaults(func=cmd_export)
