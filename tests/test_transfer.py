"""Cross-dataset transfer (claim 5): perturbations made on one dataset moved to another by a
random crop (larger source), tiling (smaller) or as they are, class index to class index, within
the budget; ``"NAME@DATASET"`` specs in the experiments layer, and specs without ``@`` unchanged."""
import hashlib
from pathlib import Path

import pytest
import torch

from fuselib import data
from fuselib.experiments import build_config, config_key, fit_config, plans, runner, transfer


def _source(n_per_class=3, classes=2, size=16, budget=8, seed=0):
    """Clean mid-grey source images, each with its own random δ in [-budget, budget]."""
    g = torch.Generator().manual_seed(seed)
    n = n_per_class * classes
    clean = torch.full((n, 3, size, size), 128, dtype=torch.uint8)
    d = torch.randint(-budget, budget + 1, (n, 3, size, size), generator=g, dtype=torch.int16)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    return clean, (clean.to(torch.int16) + d).to(torch.uint8), labels, d


def _target(n_per_class=5, classes=2, size=8, value=128):
    labels = torch.arange(classes).repeat(n_per_class)  # interleaved on purpose
    return torch.full((len(labels), 3, size, size), value, dtype=torch.uint8), labels


def test_method_names_the_move():
    assert transfer.method(128, 32) == "crop"
    assert transfer.method(32, 64) == "tile"
    assert transfer.method(32, 32) == "as is"
    assert transfer.method(128, 32, "l2") == "crop, L2 rescaled"
    with pytest.raises(ValueError):
        transfer.method(0, 32)


def test_crop_takes_a_same_class_window_within_the_budget():
    xs, ps, ys, d = _source(size=16)
    xt, yt = _target(size=8)
    out = transfer.move(xs, ps, ys, xt, yt, seed=0)
    assert out.shape == xt.shape and out.dtype == torch.uint8
    moved = out.to(torch.int16) - xt.to(torch.int16)
    assert int(moved.abs().max()) <= 8
    for k in range(len(xt)):  # every moved δ is an 8x8 window of a δ of its own class
        windows = [d[j, :, i:i + 8, l:l + 8] for j in (ys == yt[k]).nonzero().flatten()
                   for i in range(9) for l in range(9)]
        assert any(torch.equal(moved[k], w) for w in windows), k
    offsets = {(int(moved[k, 0, 0, 0]), int(moved[k, 0, 0, 1])) for k in range(len(xt))}
    assert len(offsets) > 1  # not one window for all


def test_tile_repeats_the_pattern_at_native_scale():
    xs, ps, ys, d = _source(n_per_class=1, size=8)  # one source per class: the choice is fixed
    xt, yt = _target(size=20)
    out = transfer.move(xs, ps, ys, xt, yt, seed=3)
    moved = out.to(torch.int16) - xt.to(torch.int16)
    assert out.shape == (len(yt), 3, 20, 20) and int(moved.abs().max()) <= 8
    for k in range(len(yt)):
        want = d[int(yt[k])].repeat(1, 3, 3)[:, :20, :20]  # anchored at the top-left corner
        assert torch.equal(moved[k], want)


def test_same_size_as_is_and_clipped_to_valid_pixels():
    xs, ps, ys, d = _source(n_per_class=1, size=8)
    xt, yt = _target(size=8, value=0)  # black: negative steps clip at 0
    out = transfer.move(xs, ps, ys, xt, yt, seed=0)
    for k in range(len(yt)):
        assert torch.equal(out[k].to(torch.int16), d[int(yt[k])].clamp(min=0))
    white = transfer.move(xs, ps, ys, torch.full_like(xt, 255), yt, seed=0)
    assert int(white.min()) >= 255 - 8


def test_every_source_image_is_used_about_equally():
    xs, ps, ys, _ = _source(n_per_class=4, size=8)
    idx = transfer.choose(ys, torch.arange(2).repeat(8), torch.Generator().manual_seed(0))
    assert torch.equal(ys[idx], torch.arange(2).repeat(8))
    assert torch.bincount(idx, minlength=len(ys)).tolist() == [2] * len(ys)


