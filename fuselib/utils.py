"""The ground floor's helpers: writing files atomically, loading checkpoints (and timing the
fits that write them), choosing the device, progress bars.

Every file fuselib writes goes through :func:`atomic_write`: to a temporary name beside the
target, then renamed over it, so a reader (or a rerun after Ctrl-C) never meets a half-written
file, and a failed write leaves no temporary behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch


# --------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_write(path, suffix: str = ""):
    """``with atomic_write(path) as tmp: <write tmp>`` — renamed to ``path`` when the block
    ends without an error, removed when it raises. ``suffix`` keeps an extension on the
    temporary name for writers that choose their format by it (matplotlib, Pillow)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_save(obj, path) -> Path:
    """``torch.save`` to a temporary name beside ``path``, then rename: never half-written."""
    with atomic_write(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def write_json(path, obj) -> Path:
    """``obj`` as indented JSON at ``path``, atomically."""
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, default=str))
    return Path(path)


def write_text(path, text: str) -> Path:
    with atomic_write(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def copy_file(src, dest) -> Path:
    """Copy ``src`` to the file ``dest``, atomically."""
    with atomic_write(dest) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dest)


# --------------------------------------------------------------------------- checkpoints
def load_checkpoint(path, fmt: str, stamp: dict, what: str) -> dict | None:
    """The checkpoint at ``path``, or None when there is none (or no path). Every resumable
    loop (training, FUSE, EM and PUE fits) loads through here: a file of another kind (its
    ``format`` is not ``fmt``) or of another run (an entry of ``stamp`` differs; inside a dict,
    by key, e.g. ``config.eps``) is a one-line error that names what differs."""
    if not path or not os.path.isfile(path):
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise ValueError(f"{path} is not a checkpoint of {what} ({fmt}); remove it")
    differs = _differs(state, stamp)
    if differs:
        raise ValueError(f"{path} was written by another run (differs in: {', '.join(differs)}); "
                         f"remove it or run again with the same settings and data")
    return state


def _differs(saved: dict, stamp: dict, keys=None, prefix: str = "") -> list[str]:
    """The entries of ``keys`` (default: the stamp's) whose values differ, named with dots
    inside dicts, where a key that only one side has differs too."""
    out = []
    for k in (stamp if keys is None else keys):
        have, want = saved.get(k), stamp.get(k)
        if isinstance(have, dict) and isinstance(want, dict):
            out += _differs(have, want, sorted(have.keys() | want.keys()), f"{prefix}{k}.")
        elif json.dumps(have, sort_keys=True, default=str) != json.dumps(want, sort_keys=True,
                                                                         default=str):
            out.append(f"{prefix}{k}")
    return out


class FitClock:
    """The time a resumable fit has taken, across stops: the seconds its checkpoint carried in
    (``before``, 0 for a fresh fit) plus those since the clock was made. A fit makes one when it
    starts, stores :meth:`seconds` in each checkpoint and calls :meth:`resume` on the state it
    loads, so a fit stopped and resumed reports its whole time (FUSE, EM and PUE fits)."""

    def __init__(self):
        self.before, self._start = 0.0, time.perf_counter()

    def resume(self, saved: dict) -> None:
        self.before = float(saved.get("seconds", 0.0))

    def seconds(self) -> float:
        return self.before + time.perf_counter() - self._start


# --------------------------------------------------------------------------- device
def default_device() -> torch.device:
    """CUDA when there is a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --------------------------------------------------------------------------- progress
def show_progress(flag=None) -> bool:
    """Progress bars: on in a terminal or a live Jupyter kernel, off in batch logs and CI
    (``FUSELIB_PROGRESS=0`` turns them off everywhere, ``=1`` on)."""
    env = os.environ.get("FUSELIB_PROGRESS")
    if flag is not None:
        return bool(flag)
    if env is not None:
        return env not in ("0", "false", "no", "")
    if os.environ.get("CI"):
        return False
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def progress_bar(total: int, desc: str, enabled=None):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not show_progress(enabled), leave=False)


def status_mb(key: str = "VmRSS") -> float | None:
    """A memory line of Linux's ``/proc/self/status`` in MB: ``VmRSS`` (resident now) or
    ``VmHWM`` (its peak, which writing "5" to ``/proc/self/clear_refs`` resets); None where
    there is no /proc."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MB (None where unknown)."""
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    except (ImportError, OSError):  # not on Windows
        return None
