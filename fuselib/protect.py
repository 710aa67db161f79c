"""Protect a user's own image folder with FUSE: ``fuselib protect INPUT_DIR OUTPUT_DIR``.

What goes in, what comes out
----------------------------
``INPUT_DIR`` is an ImageFolder tree (``INPUT_DIR/<class>/.../<image>``, any size, any format
Pillow reads). The output mirrors the tree with every readable image written as a lossless PNG
(a lossy format would destroy the perturbation), each within ``‖δ‖∞ ≤ round(ε·255)`` of its
original in every RGB channel, ε ≤ 16/255. ``OUTPUT_DIR/manifest.csv`` has one row for every
file under ``INPUT_DIR``: ``file, output, class, size, psnr_db, max_abs_delta, status,
source_sha256, output_sha256, protection`` (``protection``: a short hash of the class patterns
the output was made with). The manifest is UTF-8; in ``file``, ``output`` and ``class`` every
byte of a name that is not UTF-8, every control character (a newline in a name) and ``%``
itself are written ``%XX`` (the byte in hex; :func:`fuselib.utils.unescape_name` gives the
name back exactly), so any name a file system allows has one row. ``status`` is one of

* ``ok`` — written; ``ok: <notes>`` when something about it is worth knowing: ``EXIF
  orientation 6 applied`` (the photo is written upright, as viewers show it; the output carries
  no EXIF, so no GPS either; an ICC colour profile is kept), ``alpha kept`` (RGBA, LA and
  palette/colour-key transparency: the RGB channels are perturbed, the alpha channel is written
  unchanged into an RGBA PNG), ``16-bit scaled to 8-bit`` (16-bit grayscale: value/257, rounded;
  16-bit RGB: Pillow's high byte; the output is an 8-bit PNG), ``first of N frames only``
  (animated GIF/WebP, multi-page TIFF: the first frame, the one an ImageFolder loader trains on,
  is protected and written; the other frames are not), ``CMYK converted to RGB``;
* ``skipped: <why>`` — not written: not an image (by extension: ``.txt``, ``.DS_Store``, ...),
  unreadable (the decoder's error), more pixels than ``max_pixels`` (``--max-pixels``, default
  100 MP; read from the header, nothing decoded), an output name longer than 255 bytes, a
  dangling symlink, a symlinked folder (not followed), a file
  outside a class folder, a 32-bit integer or float image (mode ``I``/``F``: no defined value
  range, convert it to 8-bit first);
* ``not done: the run stopped before it`` — Ctrl-C or an error stopped the run first (rerun
  with ``--resume``);
* ``stale: ...`` — after ``--resume``: an earlier run's output whose input file is gone (kept,
  listed so that ``--overwrite`` removes it).

Output names: ``name.ext`` becomes ``name.png``. When several inputs of one folder would get
the same name (``p.jpg`` and ``p.png``; names are compared case-insensitively, as macOS and
Windows do), an input already named ``p.png`` keeps ``p.png`` and every other one gets its
whole name plus ``.png`` (``p.jpg.png``); were that taken too, ``p.jpg~2.png``, ``~3``, ...
The manifest's ``output`` column says which is which.

Classes are the non-hidden folders directly under ``INPUT_DIR`` that hold at least one image
file (by extension), in sorted order; a folder without any takes no class index and is reported
as a warning. A single class is refused unless ``force=True`` (``--force``): every image would
get the same pattern, which is a shortcut to nothing unless the data is later mixed with other
classes' data.

Resolution: the working size, and photos of other sizes
-------------------------------------------------------
The class patterns are learned at the working size ``S`` (``size=``, ``--size``; default 64):
FUSE trains its fully convolutional generator on the folder's images centre-cropped to a square
and resized to ``S×S`` (one uint8 tensor ``N×3×S×S``), and each class's pattern is ``3×S×S``.
A photo of any other size gets its class pattern **tiled** at native pixel scale, anchored at
the top-left corner (a photo smaller than ``S`` gets the pattern's top-left ``H×W`` corner).
Why tiling, not resizing the pattern to the photo: a bilinearly stretched ``S×S`` pattern is a
smooth blob at the photo's resolution (from 32 to 1024×768, 99.5% of its DCT energy below
radial frequency 0.031), inside the band of the photo's own content, where random resized crops
scatter it and any low-pass keeps only what the photo itself has. Tiled, the pattern keeps its
whole spectrum at the pixel scale it was trained at, every ``S×S`` crop at native scale (any
offset) sees the same periodic pattern, and nothing is interpolated, so the budget holds
exactly. The price: whoever *downsamples* a photo by a factor ``k`` before training sees the
pattern averaged over ``k×k`` pixels (its lowest ``1/k`` of frequencies). So choose ``S`` as
the resolution the images will be used at, and if they will be used much smaller than they are,
resize the photos to about that size before protecting them.

Training length follows the working size (:func:`default_epochs`): 10 FUSE epochs up to 32 px
(the CIFAR-10 setting), 20 above: at 64 px the 10-epoch fit stops on a loss plateau (the
surrogate still learns the protected data's high band at chance), which a 20-epoch fit gets
past (RESULTS.md measures both: plan ``imagenette`` and ``fuselib protect-proof``). Larger
working sizes (128 px and up) are not measured; give ``epochs`` (``--epochs``) there.

Safety: what is never done
--------------------------
Nothing is written into the input tree or through a symlink: the output folder may not be,
contain or lie inside the input; each target's folder is resolved and must stay inside the
output folder; output folders holding a symlink into the input, or a symlink where a folder or
file is to be written, are refused. A non-empty output folder is refused unless ``resume=True``
(``--resume``: files whose manifest row, source hash, protection hash and output hash all match
are kept, the rest are written) or ``overwrite=True`` (``--overwrite``: the files the earlier
run's manifest lists, and the manifest, are removed first); both refuse a folder holding files
that no earlier run wrote, or an output whose bytes (SHA-256) are none that a run wrote there
(edited since: it is neither replaced nor removed). ``OUTPUT_DIR/protect-run.json`` records what shaped the outputs (the
class list, the checkpoint's SHA-256 or the training settings, the working size): a
``--resume`` that differs in any of them is refused, naming each difference (a class folder
added since would shift every class index). One process at a time writes an output folder:
a lock file beside it (``.OUTPUT_DIR.lock``: pid, host, start time) refuses a second writer in
one line; a lock whose process is gone (killed) is taken over.

Crash consistency: every file is written to a temporary name beside its target and renamed
(atomic), and its row in ``manifest.partial.csv`` (the journal, with the output's hash) is
written and flushed *before* the rename. Wherever the process stops (Ctrl-C, an error, a
kill -9 at any instruction), each file at an output path is listed with its hash (kept by
``--resume`` when it matches) or is a temporary (removed by the next run), so ``--resume``
completes to the bytes of an uninterrupted run (tests/test_crash_consistency.py kills runs at
random lines and checks this). On Ctrl-C the temporary file is removed, the manifest of what
is done is written and :class:`Interrupted` (a ``KeyboardInterrupt``) is raised: the command
line exits with code 130 and one line.

Everything is checked before any image is decoded or any training starts (one-line
:class:`ProtectError`, exit code 2 on the command line): the input folder, the output folder
(not a file, writable, not in the input tree, empty or ``--resume``/``--overwrite``), the
``save_protection`` path (writable, not inside the input or the output: the class patterns are
the key to the protection and must not be published with the data), the arguments, and the
checkpoint: a ``fuse`` protection file (loaded with ``weights_only=True``: a pickle that would
run code is refused), finite class patterns of shape ``(n_classes, 3, h, w)`` with ``h, w ≥ 8``
and at least as many classes as the folder, ``‖δ‖∞ ≤ ε ≤ 16/255``. The budget is checked again
on every image written (``max |out − in| ≤ round(ε·255)``, else the run stops with an error).

Images are read, perturbed and written one at a time, so memory does not grow with the number of
images (training on the spot holds the ``N×3×S×S`` training tensor, nothing larger). An input
is hashed in a stream and decoded from the same open file (a 40 GB file named ``.png`` is never
held whole), and the perturbation runs in bands of rows: protecting a 24 MP photo peaks under
1 GB for the whole process (``bench/protect_memory.py --large``).
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import itertools
import math
import os
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from . import data, protections
from .utils import (MAX_PIXELS, TooLarge, atomic_write, check_pixels, escape_name,
                    file_sha256, output_lock, progress_bar, unescape_name)

MAX_EPS = 16 / 255           # the largest budget protect writes
MIN_SIZE = 8                 # smallest class pattern side accepted (the generator halves twice)
MAX_SIZE = 4096
DEFAULT_SIZE = 64
DEFAULT_TRAINING = {"epochs": None, "portion": 1.0, "batch_size": 128}  # epochs: by size
MANIFEST = "manifest.csv"
JOURNAL = "manifest.partial.csv"
RECORD = "protect-run.json"  # the settings that shaped the outputs: --resume must match them
RECORD_FORMAT = "fuselib.protect-run/1"
NAME_MAX = 255               # bytes in one file name (ext4, APFS, NTFS)
ROWS = 512                   # image rows perturbed at a time: memory stays a few rows' worth
NOT_DONE = "not done: the run stopped before it"
STALE = "stale: written by an earlier run, its input is gone"
FIELDS = ["file", "output", "class", "size", "psnr_db", "max_abs_delta", "status",
          "source_sha256", "output_sha256", "protection"]
_TMP = re.compile(r"^\..+\.tmp\d+$")   # our temporary names: .<name or hash>.tmp<pid>


def default_epochs(size: int) -> int:
    """FUSE fit epochs for class patterns of ``size`` px when none are given: 10 up to 32 px
    (FUSE's CIFAR-10 default), 20 above (10 stop on a loss plateau at 64 px: module docstring)."""
    return 10 if size <= 32 else 20


class ProtectError(ValueError):
    """A bad path, argument or checkpoint, or a broken guarantee: one line that says what to do."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the manifest of what is done has been written (its message says
    where). A ``KeyboardInterrupt``, so it stops a script as Ctrl-C does."""


class Skip(Exception):
    """An input file that is not written; the message is the manifest's reason."""


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _inside(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or below it (both resolved)."""
    return path == folder or folder in path.parents


# --------------------------------------------------------------------------- the input listing
@dataclass
class Entry:
    """One file (or symlinked folder) under the input: where it goes and why not, if not."""
    rel: Path
    cls: str = ""
    label: Optional[int] = None
    output: Optional[Path] = None
    skip: Optional[str] = None     # set when it is known before decoding that it is not written

    @property
    def key(self) -> str:
        return self.rel.as_posix()


def _classify(path: Path) -> Optional[str]:
    """Why ``path`` is not an image candidate (None when it is one)."""
    if path.is_symlink() and not path.exists():
        return "skipped: dangling symlink"
    if path.is_symlink() and path.is_dir():
        return "skipped: symlinked folder (not followed)"
    if not path.is_file():
        return "skipped: not a regular file"
    ext = path.suffix.lower()
    if ext not in data.IMAGE_EXTENSIONS:
        return f"skipped: not an image (extension {ext!r})" if ext else \
            "skipped: not an image (no image extension)"
    return None


def _walk(folder: Path, src: Path, cls: str, why: Optional[str] = None) -> List[Entry]:
    """Every file below ``folder`` (symlinked folders listed, not followed), sorted."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        names = sorted(files) + [d for d in dirs if os.path.islink(os.path.join(root, d))]
        for name in names:
            p = Path(root) / name
            out.append(Entry(p.relative_to(src), cls, skip=why or _classify(p)))
    return sorted(out, key=lambda e: e.rel.parts)


def scan_input(src: Path) -> Tuple[List[Entry], List[str], List[str]]:
    """List every file under ``src``: ``(entries, classes, warnings)``; image candidates get a
    class index, the rest a ``skip`` reason. Nothing is decoded."""
    entries, classes, warns = [], [], []
    for top in sorted(src.iterdir(), key=lambda p: p.name):
        if top.is_symlink() or not top.is_dir():
            why = _classify(top)
            entries.append(Entry(top.relative_to(src), "", skip=why if why and (
                "symlink" in why) else "skipped: not in a class folder"))
        elif top.name.startswith("."):
            entries += _walk(top, src, "", "skipped: in a hidden folder")
        else:
            found = _walk(top, src, top.name)
            if any(e.skip is None for e in found):
                for e in found:
                    e.label = len(classes) if e.skip is None else None
                classes.append(top.name)
            else:
                warns.append(f"class folder {top.name!r} holds no image files: it takes no "
                             "class index")
            entries += found
    assign_outputs(entries)
    for e in entries:
        if e.output is not None and len(os.fsencode(e.output.name)) > NAME_MAX:
            e.skip = (f"skipped: its output name would be {len(os.fsencode(e.output.name))} "
                      f"bytes long, over the {NAME_MAX} a file system allows; rename it")
            e.output = None
    return entries, classes, warns


def assign_outputs(entries: List[Entry]) -> None:
    """Give every image candidate a distinct output path (see the module docstring)."""
    images = [e for e in entries if e.skip is None]
    wants: Dict[str, List[Entry]] = {}
    for e in images:
        wants.setdefault(e.rel.with_suffix(".png").as_posix().casefold(), []).append(e)
    taken, rest = set(), []
    for key, group in wants.items():
        exact = [e for e in group if e.rel.suffix == ".png"]
        keeper = group[0] if len(group) == 1 else (exact[0] if exact else None)
        if keeper is not None:
            keeper.output = keeper.rel.with_suffix(".png")
            taken.add(key)
        rest += [e for e in group if e is not keeper]
    for e in sorted(rest, key=lambda e: e.rel.parts):
        names = itertools.chain([e.rel.name + ".png"],
                                (f"{e.rel.name}~{k}.png" for k in itertools.count(2)))
        for name in names:
            key = e.rel.with_name(name).as_posix().casefold()
            if key not in taken and key not in wants:
                e.output = e.rel.with_name(name)
                taken.add(key)
                break


# --------------------------------------------------------------------------- reading a photo
@dataclass
class Photo:
    """A decoded input: RGB uint8 ``(3, H, W)``, its alpha ``(H, W)`` or None, and notes."""
    rgb: torch.Tensor
    alpha: Optional[np.ndarray] = None
    notes: List[str] = field(default_factory=list)
    icc: Optional[bytes] = None


def _rawmode(im) -> str:
    """The decoder's raw mode (``"RGB;16B"``, ``"I;16"``, ...): tells 16-bit files apart."""
    tile = getattr(im, "tile", None) or []
    if not tile:
        return ""
    args = tile[0].args if hasattr(tile[0], "args") else tile[0][3]
    return str(args[0] if isinstance(args, tuple) else args)


@contextlib.contextmanager
def _no_bomb_check():
    """Pillow's own decompression-bomb limit off for the block: :func:`read_photo` checks
    the pixel count against its own limit (``max_pixels``) before decoding."""
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = before


def read_photo(source, max_pixels: int = MAX_PIXELS) -> Photo:
    """Decode one image (a binary file object, or its bytes) as an upright 8-bit photo (its
    first frame), alpha apart; raises :class:`Skip` for images that cannot be written without
    changing what they mean, and for images of more than ``max_pixels`` pixels (checked from
    the header, before anything is decoded). The file is read as the decoder needs it, never
    whole into memory."""
    from PIL import Image

    fh = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    with _no_bomb_check():
        im = Image.open(fh)
        try:
            check_pixels("", *im.size, max_pixels)
        except TooLarge as e:
            raise Skip(f"skipped: {e}") from None
        return _decode(im)


def _decode(im) -> Photo:
    notes = []
    frames = int(getattr(im, "n_frames", 1) or 1)
    if frames > 1:
        notes.append(f"first of {frames} frames only")
    raw, icc = _rawmode(im), im.info.get("icc_profile")
    im.load()
    im = _upright(im, notes)
    im = _eight_bit(im, raw, notes)
    rgb, alpha = _rgb_and_alpha(im, notes)
    return Photo(rgb, alpha, notes, icc)


def _upright(im, notes: list):
    """The image as viewers show it: its EXIF orientation applied."""
    from PIL import ImageOps

    orientation = im.getexif().get(0x0112, 1)
    if orientation in (1, None, 0):
        return im
    notes.append(f"EXIF orientation {orientation} applied")
    return ImageOps.exif_transpose(im)


def _eight_bit(im, raw: str, notes: list):
    """16-bit grayscale scaled to 8 bits (value/257, never clipped); 16-bit RGB is already
    reduced by Pillow (its high byte): said so; 32-bit integer or float images: :class:`Skip`."""
    from PIL import Image

    if im.mode in ("I", "F", "I;32") and not raw.startswith("I;16"):
        raise Skip(f"skipped: 32-bit {'float' if im.mode == 'F' else 'integer'} image (mode "
                   f"{im.mode}) has no defined value range; convert it to 8-bit first")
    if im.mode.startswith("I"):
        arr = np.asarray(im, dtype=np.float64)
        im = Image.fromarray(np.clip(np.round(arr / 257.0), 0, 255).astype(np.uint8), "L")
    if ";16" in raw:
        notes.append("16-bit scaled to 8-bit")
    return im


def _rgb_and_alpha(im, notes: list):
    """``(rgb uint8 (3, H, W), alpha (H, W) or None)``; any transparency keeps its alpha."""
    alpha = None
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
        alpha, arr = rgba[..., 3].copy(), rgba[..., :3]
        notes.append("alpha kept")
    else:
        if im.mode == "CMYK":
            notes.append("CMYK converted to RGB")
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(np.array(arr, dtype=np.uint8)).permute(2, 0, 1).contiguous(), alpha


def training_view(rgb: torch.Tensor, size: int) -> torch.Tensor:
    """The image as the generator trains on it: centre square, resized to ``size×size``."""
    h, w = rgb.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return data.resize(rgb[:, top:top + s, left:left + s], size)


# --------------------------------------------------------------------------- the perturbation
def tile(pattern: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The class pattern ``(3, S, S)`` repeated at native scale over an ``h×w`` image."""
    ph, pw = pattern.shape[-2:]
    return pattern.repeat(1, -(-h // ph), -(-w // pw))[:, :h, :w]


def perturb(rgb: torch.Tensor, pattern: torch.Tensor, budget: int) -> torch.Tensor:
    """``rgb`` (uint8) plus the tiled pattern, rounded, clipped to [0, 255] and to ±budget."""
    x = rgb.float()
    q = (x + tile(pattern, *rgb.shape[-2:]) * 255.0).round().clamp_(0, 255)
    return torch.minimum(torch.maximum(q, x - budget), x + budget).to(torch.uint8)


def check_budget(out: torch.Tensor, rgb: torch.Tensor, budget: int, name: str) -> int:
    """``max |out − rgb|``; raises :class:`ProtectError` above ``budget`` (the last guard)."""
    worst = int((out.int() - rgb.int()).abs().max()) if out.numel() else 0
    if worst > budget or out.shape != rgb.shape:
        raise ProtectError(f"{name}: the written image would differ from its original by "
                           f"{worst}/255, above the budget {budget}/255; stopped")
    return worst


def protect_image(rgb: torch.Tensor, pattern: torch.Tensor, budget: int, name: str):
    """``(protected, max |δ|, PSNR dB)`` of one image: :func:`perturb` and
    :func:`check_budget` over bands of whole pattern periods (about :data:`ROWS` rows), so a
    24 MP photo needs a few bands' worth of temporaries, not the image's many times over; the
    bytes are those of one pass over the whole image (the tiling stays anchored)."""
    h = rgb.shape[-2]
    ph = pattern.shape[-2]
    step = max(1, ROWS // ph) * ph
    out = torch.empty_like(rgb)
    worst, sse = 0, 0
    for top in range(0, h, step):
        part = rgb[:, top:top + step]
        band = perturb(part, pattern, budget)
        worst = max(worst, check_budget(band, part, budget, name))
        d = band.to(torch.int32) - part.to(torch.int32)
        sse += int((d * d).sum())
        out[:, top:top + step] = band
    mse = sse / max(1, rgb.numel())
    return out, worst, float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def protection_id(deltas: torch.Tensor, eps: float) -> str:
    """A short hash of the class patterns and budget: which protection made an output."""
    blob = deltas.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
    return sha256(blob + repr(float(eps)).encode())[:16]


# --------------------------------------------------------------------------- checkpoints
def _pickle_runs_code(path: Path) -> bool:
    """A plain (not zip) pickle file whose opcodes import or call something, found by reading
    the opcodes without executing any."""
    import pickletools
    import zipfile

    if zipfile.is_zipfile(path):
        return False
    calls = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX"}
    try:
        with open(path, "rb") as fh:
            return any(op.name in calls for op, _, _ in pickletools.genops(fh))
    except Exception:  # noqa: BLE001 - not a pickle at all
        return False


def _load_error(path: Path, e: Exception) -> ProtectError:
    text = str(e)
    if isinstance(e, pickle.UnpicklingError) and (
            "global" in text.lower() or _pickle_runs_code(path)):
        return ProtectError(f"checkpoint {path}: refused: it asks to load Python objects that "
                            "are not tensors (a pickle that could run code); only protection "
                            "files written by fuselib are accepted")
    first = text.strip().splitlines()[0].split(". ")[0][:100] if text.strip() else ""
    if isinstance(e, pickle.UnpicklingError) or "weights_only" in first.lower():
        first = ""
    detail = f"{type(e).__name__}: {first}" if first else type(e).__name__
    return ProtectError(f"checkpoint {path}: not a readable fuselib protection file (corrupt, "
                        f"truncated or another format; {detail})")


def check_deltas(deltas, eps, n_classes: int, where: str, size=None) -> torch.Tensor:
    """Validate class patterns: float ``(C ≥ n_classes, 3, h, w)``, ``h, w ≥ 8`` (equal to
    ``size`` when given), finite, ``‖δ‖∞ ≤ ε ≤ 16/255``; returns them as float32."""
    if not isinstance(eps, (int, float)) or not 0 < float(eps) <= MAX_EPS + 1e-9:
        raise ProtectError(f"{where}: budget eps = {eps!r} is outside (0, 16/255]; protect "
                           "writes at most 16/255")
    if not isinstance(deltas, torch.Tensor) or not deltas.is_floating_point():
        raise ProtectError(f"{where}: its class patterns are not a float tensor")
    if deltas.dim() != 4 or deltas.shape[1] != 3:
        raise ProtectError(f"{where}: class patterns of shape {tuple(deltas.shape)}, expected "
                           "(n_classes, 3, h, w)")
    h, w = deltas.shape[-2:]
    if min(h, w) < MIN_SIZE or max(h, w) > MAX_SIZE:
        raise ProtectError(f"{where}: class patterns of {h}x{w} pixels; protect needs "
                           f"{MIN_SIZE} to {MAX_SIZE}")
    if size is not None and (h, w) != (size, size):
        raise ProtectError(f"{where}: class patterns are {h}x{w}, not the --size {size} asked "
                           "for (leave --size out to use the checkpoint's)")
    if deltas.shape[0] < n_classes:
        raise ProtectError(f"{where} was trained on {deltas.shape[0]} classes; the input has "
                           f"{n_classes}")
    deltas = deltas.detach().to("cpu", torch.float32)
    if not bool(torch.isfinite(deltas).all()):
        raise ProtectError(f"{where}: its class patterns hold NaN or infinite values")
    top = float(deltas.abs().max())
    if top > float(eps) + 1e-6:
        raise ProtectError(f"{where}: its class patterns reach {top * 255:.1f}/255, above its "
                           f"own budget eps = {float(eps) * 255:.1f}/255")
    return deltas


def load_checkpoint(path) -> protections.Protection:
    """Load and validate a saved FUSE protection (not its class count: see :func:`check_deltas`).
    Every failure is one :class:`ProtectError` line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ProtectError(f"checkpoint {path} does not exist" if not path.exists() else
                           f"checkpoint {path} is not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on unusual pickles: we say it all
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is a bad checkpoint
        raise _load_error(path, e) from None
    if isinstance(blob, dict) and blob.get("format") == "fuselib.fuse-checkpoint/1":
        raise ProtectError(f"checkpoint {path} is a FUSE training checkpoint; pass the "
                           "protection file (fuselib fit fuse --out, or --save-protection)")
    if not isinstance(blob, dict) or blob.get("format") != "fuselib.protection/1":
        raise ProtectError(f"checkpoint {path} is not a fuselib protection file")
    if blob.get("name") != "fuse":
        raise ProtectError(f"checkpoint {path} holds a {blob.get('name')!r} protection, not fuse")
    config, state = blob.get("config"), blob.get("state")
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise ProtectError(f"checkpoint {path} lacks its config or state")
    check_deltas(state.get("deltas"), config.get("eps"), 0, f"checkpoint {path}")
    try:
        p = protections.get("fuse", **config)
        p.load_state_dict(state)
    except (TypeError, ValueError, KeyError) as e:
        raise ProtectError(f"checkpoint {path}: {e}") from None
    return p


# --------------------------------------------------------------------------- paths
def _check_writable(path: Path, what: str) -> None:
    """``path`` (a folder to create or write into) can be written: the nearest existing
    ancestor is a folder we may write to."""
    p = path
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    if not p.is_dir():
        raise ProtectError(f"{what} {path}: {p} is a file, not a folder")
    if not os.access(p, os.W_OK | os.X_OK):
        raise ProtectError(f"{what} {path} is not writable (no write permission on {p})")


def check_paths(src: Path, dst: Path, save_protection=None) -> Tuple[Path, Path]:
    """The input exists; the output can be written and is apart from the input; the
    ``save_protection`` file can be written outside both. Returns both folders resolved."""
    if not src.exists():
        raise ProtectError(f"input folder {src} does not exist")
    if not src.is_dir():
        raise ProtectError(f"input {src} is a file, not a folder")
    src_r, dst_r = src.resolve(), dst.resolve()
    if _inside(dst_r, src_r):
        raise ProtectError(f"refusing to write into the input tree: output {dst} is (inside) "
                           f"input {src}; choose a folder outside it")
    if _inside(src_r, dst_r):
        raise ProtectError(f"output {dst} contains the input {src}; choose a separate folder")
    if os.path.lexists(dst) and not dst.is_dir():
        raise ProtectError(f"output {dst} is a file, not a folder")
    _check_writable(dst, "output folder")
    if save_protection is not None:
        sp = Path(save_protection)
        spr = sp.resolve()
        if sp.is_dir():
            raise ProtectError(f"--save-protection {sp} is a folder; give a file name")
        if _inside(spr, src_r) or _inside(spr, dst_r):
            raise ProtectError(f"--save-protection {sp} is inside the "
                               f"{'input' if _inside(spr, src_r) else 'output'} folder; the "
                               "protection is the key to the patterns: keep it apart")
        _check_writable(sp.parent, "--save-protection")
    return src_r, dst_r


def _all_rows(dst: Path) -> List[dict]:
    """Every row of an earlier run's manifest, then of its journal, in order, names
    unescaped (:func:`.utils.unescape_name`). A journal line cut short by a kill reads with
    missing or truncated fields."""
    out = []
    for name in (MANIFEST, JOURNAL):
        f = dst / name
        if f.is_file() and not f.is_symlink():
            with contextlib.suppress(OSError, csv.Error, UnicodeDecodeError):
                with open(f, newline="", encoding="utf-8") as fh:
                    for r in csv.DictReader(fh):
                        if r.get("file"):
                            r = {k: v or "" for k, v in r.items() if k in FIELDS}
                            for k in ("file", "output", "class"):
                                r[k] = unescape_name(r.get(k, ""))
                            out.append(r)
    return out


def read_manifest(dst: Path) -> Dict[str, dict]:
    """Rows of an earlier run by input file (a later row of a file wins: the journal's over
    the manifest's); ``{}`` if none. A row cut short by a kill matches no file: not kept."""
    return {r["file"]: r for r in _all_rows(dst)}


def written_outputs(dst: Path) -> Dict[str, set]:
    """Every output path an earlier run wrote into ``dst``, with the SHA-256 of each version
    it wrote there (manifest and journal, every row): what may be replaced or removed."""
    known: Dict[str, set] = {}
    for r in _all_rows(dst):
        if r["output"] and r.get("output_sha256"):
            known.setdefault(r["output"], set()).add(r["output_sha256"])
    return known


def csv_row(row: dict) -> dict:
    """A manifest row as written: file names escaped (:func:`.utils.escape_name`), so that
    any name a file system allows is one line of UTF-8 text and reads back exactly."""
    return {**row, **{k: escape_name(row[k]) for k in ("file", "output", "class")}}


def _output_files(dst: Path) -> List[Path]:
    """Every file and symlink under ``dst`` (relative), symlinked folders not followed."""
    out = []
    for root, dirs, files in os.walk(dst, followlinks=False):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            out.append((Path(root) / name).relative_to(dst))
    return out


def check_output(dst: Path, src_r: Path, resume: bool, overwrite: bool):
    """Decide what may happen in ``dst``: returns ``(earlier rows, files of ours to remove on
    --overwrite, {output: its SHA-256 now})``; raises when the folder holds anything an
    earlier run did not write, or an output whose bytes are none that a run wrote there (it
    is not replaced or removed: a user may have edited it)."""
    if not dst.is_dir():
        return {}, [], {}
    files = _output_files(dst)
    for rel in files:
        p = dst / rel
        if p.is_symlink() and _inside(p.resolve(), src_r):
            raise ProtectError(f"output folder {dst} holds {rel}, a symlink into the input "
                               f"{src_r}; writing there would overwrite originals: remove it")
    if not files:
        return {}, [], {}
    if not (resume or overwrite):
        raise ProtectError(f"output folder {dst} is not empty ({len(files)} files): pass "
                           "--resume to finish an earlier run, --overwrite to replace what "
                           "it wrote, or choose an empty folder")
    rows, known = read_manifest(dst), written_outputs(dst)
    ours = {MANIFEST, JOURNAL, RECORD} | set(known)
    foreign = [r for r in files if r.as_posix() not in ours and not _TMP.match(r.name)]
    symlinks = [r for r in files if (dst / r).is_symlink()]
    if foreign or symlinks:
        shown = ", ".join(str(r) for r in (symlinks or foreign)[:3])
        raise ProtectError(f"output folder {dst} holds files no earlier `fuselib protect` run "
                           f"wrote ({shown}{', ...' if len(foreign) > 3 else ''}); remove them "
                           "or choose another folder")
    hashes = {r.as_posix(): file_sha256(dst / r) for r in files if r.as_posix() in known}
    changed = [k for k, h in hashes.items() if h not in known[k]]
    if changed:
        raise ProtectError(f"output folder {dst} holds {len(changed)} output(s) changed since "
                           f"a run wrote them ({', '.join(changed[:3])}"
                           f"{', ...' if len(changed) > 3 else ''}); they are not replaced or "
                           "removed: move them away (or delete them) and rerun")
    return rows, files, hashes


def clear_output(dst: Path, files: List[Path], everything: bool) -> None:
    """Remove our temporary leftovers (and with ``everything`` all of ``files``), then the
    folders left empty. The manifest, journal and run record go last: a run killed while
    removing still lists every output that is left, so the next ``--overwrite`` may remove
    them too."""
    last = {MANIFEST, JOURNAL, RECORD}
    for rel in sorted(files, key=lambda r: r.as_posix() in last):
        if everything or _TMP.match(rel.name):
            (dst / rel).unlink(missing_ok=True)
    for root, dirs, _ in sorted(os.walk(dst), key=lambda t: -len(t[0])):
        if Path(root) != dst and not os.listdir(root):
            os.rmdir(root)


def safe_target(dst_r: Path, src_r: Path, rel: Path) -> Path:
    """``dst_r / rel``, its folders created one by one; refuses any symlink on the way and any
    target that resolves outside the output folder or into the input."""
    d = dst_r
    for part in rel.parent.parts:
        d = d / part
        if d.is_symlink():
            raise ProtectError(f"refusing to write through the symlink {d}")
        if not d.exists():
            d.mkdir()
        elif not d.is_dir():
            raise ProtectError(f"{d} is in the way of an output folder")
    target = d / rel.name
    if target.is_symlink() or target.is_dir():
        raise ProtectError(f"refusing to replace {target}: it is a "
                           f"{'symlink' if target.is_symlink() else 'folder'}")
    real = target.parent.resolve()
    if not _inside(real, dst_r) or _inside(real, src_r):
        raise ProtectError(f"refusing to write {target}: it resolves to {real}, outside the "
                           "output folder")
    return target


def write_atomic(target: Path, payload: bytes) -> None:
    """Write ``payload`` to a temporary name beside ``target`` (created exclusively, never
    through a symlink), then rename it over ``target``; the temporary file never outlives an
    error or Ctrl-C."""
    # a short temporary name: a target's own name may already be near the 255-byte limit
    tmp = target.with_name(f".{sha256(os.fsencode(target.name))[:16]}.tmp{os.getpid()}")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())  # its bytes on disk before its name: a power cut leaves
        os.replace(tmp, target)    # the old file or the whole new one, never an empty one
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def encode_png(rgb: torch.Tensor, alpha: Optional[np.ndarray], icc: Optional[bytes]) -> bytes:
    """A lossless PNG of ``rgb`` (plus ``alpha`` as an RGBA PNG; ``icc`` kept)."""
    from PIL import Image

    arr = rgb.permute(1, 2, 0).numpy()
    if alpha is not None:
        arr = np.concatenate([arr, alpha[..., None]], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr)).save(
        buf, format="PNG", **({"icc_profile": icc} if icc else {}))
    return buf.getvalue()


# --------------------------------------------------------------------------- arguments
def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ProtectError(f"--size must be a whole number of pixels in [{MIN_SIZE}, "
                           f"{MAX_SIZE}], got {size!r}")
    return size


def check_device(device) -> Optional[torch.device]:
    if device is None:
        return None
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ProtectError(f"--device {device!r} is not a device (cpu, cuda, cuda:1, mps)") \
            from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ProtectError(f"--device {device}: no CUDA GPU on this machine")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps")
                                  and torch.backends.mps.is_available()):
        raise ProtectError(f"--device {device}: MPS is not available on this machine")
    return dev


# --------------------------------------------------------------------------- the run
def _row(e: Entry, status: str, **kw) -> dict:
    row = {k: "" for k in FIELDS}
    written = e.output is not None and status.startswith("ok")
    row.update(file=e.key, output=e.output.as_posix() if written else "", **{"class": e.cls},
               status=status)
    row.update(kw)
    return row


def _can_keep(prev: Optional[dict], e: Entry, dst: Path, source: str, pid: str,
              hashes: Optional[Dict[str, str]] = None) -> bool:
    """An earlier run's output of ``e`` that is complete and made from this source with this
    protection (manifest row, source hash, protection hash and output hash all match);
    ``hashes``: output hashes already computed (:func:`check_output`)."""
    if not prev or not prev.get("status", "").startswith("ok"):
        return False
    if (prev.get("output"), prev.get("source_sha256"), prev.get("protection")) != (
            e.output.as_posix(), source, pid):
        return False
    target = dst / e.output
    if target.is_symlink() or not target.is_file():
        return False
    known = (hashes or {}).get(e.output.as_posix())
    return (known or file_sha256(target)) == prev.get("output_sha256")


def _train(src: Path, entries: List[Entry], p, size: int, progress,
           max_pixels: int = MAX_PIXELS) -> None:
    """Fit FUSE ``p`` on every readable image, centre square resized to ``size``."""
    todo = [e for e in entries if e.skip is None]
    images = torch.empty((len(todo), 3, size, size), dtype=torch.uint8)
    labels, n = [], 0
    bar = progress_bar(len(todo), "reading", progress)
    for e in todo:
        bar.update(1)
        try:
            with open(src / e.rel, "rb") as fh:
                images[n] = training_view(read_photo(fh, max_pixels).rgb, size)
        except Exception:  # noqa: BLE001 - unreadable: reported when writing
            continue
        labels.append(e.label)
        n += 1
    bar.close()
    if n == 0:
        raise ProtectError(f"no readable images under {src} to train on")
    p.fit(images[:n], torch.tensor(labels, dtype=torch.int64))


class _Journal:
    """``manifest.partial.csv``: one line for each output, written and synced *before* the
    output is renamed into place. So whenever the process dies (Ctrl-C, an error, kill -9 at
    any instruction), every file at an output path is either listed with its hash (complete:
    ``--resume`` keeps it when the hash matches) or still under a temporary name (removed by
    the next run); a line cut short by the kill matches no file and is written again."""

    def __init__(self, path: Path):
        self.fh = open(path, "a+", newline="", encoding="utf-8")
        self.fh.seek(0, os.SEEK_END)
        if self.fh.tell():
            self.fh.seek(self.fh.tell() - 1)
            if self.fh.read(1) != "\n":   # a line cut short: end it, so the next stands alone
                self.fh.write("\n")
        self.writer = csv.DictWriter(self.fh, fieldnames=FIELDS)
        if self.fh.tell() == 0:
            self.writer.writeheader()

    def add(self, row: dict) -> None:
        """Journal ``row``, durably: flushed to the OS (enough for a killed process) and
        synced to the disk (so that after a power cut no renamed output lacks its line)."""
        self.writer.writerow(csv_row(row))
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self) -> None:
        self.fh.close()


