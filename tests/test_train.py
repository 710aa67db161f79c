import pytest
import torch

from fuselib import train as T

TINY = dict(epochs=2, batch_size=64, model_kwargs={"widths": (8, 16, 16), "stem": 8})


def test_deterministic_given_seed(cifar_small):
    x, y = cifar_small
    a = T.train(x, y, x[:128], y[:128], "fast", seed=3, device="cpu", **TINY)
    b = T.train(x, y, x[:128], y[:128], "fast", seed=3, device="cpu", **TINY)
    assert a["curve"] == b["curve"] and a["train_accuracy"] == b["train_accuracy"]
    sa = a["model"].state_dict()
    assert all(torch.equal(v, b["model"].state_dict()[k]) for k, v in sa.items())
    c = T.train(x, y, x[:128], y[:128], "fast", seed=4, device="cpu", **TINY)
    assert any(not torch.equal(v, c["model"].state_dict()[k]) for k, v in sa.items())


def test_result_fields(cifar_small):
    x, y = cifar_small
    r = T.train(x, y, x[:64], y[:64], "fast", seed=0, device="cpu", **TINY)
    assert len(r["curve"]) == 2 and r["peak_accuracy"] == max(r["curve"])
    assert r["curve"][r["peak_epoch"] - 1] == r["peak_accuracy"]
    assert r["recipe"]["arch"] == "fastnet" and r["seconds"] > 0


def test_standard_recipe_runs(cifar_small):
    x, y = cifar_small
    r = T.train(x[:128], y[:128], x[:32], y[:32], "standard", epochs=1, seed=0, device="cpu",
                arch="vgg11")
    assert r["recipe"]["lr"] == 0.1 and r["recipe"]["batch_size"] == 128
    assert 0.0 <= r["accuracy"] <= 1.0


def test_augment_keeps_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    out = T.augment(x, g, translate=0, pad_mode="reflect", flip=True)
    for i in range(2):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    shifted = T.augment(x, g, translate=2, pad_mode="constant", flip=False)
    assert shifted.shape == x.shape
    # an interior 4x4 window of every image is a shifted copy of the original
    for i in range(2):
        assert any(torch.equal(shifted[i, :, 2:6, 2:6], x[i, :, 2 + dy:6 + dy, 2 + dx:6 + dx])
                   for dy in range(-2, 3) for dx in range(-2, 3))


def test_recipe_errors():
    with pytest.raises(KeyError, match="unknown trainer"):
        T.get_recipe("slow")
    with pytest.raises(ValueError, match="unknown recipe field"):
        T.get_recipe("fast", learning_rate=1)
    with pytest.raises(ValueError, match="schedule"):
        T.get_recipe("fast", schedule="step")


def test_defences_must_match_the_recipe(cifar_small):
    """The trainer applies no defence of its own: a recipe that switches one on needs it given,
    and a given defence must agree with the recipe's fields."""
    from fuselib import countermeasures

    x, y = cifar_small
    kw = dict(seed=0, device="cpu", **{**TINY, "epochs": 1})
    with pytest.raises(ValueError, match="switches on training-time defence"):
        T.train(x, y, x[:64], y[:64], "fast", cutout=8, **kw)
    with pytest.raises(ValueError, match="wants recipe fields"):
        T.train(x, y, x[:64], y[:64], "fast", cutout=8,
                defences=[countermeasures.get("cutout:16")], **kw)
    ok = T.train(x, y, x[:64], y[:64], "fast", cutout=8,
                 defences=countermeasures.defences(T.get_recipe("fast", cutout=8)), **kw)
    assert len(ok["curve"]) == 1


