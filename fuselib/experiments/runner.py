"""Run the flow ``data → protection → countermeasure → train → clean test accuracy``, cached.

A run missing from the cache is looked up in the shipped records before anything is trained
(:mod:`fuselib.experiments.store`). A run that is stopped mid-training (Ctrl-C, a closed
laptop, a session's end) left a checkpoint of its last finished epoch in ``partial/``; running
it again resumes there and ends with the same record; so does a protection's fit that
checkpoints (FUSE every epoch, EM and PUE every round: ``partial/fit-KEY.pt``).

A protection ``"fuse@imagenette:128"`` is fitted on the source's training subset (the run's seed
and ``n_train``; the same cached fit as ``run("fuse", dataset="imagenette:128")``) and its
perturbations are moved to the run's images (:mod:`.transfer`).
"""
from __future__ import annotations

import time

import torch

from .. import countermeasures, data, protections, spectral
from ..train import Recipe, train
from ..utils import default_device, peak_rss_mb, write_json
from . import transfer
from .scales import build_config, dataset_of, describe, fit_config, rebuild
from .store import (as_json, config_key, find_json, host, keep_models, lookup, read_record,
                    results_dir, save_model, write_record)

# what this process did, for tests and progress reports (timing-free)
STATS = {"trained": 0, "cache_hits": 0, "fitted": 0}


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


def partial_path(name: str):
    """Where a stopped run (``name``: its key) or fit (``fit-KEY``) keeps its checkpoint."""
    return results_dir() / "partial" / f"{name}.pt"


def fit_cached(prot, images, labels, config: dict, cache: bool = True, measured: bool = True):
    """``prot`` fitted on the training subset, or its cached fit (same config) from disk
    (the cache, then the shipped records)."""
    if not prot.needs_fit or prot.fitted:
        return prot
    fit_cfg = fit_config(config)
    name = f"protections/{config_key(fit_cfg)}.pt"
    for place in lookup(name, measured) if cache else []:
        if not place.is_file():
            continue
        try:
            loaded = protections.load(place)
        except Exception:  # noqa: BLE001 - a bad cache file is recomputed, never trusted
            continue
        if loaded.config() == prot.config():
            return loaded
    # a fit that checkpoints (FUSE every epoch, EM and PUE every round) and is stopped resumes
    # where it was, from partial/fit-KEY.pt; a user's own checkpoint path is left as it is
    ckpt = None
    if cache and prot.checkpoints and prot.checkpoint is None:
        ckpt = partial_path(f"fit-{config_key(fit_cfg)}")
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        prot.checkpoint = str(ckpt)
    resumed = ckpt is not None and ckpt.is_file()
    t0 = time.perf_counter()
    try:
        prot.fit(images, labels)
    finally:
        if ckpt is not None:
            prot.checkpoint = None
    earlier = getattr(prot, "resumed_seconds", 0.0)  # a resumed fit's time before it stopped
    seconds = time.perf_counter() - t0 + earlier
    STATS["fitted"] += 1
    if cache:
        path = results_dir() / name
        prot.save(path)
        write_json(path.with_suffix(".json"), {
            "config": fit_cfg, "fit_seconds": seconds, "device": str(default_device()),
            "threads": torch.get_num_threads(), "cost": getattr(prot, "cost", ""),
            "peak_rss_mb": peak_rss_mb(),  # of the whole process, up to the fit's end
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": host(),
            # how the fit went (EM: per round, the surrogate's loss and its accuracy on the
            # perturbed data, so a fit that stopped early shows it); absent when not kept
            **({"history": as_json(prot.history)} if getattr(prot, "history", None) else {}),
            **({"resumed_from_checkpoint": True, "resumed_seconds": earlier} if resumed else {})})
        if ckpt is not None:
            ckpt.unlink(missing_ok=True)
    return prot


