import os
import shutil
from pathlib import Path

import pytest
import torch

import fuselib
from fuselib import data

SHARED = data.find("cifar10")  # the local copy tests use; never a download


def test_local_cifar10_counts():
    x, y = data.load("cifar10", "train")
    assert x.shape == (50000, 3, 32, 32) and x.dtype == torch.uint8
    assert y.shape == (50000,) and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [5000] * 10
    xt, yt = data.load("cifar10", "test")
    assert xt.shape == (10000, 3, 32, 32)
    assert torch.bincount(yt).tolist() == [1000] * 10
    assert 20 < x.float().mean() < 235  # real pixels, not zeros


def test_info_reports_which_list_matched():
    info = data.info("cifar10")
    assert info.variant in ("official", "jpeg75")
    assert set(info.matched) == {*(f"data_batch_{i}" for i in range(1, 6)), "test_batch",
                                 "batches.meta"}
    assert info.key == f"cifar10/{info.variant}"


def test_official_md5s_agree_with_torchvision():
    import torchvision.datasets as tvd

    official = data._SPECS["cifar10"]["md5"]["official"]
    for fname, digest in tvd.CIFAR10.train_list + tvd.CIFAR10.test_list:
        assert official[fname] == digest


def test_classes():
    assert data.classes("cifar10") == data.CIFAR10_CLASSES


def _copy_root(tmp_path: Path, corrupt: str) -> Path:
    """A root whose files link to the real ones, except ``corrupt`` which is a real copy."""
    d = tmp_path / "cifar10" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for f in SHARED.iterdir():
        if f.name == corrupt:
            shutil.copyfile(f, d / f.name)
            os.chmod(d / f.name, 0o644)
        else:
            os.symlink(f, d / f.name)
    return tmp_path


def test_flipped_byte_is_rejected(tmp_path):
    root = _copy_root(tmp_path, "data_batch_3")
    f = root / "cifar10" / "cifar-10-batches-py" / "data_batch_3"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="data_batch_3.*corrupt or truncated"):
        data.load("cifar10", "train", root=root)
    data.load("cifar10", "test", root=root)  # the other split is still fine


def test_truncated_file_is_rejected(tmp_path):
    root = _copy_root(tmp_path, "test_batch")
    f = root / "cifar10" / "cifar-10-batches-py" / "test_batch"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(data.DataError, match=r"test_batch \(1000 bytes"):
        data.load("cifar10", "test", root=root)


def test_missing_file_is_named(tmp_path):
    root = _copy_root(tmp_path, "data_batch_5")
    (root / "cifar10" / "cifar-10-batches-py" / "data_batch_5").unlink()
    with pytest.raises(data.DataError, match="missing file .*data_batch_5"):
        data.load("cifar10", "train", root=root)


def test_explicit_root_without_data(tmp_path):
    with pytest.raises(data.DataError, match="(?s)not found.*download=True"):
        data.load("cifar10", root=tmp_path)


def test_env_root_falls_through_to_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELIB_DATA", str(tmp_path))
    srcs = [s for s, _ in data.candidate_roots()]
    assert srcs[0] == "$FUSELIB_DATA" and srcs[-1] == "user cache"
    assert data.find("cifar10") == SHARED


def test_unknown_dataset_and_split():
    with pytest.raises(KeyError, match="unknown dataset 'mnist'"):
        data.load("mnist")
    with pytest.raises(ValueError, match="splits"):
        data.load("cifar10", split="validation")


def _write_png(path: Path, h: int, w: int, seed: int):
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def test_load_folder_any_size_and_bad_files(tmp_path):
    _write_png(tmp_path / "cats" / "a.png", 40, 50, 0)
    _write_png(tmp_path / "cats" / "sub" / "b.png", 64, 64, 1)
    _write_png(tmp_path / "dogs" / "c.png", 20, 30, 2)
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "dogs" / "notes.txt").write_text("ignored")
    raw = data.load_folder(tmp_path)
    assert raw.classes == ["cats", "dogs"]
    assert [tuple(im.shape) for im in raw.images] == [(3, 40, 50), (3, 64, 64), (3, 20, 30)]
    assert raw.labels.tolist() == [0, 0, 1]
    assert [str(e[0]) for e in raw.errors] == [os.path.join("dogs", "broken.jpg")]
    resized = data.load_folder(tmp_path, size=32)
    assert resized.images.shape == (3, 3, 32, 32) and resized.images.dtype == torch.uint8


def test_load_folder_errors(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataError, match="no class sub-folders"):
        data.load_folder(tmp_path / "empty")


def test_version():
    assert fuselib.__version__.count(".") == 2


def test_explicit_root_that_does_not_exist_is_an_error(tmp_path, monkeypatch):
    # $FUSELIB_DATA set to a folder that is not there: an error naming it, no silent fall-back
    monkeypatch.setenv("FUSELIB_DATA", str(tmp_path / "nonexistent"))
    for call in (lambda: data.find("cifar10"), lambda: data.load("cifar10", "test"),
                 lambda: data.info("cifar10"), lambda: data.classes("imagenette")):
        with pytest.raises(data.DataError, match=r"FUSELIB_DATA=.*nonexistent does not exist"):
            call()
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("FUSELIB_DATA", str(tmp_path / "a_file"))
    with pytest.raises(data.DataError, match="FUSELIB_DATA=.*a_file is not a directory"):
        data.find("cifar10")
    monkeypatch.setenv("FUSELIB_DATA", "")  # empty is unset: the default search
    assert data.find("cifar10") == SHARED
    monkeypatch.delenv("FUSELIB_DATA")
    with pytest.raises(data.DataError, match=r"root=.*nowhere does not exist"):
        data.load("cifar10", root=tmp_path / "nowhere")


def test_size_resizes_any_dataset():
    x, y = data.load("cifar10", "test")
    x16, y16 = data.load("cifar10", "test", size=16)
    assert x16.shape == (10000, 3, 16, 16) and x16.dtype == torch.uint8
    assert torch.equal(y, y16)
    assert torch.equal(x16[:5], torch.stack([data.resize(im, 16) for im in x[:5]]))
    assert torch.equal(data.load("cifar10:16", "test")[0], x16)
    assert data.info("cifar10:16").key == f"cifar10:16/{data.info('cifar10').variant}"
    assert torch.equal(data.load("cifar10:32", "test")[0], x)  # the default size: unchanged
