"""Deep Hiding (``dh``): the wavelet transform, the invertible network, the semantic secrets,
the budget, persistence, determinism, and that the hiding network learns to hide."""
import pytest
import torch

from fuselib import protections
from fuselib.protections import dh

STEPS = 20  # a short CPU fit; enough for the reveal error to fall well below its start


@pytest.fixture(scope="module")
def small():
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    keep = torch.cat([(y == c).nonzero().flatten()[:30] for c in range(10)]).sort().values
    return x[keep], y[keep]


def _fit(x, y, **kw):
    p = protections.REGISTRY.get("dh", **{"steps": STEPS, "batch_size": 32, **kw})
    p.device = torch.device("cpu")
    return p.fit(x, y)


@pytest.fixture(scope="module")
def fitted(small):
    return _fit(*small)


def test_haar_dwt_is_orthonormal_and_exactly_inverted():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 6, generator=g, dtype=torch.float64)
    y = dh.dwt(x)
    assert y.shape == (4, 12, 4, 3)
    assert torch.allclose(dh.idwt(y), x, atol=1e-12)
    assert torch.allclose(y.square().sum(), x.square().sum())  # orthonormal: energy preserved
    flat = dh.dwt(torch.full((1, 3, 4, 4), 0.5, dtype=torch.float64))
    assert torch.allclose(flat[:, :3], torch.ones(1, 3, 2, 2, dtype=torch.float64))  # LL = 2·mean
    assert float(flat[:, 3:].abs().max()) == 0.0  # a flat image has no detail subbands
    with pytest.raises(ValueError, match="even"):
        dh.dwt(torch.zeros(1, 3, 7, 8))


def test_coupling_network_is_exactly_invertible():
    torch.manual_seed(0)
    net = dh.HidingINN(channels=3, blocks=3, hidden=16, clamp=2.0)
    for m in net.modules():  # leave the zero (identity) start: make every block do something
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, std=0.1)
    x1, x2 = torch.rand(5, 12, 8, 8), torch.rand(5, 12, 8, 8)
    with torch.no_grad():
        y1, y2 = net(x1, x2)
        assert float((y1 - x1).abs().max()) > 0.1 and float((y2 - x2).abs().max()) > 0.1
        r1, r2 = net.inverse(y1, y2)
    assert float((r1 - x1).abs().max()) < 1e-4
    assert float((r2 - x2).abs().max()) < 1e-4
    # a freshly built network is the identity: stego = cover, and nothing is revealed
    fresh = dh.HidingINN(3, 2, 8)
    cover, secret = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        stego, _ = fresh.hide(cover, secret)
        assert torch.allclose(stego, cover, atol=1e-6)
        assert float(fresh.reveal(stego).abs().max()) < 1e-6


def test_class_secrets_are_distinct_and_seeded():
    s = dh.semantic_images(12, (32, 32), 3, seed=0)
    assert s.shape == (12, 3, 32, 32) and float(s.min()) >= 0 and float(s.max()) <= 1
    rms = torch.cdist(s.flatten(1), s.flatten(1)) / (3 * 32 * 32) ** 0.5
    off = rms[~torch.eye(12, dtype=torch.bool)]
    assert float(off.min()) > 0.1, "two classes got (nearly) the same secret"
    assert float(s.flatten(1).std(1).min()) > 0.08  # each secret has a visible shape
    assert torch.equal(s, dh.semantic_images(12, (32, 32), 3, seed=0))
    assert not torch.equal(s, dh.semantic_images(12, (32, 32), 3, seed=1))
    assert dh.semantic_images(3, (16, 20), 1).shape == (3, 1, 16, 20)


def test_concentration_is_intra_over_total_variance():
    f = torch.tensor([[0.0, 1.0], [0.0, 1.0], [5.0, 2.0], [5.0, 2.0]])
    y = torch.tensor([0, 0, 1, 1])
    assert float(dh.DeepHiding.concentration(f, y)) == pytest.approx(0.0, abs=1e-9)
    assert float(dh.DeepHiding.concentration(f, torch.tensor([0, 1, 0, 1]))) == pytest.approx(1.0)


def test_apply_is_uint8_within_budget_and_uses_it(fitted, small):
    x, y = small
    out = fitted.apply(x, y)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    d = out.int() - x.int()
    assert int(d.abs().max()) <= 8
    assert float(d.abs().float().mean()) > 1.0  # not a no-op
    # any images, any order: the same image gets the same protection
    rev = torch.arange(len(y) - 1, -1, -1)
    assert torch.equal(fitted.apply(x[rev], y[rev]), out[rev])
    with pytest.raises(ValueError, match="labels"):
        fitted.apply(x)
    with pytest.raises(ValueError, match="not seen"):
        fitted.apply(x[:2], torch.tensor([0, 10]))


def test_hiding_network_learns_to_reveal(fitted, small):
    """After a short fit the secret is recovered from the protected uint8 images far better
    than by the untrained (identity) network, which reveals nothing."""
    x, y = small
    start = _fit(x, y, steps=0)
    before, after = start.reveal_error(x, y), fitted.reveal_error(x, y)
    assert before == pytest.approx(float(fitted.secrets[y].square().mean()), rel=1e-3)
    assert after < 0.5 * before, (before, after)
    assert fitted.history[-1][4] < fitted.history[0][4]  # training reveal loss fell


def test_perturbations_carry_the_class(fitted, small):
    """The hidden secrets make δ class-consistent: class centroids of the perturbations of
    half the images classify the perturbations of the other half (chance: 10%)."""
    x, y = small
    d = (fitted.apply(x, y).float() - x.float()).flatten(1)
    d = d - d.mean(1, keepdim=True)
    d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-9)
    a, b = torch.arange(len(y)) % 2 == 0, torch.arange(len(y)) % 2 == 1
    cen = torch.stack([d[a & (y == c)].mean(0) for c in range(10)])
    assert float(((d[b] @ cen.T).argmax(1) == y[b]).float().mean()) > 0.5


def test_save_load_round_trip_is_exact(fitted, small, tmp_path):
    x, y = small
    path = fitted.save(tmp_path / "dh.pt")
    q = protections.load(path)
    assert isinstance(q, dh.DeepHiding) and q.config() == fitted.config()
    assert set(q.inn) == set(fitted.inn)
    assert all(torch.equal(q.inn[k], fitted.inn[k]) for k in q.inn)
    assert torch.equal(q.apply(x, y), fitted.apply(x, y))


def test_same_seed_same_output(small):
    x, y = small
    x, y = x[::3], y[::3]
    a = _fit(x, y, steps=5, seed=3).apply(x, y)
    assert torch.equal(a, _fit(x, y, steps=5, seed=3).apply(x, y))
    assert not torch.equal(a, _fit(x, y, steps=5, seed=4).apply(x, y))


def test_sample_mode_varies_secrets_within_a_class(small):
    x, y = small
    x, y = x[::3], y[::3]
    p = _fit(x, y, steps=3, mode="sample")
    s = p.secrets_for(y)
    same = (y == 0).nonzero().flatten()[:2]
    assert not torch.equal(s[same[0]], s[same[1]])
    assert torch.equal(s, p.secrets_for(y))  # deterministic for a given batch
    assert torch.equal(p.apply(x, y), p.apply(x, y))
    c = _fit(x, y, steps=0).secrets_for(y)
    assert torch.equal(c[same[0]], c[same[1]])  # class mode: one secret per class
    with pytest.raises(ValueError, match="mode"):
        protections.REGISTRY.get("dh", mode="pixel")