def source_subset(config: dict, data_root=None):
    """A transfer run's source images and labels: the source's training subset, drawn as the
    protection's own run there draws it (the run's seed, the source's ``n_train``)."""
    t = config["transfer"]
    x, y = data.load(dataset_of(t["data"]), "train", data_root)
    return data.subset(x, y, t["n_train"], config["seed"])


def protect(prot, images, labels, config: dict, cache: bool = True, data_root=None,
            measured: bool = True):
    """Fit ``prot`` on the training subset (or reuse a cached fit) and apply it; a transfer
    run's (``config["transfer"]``) is fitted on the source and its perturbations moved to
    ``images`` (:func:`.transfer.move`)."""
    if "transfer" not in config:
        return fit_cached(prot, images, labels, config, cache, measured).apply(images, labels)
    xs, ys = source_subset(config, data_root)
    ps = fit_cached(prot, xs, ys, config, cache, measured).apply(xs, ys)
    how = transfer.method(xs.shape[-1], images.shape[-1], prot.norm)
    if how != config["transfer"]["method"]:  # the config was built from the data's names
        raise RuntimeError(f"the source's {xs.shape[-1]}-px images and the run's "
                           f"{images.shape[-1]}-px ones mean {how!r}, not the config's "
                           f"{config['transfer']['method']!r}")
    return transfer.move(xs, ps, ys, images, labels, seed=config["seed"], norm=prot.norm,
                         eps=prot.eps)


def _fit_setup(protection, scale, seed, dataset, n_train, data_root):
    """The config of a protection's undefended run, the protection, and the images it is
    fitted on (the run's training subset; a transfer run's source subset)."""
    config, prot, _ = build_config(protection, scale=scale, seed=seed, dataset=dataset,
                                   n_train=n_train, data_root=data_root)
    if "transfer" in config:
        x, y = source_subset(config, data_root)
    else:
        x, y = data.subset(*data.load(dataset, "train", data_root), config["n_train"], seed)
    return config, prot, x, y


def fit_key(protection="none", scale="ci", seed=0, dataset="cifar10", n_train=None,
            data_root=None) -> str:
    """The cache key of the fit a run of ``protection`` uses: runs with the same key share one
    fit (whatever their countermeasure, classifier or poison ratio)."""
    config, _, _ = build_config(protection, scale=scale, seed=seed, dataset=dataset,
                                n_train=n_train, data_root=data_root)
    return config_key(fit_config(config))


def fit_record(protection="none", scale="ci", seed=0, dataset="cifar10", n_train=None,
               data_root=None):
    """How long the cached fit of a protection took (and where), or None if not recorded."""
    import json

    key = fit_key(protection, scale, seed, dataset, n_train, data_root)
    for path in lookup(f"protections/{key}.json"):
        if path.is_file():
            return json.loads(path.read_text())
    return None


