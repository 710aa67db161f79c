"""Audit anyone's unlearnable data, and export a protection's data the way researchers share it.

    fuselib export-data ar shared/ar --scale smoke --format png --clean   # + shared/ar-clean
    fuselib audit shared/ar --clean shared/ar-clean --scale smoke

:func:`export_data` writes the protected training set of a registered protection exactly as
:func:`.runner.protected_data` gives it (same subset, same order) in one of
:data:`fuselib.poisons.FORMATS`, with a ``fuselib.json`` saying what it is.

An audit takes a poisoned training set in any of those formats (:mod:`fuselib.poisons`):

1. :func:`prepare` reads it and checks it before any work — shape, dtype, NaN, value range,
   labels (count, integer, range) against the test set's classes — and, given the clean
   reference (same images in the same order), measures every image's L∞ and L2 distance to it:
   images over the ``eps`` budget are counted and listed, never refused;
2. :func:`run` trains the project's evaluator on it after each countermeasure — the ``fast``
   trainer with the scale's recipe, tested on the scale's class-balanced subset of the clean
   test split (the subset seed is the run seed), exactly as :func:`.runner.run` trains — so a
   protection exported and audited gives its run's accuracy to the last digit; each result is
   cached (``audits/<key>.json`` in the results cache, keyed by a digest of the decoded data, as
   :mod:`.folders` does), and, with the clean reference, the spectral energy profile of
   ``poisoned − clean`` (radial DCT thirds, as :func:`.runner.spectral_profile`);
3. :func:`write` puts the report (``audit.md``, ``accuracy.csv``, ``distances.csv``,
   ``audit.json`` and, given a drawing function, ``accuracy.png``) into a folder, atomically.
   ``audit.json`` lists the report's files with their SHA-256: a later audit replaces the
   folder only when it holds those files, unchanged, and nothing else (:func:`check_out`);
   a folder that is, holds or lies inside the data audited is refused. One process at a time
   writes a report folder or an export (:func:`.utils.output_lock`).
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import countermeasures as _countermeasures, data, poisons, spectral
from ..train import get_recipe
from ..utils import file_sha256, output_lock, write_json
from ..version import __version__
from .folders import FOLDER_RECIPE, cached_record, digest, folder_config, train_record
from . import names
from .runner import protected_data, run as run_one
from .scales import SCALES, build_config, check_scale, describe, recipe_overrides
from .store import writable_dir

# the default set: no filter, the headline's low-pass, and JPEG (every filter paper tries first)
QUICK = ("none", "lowpass:0.25", "jpeg:10")
PROFILE_BANDS = (0, 1 / 3, 2 / 3, 1)
PROFILE_IMAGES = 5000      # the perturbations a spectral profile is measured on, at most
REPORT = "audit.json"      # an audit's report; its "outputs" lists the folder's files by hash
REFERENCES = ("train", "records", "off")  # what stands beside each cell (:func:`clean_reference`)


# --------------------------------------------------------------------------- export
def clean_path(dest) -> Path:
    """Where ``export_data(..., clean=True)`` writes the clean reference: ``DEST-clean``."""
    dest = Path(dest)
    return dest.with_name(dest.name + "-clean")


def export_data(protection, dest, scale: str, seed: int = 0, dataset: str = "cifar10",
                fmt: str = "npy", clean: bool = False, data_root=None, cache: bool = True) -> dict:
    """Write ``protection``'s protected training set (and with ``clean`` the clean one, beside
    it in ``DEST-clean``) in ``fmt``, as :func:`.runner.protected_data` gives it. ``dest`` must
    be new or empty and writable (checked before any work); both folders appear whole or not
    at all, and one process at a time writes them (:func:`.utils.output_lock`)."""
    if fmt not in poisons.FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(poisons.FORMATS)}")
    targets = [poisons.check_new(dest)] + ([poisons.check_new(clean_path(dest))] if clean else [])
    for target in targets:
        writable_dir(Path(os.path.abspath(target)).parent, f"the folder of {target}")
    check_scale(scale)
    with contextlib.ExitStack() as locks:
        for target in targets:
            locks.enter_context(output_lock(target, "export folder"))
        for target in targets:
            poisons.check_new(target)  # again, under the lock
        return _export(protection, targets, scale, seed, dataset, fmt, clean, data_root, cache)


def _export(protection, targets, scale, seed, dataset, fmt, clean, data_root, cache) -> dict:
    config, prot, _ = build_config(protection, scale=scale, seed=seed, dataset=dataset,
                                   data_root=data_root)
    classes = data.classes(dataset, data_root)
    x, px, y = protected_data(protection, scale, seed, dataset, data_root=data_root, cache=cache)
    spec = protection if isinstance(protection, str) else prot.name
    meta = {"fuselib": __version__, "protection": spec, "config": describe(prot),
            "scale": scale, "seed": int(seed), "dataset": config["data"],
            "n_train": int(y.shape[0]), "format": fmt, "classes": list(classes),
            "digest": digest(px, y), "clean": targets[1].name if clean else None,
            "made_by": f"fuselib export-data {spec} --scale {scale} --seed {seed} "
                       f"--dataset {dataset} --format {fmt}"}
    sets = [(px, meta)]
    if clean:
        sets.append((x, {**meta, "protection": "none", "clean_of": spec, "digest": digest(x, y),
                         "clean": None}))
    staged = []
    try:
        for (images, m), target in zip(sets, targets):
            staged.append(poisons.stage(images, y, target, fmt, classes, m))
    except BaseException:
        for tmp in staged:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    for tmp, target in zip(staged, targets):
        poisons.commit(tmp, target)
    return {"path": targets[0], "clean": targets[1] if clean else None, "n": int(y.shape[0]),
            "format": fmt, "digest": meta["digest"]}


# --------------------------------------------------------------------------- checking
def countermeasure_list(plan: str = "quick", countermeasures=None, scale: str = "cpu") -> list:
    """The countermeasures an audit runs: those given, else a plan's — ``quick``
    (:data:`QUICK`), ``suite`` (the whole countermeasure suite) or any plan of
    :mod:`.plans` (its countermeasures at ``scale``). ``none`` (no filter) always comes first."""
    if countermeasures:
        specs = list(countermeasures)
    elif plan == "quick":
        specs = list(QUICK)
    elif plan == "suite":
        specs = list(_countermeasures.SUITE)
    else:
        from . import plans

        p = plans.get(plan)
        specs = p.countermeasures(scale) or [c for b in p.blocks.get("*", ())
                                             for c in b.countermeasures]
    return list(dict.fromkeys(["none", *specs]))


@dataclass
class Audit:
    """An audit's inputs, read and checked (:func:`prepare`); nothing trained yet."""
    path: Path
    images: torch.Tensor            # uint8 (N, 3, H, W)
    labels: torch.Tensor            # int64 (N,)
    format: str
    digest: str
    test: str                       # the test set's name at the images' size
    countermeasures: list
    scale: str
    seed: int
    eps: float
    out: Path
    warnings: list = field(default_factory=list)
    clean_path: Path | None = None
    clean: torch.Tensor | None = None
    distance: dict | None = None    # summary (see distances)
    per_image: dict | None = None   # {"linf": levels, "l2": floats}
    epochs: int | None = None
    recipe: dict | None = None
    data_root: object = None
    inputs: tuple = ()              # the data's paths: --out may not be, hold or be inside one
    reference: str = "train"        # clean data beside each cell: "train", "records" or "off"