def test_checkpoint_resumes_exactly(cifar_small, tmp_path, crash_in_epoch_two):
    """A run interrupted after its first epoch finishes, from the checkpoint, exactly as an
    uninterrupted one (mixup: the global and the seeded generator both carry over)."""
    x, y = cifar_small
    from fuselib import countermeasures

    kw = dict(seed=5, device="cpu", **{**TINY, "epochs": 3}, mix="mixup",
              defences=countermeasures.defences(T.get_recipe("fast", mix="mixup")))
    whole = T.train(x, y, x[:128], y[:128], "fast", **kw)
    ckpt = tmp_path / "run.pt"
    with crash_in_epoch_two():
        T.train(x, y, x[:128], y[:128], "fast", checkpoint=ckpt, **kw)
    assert ckpt.is_file()
    torch.manual_seed(123)  # whatever the global generator holds now, the checkpoint restores it
    resumed = T.train(x, y, x[:128], y[:128], "fast", checkpoint=ckpt, **kw)
    assert resumed["resumed_from_epoch"] == 1 and whole["resumed_from_epoch"] == 0
    assert resumed["curve"] == whole["curve"]
    assert resumed["train_accuracy"] == whole["train_accuracy"]
    sw = whole["model"].state_dict()
    assert all(torch.equal(v, sw[k]) for k, v in resumed["model"].state_dict().items())
    # a checkpoint of other data or another recipe is refused, by name
    with pytest.raises(ValueError, match="differs in: data"):
        T.train(x[:200], y[:200], x[:128], y[:128], "fast", checkpoint=ckpt, **kw)
    with pytest.raises(ValueError, match="differs in: recipe"):
        T.train(x, y, x[:128], y[:128], "fast", checkpoint=ckpt,
                **{**kw, "mix": "none", "defences": []})
    torch.save({"format": "something else"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="is not a checkpoint of a training run"):
        T.train(x, y, x[:128], y[:128], "fast", checkpoint=tmp_path / "bad.pt", **kw)


def test_curve_on_a_subset_leaves_the_final_accuracy(cifar_small):
    """The evaluation protocol: epochs before the last are tested on a fixed class-balanced
    subset, the last on every test image, so the final accuracy (and training) is unchanged."""
    x, y = cifar_small
    kw = dict(seed=3, device="cpu", **{**TINY, "epochs": 3})
    whole = T.train(x, y, x[:200], y[:200], "fast", **kw)
    part = T.train(x, y, x[:200], y[:200], "fast", curve_images=50, **kw)
    assert part["accuracy"] == whole["accuracy"] and len(part["curve"]) == 3
    assert part["train_accuracy"] == whole["train_accuracy"]
    assert whole["evaluation"] == {"curve_images": 200, "final_images": 200, "tta": True}
    assert part["evaluation"]["curve_images"] <= 50 and part["evaluation"]["final_images"] == 200
    assert part["curve"][-1] == whole["curve"][-1]
    with pytest.raises(ValueError, match="curve_images"):
        T.get_recipe("fast", curve_images=-1)


def test_curve_subset_is_class_balanced_and_fixed():
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    xs, ys = T.curve_subset(x, y, 2000)
    assert torch.bincount(ys, minlength=10).tolist() == [200] * 10
    again = T.curve_subset(x, y, 2000)
    assert torch.equal(again[0], xs) and torch.equal(again[1], ys)  # seeded: every run's
    assert T.curve_subset(x, y, 0) is None and T.curve_subset(x, y, 10000) is None


def test_curve_images_enters_the_config_only_when_set():
    from fuselib import experiments as E

    plain, _, _ = E.build_config()
    assert "curve_images" not in plain["recipe"]  # records made before it keep their keys
    sub, _, _ = E.build_config(recipe={"curve_images": 2000})
    assert sub["recipe"]["curve_images"] == 2000 and E.config_key(sub) != E.config_key(plain)


def test_random_resized_crop_is_batched_seeded_and_exact_on_the_whole_image():
    from fuselib.train import random_resized_crop

    x = torch.rand(6, 3, 16, 20)
    gen = torch.Generator().manual_seed(0)
    whole = random_resized_crop(x, gen, 1.0, ratio=(1.25, 1.25))  # area 1, w/h of the image
    assert torch.allclose(whole, x, atol=1e-5)
    a = random_resized_crop(x, torch.Generator().manual_seed(1), 0.35)
    b = random_resized_crop(x, torch.Generator().manual_seed(1), 0.35)
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.allclose(a, x)  # crops differ from the image, and from one another
    assert a.min() >= x.min() - 1e-6 and a.max() <= x.max() + 1e-6  # bilinear: no overshoot


def test_crop_scale_is_checked_and_off_by_default_keeps_the_keys():
    from fuselib.experiments.scales import recipe_config

    with pytest.raises(ValueError, match="crop_scale"):
        T.get_recipe("fast", crop_scale=1.5)
    assert "crop_scale" not in recipe_config(T.get_recipe("fast"))
    assert recipe_config(T.get_recipe("fast", crop_scale=0.35))["crop_scale"] == 0.35
