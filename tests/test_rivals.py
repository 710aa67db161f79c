"""GUE, PUE (plain and robust), VTG, the learnability certificate and the RSK countermeasure,
with tiny settings (the contract every protection keeps is also in test_zoo_contract)."""
import pytest
import torch

from fuselib import countermeasures as C
from fuselib import models, protections, spectral
from fuselib.certify import certify, order_statistic
from fuselib.experiments import certify_protection
from fuselib.protections.fuse import FUSE

TINY_GUE = dict(steps=1, batch_size=20, inner_steps=1, gen_width=4)
TINY_PUE = dict(max_rounds=2, train_steps=2, batch_size=30)


@pytest.fixture(scope="module")
def tiny():
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    keep = torch.cat([(y == c).nonzero().flatten()[:6] for c in range(10)]).sort().values
    return x[keep, :, :16, :16].contiguous(), y[keep]  # 16×16 crops: the methods take any size


def _cpu(p):
    p.device = torch.device("cpu")
    return p


def test_gue_budget_samplewise_and_any_images(tiny, tmp_path):
    x, y = tiny
    p = _cpu(protections.get("gue", seed=1, **TINY_GUE)).fit(x, y)
    out = p.apply(x, y)
    assert out.dtype == torch.uint8 and int((out.int() - x.int()).abs().max()) <= 8
    d = out.int() - x.int()
    assert not torch.equal(d[y == 0][0], d[y == 0][1])  # sample-wise, not class-wise
    assert len(p.history) == 1 and all(lam >= 0 for *_, lam in p.history)
    # a generator: it perturbs images it never saw, of another size, labels unused
    other = torch.randint(0, 256, (3, 3, 20, 28), dtype=torch.uint8)
    assert int((p.apply(other).int() - other.int()).abs().max()) <= 8
    q = protections.load(p.save(tmp_path / "gue.pt"))
    assert torch.equal(q.apply(x, y), out)
    assert protections.get("gue", **protections.get("gue").paper_settings()).gen_width == 64


def test_pue_classwise_budget_and_robust(tiny, tmp_path):
    x, y = tiny
    plain = _cpu(protections.get("pue", seed=2, **TINY_PUE)).fit(x, y)
    robust = _cpu(protections.get("pue:robust=True", seed=2, **TINY_PUE)).fit(x, y)
    for p in (plain, robust):
        out = p.apply(x, y)
        d = out.int() - x.int()
        assert int(d.abs().max()) <= p.budget == 8
        assert p.deltas.shape == (10, 3, 16, 16)  # one noise per class ...
        for c in range(10):  # ... so, away from clipping, one change for a whole class
            dc, xc = d[y == c], x[y == c]
            mid = ((xc > 12) & (xc < 243)).all(0)
            assert mid.sum() > 100 and (dc[:, mid] == dc[0, mid]).all()
        assert torch.equal(protections.load(p.save(tmp_path / "p.pt")).apply(x, y), out)
    assert not torch.equal(plain.deltas, robust.deltas)  # the weight noise matters
    assert "robust" in robust.cost and protections.get("pue:True").robust is True


def test_weight_noise_restores_exactly():
    m = models.get("fastnet", 10, widths=(8, 8, 8))
    before = [p.detach().clone() for p in m.parameters()]
    with models.weight_noise(m, 0.5, torch.Generator().manual_seed(0)):
        assert not torch.equal(next(m.parameters()), before[0])
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), before))