def prepare(poisoned, labels=None, clean=None, test: str = "cifar10", plan: str = "quick",
            countermeasures=None, scale: str = "cpu", seed: int = 0, eps: float = 8 / 255,
            out=None, epochs: int | None = None, recipe: dict | None = None,
            data_root=None, limits: poisons.Limits | None = None,
            reference: str = "train") -> Audit:
    """Read ``poisoned`` (and ``clean``), check everything an audit needs — the data, the labels
    against ``test``'s classes, the clean reference's size and count, the countermeasures, the
    output folder — and measure the distances to the clean reference. Raises one line naming
    every problem; trains nothing. ``limits`` (:class:`.poisons.Limits`) bounds what is read:
    declared sizes are checked before anything is allocated. ``reference``: what stands beside
    each accuracy — clean data of the test set's training split, as many images, under the same
    countermeasure, scale and trainer (:func:`clean_reference`): ``"train"`` reads the records
    and trains what is missing, ``"records"`` only reads them, ``"off"`` leaves it out."""
    check_scale(scale)
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {', '.join(REFERENCES)}, got {reference!r}")
    if not 0 < float(eps) <= 1:
        raise ValueError(f"eps must be in (0, 1] (8/255 = {8 / 255:.4f}), got {eps}")
    specs = countermeasure_list(plan, countermeasures, scale)
    for spec in specs:
        _countermeasures.get(spec)  # a bad spec fails now, naming it
    test_classes = data.classes(test, data_root)  # fails now, naming it, when the data is absent
    limits = limits or poisons.Limits()
    images, y, raw, warnings = poisons.load(poisoned, labels, test_classes, limits=limits)
    h, w = images.shape[-2:]
    if h != w:
        raise poisons.PoisonError(f"{poisoned}: images of {h}×{w}; the test sets are square")
    base, _ = data.parse_name(test)
    test_name = base if data.parse_name(f"{base}:{h}")[1] is None else f"{base}:{h}"
    limits.size(f"the test set {test_name}", data.count(base, "test", data_root) * 3 * h * w,
                "at the images' size")
    data.info(test_name, data_root)  # every file of the test set verified now
    a = Audit(Path(poisoned), images, y, raw.format, digest(images, y), test_name, specs, scale,
              int(seed), float(eps), Path("."), warnings, epochs=epochs, recipe=recipe,
              data_root=data_root, inputs=(poisoned, labels, clean), reference=reference)
    if clean is not None:
        limits.size(clean, images.numel(), "for the clean reference (as large as the data)")
        cx, cy, _, cwarn = poisons.load(clean, None, test_classes, need_labels=False,
                                        limits=limits)
        if cx.shape != images.shape:
            raise poisons.PoisonError(
                f"the clean reference {clean} holds {cx.shape[0]} images of "
                f"{cx.shape[-2]}×{cx.shape[-1]}, the poisoned data {images.shape[0]} of "
                f"{h}×{w}: it must hold the same images, in the same order")
        a.warnings += [f"clean reference: {w_}" for w_ in cwarn]
        if cy is not None and not torch.equal(cy, y):
            a.warnings.append(f"{int((cy != y).sum())} label(s) differ from the clean "
                              "reference's")
        a.clean_path, a.clean = Path(clean), cx
        a.distance, a.per_image = distances(images, cx, eps)
        if a.distance["share_over"] > 0.5:
            a.warnings.append(f"{a.distance['n_over']} of {images.shape[0]} images are over "
                              f"the budget (mean L-inf {a.distance['linf_mean']:.1f}/255): is "
                              f"{clean} the clean originals of these images, in the same "
                              "order?")
    a.out = check_out(out if out is not None else Path("results") / "audits" / a.digest[:12],
                      a.inputs)
    return a


