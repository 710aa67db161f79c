"""Run the flow ``data → protection → countermeasure → train → clean test accuracy``, cached.

>>> r = fuselib.experiments.run(protection="random", countermeasure="lowpass:0.25",
...                             arch="fastnet", trainer="fast", scale="ci", seed=0)
>>> r["accuracy"], r["peak_accuracy"], r["cached"]
>>> df = fuselib.experiments.grid(protections=["none", "random"],
...                               countermeasures=["none", "lowpass:0.25"], scale="ci")

Every result is a JSON file under the results directory (``$FUSELIB_RESULTS``, else
``results/cache`` in a source checkout, else ``~/.cache/fuselib/results``) named by the hash
of its complete config — protection and countermeasure with all their parameters, the
training recipe, scale, data subset, seed, the exact data variant and the fuselib version —
so re-running a notebook reuses finished cells and any change of config recomputes. A file
that cannot be read, or whose config does not match, is ignored and recomputed, never
trusted. Fitted protections are cached beside the results the same way. A run that is
stopped mid-training (Ctrl-C, a closed laptop, a session's end) left a checkpoint of its last
finished epoch in ``partial/``; running it again resumes there and ends with the same record.

Measured records ship with the repository in ``results/measured/`` (``$FUSELIB_MEASURED``):
run records and fitted protections copied from a cache by :func:`export`, with their
provenance in that folder's README. A run missing from the cache is looked up there before
anything is trained, under the same key and config check, so a notebook at ``cpu`` scale can
show every measured number in seconds; ``FUSELIB_RECOMPUTE=1`` (or ``measured=False``)
ignores them and recomputes.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import torch

from . import __version__, countermeasures, data, protections
from .train import Recipe, default_device, get_recipe, train

_SUITE = countermeasures.SUITE

# scale -> training-set size, test-set size and per-trainer recipe overrides.
# smoke: a few seconds a run on 2 CPU cores, to check that a whole grid runs end to end (every
# countermeasure, a new protection) before paying for it; its accuracies say little;
# ci: 1-2 minutes a run on 2 cores, the tests and notebooks; cpu: 4-9 minutes a classifier on
# 2 cores (10,000 training images); full: all 50,000 training images on a CPU;
# paper: all images, the paper's epochs, meant for a GPU.
SCALES = {
    "smoke": dict(n_train=1000, n_test=500,
                  fast=dict(epochs=8, batch_size=128, model_kwargs={"widths": (16, 32, 64)}),
                  standard=dict(epochs=1)),
    "ci": dict(n_train=5000, n_test=2000,
               fast=dict(epochs=8, model_kwargs={"widths": (32, 64, 128)}),
               standard=dict(epochs=2)),
    "cpu": dict(n_train=10000, n_test=10000,
                fast=dict(epochs=10, model_kwargs={"widths": (48, 96, 192)}),
                standard=dict(epochs=10)),
    "full": dict(n_train=50000, n_test=10000,
                 fast=dict(epochs=10, model_kwargs={"widths": (48, 96, 192)}),
                 standard=dict(epochs=10)),
    "paper": dict(n_train=None, n_test=None,
                  fast=dict(epochs=15),
                  standard=dict(epochs=60)),
}

# what this process did, for tests and progress reports (timing-free)
STATS = {"trained": 0, "cache_hits": 0, "fitted": 0}
_REQUIRED = ("key", "config", "accuracy", "peak_accuracy", "curve", "seconds")


def results_dir() -> Path:
    if os.environ.get("FUSELIB_RESULTS"):
        return Path(os.environ["FUSELIB_RESULTS"])
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():
        return repo / "results" / "cache"
    return Path.home() / ".cache" / "fuselib" / "results"


def measured_dir() -> Path | None:
    """The shipped, read-only records (``results/measured`` in a source checkout), or None when
    absent or switched off (``FUSELIB_RECOMPUTE=1``; ``FUSELIB_MEASURED`` names another)."""
    if os.environ.get("FUSELIB_RECOMPUTE", "0") not in ("", "0"):
        return None
    if os.environ.get("FUSELIB_MEASURED"):
        d = Path(os.environ["FUSELIB_MEASURED"])
        if not d.is_dir():  # named explicitly: a typo must not silently retrain everything
            raise FileNotFoundError(f"FUSELIB_MEASURED={d} is not a directory")
    else:
        d = Path(__file__).resolve().parent.parent / "results" / "measured"
    return d if d.is_dir() else None


def _lookup(name: str, measured: bool = True) -> list:
    """Where a cached file may be: the cache first, then the shipped records."""
    places = [results_dir() / name]
    m = measured_dir() if measured else None
    if m is not None:
        places.append(m / name)
    return places


def config_key(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def host(device=None) -> dict:
    """Where a record was computed: CPU model, threads, device, and whether ``amp="auto"``
    trains in bf16 there. The same config trains to slightly different numbers on machines
    with and without native bf16 (or another CPU's kernels), so records carry this."""
    import platform

    from .train import _bf16_ok

    dev = torch.device(device) if device is not None else default_device()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "threads": torch.get_num_threads(), "device": str(dev),
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            "bf16_autocast": _bf16_ok(dev)}


