"""Unlearnable data as researchers share it: files of images and labels, read, checked, written.

Four formats (:data:`FORMATS`), each a folder as :func:`write` makes it, or a single file:

* ``png`` — an ImageFolder tree ``DIR/<class>/<index:05d>.png``. The class index is the position
  of the class folder among the sorted folder names (every class gets a folder, even an empty
  one; names that would not sort in label order are prefixed ``00_``, ``01_``, ...). When every
  file stem is an integer (``00042.png``) and no two are equal, the images are read in the order
  of that integer, so a written folder reads back in its original order; otherwise by class
  folder, then by that integer (when all stems are integers) or by path.
* ``npy`` — ``DIR/images.npy`` (uint8 ``(N, H, W, 3)``) and ``DIR/labels.npy`` (int64), or one
  ``.npy`` file of images with the labels in another file (``labels=``: ``.npy``, ``.txt`` with
  one integer a line, or ``.csv`` with one a row, optionally under a header, the last column).
* ``pt`` — ``DIR/data.pt`` (or any ``.pt``/``.pth`` file): ``{"images": uint8 (N, 3, H, W),
  "labels": int64 (N,)}`` (also ``data``/``x`` and ``targets``/``y``), a tuple
  ``(images, labels)``, or a tensor of images alone (labels from ``labels=``). Read with
  ``weights_only=True``: a file cannot run code.
* ``pickle`` — CIFAR's layout: ``DIR/data_batch_1`` (or any number of ``data_batch_*`` files,
  read in the order of their number, or one pickle file), each a dict with ``"data"`` (uint8
  ``(N, 3·H·W)``, each row an image's channels in turn, row-major, as CIFAR stores it) and
  ``"labels"`` (a list); ``batches.meta`` names the classes. Unpickled with an allow-list of
  NumPy's array types only: a shared pickle cannot run code.

Arrays may be ``(N, H, W, 3)`` or ``(N, 3, H, W)``, uint8, another integer type within 0..255,
or floats in ``[0, 1]`` (turned into uint8 by ``round(x·255)``). :func:`read` returns what the
files hold, unconverted; :func:`check` lists every problem with it (fatal: a wrong shape, dtype,
NaN, a value out of range, a label count or value that does not fit) and every warning;
:func:`load` does both and converts, or raises :class:`PoisonError` naming all the problems in
one line.

Reading is bounded (:class:`Limits`): before anything is allocated, an ``.npy`` header's shape
and dtype are checked (an array of Python objects is refused; so is a declared size the file
does not hold), a pickle's or ``.pt`` file's arrays by their declared shapes (a row repeated by
reference, or an expanded tensor, counts whole), and a PNG folder's images by their headers
(each within ``max_pixels``); the whole data set as decoded must fit ``max_bytes``. Each
refusal is one line naming the file and the limit (``fuselib audit --max-gb/--max-pixels``
raise them).
"""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .data import IMAGE_EXTENSIONS
from .utils import MAX_BYTES, TooLarge, check_bytes, check_pixels

FORMATS = ("png", "npy", "pt", "pickle")
META_FILE = "fuselib.json"  # what write() puts beside the data (read by nothing here)
MIN_SIZE = 8                # the smallest image side accepted
MAX_PIXELS = 1024 * 1024    # pixels of one image, by default: far above any test set's size


class PoisonError(ValueError):
    """Data that cannot be read or used as it is; the message names every problem."""


@dataclass
class Limits:
    """What a reader may allocate, checked from declared sizes (an ``.npy`` header, a
    pickle's or tensor's shape, an image's header) before anything is allocated:
    ``max_bytes`` for a whole data set as decoded, ``max_pixels`` for one image file."""
    max_bytes: int = MAX_BYTES
    max_pixels: int = MAX_PIXELS

    def size(self, name, nbytes: int, what: str = "decoded") -> None:
        try:
            check_bytes(name, int(nbytes), self.max_bytes, what=what)
        except TooLarge as e:
            raise PoisonError(str(e)) from None

    def image(self, name, width: int, height: int) -> None:
        try:
            check_pixels(name, width, height, self.max_pixels)
        except TooLarge as e:
            raise PoisonError(str(e)) from None