def check_out(out, inputs=()) -> Path:
    """``out`` may receive a report: a new or empty folder, or an earlier audit's folder that
    holds only the files its ``audit.json`` lists, each with the SHA-256 listed (it is
    replaced). Anything else there (a user's files, an older report that does not list its
    files, a listed file changed since) is refused, as is an ``out`` that is, holds or lies
    inside one of the ``inputs`` (the data audited). Returns ``out`` as an absolute path."""
    out = Path(os.path.abspath(out))
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file; give a folder")
    for given in inputs:
        if given is None:
            continue
        data_path = Path(given).resolve()
        real = out.resolve()
        if real == data_path or data_path in real.parents or real in data_path.parents:
            raise ValueError(f"--out {out} is, holds or lies inside the data audited "
                             f"({given}); give a folder apart from it")
    if out.is_dir() and any(out.iterdir()):
        report_files(out)
    writable_dir(out.parent, f"the folder of --out {out}")
    return out


def report_files(out: Path) -> dict:
    """``{name: sha256}`` of an earlier audit's folder ``out``, its ``audit.json`` included,
    after checking that the folder holds these files and nothing else, unchanged; a
    ``FileExistsError`` naming what is not provably the audit's otherwise."""
    present = sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                     if p.is_file() or p.is_symlink() or (p.is_dir() and not any(p.iterdir())))
    try:
        listed = json.loads((out / REPORT).read_text(encoding="utf-8")).get("outputs")
    except (OSError, ValueError, AttributeError):
        listed = None
    if not isinstance(listed, dict):
        shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
        raise FileExistsError(f"--out {out} is not empty ({shown}) and holds no audit report "
                              "that lists its files; give a new or empty folder")
    foreign = [n for n in present if n != REPORT and n not in listed]
    changed = [n for n in present if n in listed and ((out / n).is_symlink()
                                                      or file_sha256(out / n) != listed[n])]
    if foreign or changed:
        bad = foreign or changed
        shown = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
        raise FileExistsError(f"--out {out} holds files the earlier audit did not write, or "
                              f"changed since ({shown}); give a new or empty folder")
    return {**{n: listed[n] for n in present if n in listed}, REPORT: None}