def _find_json(name: str, field: str, want, measured: bool = True):
    """The first readable JSON record called ``name`` (the cache, then the shipped records)
    whose ``field`` equals ``want``; None when there is none."""
    for place in _lookup(name, measured):
        try:
            obj = json.loads(place.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict) and obj.get(field) == want:
            return obj
    return None


def _read_cached(path: Path, key: str):
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(obj, dict) or obj.get("key") != key or any(k not in obj for k in _REQUIRED):
        return None
    return obj


def subset(images, labels, n: int | None, seed: int):
    """A class-balanced subset of ``n`` images (all of them when ``n`` is None or too big),
    chosen by a seeded permutation."""
    if n is None or n >= labels.shape[0]:
        return images, labels
    classes = torch.unique(labels)
    per = n // len(classes)
    if per < 1:
        raise ValueError(f"n={n} is smaller than the number of classes ({len(classes)})")
    perm = torch.randperm(labels.shape[0], generator=torch.Generator().manual_seed(seed))
    idx = torch.cat([perm[labels[perm] == c][:per] for c in classes])
    idx = idx.sort().values
    return images[idx], labels[idx]


def _recipe_overrides(scale: str, trainer: str, arch: str | None, epochs: int | None,
                      extra: dict) -> dict:
    if scale not in SCALES:
        raise KeyError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    over = dict(SCALES[scale].get(trainer, {}))
    base = get_recipe(trainer)
    if arch is not None and arch != base.arch:
        over["arch"] = arch
        over.pop("model_kwargs", None)  # scale presets size the default net only
    if epochs is not None:
        over["epochs"] = int(epochs)
    over.update(extra)
    return over


def _recipe_config(r: Recipe) -> dict:
    """The recipe as it enters a config: training-time defence fields appear only when switched
    on, so adding a defence to the trainer does not change the key of every undefended run."""
    rec = asdict(r)
    off = {"cutout": 0, "mix": "none", "adv": "none", "ueraser": 0}
    if rec["mix"] == "none":
        rec.pop("mix_alpha")
    if rec["adv"] == "none":
        for k in ("adv_eps", "adv_steps", "adv_step"):
            rec.pop(k)
    for k, v in off.items():
        if rec[k] == v:
            rec.pop(k)
    return rec


def _describe(obj) -> dict:
    return {"name": obj.name, **obj.config()}


