"""Experiments: the flow ``data → protection → countermeasure → train → clean test accuracy``,
cached, swept, shipped and planned.

>>> r = fuselib.experiments.run(protection="random", countermeasure="lowpass:0.25",
...                             arch="fastnet", trainer="fast", scale="ci", seed=0)
>>> r["accuracy"], r["peak_accuracy"], r["cached"]
>>> df = fuselib.experiments.grid(protections=["none", "random"],
...                               countermeasures=["none", "lowpass:0.25"], scale="ci")
>>> df = fuselib.experiments.plans.get("lowpass_sweep").run("cpu", cached_only=True)

One job a file:

* :mod:`.scales` — scales and the complete, hashable config of a run (:func:`build_config`);
* :mod:`.store` — the result cache, the shipped records (``results/measured``), trained
  classifiers, the host a record was made on;
* :mod:`.runner` — :func:`run` (and the fits, protected data and spectral profiles it uses);
* :mod:`.transfer` — perturbations made on one dataset moved to another's images
  (``run("fuse@imagenette:128")``: FUSE made on Imagenette, randomly cropped to CIFAR-10);
* :mod:`.sweeps` — :func:`grid` and the tables made from it;
* :mod:`.records` — :func:`export`, :func:`write_index`, :func:`verify`, :func:`verify_fits`;
* :mod:`.certificates` — :func:`certify_protection`;
* :mod:`.plans` — every table the notebooks, the README and RESULTS.md show, by name;
* :mod:`.report` — RESULTS.md and the README's generated blocks, from the plans.

Every result is a JSON file named by the hash of its complete config, so re-running a notebook
reuses finished cells and any change of config recomputes; the shipped records are read after
the cache and before anything is trained (``FUSELIB_RECOMPUTE=1`` ignores them).
"""
from . import plans
from .certificates import SETTINGS as CERTIFY_SETTINGS, certify_protection
from .records import export, spec, verify, verify_fits, write_index
from .runner import (STATS, fit_cached, fit_key, fit_record, fitted, partial, protect,
                     protected_data, rerun, run, spectral_profile)
from .scales import SCALES, build_config, describe, fit_config
from .store import (config_key, host, keep_models, measured_dir, results_dir, trained_model)
from .sweeps import by_cutoff, curves, cutoff_of, cutoff_sweep, grid, separated

__all__ = ["CERTIFY_SETTINGS", "SCALES", "STATS", "build_config", "by_cutoff",
           "certify_protection", "config_key", "curves", "cutoff_of", "cutoff_sweep", "describe",
           "export", "fit_cached", "fit_config", "fit_key", "fit_record", "fitted", "grid", "host",
           "keep_models", "measured_dir", "partial", "plans", "protect",
           "protected_data", "rerun", "results_dir", "run", "separated", "spec",
           "spectral_profile", "trained_model", "verify", "verify_fits", "write_index"]