def distances(poisoned: torch.Tensor, clean: torch.Tensor, eps: float, chunk: int = 4096):
    """``(summary, per_image)``: each image's L∞ distance in grey levels (of 255) and L2
    distance (images in [0, 1]) to its clean reference, and the images whose L∞ distance is
    over the budget ``round(eps·255)`` (the budget protections enforce after rounding)."""
    linf, l2 = [], []
    for i in range(0, poisoned.shape[0], chunk):
        d = poisoned[i:i + chunk].to(torch.int16) - clean[i:i + chunk].to(torch.int16)
        linf.append(d.abs().flatten(1).amax(1))
        l2.append((d.float() / 255).flatten(1).norm(dim=1))
    linf, l2 = torch.cat(linf), torch.cat(l2)
    budget = int(round(eps * 255))
    over = (linf > budget).nonzero().flatten().tolist()
    n = linf.shape[0]
    summary = {"budget_levels": budget, "linf_max": int(linf.max()),
               "linf_mean": float(linf.float().mean()), "l2_max": float(l2.max()),
               "l2_mean": float(l2.mean()), "n_over": len(over), "share_over": len(over) / n,
               "over": over}
    return summary, {"linf": linf.tolist(), "l2": l2.tolist()}


# --------------------------------------------------------------------------- evaluation
def audit_config(train_digest: str, n: int, test_key: str, n_test, cm, recipe, seed: int,
                 scale: str) -> dict:
    """An audit record's config: a folder run's (:func:`.folders.folder_config`), tested on a
    subset of ``n_test`` clean test images."""
    return {**folder_config(train_digest, n, test_key, cm, recipe, seed, scale),
            "kind": "audit", "n_test": n_test}


def evaluate(images, labels, countermeasure="none", test: str = "cifar10", scale: str = "cpu",
             seed: int = 0, epochs: int | None = None, recipe: dict | None = None,
             train_digest: str | None = None, cache: bool = True, device=None, progress=None,
             data_root=None, test_data=None) -> dict:
    """Clean test accuracy of the ``fast`` trainer at ``scale``'s recipe trained on
    ``countermeasure(images, labels)``: :func:`.runner.run`'s training, on these arrays, tested
    on ``test``'s clean test split at ``scale``'s ``n_test`` subset (subset seed ``seed``).
    Cached under ``audits/`` by a digest of the data; ``early_stop`` reads the unfiltered run
    at its best epoch, as the runner does. ``test_data``: a function returning the test
    arrays (loaded once for many calls)."""
    cm = _countermeasures.get(countermeasure) if isinstance(countermeasure, str) else countermeasure
    common = dict(test=test, scale=scale, seed=seed, epochs=epochs, recipe=recipe,
                  train_digest=train_digest, cache=cache, device=device, progress=progress,
                  data_root=data_root, test_data=test_data)
    if cm.uses_peak:
        base = evaluate(images, labels, "none", **common)
        return {**base, "accuracy": base["peak_accuracy"], "final_accuracy": base["accuracy"],
                "config": {**base["config"], "countermeasure": describe(cm)}}
    # photos (Imagenette) train with a random resized crop, as the imagenette plan does
    photos = dict(FOLDER_RECIPE) if data.parse_name(test)[0] == "imagenette" else {}
    r = get_recipe("fast", **recipe_overrides(scale, "fast", None, epochs,
                                              {**photos, **cm.recipe, **(recipe or {})}))
    n_test = SCALES[scale]["n_test"]
    config = audit_config(train_digest or digest(images, labels), labels.shape[0],
                          data.info(test, data_root).key, n_test, cm, r, seed, scale)
    hit = cached_record(config, "audits") if cache else None
    if hit is not None:
        return hit
    t0 = time.perf_counter()
    xte, yte = test_data() if test_data is not None else test_split(test, n_test, seed, data_root)
    return train_record(images, labels, xte, yte, cm, r, config, "audits", cache, device,
                        progress, t0=t0)