@dataclass
class Raw:
    """Images and labels as the files hold them (not yet converted)."""
    images: object                  # np.ndarray (N, ...) or a list of (H, W, 3) uint8 arrays
    labels: object                  # np.ndarray or None
    format: str
    path: Path
    classes: list | None = None     # class names (png folders, a pickle's batches.meta)
    files: list | None = None       # png: the image files in their order (relative paths)
    notes: list = field(default_factory=list)  # warnings found while reading


# --------------------------------------------------------------------------- reading
def detect(path) -> str:
    """The format of ``path`` (a file or a folder), or a :class:`PoisonError` saying why none."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p} does not exist")
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix == ".npy":
            return "npy"
        if suffix in (".pt", ".pth"):
            return "pt"
        if suffix in (".pkl", ".pickle") or p.name.startswith(("data_batch", "test_batch")):
            return "pickle"
        raise PoisonError(f"{p}: cannot tell its format from its name (.npy, .pt, .pth, .pkl, "
                          "data_batch_*; or a folder)")
    if (p / "images.npy").is_file():
        return "npy"
    if (p / "data.pt").is_file():
        return "pt"
    if _batches(p):
        return "pickle"
    if any(d.is_dir() and not d.name.startswith(".") for d in p.iterdir()):
        return "png"
    raise PoisonError(f"{p}: a folder without class sub-folders, images.npy, data.pt or "
                      "data_batch_* files")


def read(path, labels=None, limits: Limits | None = None) -> Raw:
    """What ``path`` holds, unconverted (see the module's formats); ``labels`` a file of labels
    that replaces (or, for a lone images ``.npy``, supplies) the data's own. Every declared
    size is checked against ``limits`` (default :class:`Limits`) before it is allocated."""
    p = Path(path)
    lim = limits or Limits()
    fmt = detect(p)
    if fmt == "png":
        if labels is not None:
            raise PoisonError(f"{p}: a folder of images takes its labels from its class "
                              "folders; drop the labels file")
        raw = _read_png(p, lim)
    elif fmt == "npy":
        raw = _read_npy(p, lim)
    elif fmt == "pt":
        raw = _read_pt(p, lim)
    else:
        raw = _read_pickle(p, lim)
    if labels is not None:
        raw.labels = read_labels(labels, lim)
    return raw


def load_npy(f: Path, limits: Limits) -> np.ndarray:
    """An ``.npy`` file, its header checked first: an array of numbers (not of Python
    objects), whose declared size the file holds and the limit allows."""
    with open(f, "rb") as fh:
        try:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                shape, _, dtype = np.lib.format._read_array_header(fh, version)
        except Exception as e:  # noqa: BLE001 - whatever numpy says: one line naming the file
            raise PoisonError(f"{f}: not a readable .npy file ({type(e).__name__}: "
                              f"{(str(e).splitlines() or [''])[0][:100]})") from None
        offset = fh.tell()
    if dtype.hasobject:
        raise PoisonError(f"{f}: an array of Python objects (dtype {dtype}); arrays of numbers "
                          "are needed (uint8 or float images, integer labels)")
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    held = f.stat().st_size - offset
    if declared > held:
        raise PoisonError(f"{f}: its header declares {tuple(shape)} {dtype} "
                          f"({declared:,} bytes) but the file holds {held:,}: truncated, or "
                          "not what it says")
    limits.size(f, declared)
    return np.load(f, allow_pickle=False)


def read_labels(path, limits: Limits | None = None) -> np.ndarray:
    """Labels from a ``.npy`` file, a ``.txt`` file (one a line) or a ``.csv`` file (one a row,
    the last column, under an optional header)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"labels file {p} does not exist")
    suffix = p.suffix.lower()
    limits = limits or Limits()
    if suffix == ".npy":
        return load_npy(p, limits)
    if suffix not in (".txt", ".csv"):
        raise PoisonError(f"labels file {p}: expected .npy, .txt or .csv")
    limits.size(p, p.stat().st_size, "of text")
    values = []
    lines = p.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        if suffix == ".csv":
            text = text.split(",")[-1].strip().strip('"')
        try:
            values.append(float(text))
        except ValueError:
            if i == 1 and suffix == ".csv":
                continue  # a header
            raise PoisonError(f"labels file {p}, line {i}: {line.strip()[:40]!r} is not a "
                              "number") from None
    arr = np.asarray(values)
    whole = np.isfinite(arr).all() and np.all(arr == np.round(arr)) and (
        arr.size == 0 or np.abs(arr).max() < 2**62)
    return arr.astype(np.int64) if whole else arr  # else reported: not integers


