"""Imagenette in the data layer: an ImageFolder tree verified against its MD5SUMS, resized to
32/64/128, decoded once and cached. Every test builds its own tiny tree in ``tmp_path``; only
the last one looks at the real copy in ``../shared/data`` (and is skipped without it)."""
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from fuselib import data

# created out of sorted order on purpose: the label is the wnid's position in sorted order
WNIDS = ["n03888257", "n01440764", "n02102040"]
SORTED = sorted(WNIDS)
COUNTS = {"train": 3, "val": 2}


def _colour(wnid: str, i: int):
    k = SORTED.index(wnid)
    return (40 + 80 * k, 200 - 60 * k, 30 + 20 * i)


def _write_sums(folder: Path) -> None:
    lines = [f"{hashlib.md5(f.read_bytes()).hexdigest()}  {f.relative_to(folder).as_posix()}"
             for f in sorted(folder.glob("*/*/*")) if f.is_file()]
    (folder / "MD5SUMS").write_text("\n".join(lines) + "\n")


def _tree(root: Path, shape=(48, 40)) -> Path:
    """root/imagenette/{train,val}/<wnid>/*.jpg (solid colours, not square) and MD5SUMS."""
    from PIL import Image

    folder = root / "imagenette"
    for split, n in COUNTS.items():
        for wnid in WNIDS:
            d = folder / split / wnid
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", shape[::-1], _colour(wnid, i)).save(d / f"img_{i}.jpg",
                                                                     quality=95)
    _write_sums(folder)
    return folder


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A synthetic Imagenette under tmp_path/data, and an empty decoded cache beside it."""
    monkeypatch.setenv("FUSELIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FUSELIB_DATA", raising=False)
    monkeypatch.setattr(data, "_ARRAYS", {})
    _tree(tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize("size", [32, 64, 128])
def test_shapes_labels_and_class_order(tree, size):
    x, y = data.load("imagenette", "train", root=tree, size=size)
    n = COUNTS["train"] * len(WNIDS)
    assert x.shape == (n, 3, size, size) and x.dtype == torch.uint8
    assert y.shape == (n,) and y.dtype == torch.int64
    assert y.tolist() == [k for k in range(len(WNIDS)) for _ in range(COUNTS["train"])]
    assert data.classes("imagenette", root=tree) == SORTED
    # each image is its class's solid colour, resized (JPEG: within a few levels)
    for img, label, i in zip(x, y, [i for _ in WNIDS for i in range(COUNTS["train"])]):
        want = torch.tensor(_colour(SORTED[int(label)], i), dtype=torch.float32)
        assert (img.float().mean((1, 2)) - want).abs().max() < 4


def test_val_and_test_alias(tree):
    xv, yv = data.load("imagenette", "val", root=tree, size=32)
    xt, yt = data.load("imagenette", "test", root=tree, size=32)
    assert xv.shape == (COUNTS["val"] * len(WNIDS), 3, 32, 32)
    assert torch.equal(xv, xt) and torch.equal(yv, yt)
    assert torch.bincount(yv).tolist() == [COUNTS["val"]] * len(WNIDS)
    with pytest.raises(ValueError, match=r"splits \['train', 'val'\].*'test'"):
        data.load("imagenette", "extra", root=tree)


def test_default_size_and_size_in_the_name(tree):
    x, _ = data.load("imagenette", "val", root=tree)
    assert x.shape[-2:] == (128, 128)
    assert torch.equal(data.load("imagenette:64", "val", root=tree)[0],
                       data.load("imagenette", "val", root=tree, size=64)[0])
    assert data.parse_name("imagenette:64") == ("imagenette", 64)
    assert data.parse_name("imagenette:128") == ("imagenette", None)  # the default: one name
    with pytest.raises(ValueError, match="names size 64, but size=32"):
        data.load("imagenette:64", "val", root=tree, size=32)
    for bad in ("imagenette:abc", "imagenette:0", "imagenette:-3"):
        with pytest.raises(ValueError, match="image size in pixels"):
            data.parse_name(bad)
    with pytest.raises(ValueError, match="positive int"):
        data.load("imagenette", "val", root=tree, size=0)


def test_info_key_names_the_copy_and_the_size(tree):
    info = data.info("imagenette", root=tree)
    digest = hashlib.md5((tree / "imagenette" / "MD5SUMS").read_bytes()).hexdigest()
    assert info.variant == f"md5sums-{digest[:8]}"  # not the known local128 copy
    assert info.key == f"imagenette/md5sums-{digest[:8]}"
    assert info.path == tree / "imagenette"
    assert set(info.matched) == {"MD5SUMS", "train", "val"}
    assert data.info("imagenette:64", root=tree).key == f"imagenette:64/md5sums-{digest[:8]}"
    assert data.info("imagenette:128", root=tree).key == info.key
    # the folder itself as the root works too
    assert data.find("imagenette", root=tree / "imagenette") == tree / "imagenette"


def test_md5_mismatch_names_the_file(tree):
    from PIL import Image

    bad = tree / "imagenette" / "val" / WNIDS[1] / "img_1.jpg"
    Image.new("RGB", (40, 48), (1, 2, 3)).save(bad)
    with pytest.raises(data.DataError, match=r"val/n01440764/img_1\.jpg .*does not match"):
        data.load("imagenette", "val", root=tree)
    with pytest.raises(data.DataError, match=r"img_1\.jpg"):
        data.info("imagenette", root=tree)
    x, _ = data.load("imagenette", "train", root=tree, size=32)  # the other split is fine
    assert x.shape[0] == COUNTS["train"] * len(WNIDS)
    x, _ = data.load("imagenette", "val", root=tree, size=32, verify_files=False)
    assert x.shape[0] == COUNTS["val"] * len(WNIDS)


def test_missing_unlisted_and_no_sums(tree):
    folder = tree / "imagenette"
    (folder / "train" / WNIDS[0] / "img_0.jpg").unlink()
    with pytest.raises(data.DataError, match=r"missing file .*train/n03888257/img_0\.jpg"):
        data.load("imagenette", "train", root=tree)
    _write_sums(folder)
    (folder / "val" / WNIDS[0] / "extra.jpg").write_bytes(
        (folder / "val" / WNIDS[0] / "img_0.jpg").read_bytes())
    with pytest.raises(data.DataError, match=r"extra\.jpg is not listed in .*MD5SUMS"):
        data.load("imagenette", "val", root=tree)
    (folder / "MD5SUMS").unlink()
    with pytest.raises(data.DataError, match="no MD5SUMS.*md5sum.*verify_files=False"):
        data.load("imagenette", "val", root=tree)
    x, y = data.load("imagenette", "val", root=tree, size=32, verify_files=False)
    assert x.shape[0] == y.shape[0] == COUNTS["val"] * len(WNIDS) + 1
    assert not (tree.parent / "cache" / "decoded").exists()  # unverified data is never cached


def test_cache_hit_returns_identical_tensors(tree, monkeypatch):
    x1, y1 = data.load("imagenette", "train", root=tree, size=64)
    cached = sorted((tree.parent / "cache" / "decoded").glob("*.pt"))
    assert [f.name for f in cached] == [
        f"imagenette-{data._read_sums(tree / 'imagenette')[0][:16]}-train-64px.pt"]
    assert not list(cached[0].parent.glob(".*"))  # no temporary left by the atomic write

    def no_decode(*a, **k):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(data, "_decode_split", no_decode)
    monkeypatch.setattr(data, "_ARRAYS", {})  # a new process: only the disk cache is left
    x2, y2 = data.load("imagenette", "train", root=tree, size=64)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    x3, _ = data.load("imagenette", "train", root=tree, size=64)  # the in-process memo
    assert torch.equal(x1, x3)
    x3[0] = 0  # callers get a copy: the next load is not changed by what they do with it
    assert torch.equal(data.load("imagenette", "train", root=tree, size=64)[0], x1)


def test_changed_dataset_or_broken_cache_decodes_again(tree, capsys):
    from PIL import Image

    x1, _ = data.load("imagenette", "val", root=tree, size=32)
    folder = tree / "imagenette"
    Image.new("RGB", (40, 48), (250, 250, 250)).save(folder / "val" / WNIDS[2] / "img_0.jpg")
    _write_sums(folder)  # a changed dataset: a new MD5SUMS, so a new cache key
    data._ARRAYS.clear()
    x2, _ = data.load("imagenette", "val", root=tree, size=32)
    assert not torch.equal(x1, x2)
    assert len(list((tree.parent / "cache" / "decoded").glob("*-val-32px.pt"))) == 2
    # a truncated cache file: a one-line warning, then decoded (and rewritten) again
    f = data.decoded_cache_file("imagenette", "val", 32, data._read_sums(folder)[0])
    f.write_bytes(f.read_bytes()[:100])
    data._ARRAYS.clear()
    x3, _ = data.load("imagenette", "val", root=tree, size=32)
    assert torch.equal(x2, x3)
    assert "ignoring the unreadable decoded cache" in capsys.readouterr().err
    data._ARRAYS.clear()
    assert torch.equal(data.load("imagenette", "val", root=tree, size=32)[0], x2)
    assert capsys.readouterr().err == ""


def test_progress_bar_respects_fuselib_progress(tree, monkeypatch, capsys):
    monkeypatch.setenv("FUSELIB_PROGRESS", "0")
    data.load("imagenette", "val", root=tree, size=32)
    assert "decoding" not in capsys.readouterr().err
    monkeypatch.setenv("FUSELIB_PROGRESS", "1")
    data.load("imagenette", "val", root=tree, size=64)
    assert "decoding imagenette val at 64px" in capsys.readouterr().err


def test_not_found_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELIB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(data.DataError, match="(?s)imagenette not found.*MD5SUMS.*fast.ai"):
        data.load("imagenette", root=tmp_path)
    with pytest.raises(data.DataError, match="cannot be downloaded"):
        data.load("imagenette", root=tmp_path, download=True)


def test_experiments_config_carries_the_size(tree):
    from fuselib.experiments.scales import build_config

    cfg, _, _ = build_config("none", dataset="imagenette:64", scale="smoke", data_root=tree)
    assert cfg["data"].startswith("imagenette:64/md5sums-")


REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "imagenette"


@pytest.mark.skipif(not (REAL / "MD5SUMS").is_file(), reason="no local Imagenette copy")
def test_real_copy_is_local128(monkeypatch):
    """The shared copy verifies against its MD5SUMS (every file, about 1 s) as local128."""
    monkeypatch.delenv("FUSELIB_DATA", raising=False)
    info = data.info("imagenette", root=REAL.parent)
    assert info.key == "imagenette/local128"
    assert data.classes("imagenette", root=REAL.parent) == sorted(data.IMAGENETTE_NAMES)
    digest, sums = data._read_sums(REAL)
    assert sum(k.startswith("train/") for k in sums) == 9469
    assert sum(k.startswith("val/") for k in sums) == 3925
    assert np.all([len(v) == 32 for v in sums.values()])
