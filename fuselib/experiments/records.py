"""The shipped records: export from the cache, the index, and verification from scratch.

:func:`export` copies cached run records (with chosen fits, spectral profiles and
certificates) into ``results/measured``; :func:`write_index` lists them in ``index.csv``;
:func:`verify` and :func:`verify_fits` recompute shipped records and fits from their stored
configs and compare.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from .. import countermeasures, data, protections
from ..version import __version__
from ..utils import atomic_write, copy_file, output_lock
from .runner import rerun
from .scales import SCALES, dataset_of, fit_config, rebuild
from .store import config_key, measured_dir, read_record, results_dir, shipped_dir


def verify(scale: str = "cpu", sample: int = 3, seed: int = 0, keys=None,
           tolerance: float = 0.005, folder=None, device=None, progress=None):
    """Recompute shipped run records of ``scale`` from scratch (:func:`rerun`) and compare:
    ``sample`` of them drawn at random with ``seed`` (``keys`` picks them instead). A record
    *reproduces* when its config rebuilds to the same key and the final test accuracy agrees
    within ``tolerance`` (training is deterministic on one machine; across CPUs and BLAS
    builds a few hundredths of a point may move). Returns one DataFrame row per record."""
    import random

    import pandas as pd

    folder = Path(folder) if folder is not None else measured_dir()
    if folder is None or not Path(folder).is_dir():
        raise FileNotFoundError("no shipped records to verify (results/measured is absent, "
                                "or FUSELIB_RECOMPUTE=1 switched them off)")
    records = {f.stem: r for f in sorted(Path(folder).glob("*.json"))
               if (r := read_record(f, f.stem)) is not None and r["config"]["scale"] == scale}
    if keys:
        missing = sorted(set(keys) - set(records))
        if missing:
            raise KeyError(f"no {scale}-scale record with key(s) {missing} in {folder}")
        chosen = list(keys)
    else:
        if not records:
            raise FileNotFoundError(f"no {scale}-scale run records in {folder}")
        chosen = random.Random(seed).sample(sorted(records), min(int(sample), len(records)))
    rows = []
    for k in chosen:
        rec = records[k]
        t0 = time.perf_counter()
        new = rerun(rec, device=device, progress=progress)
        diff = new["accuracy"] - rec["accuracy"]
        rows.append({"key": k,
                     "protection": protection_spec(rec["config"]),
                     "countermeasure": spec(rec["config"]["countermeasure"], countermeasures),
                     "shipped": rec["accuracy"], "recomputed": new["accuracy"], "diff": diff,
                     "same_config": new["key"] == k,
                     "reproduces": new["key"] == k and abs(diff) <= tolerance,
                     "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows)


def verify_fits(scale: str | None = None, folder=None, names=None, tolerance: float = 0.5):
    """Refit the shipped fitted protections (``protections/*.pt`` under the shipped records)
    from their stored config and compare what they do to the training images: a fit
    *reproduces* when the protected images agree to within ``tolerance`` grey levels (0–255)
    on average. ``scale`` keeps the fits of that scale's training-set size, ``names`` those
    protections. Nothing is cached. Returns one DataFrame row per fit."""
    import pandas as pd

    folder = Path(folder) if folder is not None else measured_dir()
    if folder is None or not (Path(folder) / "protections").is_dir():
        raise FileNotFoundError("no shipped fits to verify (results/measured/protections is "
                                "absent, or FUSELIB_RECOMPUTE=1 switched them off)")
    rows, loaded = [], {}
    for meta in sorted((Path(folder) / "protections").glob("*.json")):
        try:
            cfg = json.loads(meta.read_text())["config"]
        except (OSError, ValueError, KeyError):
            continue
        if scale is not None and cfg["n_train"] != SCALES[scale]["n_train"]:
            continue
        d = cfg["protection"]
        if names and d["name"] not in names:
            continue
        dataset = cfg["data"].split("/")[0]
        if dataset not in loaded:  # read each dataset once, however many fits use it
            loaded[dataset] = (data.info(dataset).key, data.load(dataset, "train"))
        key, (xall, yall) = loaded[dataset]
        same_data = key == cfg["data"]
        xtr, ytr = data.subset(xall, yall, cfg["n_train"], cfg["seed"])
        shipped = protections.load(meta.with_suffix(".pt"))
        t0 = time.perf_counter()
        fresh = rebuild(protections, d)
        fresh.fit(xtr, ytr)
        a = shipped.apply(xtr, ytr).float()
        b = fresh.apply(xtr, ytr).float()
        diff = (a - b).abs()
        mean = float(diff.mean())
        rows.append({"key": meta.stem, "protection": spec(d, protections),
                     "n_train": cfg["n_train"], "same_config": fresh.config() == shipped.config()
                     and cfg["fuselib"] == __version__ and same_data,
                     "equal_pixels": float((diff == 0).float().mean()), "mean_abs_diff": mean,
                     "max_abs_diff": float(diff.max()),
                     "reproduces": mean <= tolerance and fresh.config() == shipped.config(),
                     "seconds": time.perf_counter() - t0})
    return pd.DataFrame(rows, columns=None if rows else [
        "key", "protection", "n_train", "same_config", "equal_pixels", "mean_abs_diff",
        "max_abs_diff", "reproduces", "seconds"])


def export(scale: str, dest: Path | str | None = None, fits: tuple = ("fuse",),
           runs: bool = True) -> list:
    """Copy every cached run record of ``scale`` into the shipped records folder, with the
    fitted protections named in ``fits`` (e.g. the FUSE generator), the spectral profiles and
    the learnability certificates; returns the files written. ``runs=False`` copies only the
    fits (of the protections the cached runs used): a run then still trains, on the shipped
    protected data; this is how the ``ci`` notebooks skip the slow fits but not the training.
    Records are copied as they are (key, config, curve, seconds, dates): nothing is edited;
    ``index.csv`` beside them lists every record in the folder, one row each. One process
    at a time copies into ``dest`` (side-by-side grid workers take turns, waiting up to two
    minutes for the lock; a holder past that is named in a :class:`.utils.Busy` line)."""
    dest = Path(dest) if dest is not None else shipped_dir()
    with output_lock(dest, "the shipped records folder", wait=120):
        return _export(scale, dest, fits, runs)


def _export(scale: str, dest: Path, fits: tuple, runs: bool) -> list:
    src = results_dir()

    def copy(f: Path, to: Path) -> None:
        written.append(copy_file(f, to / f.name))

    written, fit_keys = [], set()
    for f in sorted(src.glob("*.json")):
        obj = read_record(f, f.stem)
        if obj is None or obj["config"].get("scale") != scale:
            continue
        if runs:
            copy(f, dest)
        if obj["config"]["protection"]["name"] in fits:
            fit_keys.add(config_key(fit_config(obj["config"])))
    for k in sorted(fit_keys):
        for g in (src / "protections" / f"{k}.pt", src / "protections" / f"{k}.json"):
            if g.is_file():
                copy(g, dest / "protections")
    for f in sorted((src / "profiles").glob("*.json")) if runs else []:
        try:
            if json.loads(f.read_text())["config"]["n_train"] == SCALES[scale]["n_train"]:
                copy(f, dest / "profiles")
        except (OSError, ValueError, KeyError):
            continue
    for f in sorted((src / "folders").glob("*.json")) if runs else []:  # evaluate-folder runs
        obj = read_record(f, f.stem)
        if obj is not None and obj["config"].get("scale") == scale:
            copy(f, dest / "folders")
    for f in sorted((src / "certificates").glob("*.json")) if runs else []:
        try:
            if json.loads(f.read_text())["config"]["scale"] == scale:
                copy(f, dest / "certificates")
        except (OSError, ValueError, KeyError):
            continue
    if written:
        written.append(write_index(dest))
    return written


def spec(d: dict, registry) -> str:
    """A described object as a short spec: its name and the parameters that differ from the
    registered defaults (a cutoff always shows), e.g. ``fuse:rsm=False``, ``lowpass:cutoff=0.25``."""
    try:
        default = registry.get(d["name"]).config()
    except (KeyError, ValueError, TypeError):
        default = {}
    rest = ",".join(f"{k}={v}" for k, v in d.items()
                    if k != "name" and (k == "cutoff" or default.get(k) != v))
    return f"{d['name']}:{rest}" if rest else d["name"]


def protection_spec(config: dict) -> str:
    """A run's protection as a short spec (:func:`spec`), with ``@DATASET`` when its
    perturbations were made on another dataset (``fuse@imagenette``)."""
    t = config.get("transfer")
    s = spec(config["protection"], protections)
    return f"{s}@{dataset_of(t['data'])}" if t else s


def write_index(folder: Path | str) -> Path:
    """``index.csv`` of the run records in ``folder``: one row per record, read from them."""
    import pandas as pd

    folder = Path(folder)
    rows = []
    for f in sorted(folder.glob("*.json")):
        obj = read_record(f, f.stem)
        if obj is None:
            continue
        c = obj["config"]
        rows.append({"scale": c["scale"], "dataset": dataset_of(c["data"]),
                     "protection": protection_spec(c),
                     "countermeasure": spec(c["countermeasure"], countermeasures),
                     "arch": c["recipe"]["arch"],
                     "epochs": c["recipe"]["epochs"], "n_train": c["n_train"],
                     "poison_ratio": c.get("poison_ratio", 1.0), "seed": c["seed"],
                     "accuracy": obj["accuracy"], "peak_accuracy": obj["peak_accuracy"],
                     "peak_epoch": obj["peak_epoch"], "seconds": round(obj["seconds"], 1),
                     "created": obj.get("created"), "torch": obj.get("torch"), "key": obj["key"]})
    out = folder / "index.csv"
    cols = ["scale", "dataset", "protection", "countermeasure", "arch", "epochs", "n_train",
            "poison_ratio", "seed", "accuracy", "peak_accuracy", "peak_epoch", "seconds", "created", "torch", "key"]
    # a folder of fits only (export --fits-only into a new folder) gets the header alone
    with atomic_write(out) as tmp:
        pd.DataFrame(rows, columns=cols).sort_values(
            ["scale", "dataset", "protection", "countermeasure"]).to_csv(tmp, index=False)
    return out
