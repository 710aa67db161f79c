"""Anyone's unlearnable data: written as researchers share it (``export-data``), audited against every countermeasure (``audit``), screened for shortcuts (``detect``)."""
from __future__ import annotations

import sys

from .. import data
from ..experiments import SCALES
from .common import whole_number, seed_number, positive_number, budget, check_specs, check_cache


def cmd_export_data(args):
    """A registered protection's protected training set, written as researchers share it."""
    from ..experiments.audit import export_data

    check_specs([args.protection])
    check_cache(args)
    r = export_data(args.protection, args.dir, scale=args.scale, seed=args.seed,
                    dataset=args.dataset, fmt=args.format, clean=args.clean,
                    data_root=args.data_root, cache=not args.no_cache)
    print(f"wrote {r['n']} images protected by {args.protection} ({args.dataset}, scale "
          f"{args.scale}, seed {args.seed}) as {r['format']} to {r['path']} (digest "
          f"{r['digest']})" + (f"; the clean reference to {r['clean']}" if r["clean"] else ""))


def cmd_audit(args):
    """Check anyone's unlearnable data, then train on it after each countermeasure."""
    from .. import plots, poisons
    from ..experiments import audit
    from ..utils import output_lock

    if args.plan and args.countermeasures:
        raise ValueError("give --plan or --countermeasures, not both")
    check_cache(args)
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
        report = audit.run(a, cache=not args.no_cache, on_row=row, detect=args.detect)
        if report["detection"]:
            flagged = report["detection"]["flagged"]
            print(f"detection: {'FLAGGED, a shortcut is fitted' if flagged else 'not flagged'}"
                  " (as fuselib detect; see audit.md)")
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
    from ..experiments import detect

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


def add(sub, f) -> None:
    """Register this module's commands on ``sub``; ``f``: the shared flags."""
    scale, no_cache = f.scale, f.no_cache
    p = sub.add_parser("export-data",
                       help="write a protection's protected training set as files (png, npy, "
                            "pt or CIFAR-style pickle), as fuselib's runs train on it")
    p.add_argument("protection", help="protection spec, e.g. ar, fuse, em:mode=sample")
    p.add_argument("dir", help="a new (or empty) folder to write")
    p.add_argument("--scale", required=True, choices=list(SCALES),
                   help="whose training subset: " + ", ".join(SCALES) + " (no default: the "
                        "scale decides which and how many images are written)")
    p.add_argument("--seed", type=seed_number, default=0,
                   help="seed of the training subset and of the protection's fit (default 0)")
    p.add_argument("--dataset", default="cifar10",
                   help="the dataset protected (default cifar10)")
    from .. import poisons
    from ..poisons import FORMATS
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
                                         + ", ".join(SCALES) + " (default cpu, not the "
                                         "training commands' ci: a verdict on someone's data "
                                         "needs the classifier the shipped records use)"})
    p.add_argument("--seed", type=seed_number, default=0,
                   help="seed of the classifier's training and of the test subset (default 0)")
    p.add_argument("--eps", type=budget, default=8 / 255,
                   help="the L-inf budget images are checked against, e.g. 8/255 (default) "
                        "or 0.03")
    p.add_argument("--out", default=None,
                   help="the report's folder (default results/audits/<digest12>); an earlier "
                        "audit there is replaced if it holds only its own files, unchanged")
    p.add_argument("--epochs", type=whole_number(), default=None,
                   help="training epochs (default: the scale's)")
    p.add_argument("--max-gb", type=positive_number, default=4.0,
                   help="the most memory the data may take once decoded, in GiB, checked from "
                        "the files' headers before reading (default 4)")
    p.add_argument("--max-pixels", type=whole_number(), default=poisons.MAX_PIXELS,
                   help=f"the most pixels of one image (default {poisons.MAX_PIXELS:,})")
    p.add_argument("--detect", action="store_true",
                   help="also check the data for shortcuts as fuselib detect does (a linear and a "
                        "two-layer model's training accuracy against clean data of the same "
                        "size; seconds to a minute), a section of the report")
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
                                         + ", ".join(SCALES) + " (default cpu: the 10,000 "
                                         "images the detector's zoo table was measured on)"})
    p.add_argument("--dataset", default="cifar10",
                   help="the dataset a protection spec protects (default cifar10)")
    p.add_argument("--seed", type=seed_number, default=0,
                   help="seed of the detection models (and of a protection's fit; default 0)")
    p.add_argument("--out", default=None,
                   help="a folder for detect.md, per_image.csv (a score per image) and "
                        "detect.json")
    p.add_argument("--calibrate", action="store_true",
                   help="re-measure clean data's scores (CIFAR-10 and Imagenette subsets) and "
                        "rewrite fuselib/experiments/detect_calibration.py")
    p.set_defaults(func=cmd_detect)
