"""Train on a folder of images, test on clean data: the check a data owner runs after
``fuselib protect``, and the attacker's view of anyone's protected folder.

    fuselib protect ../shared/data/imagenette/train out/ --size 64
    fuselib evaluate-folder out/ --test imagenette --size 64                    # protected
    fuselib evaluate-folder out/ --test imagenette --size 64 --countermeasure lowpass:0.25
    fuselib evaluate-folder ../shared/data/imagenette/train --test imagenette --size 64  # clean

The folder (an ImageFolder tree, ``DIR/<class>/<images>``, as ``fuselib protect`` writes it) is
read and resized to ``size`` (antialiased), the attacker's ``countermeasure`` is applied, and
the ``fast`` trainer trains from scratch with the ImageNet-style augmentation (random resized
crop of area share in [0.35, 1] and a flip, no translation: :data:`FOLDER_RECIPE`), then
tests on the clean test split of ``test`` at the same size. The folder's class names must be
the test set's (the same sorted order gives the same labels).

A result is cached like a run (``folders/<key>.json`` in the results cache, then in the shipped
records), keyed by the hash of a config that holds a digest of the folder's decoded images and
labels (not its path: a rewritten folder is a new run; the same images anywhere are the same
run), the test data's key, the countermeasure, the recipe and the seed.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import torch

from .. import countermeasures, data
from ..train import Recipe, get_recipe, train
from ..utils import MAX_BYTES, TooLarge, default_device
from ..version import __version__
from .scales import describe, recipe_config, recipe_overrides
from .store import as_json, config_key, lookup, read_record, stamp, write_record

# the augmentation of ImageNet-style training, for photos: random resized crop + flip
FOLDER_RECIPE = {"translate": 0, "crop_scale": 0.35}


def digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """A short SHA-256 of decoded uint8 images and their labels (what a run trains on)."""
    h = hashlib.sha256()
    h.update(str((tuple(images.shape), tuple(labels.shape))).encode())
    h.update(images.contiguous().numpy().tobytes())
    h.update(labels.contiguous().numpy().tobytes())
    return h.hexdigest()[:20]


def folder_config(train_digest: str, n_images: int, test_key: str, countermeasure, recipe: Recipe,
                  seed: int, scale: str) -> dict:
    return {"fuselib": __version__, "kind": "folder", "train": {"digest": train_digest,
                                                                "n": int(n_images)},
            "test": test_key, "countermeasure": describe(countermeasure), "trainer": "fast",
            "recipe": recipe_config(recipe), "scale": scale, "seed": int(seed)}


def check_folder_size(folder, size: int, test: str, data_root=None,
                      limit: int = MAX_BYTES) -> None:
    """The images under ``folder`` and the test split of ``test``, resized to
    ``size``×``size`` (uint8 RGB, each set held at once), fit in ``limit`` bytes; counted from
    the file names (:func:`.data.count`), before any image is read."""
    n = sum(1 for f in Path(folder).rglob("*")
            if f.suffix.lower() in data.IMAGE_EXTENSIONS and f.is_file())
    m = data.count(test, "test", data_root)
    need = (n + m) * 3 * size * size
    if need > limit:
        raise TooLarge(f"{folder}: {n} training and {m} test images at --size {size} take "
                       f"{need / 2**30:,.1f} GiB held at once, above {limit / 2**30:,.0f} GiB; "
                       "give a smaller --size")


def evaluate_folder(train_dir, test: str = "imagenette", size: int = 64,
                    countermeasure="none", seed: int = 0, scale: str = "cpu",
                    epochs: int | None = None, recipe: dict | None = None, cache: bool = True,
                    device=None, progress=None, data_root=None, label: str | None = None) -> dict:
    """Train the ``fast`` recipe (the ``scale``'s preset plus :data:`FOLDER_RECIPE` and
    ``recipe``) on the images under ``train_dir`` at ``size`` px after ``countermeasure``, and
    test on the clean test split of the dataset ``test`` at the same size; a cached record.
    ``label`` names the training folder in the record (not in its key)."""
    cm = countermeasures.get(countermeasure) if isinstance(countermeasure, str) else countermeasure
    if cm.recipe or cm.uses_peak:
        raise ValueError(f"countermeasure {cm.name!r} is a training-time defence; evaluate-folder "
                         "takes data filters (lowpass, jpeg, ...) only")
    test_name = f"{test}:{size}"
    classes = data.classes(test, data_root)  # fails early, naming the dataset, when it is absent
    check_folder_size(train_dir, size, test, data_root)
    folder = data.load_folder(train_dir, size=size)
    if folder.classes != list(classes):
        raise ValueError(f"{train_dir}: class folders {folder.classes[:3]}... are not the classes "
                         f"of {test} ({list(classes)[:3]}...), in the same order")
    over = {**recipe_overrides(scale, "fast", None, epochs, {}), **FOLDER_RECIPE,
            **(recipe or {})}
    r = get_recipe("fast", **over)
    config = folder_config(digest(folder.images, folder.labels), len(folder.labels),
                           data.info(test_name, data_root).key, cm, r, seed, scale)
    hit = cached_record(config) if cache else None
    if hit is not None:
        return hit

    t0 = time.perf_counter()
    xte, yte = data.load(test_name, "test", data_root)
    return train_record(folder.images, folder.labels, xte, yte, cm, r, config, cache=cache,
                        device=device, progress=progress, t0=t0,
                        extra={"train_folder": str(Path(train_dir)), "label": label,
                               "skipped_files": len(folder.errors)})


def cached_record(config: dict, where: str = "folders", measured: bool = True) -> dict | None:
    """The record of ``config`` under ``where/`` in the results cache, then in the shipped
    records (``cached: True``), or None."""
    key = config_key(config)
    want = as_json(config)
    for place in lookup(f"{where}/{key}.json", measured):
        hit = read_record(place, key)
        if hit is not None and hit["config"] == want:
            return {**hit, "cached": True}
    return None


def train_record(images, labels, test_images, test_labels, countermeasure, recipe: Recipe,
                 config: dict, where: str = "folders", cache: bool = True, device=None,
                 progress=None, extra: dict | None = None, t0: float | None = None) -> dict:
    """Train ``recipe`` from scratch (seed ``config["seed"]``) on ``countermeasure(images,
    labels)``, test on the clean test arrays, and keep the record of ``config`` under ``where/``
    in the results cache: what :func:`evaluate_folder` and the audit of shared data
    (:mod:`.audit`) both train with. ``extra`` fields go into the record (not its key)."""
    t0 = time.perf_counter() if t0 is None else t0
    seen = countermeasure(images, labels)
    out = train(seen, labels, test_images, test_labels, recipe, seed=config["seed"],
                device=device or default_device(), progress=progress,
                defences=countermeasures.defences(recipe))
    out.pop("model")
    for k in ("resumed_from_epoch", "seconds_before_resume"):
        out.pop(k)
    key = config_key(config)
    result = {"key": key, "config": config, **out, **(extra or {}), **stamp(t0, device)}
    if cache:
        write_record(f"{where}/{key}.json", result)
    return {**result, "cached": False}


def cached_folder_runs(measured: bool = True) -> list:
    """Every folder record in the cache and the shipped records (newest first per key)."""
    import json

    seen, out = set(), []
    for base in lookup("folders", measured):
        if not base.is_dir():
            continue
        for f in sorted(base.glob("*.json")):
            if f.stem in seen:
                continue
            try:
                rec = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            seen.add(f.stem)
            out.append(rec)
    return out


def resized_copy(src, dst, size: int) -> Path:
    """An ImageFolder tree ``src`` copied to ``dst`` with every readable image resized to
    ``size``×``size`` (antialiased) and written as PNG: what a data owner publishes when the
    images will be used at that size (``fuselib protect`` then works at their own resolution).
    Written to a temporary folder and renamed; an existing ``dst`` is kept as it is."""
    import shutil

    from PIL import Image

    dst = Path(dst)
    if dst.is_dir():
        return dst
    folder = data.load_folder(src, size=size)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for img, rel in zip(folder.images, folder.paths):
        target = tmp / rel.with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(target, format="PNG")
    tmp.rename(dst)
    return dst


PROOF_COUNTERMEASURES = ("none", "lowpass:0.25")


def protect_proof(workdir, scale: str = "cpu", size: int = 64, seed: int = 0,
                  countermeasures=PROOF_COUNTERMEASURES, data_root=None, cached_only=False,
                  progress=None, **fuse_settings):
    """``fuselib protect`` on Imagenette's train split, as a user runs it, and what a classifier
    learns from the result: one row per (training folder, countermeasure).

    1. the train split resized to ``size`` px (:func:`resized_copy`: the size it is used at);
    2. ``fuselib protect`` on that folder at ``size`` (FUSE trained on the spot, ``seed``);
    3. :func:`evaluate_folder` on the clean copy and on the protected one, each after every
       countermeasure, testing on the clean val split at ``size``.

    ``fuse_settings`` (e.g. ``epochs=20``) change protect's fit (default: protect's, epochs by
    :func:`fuselib.protect.default_epochs`); the protected folder, the protection and the
    records' label name what differs from :data:`PROOF_FIT` (label ``fuse:epochs=20``; plain
    ``fuse`` is a 10-epoch fit). ``workdir`` keeps the folders and the protections (reused
    when there); the records go to the results cache like every run.
    ``cached_only``: every row already recorded (clean and each fit's label), nothing computed."""
    import pandas as pd

    from ..protect import default_epochs, protect_folder

    rows = []
    if cached_only:
        for rec in cached_folder_runs():
            c = rec["config"]
            label = rec.get("label") or ""
            if ((label == "clean" or label.split(":")[0] == "fuse") and c.get("scale") == scale
                    and c["seed"] == seed and c["test"].startswith(f"imagenette:{size}/")):
                rows.append(_row(rec))
        return pd.DataFrame(rows, columns=ROW_COLUMNS)
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    root = data.info("imagenette", data_root).path
    small = resized_copy(root / "train", work / f"imagenette{size}", size)
    fuse_settings = {"epochs": default_epochs(size), **fuse_settings}  # protect's default fit
    fit = proof_label(fuse_settings)
    tag = fit.replace("fuse", "", 1).replace(":", "_").replace("=", "").replace(",", "_")
    prot = work / f"imagenette{size}_fuse{tag}_seed{seed}"
    if not (prot / "manifest.csv").is_file():
        protect_folder(small, prot, size=size, seed=seed, progress=progress,
                       save_protection=work / f"fuse{size}{tag}_seed{seed}.pt",
                       overwrite=prot.is_dir(), **fuse_settings)
    for cm in countermeasures:  # unfiltered first: the main comparison, should a run stop
        for label, folder in (("clean", small), (fit, prot)):
            rec = evaluate_folder(folder, "imagenette", size, cm, seed, scale, label=label,
                                  data_root=data_root, progress=progress)
            rows.append(_row(rec))
    return pd.DataFrame(rows, columns=ROW_COLUMNS)


# the fit of the proof's plain ``fuse`` rows (protect's default when they were first recorded, the
# CIFAR-10 one); a proof with other settings labels its rows with the difference
PROOF_FIT = {"epochs": 10}


def proof_label(fuse_settings: dict) -> str:
    """``fuse``, or ``fuse:epochs=20`` for a fit whose settings differ from :data:`PROOF_FIT`."""
    diff = {k: v for k, v in sorted(fuse_settings.items()) if PROOF_FIT.get(k, object()) != v}
    return "fuse" + (":" + ",".join(f"{k}={v}" for k, v in diff.items()) if diff else "")


ROW_COLUMNS = ["label", "countermeasure", "seed", "accuracy", "peak_accuracy", "peak_epoch",
               "n_train", "test", "seconds", "created", "host", "key"]


def _row(rec: dict) -> dict:
    c = rec["config"]
    cm = c["countermeasure"]
    name = cm["name"] if len(cm) == 1 else None
    return {"label": rec.get("label"), "countermeasure": name or _spec_of(cm),
            "seed": c["seed"], "accuracy": rec["accuracy"],
            "peak_accuracy": rec["peak_accuracy"], "peak_epoch": rec["peak_epoch"],
            "n_train": c["train"]["n"], "test": c["test"], "seconds": rec["seconds"],
            "created": rec.get("created"), "host": rec.get("host"), "key": rec["key"]}


def _spec_of(described: dict) -> str:
    """A described countermeasure back as its spec string (``lowpass:0.25``)."""
    cm = countermeasures.get(described["name"], **{k: v for k, v in described.items()
                                                   if k != "name"})
    primary = type(cm).primary
    if primary is not None and primary in described:
        default = countermeasures.get(described["name"]).config()
        rest = {k: v for k, v in cm.config().items() if k != primary and v != default.get(k)}
        if not rest:
            return f"{described['name']}:{described[primary]}"
    return described["name"] + ":" + ",".join(f"{k}={v}" for k, v in described.items()
                                              if k != "name")


__all__ = ["FOLDER_RECIPE", "cached_folder_runs", "cached_record", "digest", "evaluate_folder",
           "folder_config", "proof_label", "protect_proof", "resized_copy", "train_record"]