def build_config(protection="none", countermeasure="none", arch=None, trainer="fast",
                 scale="ci", seed=0, dataset="cifar10", epochs=None, n_train=None,
                 n_test=None, data_root=None, recipe=None, poison_ratio=1.0):
    """Resolve names to objects and the full, hashable config of one run."""
    if not 0 <= float(poison_ratio) <= 1:
        raise ValueError(f"poison_ratio must be in [0, 1], got {poison_ratio}")
    prot = protections.get(protection) if isinstance(protection, str) else protection
    cm = countermeasures.get(countermeasure) if isinstance(countermeasure, str) else countermeasure
    # a training-time defence switches trainer options on; they enter the config (and hash)
    extra = {**cm.recipe, **(recipe or {})}
    r = get_recipe(trainer, **_recipe_overrides(scale, trainer, arch, epochs, extra))
    dinfo = data.info(dataset, data_root)
    config = {
        "fuselib": __version__,
        "data": dinfo.key,
        "protection": _describe(prot),
        "countermeasure": _describe(cm),
        "trainer": trainer,
        "recipe": _recipe_config(r),
        "scale": scale,
        "n_train": n_train if n_train is not None else SCALES[scale]["n_train"],
        "n_test": n_test if n_test is not None else SCALES[scale]["n_test"],
        "seed": int(seed),
    }
    if float(poison_ratio) < 1:  # only when set, so the keys of full-poisoning runs stay put
        config["poison_ratio"] = float(poison_ratio)
    return config, prot, cm


def partial(clean, protected, ratio: float, seed: int):
    """Partial poisoning: a seeded random ``1 - ratio`` share of the images stays clean."""
    n = clean.shape[0]
    n_clean = n - int(round(n * float(ratio)))
    if n_clean <= 0:
        return protected
    g = torch.Generator().manual_seed(int(seed) + 7919)
    keep = torch.randperm(n, generator=g)[:n_clean]
    out = protected.clone()
    out[keep] = clean[keep]
    return out


def protect(prot, images, labels, config: dict, cache: bool = True):
    """Fit ``prot`` on the training subset (or reuse a cached fit) and apply it."""
    return fit_cached(prot, images, labels, config, cache).apply(images, labels)


