"""Scales and configs: how a run's names and numbers become one complete, hashable config.

Everything that enters a record's hash is built here, once: the protection and countermeasure
with all their parameters, the training recipe (training-time defence fields only when switched
on), the scale's subset sizes, the seed, the exact data variant and the fuselib version. The
fit of a protection is keyed by the part of that config it depends on (:func:`fit_config`).

A protection spec may name the dataset its perturbations are made on, ``"fuse@imagenette:128"``
(:func:`split_source`): the run's config then carries ``"transfer"`` — the source's data key, its
``n_train`` and how the perturbations are moved (:mod:`.transfer`) — and its fit is the
source's (:func:`fit_config`). A spec without ``@`` builds exactly the config it always did.
"""
from __future__ import annotations

from dataclasses import asdict

from .. import countermeasures, data, protections, registry
from ..version import __version__
from ..train import Recipe, get_recipe
from . import transfer

# scale -> training-set size, test-set size and per-trainer recipe overrides.
# smoke: a few seconds a run on 2 CPU cores, to check that a whole grid runs end to end (every
# countermeasure, a new protection) before paying for it; its accuracies say little;
# ci: 1-2 minutes a run on 2 cores, the tests and notebooks; cpu: 4-9 minutes a classifier on
# 2 cores (10,000 training images); full: all 50,000 training images on a CPU;
# paper: all images, the paper's epochs, meant for a GPU. full and paper test the per-epoch curve
# on a fixed class-balanced 2,000 of the test images and the last epoch on all of them (the
# fast recipe's curve_images: the final accuracy is the same, the evaluation costs a fifth);
# cpu keeps testing every epoch on all 10,000, the protocol its shipped records were made with.
#
# The paper's networks at cpu and full: the paper's recipe with its cosine schedule compressed to
# 15 epochs (the papers train 60-200), the curve on 2,000 test images. The standard trainer
# takes batch 64 at lr 0.05 there (the paper's lr scaled with the batch: twice the paper's
# steps), the best of the candidate schedules tried on clean data only (plans ``schedule_*``:
# RESULTS.md, Other networks); the vit trainer keeps its batch and lr. ``victims_long`` checks
# the short schedule against 60 epochs.
_SHORT = dict(epochs=15, curve_images=2000, batch_size=64, lr=0.05)
_SHORT_VIT = dict(epochs=15, curve_images=2000)
SCALES = {
    "smoke": dict(n_train=1000, n_test=500,
                  fast=dict(epochs=8, batch_size=128, model_kwargs={"widths": (16, 32, 64)}),
                  standard=dict(epochs=1), vit=dict(epochs=1)),
    "ci": dict(n_train=5000, n_test=2000,
               fast=dict(epochs=8, model_kwargs={"widths": (32, 64, 128)}),
               standard=dict(epochs=2), vit=dict(epochs=2)),
    "cpu": dict(n_train=10000, n_test=10000,
                fast=dict(epochs=10, model_kwargs={"widths": (48, 96, 192)}),
                standard=_SHORT, vit=_SHORT_VIT),
    "full": dict(n_train=50000, n_test=10000,
                 fast=dict(epochs=10, model_kwargs={"widths": (48, 96, 192)}, curve_images=2000),
                 standard=_SHORT, vit=_SHORT_VIT),
    "paper": dict(n_train=None, n_test=None,
                  fast=dict(epochs=15, curve_images=2000),
                  standard=dict(epochs=60, curve_images=2000),
                  vit=dict(epochs=200, curve_images=2000)),
}

# the fields of a run's config that its protection's fit depends on (the fit cache's key)
FIT_FIELDS = ("fuselib", "data", "protection", "n_train", "seed")


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise KeyError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    return scale


def recipe_overrides(scale: str, trainer: str, arch: str | None, epochs: int | None,
                     extra: dict) -> dict:
    """The recipe fields a scale (and an explicit arch or epoch count) sets for ``trainer``."""
    over = dict(SCALES[check_scale(scale)].get(trainer, {}))
    base = get_recipe(trainer)
    if arch is not None and arch != base.arch:
        over["arch"] = arch
        over.pop("model_kwargs", None)  # scale presets size the default net only
    if epochs is not None:
        over["epochs"] = int(epochs)
    over.update(extra)
    return over


def recipe_config(r: Recipe) -> dict:
    """The recipe as it enters a config: training-time defence fields (and the evaluation
    protocol's ``curve_images``) appear only when switched on, so adding one to the trainer does
    not change the key of every run made without it."""
    rec = asdict(r)
    off = {"cutout": 0, "mix": "none", "adv": "none", "ueraser": 0, "sda": 0.0,
           "curve_images": 0,  # the evaluation protocol too: records before it keep their keys
           "crop_scale": 0.0,  # and the random resized crop (Imagenette)
           "optimizer": "sgd"}  # and the optimiser (AdamW for ViTs)
    if rec["mix"] == "none":
        rec.pop("mix_alpha")
    if rec["adv"] == "none":
        for k in ("adv_eps", "adv_steps", "adv_step"):
            rec.pop(k)
    for k, v in off.items():
        if rec[k] == v:
            rec.pop(k)
    return rec