def test_seeded_determinism():
    xs, ps, ys, _ = _source(size=16)
    xt, yt = _target(size=8)
    a = transfer.move(xs, ps, ys, xt, yt, seed=1)
    assert torch.equal(a, transfer.move(xs, ps, ys, xt, yt, seed=1))
    assert not torch.equal(a, transfer.move(xs, ps, ys, xt, yt, seed=2))


def test_class_mismatch_is_refused():
    xs, ps, ys, _ = _source(classes=3, size=8)
    xt, yt = _target(classes=10, n_per_class=1, size=8)
    with pytest.raises(ValueError, match="3 classes.*10 classes.*same number of classes"):
        transfer.move(xs, ps, ys, xt, yt)
    with pytest.raises(ValueError, match="no source image"):  # same count, a class missing
        transfer.move(xs[:6], ps[:6], torch.tensor([0, 0, 0, 2, 2, 2]), xt[:3],
                      torch.tensor([0, 1, 2]))


def test_l2_perturbations_are_rescaled_to_their_radius():
    eps = 1.0  # AR's L2 radius in [0, 1] units: 255 in steps
    g = torch.Generator().manual_seed(0)
    for src, tgt in ((32, 8), (8, 16)):  # a crop keeps a quarter of the norm, a tile doubles it
        xs = torch.full((2, 3, src, src), 128, dtype=torch.uint8)
        d = torch.randn(2, 3, src, src, generator=g)
        d = (d * (200.0 / d.flatten(1).norm(dim=1)).view(-1, 1, 1, 1)).round()
        ps = (xs.float() + d).to(torch.uint8)
        xt, yt = _target(n_per_class=2, size=tgt)
        out = transfer.move(xs, ps, torch.tensor([0, 1]), xt, yt, norm="l2", eps=eps)
        norms = (out.float() - xt.float()).flatten(1).norm(dim=1)
        assert (norms <= eps * 255 + 1e-3).all() and (norms > 0.95 * eps * 255).all(), norms


def test_bad_inputs():
    xs, ps, ys, _ = _source(size=8)
    xt, yt = _target(size=8)
    with pytest.raises(ValueError, match="uint8"):
        transfer.move(xs.float(), ps, ys, xt, yt)
    with pytest.raises(ValueError, match="channels"):
        transfer.move(xs, ps, ys, xt[:, :1], yt)


# --------------------------------------------------------------------------- specs and configs
def test_specs_without_at_build_todays_configs():
    """No ``@``: no ``transfer`` field, the same fields as ever (the shipped records' keys are
    checked in tests/test_layout.py)."""
    for spec in ("none", "fuse", "em", "ar", "fuse:rsm=False", "tap:steps=10"):
        cfg, _, _ = build_config(spec, "lowpass:0.25", scale="cpu", seed=1)
        assert set(cfg) == {"fuselib", "data", "protection", "countermeasure", "trainer",
                            "recipe", "scale", "n_train", "n_test", "seed"}
        assert fit_config(cfg) == {k: cfg[k] for k in ("fuselib", "data", "protection",
                                                       "n_train", "seed")}


def test_split_source():
    from fuselib.experiments.scales import split_source

    assert split_source("fuse") == ("fuse", None)
    assert split_source("fuse:rsm=False@imagenette:128") == ("fuse:rsm=False", "imagenette:128")
    for bad in ("fuse@", "@cifar10", "a@b@c"):
        with pytest.raises(ValueError, match="NAME@DATASET"):
            split_source(bad)


def test_transfer_plans_resolve_and_train_nothing_in_ci():
    for name in ("transfer", "transfer_imagenette"):
        plan = plans.get(name)
        assert plan.size("ci") == 0 and "ci" in plan.cached_only and "cpu" in plan.cached_only
        assert plan.notebook == "05_transfer"
        assert all(p in plan.labels["protection"] for p in plan.protections("cpu"))
    assert plans.get("transfer").size("cpu") == 7 * 2 * 3
    assert plans.get("transfer_imagenette").size("cpu") == 8 * 2 * 2  # + FUSE's 20-epoch fit