def clean_reference(a: Audit, countermeasure: str, cache: bool = True, device=None,
                    progress=None) -> dict | None:
    """Clean data's run under ``countermeasure`` at the audit's scale, trainer and seed, on as
    many training images as the audit holds (the scale's own number when the test set's
    training split has fewer): the same config as :func:`.runner.run`'s, so a shipped record
    answers where one exists. None when ``a.reference`` is ``"records"`` and none is measured,
    or ``"off"``."""
    if a.reference == "off":
        return None
    photos = dict(FOLDER_RECIPE) if data.parse_name(a.test)[0] == "imagenette" else {}
    n = int(a.images.shape[0])
    n_train = n if n <= data.count(data.parse_name(a.test)[0], "train", a.data_root) else None
    return run_one("none", countermeasure, scale=a.scale, seed=a.seed, dataset=a.test,
                   epochs=a.epochs, n_train=n_train, data_root=a.data_root,
                   recipe={**photos, **(a.recipe or {})} or None, cache=cache, device=device,
                   progress=progress, cached_only=a.reference == "records")


def test_split(test: str, n_test, seed: int, data_root=None):
    """The clean test images a run at this scale and seed tests on (:func:`.runner.run`'s)."""
    xte, yte = data.load(test, "test", data_root)
    return data.subset(xte, yte, n_test, seed)


def detection(a: Audit) -> dict:
    """The shortcut check of :mod:`.detect` on the audited data — training accuracy of a
    linear and a two-layer model against clean data of the same size, no clean reference
    needed — without its per-image tensors (``fuselib detect --out`` writes those)."""
    from .detect import detect

    return {k: v for k, v in detect(a.images, a.labels, a.seed).items()
            if not isinstance(v, torch.Tensor)}


