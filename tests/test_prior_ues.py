"""The prior unlearnable-example methods: budgets, determinism, and what makes each one work."""
import math

import pytest
import torch

from fuselib import protections, spectral
from fuselib.protections.ar import ar_sample


@pytest.fixture(scope="module")
def small():
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    keep = torch.cat([(y == c).nonzero().flatten()[:30] for c in range(10)]).sort().values
    return x[keep], y[keep]


def _delta(out, x):
    return (out.float() - x.float()) / 255


@pytest.mark.parametrize("name,eps", [("ar", 1.0), ("lsp", 6 / 255 * math.sqrt(3072))])
def test_l2_methods_hold_their_radius(small, name, eps):
    x, y = small
    p = protections.get(name, seed=0).fit(x, y)
    assert p.eps == pytest.approx(eps)
    d = _delta(p.apply(x, y), x)
    norms = d.flatten(1).norm(dim=1)
    assert bool((norms <= eps + 1e-6).all())
    assert float(norms.median()) > 0.6 * eps  # clipping at 0/255 takes a little, not most
    assert torch.equal(p.apply(x, y), protections.get(name, seed=0).fit(x, y).apply(x, y))


def test_ar_process_is_detected_by_its_filter():
    """Each AR sample is (nearly) annihilated by its own class's filter, not by others'."""
    p = protections.get("ar", seed=1).fit(torch.zeros(2, 3, 32, 32, dtype=torch.uint8),
                                          torch.tensor([0, 1]))
    gen = torch.Generator().manual_seed(0)
    s = ar_sample(p.coefficients[0].double(), 4, gen)
    def residual(k):
        filt = k.double().clone()
        filt[:, 2, 2] = -1
        out = torch.nn.functional.conv2d(s, filt.unsqueeze(1), groups=3)
        return float(out.abs().mean() / s.abs().mean())
    assert residual(p.coefficients[0]) < 1e-6 < residual(p.coefficients[1])


def test_lsp_patches_are_constant_and_class_separable(small):
    x, y = small
    p = protections.get("lsp", seed=0).fit(x, y)
    d = p.perturb(torch.full((len(y), 3, 32, 32), 0.5), y) - 0.5
    blocks = d.unfold(2, 8, 8).unfold(3, 8, 8)
    assert torch.allclose(blocks, blocks[..., :1, :1].expand_as(blocks), atol=1e-6)
    # nearest class centre of each (normalised) synthetic point recovers its label
    pts = d[:, :, ::8, ::8].permute(0, 2, 3, 1).reshape(len(y), -1)
    cen = p.centres / p.centres.norm(dim=1, keepdim=True)
    assert float(((pts @ cen.T).argmax(1) == y).float().mean()) > 0.9


def test_ops_changes_one_pixel_per_image(small):
    x, y = small
    p = protections.get("ops").fit(x, y)
    out = p.apply(x, y)
    changed = (out != x).any(1).flatten(1).sum(1)
    assert int(changed.max()) <= 1
    r, c, v = p.pixels[y].unbind(1)
    px = out[torch.arange(len(y)), :, r, c]
    assert bool(((px == 0) | (px == 255)).all())
    pairs = {tuple(t) for t in p.pixels[:, [0, 1, 2]].tolist()}
    assert len(pairs) == 10  # no (position, colour) pair reused


