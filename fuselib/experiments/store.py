"""Where results live: the result cache, the shipped records, trained classifiers, the host.

Every result is a JSON file under the results directory (``$FUSELIB_RESULTS``, else
``results/cache`` in a source checkout, else ``~/.cache/fuselib/results``) named by the hash
of its complete config (:func:`config_key`). A file that cannot be read, or whose config does
not match, is ignored and recomputed, never trusted. Fitted protections are kept beside the
results (``protections/<key>.pt`` with a ``.json`` of their fit time and host), trained
classifiers in ``models/`` (cache only), interrupted runs' checkpoints in ``partial/``.

Measured records ship with the repository in ``results/measured/`` (``$FUSELIB_MEASURED``),
looked up after the cache under the same key and config check; ``FUSELIB_RECOMPUTE=1``
switches them off.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ..train import Recipe, bf16_ok
from ..utils import atomic_save, default_device, write_json

REQUIRED = ("key", "config", "accuracy", "peak_accuracy", "curve", "seconds")
REPO = Path(__file__).resolve().parent.parent.parent  # a source checkout's root


def results_dir() -> Path:
    if os.environ.get("FUSELIB_RESULTS"):
        return Path(os.environ["FUSELIB_RESULTS"])
    if (REPO / "pyproject.toml").is_file():
        return REPO / "results" / "cache"
    return Path.home() / ".cache" / "fuselib" / "results"


def shipped_dir() -> Path:
    """Where the shipped records of a source checkout are (whether or not switched on)."""
    return REPO / "results" / "measured"


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
        d = shipped_dir()
    return d if d.is_dir() else None


def lookup(name: str, measured: bool = True) -> list:
    """Where a cached file may be: the cache first, then the shipped records."""
    places = [results_dir() / name]
    m = measured_dir() if measured else None
    if m is not None:
        places.append(m / name)
    return places


def config_key(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def as_json(obj):
    """``obj`` as it reads back from JSON (tuples become lists, odd types strings)."""
    return json.loads(json.dumps(obj, default=str))


def host(device=None) -> dict:
    """Where a record was computed: CPU model, threads, device, and whether ``amp="auto"``
    trains in bf16 there. The same config trains to slightly different numbers on machines
    with and without native bf16 (or another CPU's kernels), so records carry this."""
    import platform

    dev = torch.device(device) if device is not None else default_device()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "threads": torch.get_num_threads(), "device": str(dev),
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
            "bf16_autocast": bf16_ok(dev)}


def find_json(name: str, field: str, want, measured: bool = True):
    """The first readable JSON record called ``name`` (the cache, then the shipped records)
    whose ``field`` equals ``want``; None when there is none."""
    for place in lookup(name, measured):
        try:
            obj = json.loads(place.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(obj, dict) and obj.get(field) == want:
            return obj
    return None


def read_record(path: Path, key: str):
    """The run record at ``path`` if it is one, complete, of ``key``; else None."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(obj, dict) or obj.get("key") != key or any(k not in obj for k in REQUIRED):
        return None
    return obj


def write_record(name: str, obj) -> Path:
    """Write a JSON record into the cache (atomically)."""
    return write_json(results_dir() / name, obj)


# --------------------------------------------------------------------------- classifiers
def keep_models() -> bool:
    """Whether runs keep their classifier's weights in the cache (``FUSELIB_KEEP_MODELS``, on
    by default; ``0`` turns it off: a few MB a run at ci/cpu scale, ~100 MB a ResNet-50 run)."""
    return os.environ.get("FUSELIB_KEEP_MODELS", "1") not in ("", "0", "false", "no")


def save_model(model, key: str, num_classes: int, image_shape) -> None:
    """The trained classifier's weights beside its record, in the cache only (``models/``;
    never exported: a few MB a run). :func:`trained_model` loads them."""
    atomic_save({"state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                 "num_classes": int(num_classes), "image_shape": [int(v) for v in image_shape]},
                results_dir() / "models" / f"{key}.pt")


def trained_model(config: dict, device=None):
    """The classifier a cached run of ``config`` trained (in eval mode), or None when its
    weights are not in the cache (shipped records carry none: retrain with ``run``)."""
    from .. import models

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
