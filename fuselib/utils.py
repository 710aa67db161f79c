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


# --------------------------------------------------------------------------- one writer per output
class Busy(RuntimeError):
    """Another process holds the lock of an output (one line: who, where, since when)."""


def lock_path(target) -> Path:
    """Where the lock of the output ``target`` (a folder or file) lives: beside it, as
    ``.NAME.lock``, so that a folder renamed into place is covered as well as one written
    into."""
    target = Path(os.path.abspath(target))
    return target.with_name(f".{target.name}.lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextlib.contextmanager
def output_lock(target, what: str = "output", wait: float = 0.0):
    """Hold the lock of ``target`` for the block: one writer per output. The lock file is
    created exclusively and holds the holder's pid, host and start time; a lock left by a
    process of this host that no longer runs (killed) is stale and taken over; any other is
    :class:`Busy`, naming its holder, at once or after ``wait`` seconds of retrying (for
    writers meant to take turns, such as side-by-side grid workers shipping records). The
    lock is removed when the block ends."""
    import socket

    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    me = json.dumps({"pid": os.getpid(), "host": host,
                     "since": time.strftime("%Y-%m-%dT%H:%M:%S")})
    deadline, tries = time.monotonic() + wait, 0
    while not _create(path, me, what, target):
        tries += 1
        text, holder = _holder(path)
        if holder.get("host") == host and not _alive(holder["pid"]) or not holder and _old(path):
            _take_stale(path, text)
            if tries < 5:
                continue
        if time.monotonic() < deadline:
            time.sleep(0.2)
            continue
        raise Busy(f"{what} {target} is being written by another fuselib process (pid "
                   f"{holder.get('pid', '?')} on {holder.get('host', '?')}, since "
                   f"{holder.get('since', '?')}); wait for it to end, or remove {path} if that "
                   "process is gone")
    for left in path.parent.glob(f"{path.name}.tmp*"):  # of lockers killed before linking
        pid = left.name.rpartition(".tmp")[2]
        if pid.isdigit() and not _alive(int(pid)):
            left.unlink(missing_ok=True)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            if path.read_text() == me:
                path.unlink()


def _create(path: Path, me: str, what: str, target) -> bool:
    """Create the lock file ``path`` holding ``me``, whole: written to a temporary file, then
    hard-linked to ``path`` (which fails when it exists), so that a process killed at any
    point never leaves an empty lock; where links are not supported, created exclusively
    and written. False when the lock exists already."""
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(me)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # no hard links here (FAT, some network file systems)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
        return True
    except OSError as e:
        raise OSError(f"cannot create the lock file {path} beside {what} {target} "
                      f"({e.strerror}); the folder holding it must be writable") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _holder(path: Path):
    """``(text, {"pid", "host", "since"})`` of a lock file; ``(None, {})`` when unreadable."""
    try:
        text = path.read_text()
        holder = json.loads(text)
        return text, {**holder, "pid": int(holder["pid"]), "host": str(holder["host"])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, {}


def _take_stale(path: Path, text) -> None:
    """Remove the stale lock ``path`` whose content was ``text``: moved aside first and
    checked, so that a fresh lock another process took meanwhile is put back, not removed."""
    aside = path.with_name(f"{path.name}.stale{os.getpid()}")
    try:
        os.replace(path, aside)
    except OSError:
        return
    try:
        if text is not None and aside.read_text() != text:  # not the stale one: put it back
            with contextlib.suppress(OSError):
                os.link(aside, path)
    finally:
        with contextlib.suppress(OSError):
            aside.unlink()


def _old(path: Path, seconds: float = 60.0) -> bool:
    """An unreadable lock file older than ``seconds`` (a holder killed while writing it)."""
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


# --------------------------------------------------------------------------- hashes
def file_sha256(source) -> str:
    """SHA-256 of a file (a path, or a binary file object from where it stands), read in
    1 MiB pieces: a file of any size, in constant memory."""
    import hashlib

    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            return file_sha256(fh)
    h = hashlib.sha256()
    for block in iter(lambda: source.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- file names in text
def escape_name(name: str) -> str:
    """A file name (a ``str`` as :func:`os.fsdecode` gives it, which may carry bytes that are
    not UTF-8 as lone surrogates) as printable UTF-8 text: every such byte, every control
    character and ``%`` itself become ``%XX`` (the byte in hex); everything else is kept.
    :func:`unescape_name` gives the name back exactly."""
    out = []
    for ch in name:
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:            # a byte that was not UTF-8 (surrogateescape)
            out.append(f"%{o - 0xDC00:02X}")
        elif ch == "%" or o < 0x20 or o == 0x7F or 0xD800 <= o <= 0xDFFF:
            out.append("".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass")))
        else:
            out.append(ch)
    return "".join(out)


def unescape_name(text: str) -> str:
    """The file name :func:`escape_name` wrote as ``text``."""
    import re

    raw = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]),
                 text.encode("utf-8", "surrogateescape"))
    return os.fsdecode(raw)


# --------------------------------------------------------------------------- size limits
MAX_PIXELS = 100_000_000     # pixels of one decoded image, by default (a 100 MP photo)
MAX_BYTES = 4 * 2**30        # bytes of a whole decoded data set, by default (4 GiB)


class TooLarge(ValueError):
    """An input whose declared size is over a limit; one line naming the file and the limit."""


def check_pixels(name, width: int, height: int, limit: int = MAX_PIXELS,
                 flag: str = "--max-pixels") -> None:
    """Refuse an image of ``width × height`` above ``limit`` pixels before it is decoded."""
    pixels = int(width) * int(height)
    if pixels > limit:
        where = f"{name}: " if name else ""
        raise TooLarge(f"{where}{width}×{height} = {pixels:,} pixels, above the limit of "
                       f"{limit:,} pixels an image ({flag} raises it)")


def check_bytes(name, nbytes: int, limit: int = MAX_BYTES, flag: str = "--max-gb",
                what: str = "decoded") -> None:
    """Refuse data that would take ``nbytes`` of memory above ``limit``, before allocating."""
    if nbytes > limit:
        raise TooLarge(f"{name}: {nbytes / 2**30:,.2f} GiB {what}, above the limit of "
                       f"{limit / 2**30:,.2f} GiB ({flag} raises it)")
