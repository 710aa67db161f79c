"""``fuselib fit fuse``: FUSE fitted and saved, also under torchrun (one share of every batch a process)."""
from __future__ import annotations

from .common import budget, whole_number, check_output_file, parse_bool


def _fit_fuse_parser(p):
    from dataclasses import fields

    from ..protections.fuse import FIELD_HELP, FuseConfig

    p.add_argument("--out", required=True, help="where rank 0 writes the fitted protection")
    p.add_argument("--dataset", default="cifar10", help="dataset to fit on (default cifar10)")
    p.add_argument("--images", type=whole_number(), default=None,
                   help="training images, a class-balanced subset (default: all)")
    p.add_argument("--checkpoint", default=None, help="resume from / write to this file")
    p.add_argument("--device", default=None,
                   help="default: one GPU per process by its local rank, else the CPU")
    p.add_argument("--report-sync", action="store_true",
                   help="each rank prints a hash of its generator (a DDP sanity check)")
    for f in fields(FuseConfig):
        kind = parse_bool if f.type in ("bool", bool) else type(f.default)
        shown = f"{f.default:g}" if isinstance(f.default, float) else str(f.default)
        if f.name == "eps":
            kind, shown = budget, "8/255"
        p.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=f.default,
                       help=f"{FIELD_HELP[f.name]} (default {shown})")
    p.set_defaults(func=cmd_fit)


def cmd_fit(args):
    """Fit FUSE on a class-balanced subset of a dataset, with every process torchrun started."""
    from dataclasses import fields

    from .. import data
    from ..protections.fuse import FuseConfig, fit_distributed

    settings = {f.name: getattr(args, f.name) for f in fields(FuseConfig)}
    FuseConfig(**settings).check()  # bad settings fail before the data is read
    check_output_file(args.out, "--out")
    if args.checkpoint:
        check_output_file(args.checkpoint, "--checkpoint")
    x, y = data.load(args.dataset, "train", args.data_root)
    x, y = data.subset(x, y, args.images, settings["seed"])
    fit_distributed(x, y, args.out, checkpoint=args.checkpoint, device=args.device,
                    report_sync=args.report_sync, **settings)


def add(sub, f) -> None:
    """Register this module's commands on ``sub``; ``f``: the shared flags."""
    p = sub.add_parser("fit", help="fit FUSE (also under torchrun: one share of every batch a "
                                   "process) and save the protection")
    fit = p.add_subparsers(dest="method", required=True, metavar="METHOD")
    _fit_fuse_parser(fit.add_parser("fuse", help="FUSE; every FuseConfig field is a flag"))
