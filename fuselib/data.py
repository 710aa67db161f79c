"""Datasets as in-memory tensors: uint8 images ``(N, 3, H, W)`` and int64 labels ``(N,)``.

``load("cifar10", split="train")`` reads the standard ``cifar-10-batches-py`` pickle layout.
Where the files are looked for, in order:

1. the ``root`` argument (used as given: no fallback when the data is not there);
2. ``$FUSELIB_DATA``;
3. ``../shared/data`` beside the repository (or beside the working directory), when it exists;
4. the user cache, ``$FUSELIB_CACHE`` or ``~/.cache/fuselib/data``.

Within a root a dataset may sit in its own folder (``ROOT/cifar10/cifar-10-batches-py``) or
directly (``ROOT/cifar-10-batches-py``, torchvision's layout). Nothing is downloaded unless
the caller passes ``download=True`` (through torchvision, into the explicit root, else
``$FUSELIB_DATA``, else the user cache).

Every file is checked against known MD5 lists before it is unpickled: the official release
and the local JPEG-75 re-encoding of CIFAR-10 shipped in ``shared/data`` (see its README).
:func:`info` says which list matched; the variant is part of every cached result's key.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

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
}

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


class DataError(ValueError):
    """A dataset file is missing, truncated or does not match any known checksum."""


def names() -> List[str]:
    return sorted(_SPECS)


def _spec(name: str) -> dict:
    if name not in _SPECS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(names())} "
                       "(for your own images use load_folder)")
    return _SPECS[name]


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


def _dataset_dir(name: str, root: Path) -> Optional[Path]:
    folder = _spec(name)["folder"]
    for d in (root / name / folder, root / folder):
        probe = d / _spec(name)["splits"]["test"][0]
        if probe.exists():
            return d
    return None


def find(name: str, root=None, download: bool = False) -> Path:
    """The folder that holds ``name``'s files (downloading only when asked)."""
    cands = candidate_roots(root)
    for _, r in cands:
        d = _dataset_dir(name, r)
        if d is not None:
            return d
    if download:
        target = Path(root) if root is not None else (
            Path(os.environ["FUSELIB_DATA"]) if os.environ.get("FUSELIB_DATA") else cache_dir())
        return _download(name, target / name)
    searched = "\n  ".join(f"{src}: {p}" for src, p in cands)
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
    name: str
    path: Path
    variant: str                      # "official", "jpeg75", or "unverified"
    matched: Dict[str, str] = field(default_factory=dict)  # file -> list it matched

    @property
    def key(self) -> str:
        """Short identifier of the exact data, used in result-cache keys."""
        return f"{self.name}/{self.variant}"


def verify(name: str, path: Path, files: Sequence[str]) -> DatasetInfo:
    """Check ``files`` in ``path`` against every known MD5 list of ``name``.

    Each file must exist and match a list, and all files must match the same list.
    Raises :class:`DataError` naming the file and what to do otherwise.
    """
    lists = _spec(name)["md5"]
    matched = {}
    for fname in files:
        f = path / fname
        if not f.is_file():
            raise DataError(f"{name}: missing file {f}. Restore it, or re-download with "
                            f"load({name!r}, download=True) into an empty root.")
        digest = _md5_memo(f)
        hits = [v for v, sums in lists.items() if sums.get(fname) == digest]
        if not hits:
            raise DataError(
                f"{name}: {f} ({f.stat().st_size} bytes, md5 {digest}) matches no known "
                f"checksum ({', '.join(lists)}): the file is corrupt or truncated. Delete it "
                "and re-download, restore it from its source, or pass verify=False if it is "
                "a copy you made on purpose.")
        matched[fname] = hits
    variants = set.intersection(*(set(h) for h in matched.values()))
    if not variants:
        detail = ", ".join(f"{k}: {'/'.join(v)}" for k, v in matched.items())
        raise DataError(f"{name} in {path}: files come from different releases ({detail})")
    variant = next(v for v in lists if v in variants)  # "official" wins a tie (e.g. meta only)
    return DatasetInfo(name, path, variant, {k: variant for k in matched})


def info(name: str = "cifar10", root=None, download: bool = False) -> DatasetInfo:
    """Find ``name`` and verify all its files; says which MD5 list matched."""
    path = find(name, root, download)
    spec = _spec(name)
    files = spec["splits"]["train"] + spec["splits"]["test"]
    if spec["meta"]:
        files.append(spec["meta"])
    return verify(name, path, files)


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


def load(name: str = "cifar10", split: str = "train", root=None, download: bool = False,
         verify_files: bool = True, label_mode: str = "fine"):
    """Load a dataset split as ``(images uint8 (N,3,H,W), labels int64 (N,))``.

    ``label_mode`` picks CIFAR-100's ``"fine"`` (100) or ``"coarse"`` (20) labels.
    Repeated loads in one process reuse the arrays read the first time (you get a copy).
    """
    spec = _spec(name)
    if split not in spec["splits"]:
        raise ValueError(f"{name} has splits {sorted(spec['splits'])}, not {split!r}")
    path = find(name, root, download)
    files = spec["splits"][split]
    if verify_files:
        verify(name, path, files + ([spec["meta"]] if spec["meta"] else []))
    key = (name, split, str(path), label_mode,
           tuple((path / f).stat().st_mtime_ns for f in files))
    if key not in _ARRAYS:
        if name == "cifar10":
            x, y = _read_cifar(path, files, "labels")
        elif name == "cifar100":
            if label_mode not in ("fine", "coarse"):
                raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
            x, y = _read_cifar(path, files, f"{label_mode}_labels")
        else:
            x, y = _read_svhn(path, files[0])
        if len(_ARRAYS) >= 4:  # a few splits stay in memory, not every one ever read
            _ARRAYS.pop(next(iter(_ARRAYS)))
        _ARRAYS[key] = (torch.from_numpy(x), torch.from_numpy(y))
    x, y = _ARRAYS[key]
    return x.clone(), y.clone()


def classes(name: str = "cifar10", root=None) -> List[str]:
    """Class names, read from the dataset's meta file when there is one."""
    if name == "svhn":
        return [str(i) for i in range(10)]
    spec = _spec(name)
    path = find(name, root)
    verify(name, path, [spec["meta"]])
    meta = _unpickle(path / spec["meta"])
    return list(meta["label_names" if name == "cifar10" else "fine_label_names"])


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


def resize(image: torch.Tensor, size) -> torch.Tensor:
    """Resize a uint8 ``(3, H, W)`` image to ``size`` (int or ``(h, w)``), antialiased."""
    import torch.nn.functional as F

    h, w = (size, size) if isinstance(size, int) else size
    x = image.unsqueeze(0).float()
    x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)[0]


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
