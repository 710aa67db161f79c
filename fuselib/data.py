"""Datasets as in-memory tensors: uint8 images ``(N, 3, H, W)`` and int64 labels ``(N,)``.

``load("cifar10", split="train")`` reads the standard ``cifar-10-batches-py`` pickle layout;
``load("imagenette", split="train", size=64)`` an ImageFolder tree of photos
(``imagenette/{train,val}/<wnid>/*.jpg`` with an ``MD5SUMS`` file; see :func:`load`).
Where the files are looked for, in order:

1. the ``root`` argument (used as given: no fallback when the data is not there);
2. ``$FUSELIB_DATA``;
3. ``../shared/data`` beside the repository (or beside the working directory), when it exists;
4. the user cache, ``$FUSELIB_CACHE`` or ``~/.cache/fuselib/data``.

A root given explicitly (the argument, or ``$FUSELIB_DATA``) that does not exist is an error
that names it, never a silent fall-back to the other roots.

Within a root a dataset may sit in its own folder (``ROOT/cifar10/cifar-10-batches-py``) or
directly (``ROOT/cifar-10-batches-py``, torchvision's layout). Nothing is downloaded unless
the caller passes ``download=True`` (through torchvision, into the explicit root, else
``$FUSELIB_DATA``, else the user cache; CIFAR and SVHN only).

Every file is checked against known MD5 lists before it is unpickled: the official release
and the local JPEG-75 re-encoding of CIFAR-10 shipped in ``shared/data`` (see its README).
An image-folder dataset is checked against its own ``MD5SUMS``, and the MD5 of that list says
which copy it is (``local128``: the 128-px copy in ``shared/data/imagenette``).
:func:`info` says which list matched; the variant is part of every cached result's key.

A dataset name may carry an image size, ``"imagenette:64"`` (the same as ``size=64``): that is
how the experiments, which pass only a name, run on resized data; the size is then part of the
key too (``imagenette:64/local128``), so results at different sizes never share a cache entry.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from .utils import atomic_save, progress_bar

_CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]

# dataset -> (folder, {split: files}, meta file, {variant: {file: md5}})
_SPECS = {
    "cifar10": dict(
        folder="cifar-10-batches-py",
        splits={"train": _CIFAR10_TRAIN, "test": ["test_batch"]},
        meta="batches.meta",
        md5={
            "official": {
                "data_batch_1": "c99cafc152244af753f735de768cd75f",
                "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
                "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
                "data_batch_4": "634d18415352ddfa80567beed471001a",
                "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
                "test_batch": "40351d587109b95175f43aff81a1287e",
                "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
            },
            # shared/data/cifar10/MD5SUMS: the JPEG-75 re-encoding (same order and labels)
            "jpeg75": {
                "data_batch_1": "df1ff4b3e48e3bcad37a5f5869f75dc8",
                "data_batch_2": "483b28ac32599d9dedeac15025ea4f4e",
                "data_batch_3": "56f0d954317e1c19935b1d48bec327b9",
                "data_batch_4": "35d9e102723840f40765119f41f99089",
                "data_batch_5": "3901e3867dc0aa43c0e449c5ba53fa5a",
                "test_batch": "28236460c8d27f0b3c2e3e139a94c462",
                "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
            },
        },
    ),
    "cifar100": dict(
        folder="cifar-100-python",
        splits={"train": ["train"], "test": ["test"]},
        meta="meta",
        md5={"official": {"train": "16019d7e3df5f24257cddd939b257f8d",
                          "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
                          "meta": "7973b15100ade9c7d40fb424638fde48"}},
    ),
    "svhn": dict(
        folder="",
        splits={"train": ["train_32x32.mat"], "test": ["test_32x32.mat"],
                "extra": ["extra_32x32.mat"]},
        meta=None,
        md5={"official": {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373",
                          "test_32x32.mat": "eb5a983be6a315427106f1b164d9cef3",
                          "extra_32x32.mat": "a93ce644f1a588dc4d68dda5feec44a7"}},
    ),
    # an ImageFolder tree with an MD5SUMS file; the MD5 of that file names the copy
    "imagenette": dict(
        folder="",
        folders=("imagenette", "imagenette2", "imagenette2-320", "imagenette2-160"),
        splits={"train": ["train"], "val": ["val"]},
        aliases={"test": "val"},
        meta=None,
        layout="imagefolder",
        size=128,  # the default size of load(); every image is resized to it
        # shared/data/imagenette/MD5SUMS: 128x128 JPEG-85 re-encoding of Imagenette v2
        md5={"local128": {"MD5SUMS": "853a92ee15590675179dbcdfbaa15890"}},
    ),
}

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
# Imagenette's classes: ImageNet wnid -> readable name; the class index is the sorted wnid order
IMAGENETTE_NAMES = {
    "n01440764": "tench", "n02102040": "English springer", "n02979186": "cassette player",
    "n03000684": "chain saw", "n03028079": "church", "n03394916": "French horn",
    "n03417042": "garbage truck", "n03425413": "gas pump", "n03445777": "golf ball",
    "n03888257": "parachute",
}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class DataError(ValueError):
    """A dataset file is missing, truncated or does not match any known checksum."""


def names() -> List[str]:
    return sorted(_SPECS)


def parse_name(name: str) -> Tuple[str, Optional[int]]:
    """``"imagenette:64"`` -> ``("imagenette", 64)``; ``"cifar10"`` -> ``("cifar10", None)``.
    A size equal to the dataset's default is dropped (``"imagenette:128"`` is ``"imagenette"``),
    so one dataset has one name."""
    base, sep, size = str(name).partition(":")
    spec = _spec(base)
    if not sep:
        return base, None
    try:
        n = int(size)
    except ValueError:
        n = 0
    if n <= 0 or str(n) != size.strip():
        raise ValueError(f"dataset {name!r}: the part after ':' must be an image size in "
                         f"pixels, e.g. {base + ':64'!r}")
    return base, (None if n == spec.get("size", 32) else n)


def _full_name(base: str, size: Optional[int]) -> str:
    return base if size is None or size == _SPECS[base].get("size", 32) else f"{base}:{size}"


def _spec(name: str) -> dict:
    if name not in _SPECS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(names())} "
                       "(for your own images use load_folder)")
    return _SPECS[name]


def _is_folder(name: str) -> bool:
    return _SPECS[name].get("layout") == "imagefolder"


# --------------------------------------------------------------------------- roots
def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    return Path(os.environ.get("FUSELIB_CACHE") or Path.home() / ".cache" / "fuselib" / "data")


def candidate_roots(root=None) -> List[Tuple[str, Path]]:
    """The roots searched, in order, each with where it came from."""
    if root is not None:
        return [("argument", Path(root).expanduser())]
    out = []
    if os.environ.get("FUSELIB_DATA"):
        out.append(("$FUSELIB_DATA", Path(os.environ["FUSELIB_DATA"]).expanduser()))
    for base in (_repo_root(), Path.cwd()):
        shared = (base / ".." / "shared" / "data").resolve()
        if shared.is_dir() and all(shared != p for _, p in out):
            out.append(("../shared/data", shared))
    out.append(("user cache", cache_dir()))
    return out


def _check_explicit_root(cands: List[Tuple[str, Path]]) -> None:
    """A root the user named (``root=`` or ``$FUSELIB_DATA``) must exist: a typo there must not
    silently load the data from somewhere else."""
    for src, p in cands:
        if src in ("argument", "$FUSELIB_DATA") and not p.is_dir():
            what = "root=" if src == "argument" else "FUSELIB_DATA="
            state = "is not a directory" if p.exists() else "does not exist"
            fix = ("pass an existing folder" if src == "argument" else
                   "set it to an existing folder, or unset it to use the default search "
                   "(../shared/data, then the user cache)")
            raise DataError(f"data root {what}{p} {state}: {fix}")


def _dataset_dir(name: str, root: Path) -> Optional[Path]:
    spec = _spec(name)
    if spec.get("layout") == "imagefolder":
        # ROOT/imagenette/{train,val}, the official release's folder names, or ROOT/{train,val}
        for d in [root / f for f in spec["folders"]] + [root]:
            if all((d / s).is_dir() for s in spec["splits"]):
                return d
        return None
    folder = spec["folder"]
    for d in (root / name / folder, root / folder):
        probe = d / spec["splits"]["test"][0]
        if probe.exists():
            return d
    return None


def find(name: str, root=None, download: bool = False) -> Path:
    """The folder that holds ``name``'s files (downloading only when asked).

    An explicit root (``root=`` or ``$FUSELIB_DATA``) that does not exist is a
    :class:`DataError` naming it (unless ``download=True``, which creates it)."""
    name, _ = parse_name(name)
    cands = candidate_roots(root)
    if not download:
        _check_explicit_root(cands)
    elif cands[0][0] == "$FUSELIB_DATA" and not cands[0][1].is_dir():
        cands = cands[:1]  # a download goes into $FUSELIB_DATA: no fall-back to other roots
    for _, r in cands:
        d = _dataset_dir(name, r)
        if d is not None:
            return d
    if download and not _is_folder(name):
        target = Path(root) if root is not None else (
            Path(os.environ["FUSELIB_DATA"]) if os.environ.get("FUSELIB_DATA") else cache_dir())
        return _download(name, target / name)
    searched = "\n  ".join(f"{src}: {p}" for src, p in cands)
    if _is_folder(name):
        raise DataError(
            f"{name} not found. Searched:\n  {searched}\n"
            f"Pass root=..., or set FUSELIB_DATA to a folder holding {name}/train/<class>/* "
            f"and {name}/val/<class>/* with an MD5SUMS file (`md5sum */*/* > MD5SUMS` in "
            f"{name}/). It cannot be downloaded from here: get Imagenette from fast.ai "
            "(github.com/fastai/imagenette) on a machine with internet.")
    raise DataError(
        f"{name} not found. Searched:\n  {searched}\n"
        f"Pass root=..., set FUSELIB_DATA to a folder holding {name}/"
        f"{_spec(name)['folder'] or '<files>'}, or call load({name!r}, download=True) "
        "on a machine with internet.")


def _download(name: str, target: Path) -> Path:
    import torchvision.datasets as tvd

    target.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        tvd.CIFAR10(str(target), download=True)
    elif name == "cifar100":
        tvd.CIFAR100(str(target), download=True)
    else:
        for split in ("train", "test"):
            tvd.SVHN(str(target), split=split, download=True)
    d = _dataset_dir(name, target.parent)
    if d is None:
        raise DataError(f"download of {name} into {target} did not produce the expected files")
    return d


# --------------------------------------------------------------------------- integrity
def md5(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


_MD5_MEMO: Dict[Tuple[str, int, int], str] = {}


def _md5_memo(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _MD5_MEMO:
        _MD5_MEMO[key] = md5(path)
    return _MD5_MEMO[key]


@dataclass
class DatasetInfo:
    name: str                         # as loaded, with its size when not the default
    path: Path
    variant: str                      # "official", "jpeg75", "local128", "md5sums-<8 hex>", ...
    matched: Dict[str, str] = field(default_factory=dict)  # file (or split) -> list it matched

    @property
    def key(self) -> str:
        """Short identifier of the exact data, used in result-cache keys
        (``cifar10/jpeg75``, ``imagenette/local128``, ``imagenette:64/local128``)."""
        return f"{self.name}/{self.variant}"


def verify(name: str, path: Path, files: Sequence[str]) -> DatasetInfo:
    """Check ``files`` in ``path`` against every known MD5 list of ``name``.

    Each file must exist and match a list, and all files must match the same list.
    For an image-folder dataset (Imagenette) ``files`` are split names, checked against the
    folder's ``MD5SUMS`` (see :func:`verify_folder`).
    Raises :class:`DataError` naming the file and what to do otherwise.
    """
    base, size = parse_name(name)
    name = _full_name(base, size)  # "imagenette:128" is "imagenette": one data, one key
    if _is_folder(base):
        return verify_folder(name, path, files)
    lists = _spec(base)["md5"]
    matched = {}
    for fname in files:
        f = path / fname
        if not f.is_file():
            raise DataError(f"{base}: missing file {f}. Restore it, or re-download with "
                            f"load({base!r}, download=True) into an empty root.")
        digest = _md5_memo(f)
        hits = [v for v, sums in lists.items() if sums.get(fname) == digest]
        if not hits:
            raise DataError(
                f"{base}: {f} ({f.stat().st_size} bytes, md5 {digest}) matches no known "
                f"checksum ({', '.join(lists)}): the file is corrupt or truncated. Delete it "
                "and re-download, restore it from its source, or pass verify_files=False if it "
                "is a copy you made on purpose.")
        matched[fname] = hits
    variants = set.intersection(*(set(h) for h in matched.values()))
    if not variants:
        detail = ", ".join(f"{k}: {'/'.join(v)}" for k, v in matched.items())
        raise DataError(f"{base} in {path}: files come from different releases ({detail})")
    variant = next(v for v in lists if v in variants)  # "official" wins a tie (e.g. meta only)
    return DatasetInfo(name, path, variant, {k: variant for k in matched})


def info(name: str = "cifar10", root=None, download: bool = False) -> DatasetInfo:
    """Find ``name`` and verify all its files; says which MD5 list matched."""
    base, _ = parse_name(name)
    path = find(base, root, download)
    spec = _spec(base)
    if _is_folder(base):
        return verify(name, path, list(spec["splits"]))
    files = spec["splits"]["train"] + spec["splits"]["test"]
    if spec["meta"]:
        files.append(spec["meta"])
    return verify(name, path, files)


# --------------------------------------------------------------------------- image-folder datasets
SUMS_FILE = "MD5SUMS"


def _image_files(root: Path, split: str) -> List[str]:
    """The image files of ``root/split/<class>/...``, as sorted paths relative to ``root``
    with ``/`` separators (MD5SUMS's form); hidden files and folders are skipped."""
    out = []
    for f in (root / split).rglob("*"):
        rel = f.relative_to(root)
        if any(p.startswith(".") for p in rel.parts) or len(rel.parts) < 3:
            continue
        if f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file():
            out.append(rel.as_posix())
    return sorted(out)


def _read_sums(path: Path) -> Tuple[str, Dict[str, str]]:
    """``path/MD5SUMS`` (``md5sum`` output) as its own MD5 and ``{relative path: md5}``."""
    f = path / SUMS_FILE
    digest = _md5_memo(f)
    sums = {}
    for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        h, _, rel = line.partition(" ")
        rel = rel.lstrip(" *").strip()
        if len(h) != 32 or not rel:
            raise DataError(f"{f}, line {i}: not an md5sum line ({line[:80]!r})")
        sums[rel[2:] if rel.startswith("./") else rel] = h.lower()
    return digest, sums


def _sums_variant(base: str, digest: str) -> str:
    """The copy an MD5SUMS file names: a known one (``local128``) or ``md5sums-<8 hex>``."""
    for variant, files in _spec(base)["md5"].items():
        if files.get(SUMS_FILE) == digest:
            return variant
    return f"md5sums-{digest[:8]}"


def verify_folder(name: str, path: Path, splits: Sequence[str]) -> DatasetInfo:
    """Check every image of ``splits`` in the ImageFolder tree ``path`` against its ``MD5SUMS``:
    each listed file must exist and match, and no image may be unlisted. Each file's MD5 is
    computed once per process (memoised by path, size and mtime). The variant is the name of
    the known ``MD5SUMS`` (``local128``), else ``md5sums-`` and the first 8 hex digits of its
    MD5, so a record names the exact copy either way."""
    base, size = parse_name(name)
    name = _full_name(base, size)
    sums_file = path / SUMS_FILE
    if not sums_file.is_file():
        raise DataError(
            f"{base}: no {SUMS_FILE} in {path}, so its images cannot be verified. Create one "
            f"(`cd {path} && md5sum {'/*/* '.join(splits)}/*/* > {SUMS_FILE}`) or pass "
            "verify_files=False.")
    digest, sums = _read_sums(path)
    variant = _sums_variant(base, digest)
    for split in splits:
        listed = sorted(k for k in sums if k.split("/", 1)[0] == split)
        if not listed:
            raise DataError(f"{base}: {sums_file} lists no file under {split}/")
        for rel in listed:
            f = path / rel
            if not f.is_file():
                raise DataError(f"{base}: missing file {f} (listed in {sums_file}). Restore "
                                "it from its source.")
            got = _md5_memo(f)
            if got != sums[rel]:
                raise DataError(
                    f"{base}: {f} ({f.stat().st_size} bytes, md5 {got}) does not match "
                    f"{sums_file} ({sums[rel]}): the file is corrupt, truncated or was changed. "
                    "Restore it from its source, or pass verify_files=False if you changed it "
                    "on purpose.")
        extra = sorted(set(_image_files(path, split)) - set(listed))
        if extra:
            raise DataError(
                f"{base}: {path / extra[0]} is not listed in {sums_file} ({len(extra)} "
                f"unlisted image(s) in {split}/): remove it, add it to {SUMS_FILE}, or pass "
                "verify_files=False.")
    return DatasetInfo(name, path, variant, {SUMS_FILE: variant, **{s: variant for s in splits}})


def _folder_classes(path: Path) -> List[str]:
    """An image-folder dataset's classes: the sorted folder names of ``train/``."""
    train = path / "train"
    return sorted(d.name for d in train.iterdir() if d.is_dir() and not d.name.startswith("."))


def decoded_cache_file(name: str, split: str, size: int, sums_digest: str) -> Path:
    """Where the decoded uint8 tensor of one (split, size) is cached: keyed by the MD5 of the
    dataset's ``MD5SUMS``, so a changed dataset never meets a stale cache."""
    return cache_dir() / "decoded" / f"{name}-{sums_digest[:16]}-{split}-{size}px.pt"


def _warn(msg: str) -> None:
    print(f"fuselib.data: {msg}", file=sys.stderr)


def _read_cached(f: Path, files: List[str], size: int):
    try:
        obj = torch.load(f, map_location="cpu", weights_only=True)
        x, y = obj["images"], obj["labels"]
        ok = (obj.get("format") == 1 and obj.get("files") == files
              and isinstance(x, torch.Tensor) and x.dtype == torch.uint8
              and tuple(x.shape) == (len(files), 3, size, size)
              and isinstance(y, torch.Tensor) and y.dtype == torch.int64
              and tuple(y.shape) == (len(files),))
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file: decode again
        first = (str(e).strip().splitlines() or [""])[0][:200]
        _warn(f"ignoring the unreadable decoded cache {f} ({type(e).__name__}: {first}); "
              "decoding again")
        return None
    if not ok:
        _warn(f"ignoring the decoded cache {f}: it does not hold these files; decoding again")
        return None
    return x, y


@contextlib.contextmanager
def _one_thread():
    """torch on one thread for a loop of tiny per-image ops: waking a thread pool for each
    49k-element copy costs more than the copy (many times slower on busy cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _decode_split(name: str, path: Path, split: str, size: int, files: List[str]):
    """Decode and resize ``files`` (relative to ``path``) into one uint8 tensor, with their
    labels (the index of their class folder among ``train/``'s sorted folders)."""
    index = {c: i for i, c in enumerate(_folder_classes(path))}
    labels = torch.empty(len(files), dtype=torch.int64)
    for i, rel in enumerate(files):
        cls = rel.split("/")[1]
        if cls not in index:
            raise DataError(f"{name}: {path / rel} is in class folder {cls!r}, which train/ "
                            f"does not have (classes: {', '.join(index)})")
        labels[i] = index[cls]
    images = torch.empty((len(files), 3, size, size), dtype=torch.uint8)
    with progress_bar(len(files), f"decoding {name} {split} at {size}px (once, then cached)") \
            as bar, _one_thread():
        for i, rel in enumerate(files):
            try:
                img = read_image(path / rel)
            except Exception as e:  # noqa: BLE001 - name the file whatever Pillow raised
                raise DataError(f"{name}: cannot read {path / rel} as an image "
                                f"({type(e).__name__}: {e})") from e
            images[i] = resize(img, size)
            bar.update(1)
    return images, labels


def _load_folder_split(base: str, split: str, path: Path, size: int, verify_files: bool):
    """One split of an image-folder dataset: verified, then decoded from the disk cache, or
    decoded and cached (only verified data is cached: its content is known exactly)."""
    if verify_files:
        dinfo = verify_folder(base, path, [split])
        digest, sums = _read_sums(path)
        files = sorted(k for k in sums if k.split("/", 1)[0] == split)
        key = (base, split, str(path), size, dinfo.variant, digest)
    else:
        digest, files = None, _image_files(path, split)
        if not files:
            raise DataError(f"{base}: no images under {path / split}")
        stats = [(path / f).stat() for f in files]
        key = (base, split, str(path), size, "unverified",
               hash(tuple((f, st.st_size, st.st_mtime_ns) for f, st in zip(files, stats))))
    if key in _ARRAYS:
        return _ARRAYS[key]
    cached = decoded_cache_file(base, split, size, digest) if digest else None
    got = _read_cached(cached, files, size) if cached is not None and cached.is_file() else None
    if got is None:
        got = _decode_split(base, path, split, size, files)
        if cached is not None:
            try:
                atomic_save({"format": 1, "images": got[0], "labels": got[1], "files": files,
                             "split": split, "size": size, "md5sums": digest}, cached)
            except OSError as e:  # a read-only cache: still return the data
                _warn(f"could not write the decoded cache {cached} ({e}); the next load "
                      "decodes again")
    return _remember(key, got)


# --------------------------------------------------------------------------- readers
def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="latin1")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def _read_cifar(path: Path, files: Sequence[str], label_key: str):
    xs, ys = [], []
    for fname in files:
        d = _unpickle(path / fname)
        xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(d[label_key], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _read_svhn(path: Path, fname: str):
    from scipy.io import loadmat

    m = loadmat(str(path / fname))
    x = np.ascontiguousarray(np.transpose(m["X"], (3, 2, 0, 1)), dtype=np.uint8)
    y = m["y"].astype(np.int64).squeeze()
    y[y == 10] = 0  # SVHN stores digit 0 as label 10
    return x, y


_ARRAYS: Dict[tuple, Tuple[torch.Tensor, torch.Tensor]] = {}


def _remember(key: tuple, xy: Tuple[torch.Tensor, torch.Tensor]):
    if len(_ARRAYS) >= 4:  # a few splits stay in memory, not every one ever read
        _ARRAYS.pop(next(iter(_ARRAYS)))
    _ARRAYS[key] = xy
    return xy


def _size_of(name: str, size) -> int:
    """The image size of a load: ``size=``, else the name's ``:size``, else the default."""
    base, nsize = parse_name(name)
    default = _spec(base).get("size", 32)
    if size is None:
        return nsize or default
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ValueError(f"size must be a positive int (pixels), got {size!r}")
    if nsize is not None and int(size) != nsize:
        raise ValueError(f"dataset {name!r} names size {nsize}, but size={size} was passed")
    return int(size)


def image_size(name: str) -> int:
    """The side in pixels of the images :func:`load` returns for ``name`` by default
    (``"cifar10"`` -> 32, ``"imagenette"`` -> 128, ``"imagenette:64"`` -> 64)."""
    return _size_of(name, None)



def count(name: str = "cifar10", split: str = "test", root=None) -> int:
    """How many images a split holds, without decoding a folder dataset (its file listing;
    an array dataset is read at its own small size): for checking, before a split is loaded
    at a large size, that it fits in memory."""
    base, _ = parse_name(name)
    spec = _spec(base)
    split = spec.get("aliases", {}).get(split, split)
    if _is_folder(base):
        return len(_image_files(find(base, root), split))
    return int(load(base, split, root)[1].shape[0])

def load(name: str = "cifar10", split: str = "train", root=None, download: bool = False,
         verify_files: bool = True, label_mode: str = "fine", size: Optional[int] = None):
    """Load a dataset split as ``(images uint8 (N,3,H,W), labels int64 (N,))``.

    ``size`` resizes every image to ``size x size`` (antialiased, :func:`resize`); the default
    is the dataset's own size (32 for CIFAR and SVHN, 128 for Imagenette). ``name`` may carry
    it instead: ``load("imagenette:64")`` is ``load("imagenette", size=64)``.
    ``label_mode`` picks CIFAR-100's ``"fine"`` (100) or ``"coarse"`` (20) labels.
    Repeated loads in one process reuse the arrays read the first time (you get a copy).

    **Imagenette** (``name="imagenette"``, splits ``"train"`` and ``"val"``; ``"test"`` is an
    alias of ``"val"``): an ImageFolder tree ``imagenette/{train,val}/<wnid>/*.jpg``; the class
    index is the wnid's position in sorted order (:data:`IMAGENETTE_NAMES` has readable names).
    Every file is verified against the folder's ``MD5SUMS``. The first load of a (split, size)
    decodes every JPEG (a progress bar; 15 s for the 9,469 training images at 64 px on 2 busy
    cores) and caches the uint8 tensor in ``cache_dir()/decoded/``, keyed by the MD5 of
    ``MD5SUMS``; a later process reads it back in 2-3 s. Any image size is accepted (e.g. the
    official 160 or 320 px releases, with an ``MD5SUMS`` made by ``md5sum``): each is resized
    to a square ``size`` without keeping its aspect ratio.
    """
    base, _ = parse_name(name)
    spec = _spec(base)
    px = _size_of(name, size)
    split = spec.get("aliases", {}).get(split, split)
    if split not in spec["splits"]:
        aliases = "".join(f" (and {a!r} for {s!r})" for a, s in spec.get("aliases", {}).items())
        raise ValueError(f"{base} has splits {sorted(spec['splits'])}{aliases}, not {split!r}")
    path = find(base, root, download)
    if _is_folder(base):
        x, y = _load_folder_split(base, split, path, px, verify_files)
        return x.clone(), y.clone()
    files = spec["splits"][split]
    if verify_files:
        verify(base, path, files + ([spec["meta"]] if spec["meta"] else []))
    key = (base, split, str(path), label_mode, px,
           tuple((path / f).stat().st_mtime_ns for f in files))
    if key not in _ARRAYS:
        if base == "cifar10":
            x, y = _read_cifar(path, files, "labels")
        elif base == "cifar100":
            if label_mode not in ("fine", "coarse"):
                raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
            x, y = _read_cifar(path, files, f"{label_mode}_labels")
        else:
            x, y = _read_svhn(path, files[0])
        x = torch.from_numpy(x)
        if x.shape[-1] != px:
            x = resize(x, px)
        _remember(key, (x, torch.from_numpy(y)))
    x, y = _ARRAYS[key]
    return x.clone(), y.clone()


def classes(name: str = "cifar10", root=None) -> List[str]:
    """Class names, read from the dataset's meta file when there is one; Imagenette's are its
    wnids in sorted order (the label order; readable names in :data:`IMAGENETTE_NAMES`)."""
    base, _ = parse_name(name)
    if base == "svhn":
        return [str(i) for i in range(10)]
    spec = _spec(base)
    path = find(base, root)
    if _is_folder(base):
        return _folder_classes(path)
    verify(base, path, [spec["meta"]])
    meta = _unpickle(path / spec["meta"])
    return list(meta["label_names" if base == "cifar10" else "fine_label_names"])


# --------------------------------------------------------------------------- image folders
class FolderData(NamedTuple):
    images: object           # uint8 tensor (N,3,H,W) when resized, else a list of (3,H,W)
    labels: torch.Tensor     # int64 (N,)
    classes: List[str]
    paths: List[Path]        # relative to the root, in the order of ``images``
    errors: List[Tuple[Path, str]]  # files that could not be read, with the reason


def read_image(path) -> torch.Tensor:
    """One image file as a uint8 RGB tensor ``(3, H, W)``."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def resize(image: torch.Tensor, size, chunk: int = 256) -> torch.Tensor:
    """Resize a uint8 ``(3, H, W)`` image, or a batch ``(N, 3, H, W)``, to ``size`` (int or
    ``(h, w)``), antialiased bilinear. An image already at that size comes back unchanged."""
    h, w = (size, size) if isinstance(size, int) else size
    if tuple(image.shape[-2:]) == (h, w):
        return image.clone()
    if image.dim() == 3:
        return _resize4(image.unsqueeze(0), h, w)[0]
    # a batch in chunks: the float copy of a whole dataset need not fit in memory
    return torch.cat([_resize4(image[i:i + chunk], h, w)
                      for i in range(0, image.shape[0], chunk)])


def _resize4(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    import torch.nn.functional as F

    x = F.interpolate(x.float(), size=(h, w), mode="bilinear", antialias=True,
                      align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)


def load_folder(root, size=None, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> FolderData:
    """Read an ImageFolder tree (``root/<class>/<...>/<image>``) of images of any size.

    ``size=None`` keeps each image's own size (``images`` is then a list); an int or
    ``(h, w)`` resizes all of them (``images`` is one uint8 tensor). Files Pillow cannot read
    are skipped and listed in ``errors``; the rest are still returned.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a directory")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root} has no class sub-folders (expected root/<class>/<images>)")
    exts = tuple(e.lower() for e in extensions)
    images, labels, paths, errors = [], [], [], []
    for label, cdir in enumerate(class_dirs):
        for f in sorted(p for p in cdir.rglob("*") if p.is_file()):
            if f.suffix.lower() not in exts:
                continue
            try:
                img = read_image(f)
            except Exception as e:  # noqa: BLE001 - report any unreadable file, keep going
                errors.append((f.relative_to(root), f"{type(e).__name__}: {e}"))
                continue
            images.append(resize(img, size) if size is not None else img)
            labels.append(label)
            paths.append(f.relative_to(root))
    if not images:
        raise DataError(f"no readable images under {root} (extensions {', '.join(exts)}; "
                        f"{len(errors)} unreadable)")
    out = torch.stack(images) if size is not None else images
    return FolderData(out, torch.tensor(labels, dtype=torch.int64),
                      [d.name for d in class_dirs], paths, errors)


# --------------------------------------------------------------------------- validation
def check_images(images, name: str = "images") -> torch.Tensor:
    """Validate a uint8 image batch ``(N, C, H, W)`` with C in {1, 3}; returns it as a tensor."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise ValueError(f"{name} must be uint8 in [0, 255], got {images.dtype}; convert with "
                         "(x * 255).round().clamp(0, 255).to(torch.uint8)")
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have shape (N, C, H, W) with C in (1, 3), "
                         f"got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return images


def check_labels(labels, n: int, name: str = "labels") -> torch.Tensor:
    """Validate integer labels ``(n,)`` with values >= 0; returns them as int64."""
    if isinstance(labels, np.ndarray):
        labels = torch.from_numpy(labels)
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.is_complex():
        raise ValueError(f"{name} must be an integer tensor, got {labels.dtype}")
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the images, "
                         f"got {tuple(labels.shape)}")
    if n and int(labels.min()) < 0:
        raise ValueError(f"{name} must be >= 0, got min {int(labels.min())}")
    return labels.long()


# --------------------------------------------------------------------------- class-balanced subsets
def subset(images, labels, n: int | None, seed: int):
    """A class-balanced subset of ``n`` images (all of them when ``n`` is None or too big),
    chosen by a seeded permutation."""
    if n is None or n >= labels.shape[0]:
        return images, labels
    classes = torch.unique(labels)
    per = n // len(classes)
    if per < 1:
        raise ValueError(f"n={n} is smaller than the number of classes ({len(classes)})")
    perm = torch.randperm(labels.shape[0], generator=torch.Generator().manual_seed(seed))
    idx = torch.cat([perm[labels[perm] == c][:per] for c in classes])
    idx = idx.sort().values
    return images[idx], labels[idx]


def stratified_indices(labels: torch.Tensor, portion: float, gen: torch.Generator):
    """A class-balanced random ``portion`` of the indices, sorted."""
    if portion >= 1.0:
        return torch.arange(len(labels))
    keep = []
    for c in torch.unique(labels):
        idx = (labels == c).nonzero().flatten()
        n = max(1, int(round(portion * len(idx))))
        keep.append(idx[torch.randperm(len(idx), generator=gen)[:n]])
    return torch.cat(keep).sort().values
