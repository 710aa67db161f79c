"""One classifier trained and tested: on a registered protection's data (``evaluate``), on an image folder (``evaluate-folder``), on protect's output for Imagenette against its clean copy (``protect-proof``)."""
from __future__ import annotations

import json
from pathlib import Path

from .. import models
from .common import whole_number, check_specs, check_cache, one_run_flags


def cmd_evaluate(args):
    from .. import experiments

    check_specs([args.protection], [args.countermeasure])
    check_cache(args)
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
    from ..experiments.folders import evaluate_folder

    check_specs([], [args.countermeasure])
    check_cache(args)
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


def cmd_protect_proof(args):
    """``fuselib protect`` on Imagenette's train split, then evaluate-folder on it and on the
    clean copy (fuselib.experiments.folders.protect_proof)."""
    from ..experiments.folders import protect_proof

    if not args.cached_only:
        check_cache(args)
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


def add(sub, f) -> None:
    """Register this module's commands on ``sub``; ``f``: the shared flags."""
    scale, trainer, seed, no_cache = f.scale, f.trainer, f.seed, f.no_cache
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
    one_run_flags(p, **one_run)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("evaluate-folder",
                       help="train on an image folder (e.g. fuselib protect's output), test on "
                            "a clean test set")
    p.add_argument("folder", help="ImageFolder tree FOLDER/<class>/<images>; its class names "
                                  "must be the test set's")
    p.add_argument("--test", default="imagenette", choices=["imagenette"],
                   help="the dataset whose clean test split is the test (default imagenette)")
    p.add_argument("--size", type=whole_number(8), default=64,
                   help="train and test at this many pixels square (default 64)")
    p.add_argument("--countermeasure", default="none",
                   help="filter the attacker applies to the folder's images, e.g. lowpass:0.25 "
                        "(default none)")
    one_run_flags(p, **one_run, folder=True)
    p.set_defaults(func=cmd_evaluate_folder)

    p = sub.add_parser("protect-proof",
                       help="protect Imagenette's train split with fuselib protect, then train "
                            "on it and on the clean copy (clean val accuracy)")
    p.add_argument("--workdir", default="results/cache/protect_proof",
                   help="where the resized copy, the protected folder and the protection go "
                        "(reused when there)")
    p.add_argument("--size", type=whole_number(8), default=64,
                   help="the resolution the images are published and trained at (default 64)")
    p.add_argument("--scale", **scale)
    p.add_argument("--seed", **seed)
    p.add_argument("--epochs", type=whole_number(), default=None,
                   help="FUSE fit epochs for protect (default protect's: 10 up to 32 px, 20 "
                        "above); rows are labelled fuse:epochs=N unless N is 10")
    p.add_argument("--cached-only", action="store_true",
                   help="print what is recorded, compute nothing")
    p.set_defaults(func=cmd_protect_proof, no_cache=False)
