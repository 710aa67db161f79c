"""Certificates of learnability for a protection's training data, cached like runs.

The mathematics is :func:`fuselib.certify.certify`; this module trains (or reuses) the run's
classifier and keeps the result as ``certificates/<key>.json``.
"""
from __future__ import annotations

import inspect
import time

from .. import countermeasures, data
from ..certify import certify, check_settings
from ..train import Recipe, train
from ..utils import default_device
from .runner import protect
from .scales import build_config
from .store import (as_json, check_results_writable, config_key, find_json, keep_models,
                    model_path, save_model, stamp, trained_model, write_record)

SETTINGS = ("sigma", "n_samples", "alpha", "q", "eta", "n_eval")


def certify_protection(protection="none", scale="ci", seed=0, countermeasure="none",
                       dataset="cifar10", n_train=None, n_test=None, epochs=None,
                       data_root=None, cache=True, device=None, progress=None,
                       cached_only=False, **settings) -> dict | None:
    """Train the ``fast`` classifier on a protection's output exactly as
    :func:`fuselib.experiments.run` does (same subsets, fit cache, countermeasure, recipe) and
    certify it; ``settings`` go to :func:`certify` (``sigma``, ``n_samples``, ``alpha``, ``q``,
    ``eta``, ``n_eval``). Returns the certificate with the run's ``accuracy``, ``config`` and
    ``seconds``.

    Cached like runs (``certificates/<key>.json`` in the results cache, then the shipped
    ``results/measured``), keyed by the run's config and the certification settings; a record
    is used only if both match exactly. ``cache=False`` recomputes and writes nothing;
    ``cached_only=True`` returns None instead of computing a missing one."""
    unknown = set(settings) - set(SETTINGS)
    if unknown:
        raise ValueError(f"unknown certification setting(s) {sorted(unknown)}; "
                         f"use {', '.join(SETTINGS)}")
    defaults = {k: v.default for k, v in inspect.signature(certify).parameters.items()
                if k in SETTINGS}
    cset = {**defaults, **settings}
    check_settings(**cset)  # before any training
    config, prot, cm = build_config(protection, countermeasure, scale=scale, seed=seed,
                                    dataset=dataset, epochs=epochs, n_train=n_train,
                                    n_test=n_test, data_root=data_root)
    ccfg = as_json({"run": config, "certify": cset})
    name = f"certificates/{config_key(ccfg)}.json"
    hit = find_json(name, "certificate_config", ccfg) if cache else None
    if hit is not None:
        return {**hit, "cached": True}
    if cached_only:
        return None
    if cache:
        check_results_writable()  # before the training, not after it
    t0 = time.perf_counter()
    xte, yte = data.subset(*data.load(dataset, "test", data_root), config["n_test"], seed)
    record = (find_json(f"{config_key(config)}.json", "config", ccfg["run"], measured=False)
              if cache else None)
    had_weights = record is not None and model_path(config).is_file()
    model = trained_model(config, device) if record is not None else None  # warns if unreadable
    if model is not None:  # the run trained this classifier already: certify its weights
        accuracy, trained_by = record["accuracy"], record["key"]
    else:
        xtr, ytr = data.subset(*data.load(dataset, "train", data_root), config["n_train"], seed)
        seen = cm(protect(prot, xtr, ytr, config, cache, data_root), ytr)
        r = Recipe(**config["recipe"])
        out = train(seen, ytr, xte, yte, r, seed=seed, device=device or default_device(),
                    progress=progress, defences=countermeasures.defences(r))
        model, accuracy, trained_by = out["model"], out["accuracy"], None
        if cache and had_weights and keep_models():  # they were unreadable: replaced
            save_model(model, config_key(config), int(max(ytr.max(), yte.max())) + 1,
                       xtr.shape[1:])
    cert = certify(model, xte, yte, seed=seed, progress=progress, **cset)
    result = {**cert, "accuracy": accuracy, "config": config, "certificate_config": ccfg,
              "model_from_run": trained_by, **stamp(t0, device)}
    if cache:
        write_record(name, result)
    return {**result, "cached": False}
