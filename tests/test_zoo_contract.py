"""The contract every registered protection keeps, checked with tiny settings (seconds each):
budget on uint8 after rounding, determinism by seed, exact save/load, and — for class-wise
methods — one perturbation per class. A new method without an entry in TINY fails here."""
import pytest
import torch

from fuselib import protections

# name -> (tiny settings, class-wise?) ; the settings only shrink the cost
TINY = {
    "none": ({}, True),
    "random": ({}, True),
    "random:mode=sample": ({}, False),
    "ar": ({}, False),  # per-class process, a fresh draw per image
    "lsp": ({}, False),  # class-wise, but L2 enforcement after rounding re-quantises some images
    "ops": ({}, True),
    "cuda": ({}, False),  # a per-class filter, but its change depends on the image
    "em": (dict(max_rounds=2, train_steps=2, batch_size=50), True),
    "em:mode=sample": (dict(max_rounds=2, train_steps=2, pgd_steps=1, batch_size=50), False),
    "tap": (dict(steps=2, surrogate_epochs=1, batch_size=50), False),
    "rem": (dict(train_steps=3, steps=1, adv_steps=1, batch_size=50), False),
    "dh": (dict(steps=3, batch_size=30), False),  # sample-wise δ, nearly class-consistent
    "dh:mode=sample": (dict(steps=3, batch_size=30), False),
    "uc": (dict(clusters=4, surrogate_epochs=1, gen_width=8, gen_blocks=1, gen_steps=3), False),
    "fuse": (dict(epochs=1, portion=1.0, batch_size=30, surrogate_steps=2), True),
    "fuse:input=images": (dict(epochs=1, portion=1.0, batch_size=30, surrogate_steps=2), True),
    "vtg": (dict(epochs=1, portion=1.0, batch_size=30, surrogate_steps=2), True),
    "gue": (dict(steps=1, batch_size=20, inner_steps=1, gen_width=4), False),
    "pue": (dict(max_rounds=2, train_steps=2, batch_size=30), True),
    "pue:robust=True": (dict(max_rounds=2, train_steps=2, batch_size=30), True),
    "pil": (dict(surrogate_epochs=2, steps=3), False),
}


@pytest.fixture(scope="module")
def tiny():
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    keep = torch.cat([(y == c).nonzero().flatten()[:6] for c in range(10)]).sort().values
    return x[keep], y[keep]


def _make(spec):
    kw, _ = TINY[spec]
    p = protections.get(spec, seed=3, **kw)
    if hasattr(p, "device"):
        p.device = torch.device("cpu")
    return p


def test_every_registered_method_is_covered():
    covered = {s.split(":")[0] for s in TINY}
    assert set(protections.names()) <= covered, set(protections.names()) - covered


@pytest.mark.parametrize("spec", list(TINY))
def test_contract(spec, tiny, tmp_path):
    x, y = tiny
    p = _make(spec).fit(x, y)
    out = p.apply(x, y)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    d = (out.float() - x.float()) / 255
    if p.norm == "linf":
        assert int((out.int() - x.int()).abs().max()) <= p.budget
    elif p.norm == "l2":
        assert float(d.flatten(1).norm(dim=1).max()) <= p.eps + 1e-6
    if spec == "ops":  # L0 = 1: one pixel position per image
        assert int((out != x).any(1).flatten(1).sum(1).max()) <= 1
    # determinism and exact persistence
    assert torch.equal(_make(spec).fit(x, y).apply(x, y), out)
    q = protections.load(p.save(tmp_path / "p.pt"))
    assert q.config() == p.config()
    assert torch.equal(q.apply(x, y), out)
    if TINY[spec][1] and spec != "none":
        # away from clipping, the images of one class carry the same change
        di = out.int() - x.int()
        for c in (0, 7):
            idx = (y == c).nonzero().flatten()[:2]
            mid = ((x[idx] > 12) & (x[idx] < 243)).all(0)
            if spec != "ops":  # one pixel, same position and colour: tested in test_prior_ues
                assert torch.equal(di[idx[0]][mid], di[idx[1]][mid])