def run(protection="none", countermeasure="none", arch=None, trainer="fast", scale="ci",
        seed=0, dataset="cifar10", epochs=None, n_train=None, n_test=None, data_root=None,
        recipe=None, cache=True, device=None, progress=None, poison_ratio=1.0,
        cached_only=False, measured=True, source=None) -> dict | None:
    """One experiment. ``recipe`` overrides recipe fields; ``poison_ratio`` < 1 protects only
    that share of the training images; ``cached_only`` returns the cached result or None, never
    training; ``measured=False`` ignores the shipped records (``results/measured``).
    ``protection="fuse@imagenette:128"`` (or ``source="imagenette:128"`` with a protection
    object) makes the perturbations on that dataset and moves them to ``dataset``'s images."""
    setting = dict(arch=arch, trainer=trainer, scale=scale, seed=seed, dataset=dataset,
                   epochs=epochs, n_train=n_train, n_test=n_test, data_root=data_root,
                   recipe=recipe, poison_ratio=poison_ratio, source=source)
    config, prot, cm = build_config(protection, countermeasure, **setting)
    if cm.uses_peak:  # early stopping: the undefended run, read at its best epoch
        base = run(protection, "none", cache=cache, device=device, progress=progress,
                   cached_only=cached_only, measured=measured, **setting)
        if base is None:
            return None
        return {**base, "accuracy": base["peak_accuracy"], "final_accuracy": base["accuracy"],
                "config": {**base["config"], "countermeasure": describe(cm)}}
    key = config_key(config)
    path = results_dir() / f"{key}.json"
    want = as_json(config)
    for place in lookup(f"{key}.json", measured) if cache else []:
        hit = read_record(place, key)
        if hit is not None and hit["config"] == want:
            STATS["cache_hits"] += 1
            return {**hit, "cached": True, "measured": place != path}
    if cached_only:
        return None

    t0 = time.perf_counter()
    xtr, ytr = data.load(dataset, "train", data_root)
    xte, yte = data.load(dataset, "test", data_root)
    xtr, ytr = data.subset(xtr, ytr, config["n_train"], seed)
    xte, yte = data.subset(xte, yte, config["n_test"], seed)
    fitted = prot.fitted or not prot.needs_fit
    protected = protect(prot, xtr, ytr, config, cache, data_root, measured)
    # a fit this run resumed from its checkpoint: the time it took before it stopped counts
    fit_before = 0.0 if fitted else getattr(prot, "resumed_seconds", 0.0)
    if "poison_ratio" in config:
        protected = partial(xtr, protected, config["poison_ratio"], seed)
    seen = cm(protected, ytr)
    # an interrupted run resumes from its last finished epoch (the checkpoint goes once the
    # record is written); the earlier part's time counts in "seconds"
    ckpt = partial_path(key) if cache else None
    r = Recipe(**config["recipe"])
    out = train(seen, ytr, xte, yte, r, seed=seed, device=device or default_device(),
                progress=progress, checkpoint=ckpt, defences=countermeasures.defences(r))
    STATS["trained"] += 1
    model = out.pop("model")
    resumed, before = out.pop("resumed_from_epoch"), out.pop("seconds_before_resume")
    if resumed:  # a fresh record keeps its fields; a resumed one says where it picked up
        out["resumed_from_epoch"] = resumed
    result = {"key": key, "config": config, **out,
              "seconds": time.perf_counter() - t0 + before + fit_before,
              "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "torch": torch.__version__,
              "host": host(device)}
    if cache:
        # first: a record in the cache means its weights are there too
        if keep_models():
            save_model(model, key, int(max(ytr.max(), yte.max())) + 1, xtr.shape[1:])
        write_json(path, result)
        ckpt.unlink(missing_ok=True)
    return {**result, "cached": False, "measured": False}


def state(protection="none", countermeasure="none", arch=None, trainer="fast", scale="ci",
          seed=0, dataset="cifar10", epochs=None, n_train=None, n_test=None, data_root=None,
          recipe=None, poison_ratio=1.0, measured=True, source=None) -> dict:
    """Where one run of :func:`run` stands, training nothing: ``{"key", "record"}`` (the record
    when measured, else None), ``"epoch"`` and ``"epochs"`` (the last finished epoch of a
    stopped run's checkpoint, else None; the recipe's epochs) and ``"fit"`` (``"partial"``
    when the protection's fit stopped midway and left its checkpoint, else None)."""
    setting = dict(arch=arch, trainer=trainer, scale=scale, seed=seed, dataset=dataset,
                   epochs=epochs, n_train=n_train, n_test=n_test, data_root=data_root,
                   recipe=recipe, poison_ratio=poison_ratio, source=source)
    config, _, cm = build_config(protection, countermeasure, **setting)
    if cm.uses_peak:  # read from the undefended run: that is the one that trains
        return state(protection, "none", measured=measured, **setting)
    key = config_key(config)
    record = run(protection, countermeasure, cached_only=True, measured=measured, **setting)
    out = {"key": key, "record": record, "epoch": None,
           "epochs": int(config["recipe"]["epochs"]), "fit": None}
    if record is not None:
        return out
    ckpt = partial_path(key)
    if ckpt.is_file():
        try:  # mmap: the epoch without reading the weights
            out["epoch"] = int(torch.load(ckpt, weights_only=True, mmap=True,
                                          map_location="cpu")["epoch"])
        except Exception:  # noqa: BLE001 - an unreadable checkpoint is retrained, not trusted
            pass
    if partial_path(f"fit-{config_key(fit_config(config))}").is_file():
        out["fit"] = "partial"
    return out