def describe(obj) -> dict:
    """A protection or countermeasure as it enters a config: its name and every parameter."""
    return {"name": obj.name, **obj.config()}


def rebuild(registry, described: dict):
    """The object a :func:`describe` dict came from."""
    return registry.get(described["name"], **{k: v for k, v in described.items() if k != "name"})


def _seeded(spec: str, seed: int):
    """The protection of ``spec``; a run's seed also seeds the protection's fit unless the spec
    sets its own ``seed`` (so ``grid(seeds=...)`` varies the fit and the classifier together;
    seed 0 is every protection's default, so earlier records keep their keys)."""
    _, kw = registry.parse_spec(spec)
    return protections.get(spec, **({"seed": seed} if seed and "seed" not in kw else {}))


def split_source(spec: str) -> tuple:
    """``"fuse@imagenette:128"`` -> ``("fuse", "imagenette:128")``: a protection spec and the
    dataset its perturbations are made on; ``(spec, None)`` for a spec without ``@``."""
    base, at, source = str(spec).partition("@")
    if not at:
        return spec, None
    if not base.strip() or not source.strip() or "@" in source:
        raise ValueError(f"protection {spec!r}: write NAME@DATASET, e.g. 'fuse@imagenette:128' "
                         "(FUSE made on Imagenette at 128 px)")
    return base.strip(), source.strip()


def dataset_of(key: str) -> str:
    """The dataset name in a data key: ``"imagenette:64/local128"`` -> ``"imagenette:64"``."""
    return key.partition("/")[0]


def transfer_config(source: str, target, n_train, norm, data_root=None) -> dict:
    """The ``"transfer"`` part of a run's config: perturbations made on ``source`` (its data key
    and training-subset size) and moved to the run's data ``target`` (a
    :class:`fuselib.data.DatasetInfo`) by ``method`` (:func:`.transfer.method`)."""
    sinfo = data.info(source, data_root)
    if sinfo.name == target.name:
        raise ValueError(f"perturbations made on {source!r} for a run on the same data: "
                         f"drop '@{source}'")
    transfer.check_classes(len(data.classes(sinfo.name, data_root)),
                           len(data.classes(target.name, data_root)), sinfo.name, target.name)
    return {"data": sinfo.key, "n_train": n_train,
            "method": transfer.method(data.image_size(sinfo.name),
                                      data.image_size(target.name), norm)}


def build_config(protection="none", countermeasure="none", *, arch=None, trainer="fast",
                 scale="ci", seed=0, dataset="cifar10", epochs=None, n_train=None,
                 n_test=None, data_root=None, recipe=None, poison_ratio=1.0, source=None):
    """Resolve names to objects and the full, hashable config of one run:
    ``(config, protection, countermeasure)``. ``"fuse@imagenette:128"`` (or ``source=``, for a
    protection object) makes the perturbations on that dataset (:mod:`.transfer`)."""
    if not 0 <= float(poison_ratio) <= 1:
        raise ValueError(f"poison_ratio must be in [0, 1], got {poison_ratio}")
    if isinstance(protection, str):
        protection, at = split_source(protection)
        if at is not None and source is not None and at != source:
            raise ValueError(f"protection names its source {at!r}, but source={source!r}")
        source = source if at is None else at
    prot = _seeded(protection, int(seed)) if isinstance(protection, str) else protection
    cm = countermeasures.get(countermeasure) if isinstance(countermeasure, str) else countermeasure
    # a training-time defence switches trainer options on; they enter the config (and hash)
    extra = {**cm.recipe, **(recipe or {})}
    r = get_recipe(trainer, **recipe_overrides(scale, trainer, arch, epochs, extra))
    dinfo = data.info(dataset, data_root)
    config = {
        "fuselib": __version__,
        "data": dinfo.key,
        "protection": describe(prot),
        "countermeasure": describe(cm),
        "trainer": trainer,
        "recipe": recipe_config(r),
        "scale": scale,
        "n_train": n_train if n_train is not None else SCALES[scale]["n_train"],
        "n_test": n_test if n_test is not None else SCALES[scale]["n_test"],
        "seed": int(seed),
    }
    if float(poison_ratio) < 1:  # only when set, so the keys of full-poisoning runs stay put
        config["poison_ratio"] = float(poison_ratio)
    if source is not None:  # only when set, like poison_ratio
        config["transfer"] = transfer_config(source, dinfo, config["n_train"],
                                             getattr(prot, "norm", "linf"), data_root)
    return config, prot, cm


def fit_config(config: dict) -> dict:
    """The part of a run's config that its protection's fit depends on. A transfer run's fit is
    the source's: the same fit config (and cached fit) as the protection's own run there."""
    out = {k: config[k] for k in FIT_FIELDS}
    if "transfer" in config:
        out.update(data=config["transfer"]["data"], n_train=config["transfer"]["n_train"])
    return out
