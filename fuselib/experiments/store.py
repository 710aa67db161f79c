"""Where results live: the result cache, the shipped records, trained classifiers, the host.

Every result is a JSON file under the results directory (``$FUSELIB_RESULTS``, else
``results/cache`` in a source checkout, else ``~/.cache/fuselib/results``) named by the hash
of its complete config (:func:`config_key`). A file that cannot be read, or whose config does
not match, is ignored and recomputed, never trusted. Fitted protections are kept beside the
results (``protections/<key>.pt`` with a ``.json`` of their fit time and host), trained
classifiers in ``models/`` (cache only; an unreadable one is ignored with a warning naming it),
interrupted runs' checkpoints in ``partial/``. Commands check that the cache can be written
(:func:`check_results_writable`) before they train anything whose result it would keep.

Measured records ship with the repository in ``results/measured/`` (``$FUSELIB_MEASURED``),
looked up after the cache under the same key and config check; ``FUSELIB_RECOMPUTE=1``
switches them off.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
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


def writable_dir(folder, what: str | None = None) -> Path:
    """``folder``, created if missing and probed with a temporary file; an OSError of one line
    naming it (as ``what``, default the path) when it cannot be written. Called before any
    work, so that a run does not train for minutes and then fail to keep its result."""
    folder = Path(folder)
    what = what or str(folder)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise NotADirectoryError(f"{what} cannot be written: {existing} is a file")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".fuselib-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise type(e)(f"{what} cannot be written: {e.strerror or e}") from e
    return folder


def check_results_writable() -> Path:
    """The results cache, checked writable (:func:`writable_dir`) before a run that will keep
    its result there; the error names ``FUSELIB_RESULTS`` when that chose the folder."""
    d = results_dir()
    named = "FUSELIB_RESULTS=" if os.environ.get("FUSELIB_RESULTS") else ""
    try:
        return writable_dir(d, f"the results cache {named}{d}")
    except OSError as e:
        raise type(e)(f"{e} (set FUSELIB_RESULTS to a writable folder, or do not cache: "
                      f"--no-cache, cache=False)") from e


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


def stamp(t0: float, device=None) -> dict:
    """The fields a record ends with: its ``seconds`` since ``t0`` (``time.perf_counter``),
    when it was made, torch's version and the host."""
    import time

    return {"seconds": time.perf_counter() - t0, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "torch": torch.__version__, "host": host(device)}


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


def model_path(config: dict) -> Path:
    """Where the classifier a cached run of ``config`` trained is kept (it may be absent)."""
    return results_dir() / "models" / f"{config_key(config)}.pt"


def trained_model(config: dict, device=None):
    """The classifier a cached run of ``config`` trained (in eval mode), or None when its
    weights are not in the cache (shipped records carry none: retrain with ``run``) or cannot
    be read (a warning names the file)."""
    from .. import models

    f = model_path(config)
    if not f.is_file():
        return None
    r = Recipe(**config["recipe"])
    try:
        saved = torch.load(f, map_location="cpu", weights_only=True)
        c, h, _ = saved["image_shape"]
        model = models.get(r.arch, saved["num_classes"], image_size=h, in_channels=c,
                           **r.model_kwargs)
        model.load_state_dict(saved["state"])
    except Exception as e:  # noqa: BLE001 - like a corrupt record: never trusted, recomputed
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0]
        warnings.warn(f"ignoring the unreadable cached classifier {f} ({reason}); "
                      "it is trained again", stacklevel=2)
        return None
    model = model.to(device or default_device())
    if r.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model.eval()