def protected_data(protection="none", scale="ci", seed=0, dataset="cifar10", n_train=None,
                   data_root=None, cache=True):
    """The training subset of a run and its protected version: ``(clean, protected, labels)``,
    all uint8/int64, fitting the protection (or reusing its cached fit) exactly as :func:`run`."""
    config, prot, _ = build_config(protection, scale=scale, seed=seed, dataset=dataset,
                                   n_train=n_train, data_root=data_root)
    x, y = data.subset(*data.load(dataset, "train", data_root), config["n_train"], seed)
    return x, protect(prot, x, y, config, cache, data_root), y


def fitted(protection="none", scale="ci", seed=0, dataset="cifar10", n_train=None,
           data_root=None, cache=True):
    """The protection object of a run, fitted as :func:`run` fits it (or loaded from the cache):
    for looking inside it (a generator, its loss history, its class perturbations)."""
    config, prot, x, y = _fit_setup(protection, scale, seed, dataset, n_train, data_root)
    return fit_cached(prot, x, y, config, cache)


def spectral_profile(protection="none", scale="ci", seed=0, bands=(0, 1 / 3, 2 / 3, 1),
                     basis="dct", max_images=5000, cache=True, dataset="cifar10", n_train=None,
                     data_root=None, cached_only=False) -> list | None:
    """Fraction of the energy of a protection's perturbations (protected − clean, over up to
    ``max_images`` training images) in each radial band ``bands[i] ≤ r < bands[i+1]``
    (the last band includes r = 1). Default: low / mid / high thirds of the radial frequency.
    Cached (and shipped in ``results/measured``) like runs, keyed by the fit and the bands;
    ``cached_only`` returns None instead of computing a missing one."""
    config, _, _ = build_config(protection, scale=scale, seed=seed, dataset=dataset,
                                n_train=n_train, data_root=data_root)
    pcfg = {**fit_config(config), "bands": [float(b) for b in bands], "basis": basis,
            "max_images": int(max_images)}
    if "transfer" in config:  # the moved perturbations, on the run's data
        pcfg["transfer"] = {**config["transfer"], "to": config["data"]}
    name = f"profiles/{config_key(pcfg)}.json"
    hit = find_json(name, "config", as_json(pcfg)) if cache else None
    if hit is not None:
        return list(hit["fractions"])
    if cached_only:
        return None
    x, px, _ = protected_data(protection, scale, seed, dataset, n_train, data_root, cache)
    d = (px[:max_images].float() - x[:max_images].float()) / 255
    fractions = spectral.band_shares(d, bands, basis)
    if cache:
        write_record(name, {"config": pcfg, "fractions": fractions,
                            "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return fractions


def rerun(record: dict, device=None, progress=None) -> dict:
    """Recompute one run record from scratch — the protection refitted, the classifier
    retrained, neither the cache nor the shipped records read or written — from the config
    stored in it. The result's ``key`` equals the record's when the config was rebuilt exactly
    (same fuselib version and data variant)."""
    c = record["config"]
    t = c.get("transfer")
    return run(protection=rebuild(protections, c["protection"]),
               countermeasure=rebuild(countermeasures, c["countermeasure"]),
               trainer=c["trainer"], scale=c["scale"], seed=c["seed"], n_train=c["n_train"],
               n_test=c["n_test"], recipe=c["recipe"], poison_ratio=c.get("poison_ratio", 1.0),
               dataset=dataset_of(c["data"]), source=dataset_of(t["data"]) if t else None,
               cache=False, measured=False, device=device, progress=progress)