class _Run:
    """One pass over the input: read, perturb, check, journal, write — one image at a time."""

    def __init__(self, src_r, dst_r, entries, deltas, eps, previous, progress,
                 max_pixels: int = MAX_PIXELS, hashes: Optional[Dict[str, str]] = None):
        self.src, self.dst, self.entries = src_r, dst_r, entries
        self.deltas, self.budget = deltas, int(round(eps * 255))
        self.pid = protection_id(deltas, eps)
        self.previous, self.progress, self.max_pixels = previous, progress, max_pixels
        self.rows: Dict[str, dict] = {}
        self.written = self.kept = 0
        self.journal: Optional[_Journal] = None
        self.hashes = hashes or {}   # output hashes computed while checking the folder

    def one(self, e: Entry) -> dict:
        """Process one entry; returns its manifest row. The input is read in a stream (hash,
        then decode from the same open file), never whole into memory."""
        if e.skip is not None:
            return _row(e, e.skip)
        try:
            fh = open(self.src / e.rel, "rb")
        except OSError as ex:
            return _row(e, f"skipped: unreadable ({ex.strerror or type(ex).__name__})")
        with fh:
            try:
                source = file_sha256(fh)
                fh.seek(0)
            except OSError as ex:
                return _row(e, f"skipped: unreadable ({ex.strerror or type(ex).__name__})")
            prev = self.previous.get(e.key)
            if _can_keep(prev, e, self.dst, source, self.pid, self.hashes):
                self.kept += 1
                return {k: prev.get(k) or "" for k in FIELDS}
            try:
                photo = read_photo(fh, self.max_pixels)
            except Skip as s:
                return _row(e, str(s), source_sha256=source)
            except Exception as ex:  # noqa: BLE001 - whatever the decoder says, keep going
                return _row(e, f"skipped: unreadable ({type(ex).__name__}: {ex})"[:300],
                            source_sha256=source)
        return self.write(e, photo, source)

    def write(self, e: Entry, photo: Photo, source: str) -> dict:
        if e.label >= self.deltas.shape[0]:
            raise ProtectError(f"{e.key}: class {e.cls!r} has no pattern")
        out, worst, quality = protect_image(photo.rgb, self.deltas[e.label], self.budget, e.key)
        png = encode_png(out, photo.alpha, photo.icc)
        del out
        target = safe_target(self.dst, self.src, e.output)
        status = "ok" + (": " + "; ".join(photo.notes) if photo.notes else "")
        h, w = photo.rgb.shape[-2:]
        row = _row(e, status, size=f"{w}x{h}", psnr_db=round(quality, 2),
                   max_abs_delta=worst, source_sha256=source, output_sha256=sha256(png),
                   protection=self.pid)
        self.journal.add(row)      # first the journal, then the file (see _Journal)
        write_atomic(target, png)
        self.written += 1
        return row

    def go(self) -> None:
        """Every entry in order; ``self.rows`` holds what is done, whatever happens."""
        bar = progress_bar(len(self.entries), "protect", self.progress)
        self.journal = _Journal(self.dst / JOURNAL)
        try:
            for e in self.entries:
                self.rows[e.key] = self.one(e)
                bar.update(1)
        finally:
            bar.close()
            self.journal.close()

    def manifest(self) -> Path:
        """Write the manifest (every entry; those not reached: :data:`NOT_DONE`; outputs of an
        earlier run whose input is gone: :data:`STALE`, so ``--overwrite`` can remove them)
        and drop the journal. A manifest that cannot be written (a full disk) is one
        :class:`ProtectError` line; the journal is kept for ``--resume``."""
        rows = [self.rows.get(e.key) or _row(e, NOT_DONE) for e in self.entries]
        now = {e.key for e in self.entries}
        rows += [{**{k: r.get(k) or "" for k in FIELDS}, "status": STALE}
                 for key, r in self.previous.items()
                 if key not in now and r.get("output") and (self.dst / r["output"]).is_file()]
        path = self.dst / MANIFEST
        try:
            with atomic_write(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.DictWriter(fh, fieldnames=FIELDS)
                w.writeheader()
                w.writerows(csv_row(r) for r in rows)
        except OSError as ex:
            raise ProtectError(f"cannot write the manifest {path}: {ex.strerror or ex}; "
                               f"{self.written + self.kept} images are done and journaled in "
                               f"{JOURNAL}: free the space and rerun with --resume") from None
        (self.dst / JOURNAL).unlink(missing_ok=True)
        return path


def run_record(classes: List[str], checkpoint, size: Optional[int], seed, fuse_settings,
               deltas_size: Optional[int] = None) -> dict:
    """What shapes the outputs of a run, as :data:`RECORD` keeps it: the class list (label k
    gets pattern k), the checkpoint (its SHA-256) or the training settings, and the working
    size."""
    if checkpoint is not None:
        return {"format": RECORD_FORMAT, "classes": [escape_name(c) for c in classes],
                "checkpoint_sha256": file_sha256(Path(checkpoint)), "size": deltas_size,
                "training": None}
    return {"format": RECORD_FORMAT, "classes": [escape_name(c) for c in classes],
            "checkpoint_sha256": None, "size": size or DEFAULT_SIZE,
            "training": {"seed": 0 if seed is None else seed,
                         **{k: v for k, v in sorted(fuse_settings.items())}}}


def _show(key: str, value) -> str:
    if value is None:
        return {"checkpoint_sha256": "none (trained on the spot)",
                "training": "none (a checkpoint)"}.get(key, "none")
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def check_record(dst: Path, record: dict, previous: dict) -> None:
    """``--resume`` continues only the run that wrote ``dst``: its record (:data:`RECORD`)
    must equal this run's; else one line naming each difference."""
    import json

    f = dst / RECORD
    try:
        old = json.loads(f.read_text(encoding="utf-8")) if f.is_file() else None
    except (OSError, ValueError):
        old = None
    if not isinstance(old, dict) or old.get("format") != RECORD_FORMAT:
        if not previous:
            return  # nothing written yet: a run killed before its first output
        raise ProtectError(f"--resume: output folder {dst} has no readable {RECORD} (the "
                           "settings its images were made with); pass --overwrite to start "
                           "again")
    names = {"classes": "class folders", "checkpoint_sha256": "checkpoint (SHA-256)",
             "size": "--size", "training": "training settings"}
    now = json.loads(json.dumps(record, default=str))  # as it would read back
    diffs = [f"{names[k]}: earlier {_show(k, old.get(k))}; now {_show(k, now[k])}"
             for k in names if old.get(k) != now[k]]
    if diffs:
        raise ProtectError(f"--resume: {dst} was made with other settings ("
                           + "; ".join(diffs) + "); resume with the same ones, or pass "
                           "--overwrite to start again")


def write_record(dst: Path, record: dict) -> None:
    import json

    with atomic_write(dst / RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")


def protect_folder(input_dir, output_dir, checkpoint=None, size: Optional[int] = None,
                   seed: Optional[int] = None, device=None, save_protection=None,
                   resume: bool = False, overwrite: bool = False, force: bool = False,
                   progress=None, train_size: Optional[int] = None,
                   max_pixels: int = MAX_PIXELS, **fuse_settings) -> dict:
    """Protect every image under ``input_dir`` into ``output_dir`` (see the module docstring).

    ``checkpoint``: a saved FUSE protection to apply; without it one is trained on the spot at
    ``size`` (default 64) with ``seed``, on ``device``, with ``fuse_settings`` (FuseConfig
    fields; the command line's defaults are :data:`DEFAULT_TRAINING`, epochs by
    :func:`default_epochs`) and saved to
    ``save_protection`` right after training. ``train_size`` is the old name of ``size``.
    ``max_pixels``: images above it are skipped before decoding. One process at a time
    writes an output folder (a lock beside it, :func:`.utils.output_lock`).
    Returns a summary: ``written`` (this run), ``resumed`` (kept from an earlier run),
    ``skipped``, ``manifest``, ``min_psnr_db``, ``max_abs_delta``, ``size``, ``classes``,
    ``warnings`` and the ``protection``.
    """
    if train_size is not None:
        if size is not None and size != train_size:
            raise ProtectError("give size or train_size (its old name), not both")
        size = train_size
    _check_arguments(checkpoint, size, resume, overwrite,
                     {"seed": seed, "device": device, "save_protection": save_protection,
                      **fuse_settings})
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int) or max_pixels < 1:
        raise ProtectError(f"--max-pixels must be a positive whole number, got {max_pixels!r}")
    dev = check_device(device)
    src_r, dst_r = check_paths(Path(input_dir), Path(output_dir), save_protection)
    if checkpoint is None and fuse_settings.get("epochs") is None:
        fuse_settings["epochs"] = default_epochs(size or DEFAULT_SIZE)
    p = _protection(checkpoint, seed, fuse_settings)
    entries, classes, warns = _classes(Path(input_dir), force)
    if checkpoint is not None:
        warns += _fits_the_folder(p, checkpoint, classes, size)
    record = run_record(classes, checkpoint, size, seed, fuse_settings,
                        int(p.deltas.shape[-1]) if checkpoint is not None else None)
    with output_lock(dst_r, "output folder"):
        previous, ours, hashes = check_output(Path(output_dir), src_r, resume, overwrite)
        if resume:
            check_record(dst_r, record, previous)

        # -- work starts here: everything above only listed and checked
        if checkpoint is None:
            _train_and_save(p, Path(input_dir), entries, size or DEFAULT_SIZE, dev,
                            save_protection, progress, max_pixels)
        # (a class none of whose images could be read may lack a pattern: none of it is
        # written)
        deltas = check_deltas(p.deltas, p.eps, len(classes) if checkpoint else 0,
                              "the protection")
        if ours:
            clear_output(dst_r, ours, everything=overwrite)
            previous = {} if overwrite else previous
        dst_r.mkdir(parents=True, exist_ok=True)
        write_record(dst_r, record)
        run = _Run(src_r, dst_r, entries, deltas, p.eps, previous, progress, max_pixels,
                   {} if overwrite else hashes)
        manifest = _write_all(run)
    return summary(run, manifest, deltas, classes, warns, p)


def _check_arguments(checkpoint, size, resume, overwrite, training: dict) -> None:
    """Flags that contradict each other, or do not apply."""
    if resume and overwrite:
        raise ProtectError("--resume and --overwrite exclude each other")
    if size is not None:
        check_size(size)
    given = [k for k, v in training.items() if v is not None]
    if checkpoint is not None and given:
        raise ProtectError(f"{', '.join(given)}: training settings do not apply to a "
                           "--checkpoint, which is already trained")


def _protection(checkpoint, seed, fuse_settings) -> protections.Protection:
    """The checkpoint, loaded and validated, or an untrained FUSE with these settings."""
    if checkpoint is not None:
        return load_checkpoint(checkpoint)
    p = protections.get("fuse", seed=0 if seed is None else seed, **fuse_settings)
    if not 0 < p.eps <= MAX_EPS + 1e-9:
        raise ProtectError(f"eps = {p.eps:.4g} is above 16/255, the largest budget protect "
                           "writes")
    return p


def _classes(src: Path, force: bool):
    """The input listing; refuses a folder without classes, or of one class without force."""
    entries, classes, warns = scan_input(src)
    reserved = [c for c in classes if c.casefold() in {n.casefold() for n in (
        MANIFEST, JOURNAL, RECORD)}]
    if reserved:
        raise ProtectError(f"{src}: the class folder {reserved[0]!r} has the name of a file "
                           "protect writes into the output folder; rename that folder")
    if not classes:
        raise ProtectError(f"{src} has no class folder with image files (expected "
                           f"{src}/<class>/<images>)")
    if len(classes) == 1 and not force:
        raise ProtectError(f"{src} has one class ({classes[0]!r}): every image would get the "
                           "same pattern, a shortcut to nothing unless the data is mixed with "
                           "other classes; add the other classes, or pass --force")
    if len(classes) == 1:
        warns.append("one class only: every image gets the same pattern (--force)")
    return entries, classes, warns


def _fits_the_folder(p, checkpoint, classes, size) -> List[str]:
    """The checkpoint has a pattern for every class (and the size asked for); warns when it
    has more."""
    check_deltas(p.deltas, p.eps, len(classes), f"checkpoint {checkpoint}", size)
    if p.deltas.shape[0] == len(classes):
        return []
    return [f"the checkpoint has {p.deltas.shape[0]} class patterns, the input {len(classes)} "
            f"classes: the first {len(classes)} are used, by the sorted order of the class "
            "folders"]


def _train_and_save(p, src, entries, size, device, save_protection, progress,
                    max_pixels: int = MAX_PIXELS) -> None:
    """Train ``p`` on the spot, then save it (before any image is written)."""
    if device is not None:
        p.device = device
    try:
        _train(src, entries, p, size, progress, max_pixels)
    except KeyboardInterrupt:
        raise Interrupted("interrupted while training; nothing was written") from None
    if save_protection is not None:
        try:
            p.save(save_protection)
        except OSError as ex:
            raise ProtectError(f"cannot save the protection to {save_protection}: "
                               f"{ex.strerror or ex} (checked writable before training; "
                               "nothing was written)") from None


def _write_all(run: _Run) -> Path:
    """Run the pass; whatever stops it, the manifest of what is done is written first."""
    try:
        run.go()
    except KeyboardInterrupt:
        path = run.manifest()
        raise Interrupted(f"interrupted after {run.written + run.kept} images; {path} lists "
                          "what is done: rerun with --resume to finish") from None
    except ProtectError:
        run.manifest()
        raise
    except OSError as ex:
        run.manifest()
        raise ProtectError(f"cannot write {ex.filename or run.dst}: {ex.strerror or ex}; "
                           f"{run.written + run.kept} images done (see the manifest), rerun "
                           "with --resume after fixing it") from None
    return run.manifest()


def summary(run: _Run, manifest: Path, deltas, classes, warns, p) -> dict:
    ok = [r for r in run.rows.values() if r["status"].startswith("ok")]
    return {"written": run.written, "resumed": run.kept,
            "skipped": sum(r["status"].startswith("skipped") for r in run.rows.values()),
            "manifest": manifest,
            "min_psnr_db": min((float(r["psnr_db"]) for r in ok), default=None),
            "max_abs_delta": max((int(r["max_abs_delta"]) for r in ok), default=None),
            "size": tuple(deltas.shape[-2:]), "classes": classes, "warnings": warns,
            "protection": p}