def _read_npy(p: Path, limits: Limits) -> Raw:
    f = p / "images.npy" if p.is_dir() else p
    images = load_npy(f, limits)
    lab = f.with_name("labels.npy")
    labels = load_npy(lab, limits) if lab.is_file() and lab != f else None
    return Raw(images, labels, "npy", p)


def _declared(x) -> int:
    """Bytes ``x`` takes once made one array: a tensor's or array's shape (a view that
    repeats its data, as an expanded tensor, counts whole), a list by its length times its
    first element's size (a Python number: 8 bytes)."""
    if isinstance(x, torch.Tensor):
        return x.numel() * x.element_size()
    if isinstance(x, np.ndarray):
        return x.size * x.itemsize
    if isinstance(x, (bytes, bytearray, str)):
        return len(x)
    if isinstance(x, (list, tuple)):
        return len(x) * (_declared(x[0]) if len(x) else 0)
    return 8


def _read_pt(p: Path, limits: Limits) -> Raw:
    f = p / "data.pt" if p.is_dir() else p
    limits.size(f, f.stat().st_size, "on disk")
    try:
        obj = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - whatever torch raised, one line naming the file
        raise PoisonError(f"{f}: not a readable tensor file ({type(e).__name__}: "
                          f"{(str(e).strip().splitlines() or [''])[0][:120]})") from e
    images = labels = None
    if isinstance(obj, dict):
        images = next((obj[k] for k in ("images", "data", "x") if k in obj), None)
        labels = next((obj[k] for k in ("labels", "targets", "y") if k in obj), None)
        if images is None:
            raise PoisonError(f"{f}: a dict without 'images' (keys: {', '.join(map(str, obj))})")
    elif isinstance(obj, (tuple, list)) and len(obj) == 2:
        images, labels = obj
    elif isinstance(obj, torch.Tensor):
        images = obj
    else:
        raise PoisonError(f"{f}: holds a {type(obj).__name__}; expected a dict with images "
                          "and labels, a tuple (images, labels) or a tensor of images")
    limits.size(f, _declared(images) + _declared(labels))
    return Raw(_numpy(images), None if labels is None else _numpy(labels), "pt", p)