def test_ops_picks_a_pixel_that_stands_out():
    """A class whose images are all dark at one pixel and noisy elsewhere: OPS picks white
    there, where |colour - pixel| is large and has no spread."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (40, 3, 8, 8), generator=g, dtype=torch.uint8)
    x[:, :, 3, 5] = 0
    p = protections.get("ops").fit(x, torch.zeros(40, dtype=torch.int64))
    assert p.pixels[0].tolist() == [3, 5, 7]


def test_cuda_is_a_per_class_blur(small):
    x, y = small
    p = protections.get("cuda", seed=0).fit(x, y)
    assert p.filters.shape == (10, 3, 3)
    assert bool(((p.filters == 1.0).sum((1, 2)) >= 1).all())
    out = p.apply(x, y)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert int(out.flatten(1).amax(1).min()) >= 254  # each image is divided by its maximum
    # blur takes high frequencies out: the filtered images hold relatively less of them
    def high(z):
        return float(spectral.energy_profile(z.float() / 255, 4, remove_mean=True)[-2:].sum())
    assert high(out) < high(x)
    assert not torch.equal(protections.get("cuda", seed=1).fit(x, y).filters, p.filters)


@pytest.mark.parametrize("mode", ["class", "sample"])
def test_em_reduces_surrogate_loss_within_budget(small, mode):
    x, y = small
    p = protections.get("em", mode=mode, seed=0, max_rounds=10, portion=1.0, pgd_steps=2,
                        train_steps=10, batch_size=100)
    p.device = torch.device("cpu")
    out = p.fit(x, y).apply(x, y)
    assert int((out.int() - x.int()).abs().max()) <= 8
    assert 1 <= len(p.history) <= 10
    assert p.history[-1][2] > 0.9, p.history  # the surrogate learned the shortcut
    if mode == "class":
        d = out.int() - x.int()
        same = (y == 0).nonzero().flatten()[:2]
        mid = ((x[same] > 10) & (x[same] < 245)).all(0)
        assert torch.equal(d[same[0]][mid], d[same[1]][mid])
        # min-min: on images it never saw, the class noise alone makes the surrogate right
        import fuselib

        xh, yh = fuselib.data.load("cifar10", "train")
        xh, yh = xh[:300], yh[:300]
        m = p.surrogate_model
        with torch.no_grad():
            clean = torch.nn.functional.cross_entropy(m(xh.float() / 255 - 0.5), yh)
            noisy = torch.nn.functional.cross_entropy(m(p.apply(xh, yh).float() / 255 - 0.5), yh)
        assert noisy < clean - 0.1, (float(noisy), float(clean), p.history)
    else:
        with pytest.raises(ValueError, match="same images"):
            p.apply(x[:5], y[:5])


def test_all_registered():
    assert {"none", "random", "ar", "lsp", "ops", "cuda", "em", "tap", "rem", "dh", "uc"} <= set(protections.names())


def test_tap_pushes_surrogate_to_next_class(small):
    x, y = small
    p = protections.get("tap", seed=0, steps=10, surrogate_epochs=10, batch_size=150)
    p.device = torch.device("cpu")
    out = p.fit(x, y).apply(x, y)
    assert int((out.int() - x.int()).abs().max()) <= 8
    assert "PGD" in p.cost
    with torch.no_grad():
        m = p.surrogate_model
        hit = lambda z: float((m(z.float() / 255 - 0.5).argmax(1) == (y + 1) % 10).float().mean())
        assert hit(out) > hit(x) + 0.1, (hit(out), hit(x))
    with pytest.raises(ValueError, match="same images"):
        p.apply(x[:3], y[:3])


def test_rem_minimises_the_loss_under_attack(small):
    """REM's inner min-max: against a trained surrogate, its noise lowers the loss that remains
    after the attacker's PGD (the robust loss) far more than it would fall by chance."""
    from fuselib.train import train

    x, y = small
    p = protections.get("rem", seed=0, train_steps=3, steps=5, adv_steps=2, batch_size=100)
    p.device = torch.device("cpu")
    out = p.fit(x, y).apply(x, y)  # the whole loop runs; the contract test checks the rest
    assert len(p.history) == 3 and "EOT" in p.cost
    m = train(x, y, x[:50], y[:50], "fast", seed=0, device="cpu", arch="fastnet", epochs=10,
              progress=False, batch_size=60, model_kwargs={"widths": (32, 64, 128)})["model"]
    m.eval()
    for q in m.parameters():
        q.requires_grad_(False)
    gen = torch.Generator().manual_seed(1)
    xf = x.float() / 255
    d = p._defend(m, xf, y, gen)
    assert float(d.abs().max()) <= 8 / 255 + 1e-6

    def robust_loss(z):
        a = p._attack(m, z, y, gen)
        return float(torch.nn.functional.cross_entropy(m((z + a).clamp(0, 1) - 0.5), y))

    noise = (torch.rand(xf.shape, generator=gen) * 2 - 1) * 8 / 255
    assert robust_loss((xf + d).clamp(0, 1)) < robust_loss((xf + noise).clamp(0, 1)) - 0.3
    with pytest.raises(ValueError, match="same images"):
        p.apply(x[:3], y[:3])
    with pytest.raises(ValueError, match="rho"):
        protections.get("rem", rho=2.0)


