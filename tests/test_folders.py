"""Training on an image folder and testing on clean data (``fuselib evaluate-folder``), and the
``protect`` → ``evaluate-folder`` proof, on a tiny synthetic Imagenette built in tmp_path."""
import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from fuselib import cli, data
from fuselib.experiments import folders

WNIDS = ["n01440764", "n02102040", "n03888257"]


def _tree(root, n_train=8, n_val=4, size=24):
    """root/imagenette/{train,val}/<wnid>/*.jpg: noisy class colours, with MD5SUMS."""
    rng = np.random.default_rng(0)
    folder = root / "imagenette"
    for split, n in (("train", n_train), ("val", n_val)):
        for k, wnid in enumerate(WNIDS):
            d = folder / split / wnid
            d.mkdir(parents=True)
            for i in range(n):
                base = np.array([60 + 70 * k, 180 - 50 * k, 90], dtype=np.int16)
                arr = (base + rng.integers(-40, 40, (size, size, 3))).clip(0, 255)
                Image.fromarray(arr.astype(np.uint8)).save(d / f"im{i}.jpg", quality=95)
    lines = [f"{hashlib.md5(f.read_bytes()).hexdigest()}  {f.relative_to(folder).as_posix()}"
             for f in sorted(folder.glob("*/*/*"))]
    (folder / "MD5SUMS").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FUSELIB_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("FUSELIB_DATA", raising=False)
    monkeypatch.setattr(data, "_ARRAYS", {})
    return _tree(tmp_path / "data")


QUICK = dict(scale="smoke", epochs=2, recipe={"batch_size": 8})


def test_evaluate_folder_trains_tests_and_caches(root):
    train_dir = root / "imagenette" / "train"
    r = folders.evaluate_folder(train_dir, "imagenette", 16, data_root=root, **QUICK)
    assert not r["cached"] and 0 <= r["accuracy"] <= 1 and len(r["curve"]) == 2
    assert r["config"]["test"] == "imagenette:16/" + data.info("imagenette", root).variant
    assert r["config"]["recipe"]["crop_scale"] == 0.35 and r["config"]["train"]["n"] == 24
    again = folders.evaluate_folder(train_dir, "imagenette", 16, data_root=root, **QUICK)
    assert again["cached"] and again["accuracy"] == r["accuracy"]
    # another filter, another run; the same images under another path: the same run
    lp = folders.evaluate_folder(train_dir, "imagenette", 16, "lowpass:0.25", data_root=root,
                                 **QUICK)
    assert lp["key"] != r["key"]
    import shutil
    copy = shutil.copytree(train_dir, root / "elsewhere")
    assert folders.evaluate_folder(copy, "imagenette", 16, data_root=root, **QUICK)["cached"]


def test_evaluate_folder_refuses_other_classes_and_defences(root, tmp_path):
    other = tmp_path / "other"
    for c in ("cats", "dogs"):
        (other / c).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(other / c / "a.png")
    with pytest.raises(ValueError, match="not the classes of imagenette"):
        folders.evaluate_folder(other, "imagenette", 16, data_root=root, **QUICK)
    with pytest.raises(ValueError, match="training-time defence"):
        folders.evaluate_folder(other, "imagenette", 16, "cutout", data_root=root, **QUICK)


def test_resized_copy_is_complete_and_atomic(root, tmp_path):
    out = folders.resized_copy(root / "imagenette" / "train", tmp_path / "small", 12)
    assert sorted(p.name for p in out.iterdir()) == WNIDS
    imgs = sorted(out.rglob("*.png"))
    assert len(imgs) == 24 and data.read_image(imgs[0]).shape == (3, 12, 12)
    assert not (tmp_path / "small.tmp").exists()


def test_proof_labels_name_the_fit_settings():
    assert folders.proof_label({}) == "fuse"
    assert folders.proof_label({"epochs": 10}) == "fuse"  # PROOF_FIT, said explicitly
    assert folders.proof_label({"epochs": 20}) == "fuse:epochs=20"
    assert folders.proof_label({"lr": 0.1, "epochs": 20}) == "fuse:epochs=20,lr=0.1"


def test_protect_proof_end_to_end_and_the_command(root, tmp_path, capsys):
    df = folders.protect_proof(tmp_path / "work", scale="smoke", size=16, data_root=root,
                               epochs=1, batch_size=8, surrogate_steps=1)
    fit = "fuse:batch_size=8,epochs=1,surrogate_steps=1"  # the fit's settings name its rows
    assert list(df.label) == ["clean", fit] * 2
    assert list(df.countermeasure) == ["none", "none", "lowpass:0.25", "lowpass:0.25"]
    assert df.accuracy.between(0, 1).all()
    protected = tmp_path / "work" / "imagenette16_fuse_batch_size8_epochs1_surrogate_steps1_seed0"
    diff = max(int((data.read_image(p).int() - data.read_image(
        tmp_path / "work" / "imagenette16" / p.relative_to(protected)).int()).abs().max())
        for p in protected.rglob("*.png"))
    assert 0 < diff <= 8
    cached = folders.protect_proof(tmp_path / "work", scale="smoke", size=16, data_root=root,
                                   cached_only=True)
    assert sorted(cached.key) == sorted(df.key)
    assert cli.main(["--data-root", str(root), "evaluate-folder", str(protected), "--size", "16",
                     "--scale", "smoke", "--epochs", "1"]) == 0
    assert "tested on clean imagenette:16/" in capsys.readouterr().out
    assert cli.main(["evaluate-folder", str(tmp_path / "missing")]) == 2