def _numpy(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


class _ArraysOnly(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays; refuses every other class (no code runs)."""
    ALLOWED = {*((core, name) for core in ("numpy.core.multiarray", "numpy._core.multiarray")
                 for name in ("_reconstruct", "scalar")),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise PoisonError(f"the pickle holds {module}.{name}, which is not an array; "
                              "refused (a pickle can run code)")
        return super().find_class(module, name)


def _unpickle(f: Path, limits: Limits) -> dict:
    limits.size(f, f.stat().st_size, "on disk")
    try:
        obj = _ArraysOnly(io.BytesIO(f.read_bytes()), encoding="latin1").load()
    except PoisonError as e:
        raise PoisonError(f"{f}: {e}") from None
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file: one line naming it
        raise PoisonError(f"{f}: not a readable pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise PoisonError(f"{f}: holds a {type(obj).__name__}, not a CIFAR-style dict")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batches(folder: Path) -> list:
    def number(f):
        m = re.search(r"(\d+)$", f.name)
        return int(m.group(1)) if m else 0

    return sorted((f for f in folder.glob("data_batch*") if f.is_file()), key=number)


def _read_pickle(p: Path, limits: Limits) -> Raw:
    files = _batches(p) if p.is_dir() else [p]
    xs, ys = [], []
    total = 0
    for f in files:
        d = _unpickle(f, limits)
        if "data" not in d:
            raise PoisonError(f"{f}: a dict without 'data' (keys: {', '.join(map(str, d))})")
        y = next((d[k] for k in ("labels", "fine_labels") if k in d), None)
        total += _declared(d["data"]) + _declared(y)
        limits.size(f, total)
        x = np.asarray(d["data"])
        if x.ndim == 2:  # CIFAR: one row of 3·H·W values an image, channel by channel
            side = int(round((x.shape[1] / 3) ** 0.5))
            if 3 * side * side != x.shape[1]:
                raise PoisonError(f"{f}: rows of {x.shape[1]} values are not square 3-channel "
                                  "images (3·H·H)")
            x = x.reshape(-1, 3, side, side)
        xs.append(x)
        ys.append(None if y is None else np.asarray(y))
    images = np.concatenate(xs) if len(xs) > 1 else xs[0]
    labels = None if any(y is None for y in ys) else (np.concatenate(ys) if len(ys) > 1
                                                      else ys[0])
    meta = (p if p.is_dir() else p.parent) / "batches.meta"
    classes = None
    if meta.is_file():
        names = _unpickle(meta, limits).get("label_names")
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names] if names else None
    return Raw(images, labels, "pickle", p, classes=classes)


def _headers(root: Path, entries, limits: Limits) -> None:
    """Every image's size from its header, checked before any is decoded: each within
    ``limits.max_pixels``, all together within ``limits.max_bytes`` as RGB."""
    from PIL import Image

    total = 0
    for _, rel in entries:
        try:
            with Image.open(root / rel) as im:
                w, h = im.size
        except Exception as e:  # noqa: BLE001 - name the file whatever Pillow raised
            raise PoisonError(f"{root / rel}: not a readable image ({type(e).__name__})") from e
        limits.image(root / rel, w, h)
        total += 3 * w * h
        limits.size(root, total, f"decoded as RGB (counted up to {rel})")


def _read_png(root: Path, limits: Limits) -> Raw:
    from PIL import Image

    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    entries = []  # (class index, relative path)
    for k, d in enumerate(class_dirs):
        entries += [(k, f.relative_to(root)) for f in sorted(d.rglob("*"))
                    if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
                    and not any(part.startswith(".") for part in f.relative_to(root).parts)]
    if not entries:
        raise PoisonError(f"{root}: no images in its class folders")
    stems = [rel.stem for _, rel in entries]
    if all(re.fullmatch(r"\d+", s) for s in stems):
        numbers = [int(s) for s in stems]
        unique = len(set(numbers)) == len(numbers)
        order = sorted(range(len(entries)),
                       key=(lambda i: numbers[i]) if unique else (lambda i: (entries[i][0],
                                                                              numbers[i])))
        entries = [entries[i] for i in order]
    _headers(root, entries, limits)
    images, notes, modes = [], [], {}
    for _, rel in entries:
        try:
            with Image.open(root / rel) as im:
                if im.mode != "RGB":
                    modes[im.mode] = modes.get(im.mode, 0) + 1
                images.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
        except Exception as e:  # noqa: BLE001 - name the file whatever Pillow raised
            raise PoisonError(f"{root / rel}: not a readable image ({type(e).__name__})") from e
    if modes:
        notes.append(f"{sum(modes.values())} image(s) not stored as RGB, converted to RGB: "
                     + ", ".join(f"{n} {m}" for m, n in sorted(modes.items())))
    labels = np.array([k for k, _ in entries], dtype=np.int64)
    return Raw(images, labels, "png", root, classes=[d.name for d in class_dirs],
               files=[rel for _, rel in entries], notes=notes)


# --------------------------------------------------------------------------- checking
def _channels_axis(shape) -> int | None:
    """1 for (N, 3, H, W), 3 for (N, H, W, 3), None when neither axis holds 3 channels."""
    if shape[1] == 3:
        return 1
    if shape[3] == 3:
        return 3
    return None


def check(raw: Raw, test_classes=None, need_labels: bool = True):
    """``(problems, warnings)``: every reason the data cannot be used (each one line), and what
    is odd but usable. ``test_classes``: the test set's class names (their number bounds the
    labels)."""
    problems, warnings = [], list(raw.notes)
    images = raw.images
    if isinstance(images, list):  # image files: one size for all is required
        sizes = {}
        for i, a in enumerate(images):
            sizes.setdefault(a.shape[:2], []).append(i)
        if len(sizes) > 1:
            common = max(sizes, key=lambda s: len(sizes[s]))
            odd = next(i for s, idx in sizes.items() if s != common for i in idx)
            problems.append(f"images of {len(sizes)} sizes: {len(sizes[common])} of "
                            f"{common[0]}×{common[1]}, others such as {raw.files[odd]} "
                            f"({images[odd].shape[0]}×{images[odd].shape[1]}); one size needed")
            images = None
        else:
            images = np.stack(images)
    n = None
    if images is not None:
        n, shape_problems = _check_images(np.asarray(images))
        problems += shape_problems
        if not shape_problems and images.dtype.kind == "f":
            warnings.append(f"float images ({images.dtype}) in [0, 1] converted to uint8 with "
                            "round(x·255)")
    n_classes = len(test_classes) if test_classes is not None else None
    if raw.labels is None:
        if need_labels:
            problems.append("no labels (give a labels file: .npy, .txt or .csv)")
    else:
        problems += _check_labels(np.asarray(raw.labels), n, n_classes)
        y = np.asarray(raw.labels)
        if n_classes and not problems and y.size:
            used = len(np.unique(y))
            if used < n_classes:
                warnings.append(f"the labels use {used} of the test set's {n_classes} classes")
    if raw.classes is not None and test_classes is not None:
        if raw.format == "png" and len(raw.classes) != len(test_classes):
            problems.append(f"{len(raw.classes)} class folders, the test set has "
                            f"{len(test_classes)} classes")
        elif list(raw.classes) != [str(c) for c in test_classes] and not all(
                re.sub(r"^\d+_", "", a) == str(b) for a, b in zip(raw.classes, test_classes)):
            warnings.append(f"class names {', '.join(raw.classes[:3])}... are not the test "
                            f"set's ({', '.join(map(str, test_classes[:3]))}...); label k is "
                            "tested as the test set's class k")
    return problems, warnings


def _check_images(x: np.ndarray):
    problems = []
    if x.ndim != 4:
        return None, [f"images of shape {tuple(x.shape)}: 4 axes needed, (N, H, W, 3) or "
                      "(N, 3, H, W)"]
    axis = _channels_axis(x.shape)
    if axis is None:
        channels = x.shape[3] if x.shape[3] <= 4 else x.shape[1]
        problems.append(f"images of shape {tuple(x.shape)}: {channels} channel(s), 3 (RGB) "
                        "needed, as (N, H, W, 3) or (N, 3, H, W)")
    else:
        h, w = (x.shape[2], x.shape[3]) if axis == 1 else (x.shape[1], x.shape[2])
        if min(h, w) < MIN_SIZE:
            problems.append(f"images of {h}×{w} pixels: at least {MIN_SIZE}×{MIN_SIZE} needed")
    if x.shape[0] == 0:
        problems.append("no images (N = 0)")
        return 0, problems
    kind = x.dtype.kind
    if kind == "f":
        bad = ~np.isfinite(x)
        if bad.any():
            n_bad = int(bad.reshape(x.shape[0], -1).any(1).sum())
            problems.append(f"{n_bad} image(s) hold NaN or infinite values (e.g. image "
                            f"{int(np.argwhere(bad)[0][0])})")
        else:
            lo, hi = float(x.min()), float(x.max())
            if lo < 0 or hi > 1:
                problems.append(f"float values outside [0, 1] (min {lo:.4g}, max {hi:.4g}); "
                                "floats are read as [0, 1] (for 0-255 values, give uint8)")
    elif kind in "iu":
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi > 255:
            problems.append(f"integer values outside 0..255 (min {lo}, max {hi})")
    else:
        problems.append(f"images of dtype {x.dtype}: uint8 (0..255) or float ([0, 1]) needed")
    return x.shape[0], problems


def _check_labels(y: np.ndarray, n, n_classes):
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        return [f"labels of shape {tuple(y.shape)}: one label an image needed"]
    problems = []
    if n is not None and y.shape[0] != n:
        problems.append(f"{y.shape[0]} labels for {n} images")
    if y.dtype.kind == "f":
        finite = np.isfinite(y)
        if not finite.all() or not np.all(y[finite] == np.round(y[finite])):
            bad = int(np.argwhere(~finite | (y != np.round(np.nan_to_num(y))))[0][0])
            return problems + [f"labels are not integers (e.g. {y[bad].item()!r} at index "
                               f"{bad})"]
    elif y.dtype.kind not in "iu":
        return problems + [f"labels of dtype {y.dtype}: integers needed"]
    if y.size:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0:
            problems.append(f"negative labels (min {lo}, at index {int(np.argmin(y))})")
        if n_classes is not None and hi >= n_classes:
            problems.append(f"labels up to {hi}, but the test set has {n_classes} classes "
                            f"(0..{n_classes - 1}); {int((y >= n_classes).sum())} out of range")
    return problems


def tensors(raw: Raw):
    """Checked data as ``(uint8 images (N, 3, H, W), int64 labels (N,) or None)``."""
    x = np.stack(raw.images) if isinstance(raw.images, list) else np.asarray(raw.images)
    if _channels_axis(x.shape) == 3:
        x = x.transpose(0, 3, 1, 2)
    out = np.empty(x.shape, dtype=np.uint8)  # converted a slice at a time: no float64 copy
    for i in range(0, x.shape[0], 256):
        part = x[i:i + 256]
        out[i:i + 256] = np.round(part.astype(np.float64) * 255) if part.dtype.kind == "f" \
            else part
    images = torch.from_numpy(out)
    labels = None
    if raw.labels is not None:
        labels = torch.from_numpy(np.asarray(raw.labels).reshape(-1).astype(np.int64))
    return images, labels


def load(path, labels=None, test_classes=None, need_labels: bool = True,
         limits: Limits | None = None):
    """``(images, labels, raw, warnings)`` from ``path``: read (within ``limits``), checked,
    converted; a :class:`PoisonError` naming every problem (one line) when there is any."""
    raw = read(path, labels, limits)
    problems, warnings = check(raw, test_classes, need_labels)
    if problems:
        raise PoisonError(f"{path}: " + "; ".join(problems))
    images, y = tensors(raw)
    return images, y, raw, warnings


# --------------------------------------------------------------------------- writing
def check_new(dest) -> Path:
    """``dest`` may be written: it does not exist or is an empty folder (else one line why)."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise FileExistsError(f"{dest} exists and is a file; give a new folder")
    if dest.is_dir() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty; give a new or empty folder")
    return dest


def class_folders(classes) -> list:
    """Folder names for ``classes`` that sort in label order (``NN_`` prefixes when needed)."""
    names = [re.sub(r"[\\/]", "_", str(c)) or f"class{k}" for k, c in enumerate(classes)]
    if sorted(names) == names and len(set(names)) == len(names):
        return names
    width = len(str(len(names) - 1))
    return [f"{k:0{width}d}_{c}" for k, c in enumerate(names)]


def stage(images: torch.Tensor, labels: torch.Tensor, dest, fmt: str, classes=None,
          meta: dict | None = None) -> Path:
    """Write uint8 ``images`` (N, 3, H, W) and int64 ``labels`` in ``fmt`` into a temporary
    folder beside ``dest`` (with ``meta`` as ``fuselib.json``); :func:`commit` renames it."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    dest = check_new(dest)
    n_classes = len(classes) if classes is not None else int(labels.max()) + 1
    classes = list(classes) if classes is not None else [str(k) for k in range(n_classes)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp", dir=dest.parent))
    try:
        hwc = images.permute(0, 2, 3, 1).contiguous().numpy()
        y = labels.to(torch.int64)
        if fmt == "png":
            from PIL import Image

            folders = class_folders(classes)
            for name in folders:
                (tmp / name).mkdir()
            for i, (img, k) in enumerate(zip(hwc, y.tolist())):
                Image.fromarray(img).save(tmp / folders[k] / f"{i:05d}.png", format="PNG")
        elif fmt == "npy":
            np.save(tmp / "images.npy", hwc)
            np.save(tmp / "labels.npy", y.numpy())
        elif fmt == "pt":
            torch.save({"images": images.contiguous().clone(), "labels": y.clone()},
                       tmp / "data.pt")
        else:
            batch = {"batch_label": "fuselib export", "labels": y.tolist(),
                     "data": images.reshape(images.shape[0], -1).contiguous().numpy(),
                     "filenames": [f"{i:05d}.png" for i in range(images.shape[0])]}
            with open(tmp / "data_batch_1", "wb") as f:
                pickle.dump(batch, f, protocol=2)
            with open(tmp / "batches.meta", "wb") as f:
                pickle.dump({"label_names": classes, "num_cases_per_batch": images.shape[0],
                             "num_vis": int(np.prod(images.shape[1:]))}, f, protocol=2)
        if meta is not None:
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1, default=str))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def commit(tmp: Path, dest) -> Path:
    """Rename a :func:`stage`\\ d folder to ``dest`` (an empty ``dest`` is replaced)."""
    dest = check_new(dest)
    if dest.is_dir():
        dest.rmdir()
    tmp.rename(dest)
    return dest


def write(images, labels, dest, fmt: str, classes=None, meta: dict | None = None) -> Path:
    """:func:`stage` then :func:`commit`: ``dest`` appears whole or not at all."""
    return commit(stage(images, labels, dest, fmt, classes, meta), dest)


__all__ = ["FORMATS", "Limits", "PoisonError", "Raw", "check", "check_new", "class_folders",
           "commit", "detect", "load", "load_npy", "read", "read_labels", "stage", "tensors",
           "write"]
