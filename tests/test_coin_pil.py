"""COIN (random multiplicative bilinear interpolation) and PIL (a linear-surrogate attack):
what each does, beyond the zoo contract (test_zoo_contract covers PIL's budget and persistence)."""
import pytest
import torch

from fuselib import countermeasures as C
from fuselib import protections
from fuselib.countermeasures.coin import jitter_resample


def test_coin_resamples_on_a_jittered_grid(cifar_small):
    x, _ = cifar_small
    assert torch.equal(C.get("coin:0")(x), x)  # no jitter: the identity
    out = C.get("coin")(x)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert (out.float() - x.float()).abs().mean() > 5
    assert torch.equal(C.get("coin")(x), out) and not torch.equal(C.get("coin", seed=1)(x), out)
    flat = torch.full((2, 3, 8, 8), 77, dtype=torch.uint8)
    assert torch.equal(C.get("coin:3.5")(flat), flat)  # bilinear weights sum to 1
    # whole-pixel offsets move pixels, wrapping around the edges
    f = x[:2].float() / 255
    zero, one = torch.zeros(2, 32, 32), torch.ones(2, 32, 32)
    assert torch.allclose(jitter_resample(f, zero, one), f.roll(-1, dims=3))
    assert torch.allclose(jitter_resample(f, -one, zero), f.roll(1, dims=2))
    half = jitter_resample(f, zero, one / 2)
    assert torch.allclose(half, (f + f.roll(-1, dims=3)) / 2, atol=1e-6)
    with pytest.raises(ValueError, match="alpha"):
        C.get("coin:-1")


def test_pil_noise_is_a_linear_shortcut(cifar_small):
    x, y = cifar_small
    p = protections.get("pil", surrogate_epochs=3, steps=10, seed=0).fit(x, y)
    out = p.apply(x, y)
    assert int((out.int() - x.int()).abs().max()) <= 8
    noise = (x.float() - out.float()) / 255  # protected = x − noise
    hit = (p.logits(noise).argmax(1) == y).float().mean()
    assert hit > 0.9  # the linear surrogate reads the label off the noise alone
    with pytest.raises(ValueError, match="lmd"):
        protections.get("pil", lmd=2)


def test_sda_jitter_is_seeded_bounded_and_off_at_zero():
    from fuselib.countermeasures.training import colour_jitter, sda_inputs

    g = torch.Generator().manual_seed(0)
    p = torch.rand(64, 3, 16, 16, generator=g)
    out = colour_jitter(p, 1.0, torch.Generator().manual_seed(1))
    assert out.shape == p.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, colour_jitter(p, 1.0, torch.Generator().manual_seed(1)))
    changed = (out - p).flatten(1).abs().amax(1) > 1e-6
    assert 0.5 < changed.float().mean() < 1  # jitter w.p. 0.8, grayscale w.p. 0.2
    grey = (out[:, 0] == out[:, 1]).flatten(1).all(1) & (out[:, 1] == out[:, 2]).flatten(1).all(1)
    assert 0 < grey.float().mean() < 0.5
    assert torch.equal(colour_jitter(p, 0.0, torch.Generator().manual_seed(1)), p)
    x = p - 0.5
    assert torch.allclose(sda_inputs(x, 0.0, torch.Generator().manual_seed(1)), x)


def test_sdaan_noise_within_budget_and_switches_on_sda(cifar_small):
    from fuselib.train import get_recipe

    x, y = cifar_small
    cm = C.get("sdaan", hidden=32, epochs=1)
    out = cm(x, y)
    d = (out.int() - x.int()).abs()
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert int(d.max()) <= 9 and float(d.float().mean()) > 1  # 8/255, rounding
    assert torch.equal(C.get("sdaan", hidden=32, epochs=1)(x, y), out)
    assert cm.recipe == {"sda": 1.0}
    assert [type(d).__name__ for d in C.defences(get_recipe("fast", **cm.recipe))] == [
        "StrongAugment"]
    with pytest.raises(ValueError, match="labels"):
        cm(x)
    with pytest.raises(ValueError, match="strength"):
        C.get("sdaan:0")
    with pytest.raises(ValueError, match="sda"):
        get_recipe("fast", sda=2.0)