def run(a: Audit, cache: bool = True, device=None, progress=None, on_row=None,
        detect: bool = False) -> dict:
    """Train on the audited data after each countermeasure; the report (a plain dict).
    ``on_row(row)`` is called as each countermeasure's result arrives; ``detect`` adds
    :func:`detection`'s section (seconds to a minute on 2 cores)."""
    memo = {}

    def test_data():
        if "xy" not in memo:
            memo["xy"] = test_split(a.test, SCALES[a.scale]["n_test"], a.seed, a.data_root)
        return memo["xy"]

    rows = []
    for spec in a.countermeasures:
        rec = evaluate(a.images, a.labels, spec, a.test, a.scale, a.seed, a.epochs, a.recipe,
                       a.digest, cache, device, progress, a.data_root, test_data)
        row = {"countermeasure": spec, "accuracy": rec["accuracy"],
               "peak_accuracy": rec["peak_accuracy"], "peak_epoch": rec["peak_epoch"],
               "cached": rec["cached"], "seconds": rec["seconds"], "key": rec["key"]}
        ref = clean_reference(a, spec, cache, device, progress)
        row.update(clean_accuracy=None if ref is None else ref["accuracy"],
                   clean_key=None if ref is None else ref["key"],
                   clean_shipped=None if ref is None else bool(ref.get("measured")))
        rows.append(row)
        if on_row is not None:
            on_row(row)
    profile = None
    if a.clean is not None:
        k = min(PROFILE_IMAGES, a.images.shape[0])
        delta = (a.images[:k].float() - a.clean[:k].float()) / 255
        profile = {"bands": list(PROFILE_BANDS), "basis": "dct", "images": k,
                   "fractions": spectral.band_shares(delta, PROFILE_BANDS),
                   "white_noise": spectral.coefficient_shares(tuple(a.images.shape[-2:]),
                                                                  PROFILE_BANDS)}
    n_classes = len(data.classes(a.test, a.data_root))
    return {"fuselib": __version__, "path": str(a.path), "format": a.format, "digest": a.digest,
            "n": int(a.images.shape[0]), "image_shape": list(a.images.shape[1:]),
            "label_counts": torch.bincount(a.labels, minlength=n_classes).tolist(),
            "test": data.info(a.test, a.data_root).key, "n_test": SCALES[a.scale]["n_test"],
            "scale": a.scale, "seed": a.seed, "eps": a.eps, "chance": 1 / n_classes,
            "warnings": list(a.warnings), "clean": str(a.clean_path) if a.clean_path else None,
            "distance": a.distance, "profile": profile, "rows": rows,
            "detection": detection(a) if detect else None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S")}


def audit(poisoned, labels=None, clean=None, test: str = "cifar10", plan: str = "quick",
          countermeasures=None, scale: str = "cpu", seed: int = 0, eps: float = 8 / 255,
          out=None, epochs=None, recipe=None, data_root=None, cache: bool = True, device=None,
          progress=None, figure=None, write_report: bool = True,
          limits: poisons.Limits | None = None, detect: bool = False) -> dict:
    """:func:`prepare`, :func:`run` and (unless ``write_report=False``) :func:`write` in one
    call; the report, with ``out`` the folder it went to."""
    a = prepare(poisoned, labels, clean, test, plan, countermeasures, scale, seed, eps, out,
                epochs, recipe, data_root, limits)
    with output_lock(a.out, "--out") if write_report else contextlib.nullcontext():
        report = run(a, cache, device, progress, detect=detect)
        if write_report:
            report["out"] = str(write(report, a.out, a.per_image, figure, a.inputs))
    return report


# --------------------------------------------------------------------------- the report
def percent(x) -> str:
    return f"{100 * x:.2f}%"


def markdown(report: dict, max_listed: int = 50) -> str:
    """The report as Markdown: the data, its checks, its distance to the clean reference (the
    images over the budget counted and listed), its spectral profile, and the accuracies."""
    c, h, w = report["image_shape"]
    counts = report["label_counts"]
    lines = [f"# Audit of {report['path']}", "",
             f"{report['n']} images of {h}×{w} ({report['format']}, digest "
             f"{report['digest']}), {sum(1 for k in counts if k)} classes, {min(counts)} to "
             f"{max(counts)} images a class. Tested on {report['test']} "
             f"({report['n_test'] or 'all'} clean test images), the fast trainer at scale "
             f"`{report['scale']}`, seed {report['seed']}; fuselib {report['fuselib']}.", "",
             "## Checks", ""]
    lines += [f"- warning: {w_}" for w_ in report["warnings"]] or ["- no problems found"]
    d = report["distance"]
    if d is not None:
        eps = f"{d['budget_levels']}/255"
        listed = ", ".join(map(str, d["over"][:max_listed]))
        more = f", … ({d['n_over'] - max_listed} more)" if d["n_over"] > max_listed else ""
        lines += ["", f"## Distance to the clean reference ({report['clean']})", "",
                  "| max L∞ | mean L∞ | max L2 | mean L2 | images over the L∞ budget "
                  f"{eps} |", "| --- | --- | --- | --- | --- |",
                  f"| {d['linf_max']}/255 | {d['linf_mean']:.2f}/255 | {d['l2_max']:.3f} | "
                  f"{d['l2_mean']:.3f} | {d['n_over']} of {report['n']} "
                  f"({percent(d['share_over'])}) |", "",
                  (f"Over the budget (index in the data's order): {listed}{more}; every "
                   "image's distances are in `distances.csv`." if d["n_over"] else
                   f"Every image is within {eps}.")]
    p = report["profile"]
    if p is not None:
        bands = ["low (r < 1/3)", "mid", "high (r ≥ 2/3)"] if len(p["fractions"]) == 3 else [
            f"{lo:.2f}-{hi:.2f}" for lo, hi in zip(p["bands"][:-1], p["bands"][1:])]
        lines += ["", "## Where the perturbation's energy is", "",
                  f"Energy of poisoned − clean over {p['images']} images, orthonormal DCT, "
                  "radial frequency r in [0, 1]; white noise spreads it like the coefficients.",
                  "", "| band | perturbation | white noise |", "| --- | --- | --- |"]
        lines += [f"| {n} | {percent(f)} | {percent(s)} |"
                  for n, f, s in zip(bands, p["fractions"], p["white_noise"])]
    if report.get("detection"):
        from .detect import markdown as detection_markdown

        lines += ["", detection_markdown(report["detection"], report["path"]).rstrip()]
    lines += ["", "## Clean test accuracy after each countermeasure", "",
              f"Chance: {percent(report['chance'])}. `early_stop` is the unfiltered run at "
              "its best epoch. Clean data: the test set's own training images, as many, "
              "under the same countermeasure, scale and trainer; the gap is how far below it "
              "the audited data ends (0: the countermeasure restores everything).", "",
              "| countermeasure | accuracy | clean data | gap | peak | peak epoch |",
              "| --- | --- | --- | --- | --- | --- |"]
    for r in report["rows"]:
        clean = r.get("clean_accuracy")
        ref = ("not measured", "") if clean is None else (
            percent(clean), f"{100 * (clean - r['accuracy']):.2f} points")
        lines.append(f"| {names.countermeasure(r['countermeasure'])} | "
                     f"{percent(r['accuracy'])} | {ref[0]} | {ref[1]} | "
                     f"{percent(r['peak_accuracy'])} | {r['peak_epoch']} |")
    return "\n".join(lines) + "\n"


ROW_COLUMNS = ["countermeasure", "accuracy", "peak_accuracy", "peak_epoch", "cached", "seconds",
               "key", "clean_accuracy", "clean_key", "clean_shipped"]


def write(report: dict, out, per_image: dict | None = None, figure=None,
          inputs=()) -> Path:
    """The report into the folder ``out``: ``audit.md``, ``accuracy.csv`` (with the budget's
    count on every row when there is a clean reference), ``distances.csv`` (one row an image),
    ``accuracy.png`` when ``figure(report, path)`` draws it, and ``audit.json``, which lists
    every other file with its SHA-256 (``outputs``). Written to a temporary folder, then
    renamed over ``out``; an earlier audit there is replaced, and of its folder only the files
    it listed, unchanged, are removed (:func:`check_out`)."""
    out = check_out(out, inputs)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp", dir=out.parent))
    try:
        d = report["distance"]
        extra = {} if d is None else {"images_over_budget": d["n_over"],
                                      "budget": f"{d['budget_levels']}/255"}
        with open(tmp / "accuracy.csv", "w", newline="") as f:
            wr = csv.DictWriter(f, fieldnames=ROW_COLUMNS + list(extra))
            wr.writeheader()
            wr.writerows({**r, **extra} for r in report["rows"])
        if per_image is not None:
            budget = d["budget_levels"]
            with open(tmp / "distances.csv", "w", newline="") as f:
                wr = csv.writer(f)
                wr.writerow(["index", "linf_levels", "l2", "over_budget"])
                wr.writerows([i, a, f"{b:.6f}", int(a > budget)]
                             for i, (a, b) in enumerate(zip(per_image["linf"], per_image["l2"])))
        (tmp / "audit.md").write_text(markdown(report))
        if figure is not None:
            figure(report, tmp / "accuracy.png")
        outputs = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        write_json(tmp / REPORT, {**report, "outputs": outputs})
        _replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _replace(tmp: Path, out: Path) -> None:
    """Rename the folder ``tmp`` to ``out``; an earlier audit at ``out`` (checked again) is
    moved aside and only its listed files are removed: a file that appeared there meanwhile
    stays, in the folder moved aside, which is then named. An empty ``out``, and one that is or
    holds the working directory, stays itself (renaming the folder a shell stands in would
    leave that shell in a deleted folder): the earlier audit's listed files are removed from it
    and the new ones moved in."""
    if not out.exists():
        tmp.rename(out)
        return
    here = Path.cwd().resolve()
    if not any(out.iterdir()) or out.resolve() in (here, *here.parents):
        for name in sorted(report_files(out) if any(out.iterdir()) else (),
                           key=lambda n: n == REPORT):  # the list goes last
            (out / name).unlink(missing_ok=True)
        for f in sorted(tmp.iterdir(), key=lambda f: f.name != REPORT):  # and comes first,
            f.rename(out / f.name)  # so a folder left half-filled is still provably ours
        return
    ours = report_files(out)
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old", dir=out.parent))
    old.rmdir()
    out.rename(old)
    tmp.rename(out)
    for name in ours:
        (old / name).unlink(missing_ok=True)
    for d in sorted((p for p in old.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            d.rmdir()
    try:
        old.rmdir()
    except OSError:
        raise FileExistsError(f"the new report is in {out}; files that appeared in the old "
                              f"one while the audit ran are kept in {old}") from None


__all__ = ["Audit", "QUICK", "audit", "audit_config", "check_out", "clean_path",
           "countermeasure_list", "distances", "evaluate", "export_data",
           "markdown", "prepare", "run", "test_split", "write"]