def _brightness_data(n, seed):
    """Images whose class is their brightness, ``25·y + U{0..7}`` in every pixel."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    return (y.view(-1, 1, 1, 1) * 25 + torch.randint(0, 8, (n, 3, 8, 8), generator=g)).to(
        torch.uint8), y


def _nearest_brightness(random=False):
    """A linear classifier on the mean input: perfect on ``_brightness_data`` when built from
    the class centres, near chance with random weights."""
    m = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                            torch.nn.Linear(3, 10))
    if not random:  # logits_k = 100·(μ_k·m − μ_k²/2) per channel: the nearest centre wins
        mu = (torch.arange(10) * 25 + 3.5) / 255 - 0.5
        with torch.no_grad():
            m[2].weight.copy_(100 * mu[:, None].expand(10, 3) / 3)
            m[2].bias.copy_(-100 * mu**2 / 2)
    return m


def test_certify_deterministic_bounded_and_meaningful():
    x, y = _brightness_data(200, 1)
    torch.manual_seed(5)
    good, rand = _nearest_brightness(), _nearest_brightness(random=True)
    kw = dict(sigma=0.01, n_samples=10, alpha=0.1, seed=3)
    a, b = certify(good, x, y, **kw), certify(rand, x, y, **kw)
    assert a == certify(good, x, y, **kw)  # deterministic given the seed
    assert a["clean_accuracy"] == 1.0 and a["bound"] > 0.9 and b["bound"] < 0.3
    for c in (a, b):
        assert 0 <= c["bound"] <= 1 and not c["abstain"] and c["bound"] in c["accuracies"]
        assert c["accuracies"][c["order"] - 1] == c["bound"] and c["mean_bound"] >= c["mean"]
    # a larger certified radius needs a higher quantile: never a lower bound; more weight
    # noise, a less learnable smoothed model
    assert certify(good, x, y, **{**kw, "eta": 0.01})["bound"] >= a["bound"]
    assert certify(good, x, y, **{**kw, "sigma": 1.0})["bound"] < a["bound"]
    too_few = certify(good, x, y, n_samples=3, alpha=0.01)
    assert too_few["abstain"] and too_few["bound"] == 1.0
    assert order_statistic(100, 0.7, 0.01) == 81 and order_statistic(10, 0.7, 0.01) is None
    # n_eval certifies on a prefix of the test images, exactly as if only those were given
    head = certify(good, x, y, **kw, n_eval=50)
    assert head["n_eval"] == 50 and head == {**certify(good, x[:50], y[:50], **kw), "n_eval": 50}
    with pytest.raises(ValueError, match="n_eval"):
        certify(good, x, y, n_eval=len(x) + 1)


def test_certify_protection_plumbing(results_tmp, monkeypatch):
    import fuselib

    real = fuselib.data.load  # the test split stands in for the training set: no 50k read
    monkeypatch.setattr(fuselib.data, "load", lambda name, split, root=None: real(name, "test"))
    c = certify_protection("random", n_train=100, n_test=50, epochs=1, n_samples=3, q=0.5,
                           alpha=0.2)
    assert 0 <= c["bound"] <= 1 and c["config"]["protection"]["name"] == "random"
    assert len(c["accuracies"]) == 3 and 0 <= c["accuracy"] <= 1 and not c["cached"]
    kw = dict(n_train=100, n_test=50, epochs=1, n_samples=3, q=0.5, alpha=0.2)
    again = certify_protection("random", **kw)  # cached: the same record, nothing trained
    assert again["cached"] and again["bound"] == c["bound"]
    assert again["accuracies"] == c["accuracies"]
    other = certify_protection("random", **{**kw, "q": 0.6})  # other settings: a new record
    assert not other["cached"] and other["accuracies"] == c["accuracies"]  # same seed, same θ
    with pytest.raises(ValueError, match="unknown certification setting"):
        certify_protection("random", **kw, sigmma=0.1)
    # a run saves its classifier in the cache: certifying it then trains nothing and gives
    # the certificate a retrain gives (same seed, same weights)
    from fuselib import experiments as E

    r = E.run("random", n_train=100, n_test=50, epochs=1)
    assert E.trained_model(r["config"]) is not None
    monkeypatch.setattr(fuselib.train, "train", lambda *a, **k: pytest.fail("retrained"))
    reused = certify_protection("random", **{**kw, "q": 0.55})
    assert reused["model_from_run"] == r["key"]
    assert reused["accuracy"] == r["accuracy"]
    assert reused["accuracies"] == c["accuracies"]


def test_rsk(cifar_small):
    x, _ = cifar_small
    assert torch.equal(C.get("rsk", keep=1.0, strength=0.0, std=0.0)(x), x)  # identity
    out = C.get("rsk")(x)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert (out.float() - x.float()).abs().mean() > 5
    assert torch.equal(C.get("rsk")(x), out) and not torch.equal(C.get("rsk", seed=1)(x), out)
    flat = torch.full((2, 3, 8, 8), 90, dtype=torch.uint8)
    assert torch.equal(C.get("rsk", std=0.0)(flat), flat)  # kernels sum to 1
    # no sharpening: the square DCT low-pass alone keeps ⌊0.3·32⌋ = 9 rows and columns
    lp = C.get("rsk", strength=0.0, std=0.0).transform(x[:4].float() / 255)
    coeffs = spectral.dct2(lp)
    assert coeffs[..., 9:, :].abs().max() < 1e-4 and coeffs[..., :, 9:].abs().max() < 1e-4
    with pytest.raises(ValueError, match="keep"):
        C.get("rsk:0")


def test_vtg_is_fuse_without_rsm_and_cbg():
    v = protections.get("vtg")
    assert isinstance(v, FUSE) and type(v).__mro__[1] is FUSE
    assert (v.cfg.rsm, v.cfg.cbg, v.cfg.input) == (False, False, "images")
    assert protections.get("vtg:3").cfg.epochs == 3
    assert protections.get("vtg", cbg=True).cfg.cbg  # still every FUSE setting
    assert v.config() == {**protections.get("fuse").config(), "rsm": False, "cbg": False,
                          "input": "images"}