@pytest.mark.parametrize("spec", ["em:max_rounds=2,train_steps=2",
                                  "pue:max_rounds=2,train_steps=2",
                                  "tap:steps=2,surrogate_epochs=1",
                                  "rem:train_steps=2,steps=1,adv_steps=1,regen_batch_size=64"])
def test_fast_surrogate_keeps_the_budget_and_the_old_keys(small, spec):
    """``fast`` (bf16 autocast + channels_last for the surrogate) is a cost setting: off, it is
    absent from the config, so every shipped fit keeps its key; on, the fit keeps the budget."""
    from fuselib.experiments import config_key, describe

    x, y = small
    plain = protections.get(spec)
    assert "fast" not in plain.config() and plain.fast is False
    fast = protections.get(spec + ",fast=True")
    assert fast.config()["fast"] is True
    assert config_key(describe(plain)) != config_key(describe(fast))
    out = fast.fit(x, y).apply(x, y)
    assert out.dtype == torch.uint8 and int((out.int() - x.int()).abs().max()) <= 8
    assert protections.get(spec + ",fast=False").config() == plain.config()


@pytest.mark.parametrize("method", ["em:portion=1.0", "em:mode=sample,pgd_steps=2",
                                    "pue:robust=True,portion=1.0"])
def test_em_fit_killed_after_a_round_resumes_to_the_same_noise(small, tmp_path, monkeypatch,
                                                               method):
    """EM (and PUE, which reuses its loop) checkpoints every round: a fit killed right after
    round 1's checkpoint and started again finishes with exactly the uninterrupted fit's noise
    and history; a checkpoint of another config is refused in one line."""
    from fuselib.protections.em import ErrorMinimizing

    x, y = small
    spec = method + ",max_rounds=3,train_steps=3,batch_size=100,stop_error=0"

    def fresh():
        p = protections.get(spec)
        p.device = torch.device("cpu")
        return p

    whole = fresh().fit(x, y)
    ckpt = tmp_path / "em.ckpt"
    real_save = ErrorMinimizing._save

    def save_then_die(self, *a):
        real_save(self, *a)
        raise KeyboardInterrupt  # killed right after the first round's checkpoint

    monkeypatch.setattr(ErrorMinimizing, "_save", save_then_die)
    p = fresh()
    p.checkpoint = str(ckpt)
    with pytest.raises(KeyboardInterrupt):
        p.fit(x, y)
    monkeypatch.setattr(ErrorMinimizing, "_save", real_save)
    assert torch.load(ckpt, weights_only=True)["round"] == 1
    p = fresh()
    p.checkpoint = str(ckpt)
    resumed = p.fit(x, y)
    assert torch.equal(resumed.deltas, whole.deltas)
    assert resumed.history == whole.history and len(whole.history) == 3
    other = protections.get(spec.replace("max_rounds=3", "max_rounds=4"))
    other.checkpoint = str(ckpt)
    with pytest.raises(ValueError, match=r"another run \(differs in: config\.max_rounds\)"):
        other.fit(x, y)
    torch.save({"format": "something else"}, ckpt)
    p = fresh()
    p.checkpoint = str(ckpt)
    with pytest.raises(ValueError, match="is not a checkpoint of"):
        p.fit(x, y)