def fit_cached(prot, images, labels, config: dict, cache: bool = True, measured: bool = True):
    """``prot`` fitted on the training subset, or its cached fit (same config) from disk
    (the cache, then the shipped records)."""
    if prot.needs_fit and not prot.fitted:
        fit_cfg = {k: config[k] for k in ("fuselib", "data", "protection", "n_train", "seed")}
        name = f"protections/{config_key(fit_cfg)}.pt"
        path = results_dir() / name
        loaded = None
        for place in _lookup(name, measured) if cache else []:
            if not place.is_file():
                continue
            try:
                loaded = protections.load(place)
            except Exception:  # noqa: BLE001 - a bad cache file is recomputed, never trusted
                loaded = None
            if loaded is not None and loaded.config() == prot.config():
                break
            loaded = None
        if loaded is not None:
            prot = loaded
        else:
            t0 = time.perf_counter()
            prot.fit(images, labels)
            seconds = time.perf_counter() - t0
            STATS["fitted"] += 1
            if cache:
                prot.save(path)
                _write_json(path.with_suffix(".json"), {
                    "config": fit_cfg, "fit_seconds": seconds, "device": str(default_device()),
                    "threads": torch.get_num_threads(), "cost": getattr(prot, "cost", ""),
                    "peak_rss_mb": _peak_rss_mb(),  # of the whole process, up to the fit's end
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": host()})
    return prot


def _peak_rss_mb() -> float | None:
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except (ImportError, OSError):  # not on Windows
        return None


def fit_record(protection="none", scale="ci", seed=0, dataset="cifar10", n_train=None,
               data_root=None):
    """How long the cached fit of a protection took (and where), or None if not recorded."""
    config, prot, _ = build_config(protection, "none", None, "fast", scale, seed, dataset,
                                   None, n_train, None, data_root)
    fit_cfg = {k: config[k] for k in ("fuselib", "data", "protection", "n_train", "seed")}
    for path in _lookup(f"protections/{config_key(fit_cfg)}.json"):
        if path.is_file():
            return json.loads(path.read_text())
    return None


def run(protection="none", countermeasure="none", arch=None, trainer="fast", scale="ci",
        seed=0, dataset="cifar10", epochs=None, n_train=None, n_test=None, data_root=None,
        recipe=None, cache=True, device=None, progress=None, poison_ratio=1.0,
        cached_only=False, measured=True) -> dict | None:
    """One experiment; see the module docstring. ``recipe`` overrides recipe fields;
    ``poison_ratio`` < 1 protects only that share of the training images;
    ``cached_only`` returns the cached result or None, never training; ``measured=False``
    ignores the shipped records (``results/measured``)."""
    config, prot, cm = build_config(protection, countermeasure, arch, trainer, scale, seed,
                                    dataset, epochs, n_train, n_test, data_root, recipe,
                                    poison_ratio)
    if cm.uses_peak:  # early stopping: the undefended run, read at its best epoch
        base = run(protection, "none", arch, trainer, scale, seed, dataset, epochs, n_train,
                   n_test, data_root, recipe, cache, device, progress, poison_ratio,
                   cached_only, measured)
        if base is None:
            return None
        return {**base, "accuracy": base["peak_accuracy"], "final_accuracy": base["accuracy"],
                "config": {**base["config"], "countermeasure": _describe(cm)}}
    key = config_key(config)
    path = results_dir() / f"{key}.json"
    want = json.loads(json.dumps(config, default=str))
    for place in _lookup(f"{key}.json", measured) if cache else []:
        hit = _read_cached(place, key)
        if hit is not None and hit["config"] == want:
            STATS["cache_hits"] += 1
            return {**hit, "cached": True, "measured": place != path}
    if cached_only:
        return None

    t0 = time.perf_counter()
    xtr, ytr = data.load(dataset, "train", data_root)
    xte, yte = data.load(dataset, "test", data_root)
    xtr, ytr = subset(xtr, ytr, config["n_train"], seed)
    xte, yte = subset(xte, yte, config["n_test"], seed)
    protected = fit_cached(prot, xtr, ytr, config, cache, measured).apply(xtr, ytr)
    if "poison_ratio" in config:
        protected = partial(xtr, protected, config["poison_ratio"], seed)
    seen = cm(protected, ytr)
    # an interrupted run resumes from its last finished epoch (the checkpoint goes once the
    # record is written); the earlier part's time counts in "seconds"
    ckpt = results_dir() / "partial" / f"{key}.pt" if cache else None
    out = train(seen, ytr, xte, yte, Recipe(**config["recipe"]), seed=seed,
                device=device or default_device(), progress=progress, checkpoint=ckpt)
    STATS["trained"] += 1
    model = out.pop("model")
    resumed, before = out.pop("resumed_from_epoch"), out.pop("seconds_before_resume")
    if resumed:  # a fresh record keeps its fields; a resumed one says where it picked up
        out["resumed_from_epoch"] = resumed
    result = {"key": key, "config": config, **out,
              "seconds": time.perf_counter() - t0 + before,
              "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": torch.__version__,
              "host": host(device)}
    if cache:
        # first: a record in the cache means its weights are there too
        if keep_models():
            _save_model(model, key, int(max(ytr.max(), yte.max())) + 1, xtr.shape[1:])
        _write_json(path, result)
        ckpt.unlink(missing_ok=True)
    return {**result, "cached": False, "measured": False}


def keep_models() -> bool:
    """Whether runs keep their classifier's weights in the cache (``FUSELIB_KEEP_MODELS``, on
    by default; ``0`` turns it off: a few MB a run at ci/cpu scale, ~100 MB a ResNet-50 run)."""
    return os.environ.get("FUSELIB_KEEP_MODELS", "1") not in ("", "0", "false", "no")


def _save_model(model, key: str, num_classes: int, image_shape) -> None:
    """The trained classifier's weights beside its record, in the cache only (``models/``;
    never exported: a few MB a run). :func:`trained_model` loads them."""
    d = results_dir() / "models"
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{key}.pt.tmp{os.getpid()}"
    torch.save({"state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "num_classes": int(num_classes), "image_shape": [int(v) for v in image_shape]},
               tmp)
    os.replace(tmp, d / f"{key}.pt")


def trained_model(config: dict, device=None):
    """The classifier a cached run of ``config`` trained (in eval mode), or None when its
    weights are not in the cache (shipped records carry none: retrain with :func:`run`)."""
    from . import models

    f = results_dir() / "models" / f"{config_key(config)}.pt"
    if not f.is_file():
        return None
    r = Recipe(**config["recipe"])
    saved = torch.load(f, map_location="cpu", weights_only=True)
    c, h, _ = saved["image_shape"]
    model = models.get(r.arch, saved["num_classes"], image_size=h, in_channels=c,
                       **r.model_kwargs)
    model.load_state_dict(saved["state"])
    model = model.to(device or default_device())
    if r.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def protected_data(protection="none", scale="ci", seed=0, dataset="cifar10", n_train=None,
                   data_root=None, cache=True):
    """The training subset of a run and its protected version: ``(clean, protected, labels)``,
    all uint8/int64, fitting the protection (or reusing its cached fit) exactly as :func:`run`."""
    config, prot, _ = build_config(protection, "none", None, "fast", scale, seed, dataset,
                                   None, n_train, None, data_root)
    x, y = data.load(dataset, "train", data_root)
    x, y = subset(x, y, config["n_train"], seed)
    return x, protect(prot, x, y, config, cache), y


def fitted(protection="none", scale="ci", seed=0, dataset="cifar10", n_train=None,
           data_root=None, cache=True):
    """The protection object of a run, fitted as :func:`run` fits it (or loaded from the cache):
    for looking inside it (a generator, its loss history, its class perturbations)."""
    config, prot, _ = build_config(protection, "none", None, "fast", scale, seed, dataset,
                                   None, n_train, None, data_root)
    x, y = data.load(dataset, "train", data_root)
    x, y = subset(x, y, config["n_train"], seed)
    return fit_cached(prot, x, y, config, cache)


def spectral_profile(protection="none", scale="ci", seed=0, bands=(0, 1 / 3, 2 / 3, 1),
                     basis="dct", max_images=5000, cache=True, dataset="cifar10", n_train=None,
                     data_root=None) -> list:
    """Fraction of the energy of a protection's perturbations (protected − clean, over up to
    ``max_images`` training images) in each radial band ``bands[i] ≤ r < bands[i+1]``
    (the last band includes r = 1). Default: low / mid / high thirds of the radial frequency.
    Cached (and shipped in ``results/measured``) like runs, keyed by the fit and the bands."""
    from . import spectral

    config, _, _ = build_config(protection, "none", None, "fast", scale, seed, dataset,
                                None, n_train, None, data_root)
    pcfg = {**{k: config[k] for k in ("fuselib", "data", "protection", "n_train", "seed")},
            "bands": [float(b) for b in bands], "basis": basis, "max_images": int(max_images)}
    name = f"profiles/{config_key(pcfg)}.json"
    hit = _find_json(name, "config", json.loads(json.dumps(pcfg))) if cache else None
    if hit is not None:
        return list(hit["fractions"])
    x, px, _ = protected_data(protection, scale, seed, dataset, n_train, data_root, cache)
    d = (px[:max_images].float() - x[:max_images].float()) / 255
    coeffs = spectral.dct2(d) if basis == "dct" else spectral.fft2(d).abs()
    energy = (coeffs.abs() ** 2).sum(dim=(0, 1))
    r = spectral.radial_frequency(d.shape[-2:], basis).to(energy.device)
    out = []
    for k, (lo, hi) in enumerate(zip(bands[:-1], bands[1:])):
        last = k == len(bands) - 2
        m = (r >= lo) & ((r <= hi) if last else (r < hi))
        out.append(float(energy[m].sum()))
    total = sum(out)
    fractions = [e / total if total > 0 else 0.0 for e in out]
    if cache:
        _write_json(results_dir() / name, {"config": pcfg, "fractions": fractions,
                                            "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return fractions


def grid(protections=("none",), countermeasures=("none",), archs=(None,), seeds=(0,),
         **common):
    """Every combination of the lists, as one tidy DataFrame (one row per run).

    ``countermeasures="all"`` is the whole suite, :data:`fuselib.countermeasures.SUITE`;
    ``cached_only=True`` returns only the runs already in the cache (nothing is trained)."""
    import pandas as pd

    if isinstance(countermeasures, str):
        countermeasures = _SUITE if countermeasures == "all" else (countermeasures,)
    if isinstance(protections, str):
        protections = (protections,)
    rows = []
    for p in protections:
        for c in countermeasures:
            for a in archs:
                for s in seeds:
                    r = run(protection=p, countermeasure=c, arch=a, seed=s, **common)
                    if r is None:  # cached_only and not measured yet
                        continue
                    rows.append({
                        "protection": p if isinstance(p, str) else p.name,
                        "countermeasure": c if isinstance(c, str) else c.name,
                        "arch": r["recipe"]["arch"], "trainer": r["config"]["trainer"],
                        "scale": r["config"]["scale"], "seed": s,
                        "accuracy": r["accuracy"], "peak_accuracy": r["peak_accuracy"],
                        "peak_epoch": r["peak_epoch"], "seconds": r["seconds"],
                        "cached": r["cached"], "measured": r.get("measured", False),
                        "curve": r["curve"], "key": r["key"],
                    })
    return pd.DataFrame(rows, columns=None if rows else [
        "protection", "countermeasure", "arch", "trainer", "scale", "seed", "accuracy",
        "peak_accuracy", "peak_epoch", "seconds", "cached", "measured", "curve", "key"])


def cutoff_of(countermeasure: str) -> float:
    """The cutoff of a ``"lowpass:0.25"``-style countermeasure name; 1.0 for ``"none"``."""
    return 1.0 if countermeasure == "none" else float(countermeasure.split(":")[1])


def cutoff_sweep(protections, cutoffs, filter: str = "lowpass", **common):
    """:func:`grid` over no filter and ``filter:c`` for every cutoff ``c``, with a ``cutoff``
    column (1.0 = no filter)."""
    sweep = grid(protections, ["none"] + [f"{filter}:{c}" for c in cutoffs], **common)
    sweep["cutoff"] = [cutoff_of(c) for c in sweep.countermeasure]
    return sweep


def by_cutoff(sweep, protections, value: str = "accuracy"):
    """A cutoff × protection table of ``value`` in percent, from :func:`cutoff_sweep`."""
    return sweep.pivot(index="cutoff", columns="protection", values=value)[list(protections)] * 100


def rerun(record: dict, device=None, progress=None) -> dict:
    """Recompute one run record from scratch — the protection refitted, the classifier
    retrained, neither the cache nor the shipped records read or written — from the config
    stored in it. The result's ``key`` equals the record's when the config was rebuilt exactly
    (same fuselib version and data variant)."""
    c = record["config"]

    def get(registry, d):
        return registry.get(d["name"], **{k: v for k, v in d.items() if k != "name"})

    return run(protection=get(protections, c["protection"]),
               countermeasure=get(countermeasures, c["countermeasure"]),
               trainer=c["trainer"], scale=c["scale"], seed=c["seed"], n_train=c["n_train"],
               n_test=c["n_test"], recipe=c["recipe"], poison_ratio=c.get("poison_ratio", 1.0),
               cache=False, measured=False, device=device, progress=progress)


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
               if (r := _read_cached(f, f.stem)) is not None and r["config"]["scale"] == scale}
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
                     "protection": _spec(rec["config"]["protection"], protections),
                     "countermeasure": _spec(rec["config"]["countermeasure"], countermeasures),
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
        xtr, ytr = subset(xall, yall, cfg["n_train"], cfg["seed"])
        shipped = protections.load(meta.with_suffix(".pt"))
        t0 = time.perf_counter()
        fresh = protections.get(d["name"], **{k: v for k, v in d.items() if k != "name"})
        fresh.fit(xtr, ytr)
        a = shipped.apply(xtr, ytr).float()
        b = fresh.apply(xtr, ytr).float()
        diff = (a - b).abs()
        mean = float(diff.mean())
        rows.append({"key": meta.stem, "protection": _spec(d, protections),
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
    ``index.csv`` beside them lists every record in the folder, one row each."""
    import shutil

    src = results_dir()
    dest = Path(dest) if dest is not None else (
        Path(__file__).resolve().parent.parent / "results" / "measured")

    def copy(f: Path, to: Path) -> None:
        to.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, to / f".{f.name}.tmp")
        os.replace(to / f".{f.name}.tmp", to / f.name)
        written.append(to / f.name)

    written, fit_keys = [], set()
    for f in sorted(src.glob("*.json")):
        obj = _read_cached(f, f.stem)
        if obj is None or obj["config"].get("scale") != scale:
            continue
        if runs:
            copy(f, dest)
        if obj["config"]["protection"]["name"] in fits:
            fit_keys.add(config_key({k: obj["config"][k] for k in (
                "fuselib", "data", "protection", "n_train", "seed")}))
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
    for f in sorted((src / "certificates").glob("*.json")) if runs else []:
        try:
            if json.loads(f.read_text())["config"]["scale"] == scale:
                copy(f, dest / "certificates")
        except (OSError, ValueError, KeyError):
            continue
    if written:
        written.append(write_index(dest))
    return written


def _spec(d: dict, registry) -> str:
    """A described object as a short spec: its name and the parameters that differ from the
    registered defaults (a cutoff always shows), e.g. ``fuse:rsm=False``, ``lowpass:cutoff=0.25``."""
    try:
        default = registry.get(d["name"]).config()
    except (KeyError, ValueError, TypeError):
        default = {}
    rest = ",".join(f"{k}={v}" for k, v in d.items()
                    if k != "name" and (k == "cutoff" or default.get(k) != v))
    return f"{d['name']}:{rest}" if rest else d["name"]


def write_index(folder: Path | str) -> Path:
    """``index.csv`` of the run records in ``folder``: one row per record, read from them."""
    import pandas as pd

    folder = Path(folder)
    rows = []
    for f in sorted(folder.glob("*.json")):
        obj = _read_cached(f, f.stem)
        if obj is None:
            continue
        c = obj["config"]
        rows.append({"scale": c["scale"], "protection": _spec(c["protection"], protections),
                     "countermeasure": _spec(c["countermeasure"], countermeasures), "arch": c["recipe"]["arch"],
                     "epochs": c["recipe"]["epochs"], "n_train": c["n_train"],
                     "poison_ratio": c.get("poison_ratio", 1.0), "seed": c["seed"],
                     "accuracy": obj["accuracy"], "peak_accuracy": obj["peak_accuracy"],
                     "peak_epoch": obj["peak_epoch"], "seconds": round(obj["seconds"], 1),
                     "created": obj.get("created"), "torch": obj.get("torch"), "key": obj["key"]})
    out = folder / "index.csv"
    tmp = folder / ".index.csv.tmp"
    cols = ["scale", "protection", "countermeasure", "arch", "epochs", "n_train", "poison_ratio",
            "seed", "accuracy", "peak_accuracy", "peak_epoch", "seconds", "created", "torch", "key"]
    # a folder of fits only (export --fits-only into a new folder) gets the header alone
    pd.DataFrame(rows, columns=cols).sort_values(["scale", "protection", "countermeasure"]).to_csv(
        tmp, index=False)
    os.replace(tmp, out)
    return out