# --------------------------------------------------------------------------- end to end
def _tree(root: Path, classes: int, shape=(40, 48)):
    """root/imagenette/{train,val}/<class>/*.jpg, solid colours, with its MD5SUMS."""
    from PIL import Image

    folder = root / "imagenette"
    for split, n in (("train", 3), ("val", 1)):
        for c in range(classes):
            d = folder / split / f"n{c:08d}"
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", shape[::-1], (20 * c, 200 - 15 * c, 40 + 50 * i)).save(
                    d / f"img_{i}.jpg", quality=95)
    lines = [f"{hashlib.md5(f.read_bytes()).hexdigest()}  {f.relative_to(folder).as_posix()}"
             for f in sorted(folder.glob("*/*/*")) if f.is_file()]
    (folder / "MD5SUMS").write_text("\n".join(lines) + "\n")


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Two data roots holding the local CIFAR-10 (a link) and a synthetic Imagenette of 10 and
    of 3 classes."""
    try:
        cifar = data.find("cifar10")
    except data.DataError:
        pytest.skip("no local CIFAR-10")
    monkeypatch.setenv("FUSELIB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FUSELIB_DATA", raising=False)
    monkeypatch.setattr(data, "_ARRAYS", {})
    out = {}
    for classes in (10, 3):
        root = tmp_path / f"data{classes}"
        root.mkdir()
        (root / cifar.name).symlink_to(cifar, target_is_directory=True)
        _tree(root, classes)
        out[classes] = root
    return out


def test_config_names_the_source_and_shares_its_fit(roots):
    root = roots[10]
    cfg, _, _ = build_config("fuse@imagenette:64", scale="smoke", seed=1, data_root=root)
    own, _, _ = build_config("fuse", scale="smoke", seed=1, data_root=root)
    there, _, _ = build_config("fuse", scale="smoke", seed=1, dataset="imagenette:64",
                               data_root=root)
    t = cfg["transfer"]
    assert t["data"].startswith("imagenette:64/md5sums-") and t["method"] == "crop"
    assert t["n_train"] == own["n_train"] and cfg["data"] == own["data"]
    assert config_key(cfg) != config_key(own)
    assert fit_config(cfg) == fit_config(there)  # the source's own fit, cached once
    back, _, _ = build_config("ar@cifar10", dataset="imagenette:64", scale="smoke",
                              data_root=root)
    assert back["transfer"]["method"] == "tile, L2 rescaled"
    with pytest.raises(ValueError, match="same data"):
        build_config("fuse@cifar10", scale="smoke", data_root=root)
    with pytest.raises(ValueError, match="3 classes.*10 classes"):
        build_config("fuse@imagenette:64", scale="smoke", data_root=roots[3])


def test_smoke_run_end_to_end(roots, results_tmp):
    """``ar@imagenette:64`` on CIFAR-10: AR fitted on the (synthetic) Imagenette, its 64-px
    perturbations randomly cropped to 32 px, one epoch of training; cached like any run."""
    root = roots[10]
    kw = dict(scale="smoke", seed=0, n_train=200, n_test=100, epochs=1, data_root=root)
    r = runner.run("ar@imagenette:64", **kw)
    assert r["config"]["transfer"]["method"] == "crop, L2 rescaled"
    assert 0 <= r["accuracy"] <= 1 and not r["cached"]
    assert runner.run("ar@imagenette:64", **kw)["cached"]
    own, _, _ = build_config("ar", scale="smoke", n_train=200, n_test=100, epochs=1,
                             data_root=root)
    assert config_key(own) != r["key"]
    clean, protected, labels = runner.protected_data(
        "ar@imagenette:64", scale="smoke", n_train=200, data_root=root)
    assert protected.shape == clean.shape == (200, 3, 32, 32)
    norms = (protected.float() - clean.float()).flatten(1).norm(dim=1) / 255
    assert (norms <= 1.0 + 1e-5).all() and (norms > 0.5).all()
    p = runner.fitted("ar@imagenette:64", scale="smoke", n_train=200, data_root=root)
    assert p.coefficients.shape[0] == 10
