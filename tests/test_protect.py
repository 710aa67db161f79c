"""``fuselib protect``: a user's own image folder in, a protected PNG tree and manifest out."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image

from fuselib import cli, data, protections
from fuselib.protect import protect_folder

QUICK = dict(size=32, epochs=1, portion=1.0, batch_size=8, surrogate_steps=2)


def _tree(root, sizes, gray=True):
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cats", "dogs"]):
        for i, (h, w) in enumerate(sizes):
            d = root / name / ("sub" if i == 0 else "")
            d.mkdir(parents=True, exist_ok=True)
            arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(d / f"img{i}.{'jpg' if i % 2 else 'png'}")
    (root / "dogs" / "broken.png").write_bytes(b"not an image")
    if gray:  # a grayscale (mode "L") image of yet another size
        Image.fromarray(rng.integers(0, 256, (20, 30), dtype=np.uint8)).save(root / "cats" / "g.png")
    return root


@pytest.mark.parametrize("sizes", [[(40, 36)] * 4, [(40, 36), (1, 1), (768, 1024), (33, 31)]])
def test_protect_mixed_sizes(tmp_path, sizes):
    same = len(set(sizes)) == 1
    src = _tree(tmp_path / "in", sizes, gray=not same)
    # the class patterns (32x32) are tiled over every image, whatever its size
    s = protect_folder(src, tmp_path / "out", **QUICK, input="images" if same else "noise")
    n = 8 if same else 9
    assert s["written"] == n and s["skipped"] == 1 and s["max_abs_delta"] <= 8
    rows = list(csv.DictReader(open(s["manifest"])))
    assert len(rows) == n + 1 and sum(r["status"].startswith("skipped") for r in rows) == 1
    for r in rows:
        if r["status"] != "ok":
            continue
        orig = data.read_image(src / r["file"])  # grayscale inputs are read (and kept) as RGB
        prot = data.read_image(tmp_path / "out" / r["output"])
        assert r["output"].endswith(".png") and prot.shape == orig.shape
        diff = (prot.int() - orig.int()).abs().max()
        assert int(diff) == int(r["max_abs_delta"]) <= 8
        assert float(r["psnr_db"]) > 30 or orig.shape[-1] == 1  # a 1x1 image: PSNR of one pixel
    assert (tmp_path / "out" / "cats" / "sub" / "img0.png").is_file()  # the tree is mirrored
    assert not list((tmp_path / "out").rglob(".*tmp*"))


def test_protect_with_a_saved_protection_and_refusals(tmp_path, capsys):
    src = _tree(tmp_path / "in", [(32, 32)] * 3)
    saved = tmp_path / "fuse.pt"
    assert cli.main(["protect", str(src), str(tmp_path / "out1"), "--epochs", "1", "--size",
                     "32", "--batch-size", "6", "--save-protection", str(saved)]) == 0
    assert "wrote 7 protected PNGs" in capsys.readouterr().out
    assert protections.load(saved).name == "fuse"
    s = protect_folder(src, tmp_path / "out2", checkpoint=saved)
    assert s["written"] == 7 and s["max_abs_delta"] <= 8
    with pytest.raises(ValueError, match="input tree"):
        protect_folder(src, src / "protected", **QUICK)
    with pytest.raises(ValueError, match="input tree"):
        protect_folder(src, src, **QUICK)
    assert cli.main(["protect", str(tmp_path / "nope"), str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    other = protections.get("random").fit(torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
                                          torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="not fuse"):
        protect_folder(src, tmp_path / "o3", checkpoint=other.save(tmp_path / "r.pt"))


def test_the_default_fit_length_follows_the_working_size(tmp_path, monkeypatch):
    """No epochs given: 10 up to 32 px (CIFAR-10's), 20 above (10 stop on a plateau at 64 px);
    given ones (API or ``--epochs``) win."""
    from fuselib import protect

    class Stop(Exception):
        pass

    seen = []

    def capture(p, *args):
        seen.append(p.config()["epochs"])
        raise Stop

    monkeypatch.setattr(protect, "_train_and_save", capture)
    src = _tree(tmp_path / "in", [(40, 40)] * 2, gray=False)
    for i, kw in enumerate([dict(size=32), dict(size=64), dict(), dict(size=64, epochs=3)]):
        with pytest.raises(Stop):
            protect_folder(src, tmp_path / f"out{i}", **kw)
    with pytest.raises(Stop):
        cli.main(["protect", str(src), str(tmp_path / "cli"), "--size", "48"])
    assert seen == [10, 20, 20, 3, 20]
    assert [protect.default_epochs(s) for s in (8, 32, 33, 128)] == [10, 10, 20, 20]
