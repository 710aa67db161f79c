import pytest
import torch
from hypothesis import given, settings, strategies as st

import fuselib
from fuselib import protections
from fuselib.protections import REGISTRY, Protection


def test_registry_names_and_errors():
    assert {"none", "random"} <= set(protections.names())
    with pytest.raises(KeyError, match="unknown protection 'nope'.*known: .*random"):
        protections.get("nope")
    with pytest.raises(ValueError, match="no parameter"):
        protections.get("random", strength=3)
    p = protections.get("random:eps=0.0314,mode=sample")
    assert p.eps == pytest.approx(0.0314) and p.mode == "sample"
    assert protections.get("random:0.02").eps == pytest.approx(0.02)


@pytest.mark.parametrize("eps", [0, -0.1, 1.5, "big", None])
def test_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        protections.get("random", eps=eps)


def test_bad_images_and_labels():
    p = protections.get("random")
    x = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
    y = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError, match="uint8"):
        p.fit(x.float(), y)
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\)"):
        p.fit(x[0], y)
    with pytest.raises(ValueError, match=r"shape \(4,\)"):
        p.fit(x, y[:3])
    with pytest.raises(ValueError, match="integer"):
        p.fit(x, y.float())
    with pytest.raises(RuntimeError, match="fit"):
        p.apply(x, y)
    p.fit(x, y)
    with pytest.raises(ValueError, match="not seen at fit"):
        p.apply(x, y + 3)


class _Wild(Protection):
    """A deliberately broken method: its perturbation ignores the budget."""

    needs_fit = False

    def perturb(self, x, labels):
        g = torch.Generator().manual_seed(self.seed)
        return x + 3 * torch.randn(x.shape, generator=g)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 6), size=st.integers(1, 9), n_cls=st.integers(1, 5),
       eps=st.floats(1e-4, 1.0), seed=st.integers(0, 2**16), mode=st.sampled_from(
           ["class", "sample", "wild"]))
def test_budget_holds_after_rounding(n, size, n_cls, eps, seed, mode):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, n_cls, (n,), generator=g)
    p = _Wild(eps=eps, seed=seed) if mode == "wild" else protections.get(
        "random", eps=eps, seed=seed, mode=mode)
    out = p.fit(images, labels).apply(images, labels)
    assert out.dtype == torch.uint8 and out.shape == images.shape
    diff = (out.int() - images.int()).abs().amax(dim=(1, 2, 3))
    assert bool((diff <= round(eps * 255)).all()), (diff, eps)


def test_random_noise_is_class_consistent_and_seeded(cifar_small):
    x, y = cifar_small
    p = protections.get("random", seed=1).fit(x, y)
    out = p.apply(x, y)
    d = out.int() - x.int()
    assert 0 < d.abs().max() <= 8
    # away from the clipping range, two images of one class get the same perturbation
    same = (y == y[0]).nonzero().flatten()[:2]
    mid = ((x[same] > 10) & (x[same] < 245)).all(0)
    assert torch.equal(d[same[0]][mid], d[same[1]][mid])
    assert torch.equal(protections.get("random", seed=1).fit(x, y).apply(x, y), out)
    assert not torch.equal(protections.get("random", seed=2).fit(x, y).apply(x, y), out)


def test_save_load_round_trip(tmp_path, cifar_small):
    x, y = cifar_small
    p = protections.get("random", seed=5).fit(x, y)
    path = p.save(tmp_path / "sub" / "p.pt")
    q = protections.load(path)
    assert q.config() == p.config()
    assert torch.equal(q.apply(x, y), p.apply(x, y))
    assert not list(path.parent.glob(".*tmp*"))  # nothing half-written left behind
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(Exception):
        protections.load(tmp_path / "junk.pt")


def test_none_is_identity(cifar_small):
    x, y = cifar_small
    assert torch.equal(protections.get("none").apply(x, y), x)


def test_registering_twice_fails():
    with pytest.raises(ValueError, match="twice"):
        REGISTRY.register("random")(type("X", (Protection,), {}))


def test_reproducible_cuda_sets_and_restores_the_flags(monkeypatch):
    """apply() runs perturb() with deterministic cuDNN and no TF32 on CUDA (on a GPU, DH and GUE
    otherwise gave ±1 changes in hundreds of pixels between the same network's applications);
    the caller's settings come back afterwards, also after an exception."""
    from fuselib.protections.base import reproducible_cuda

    b = torch.backends
    flags = lambda: (b.cudnn.deterministic, b.cudnn.benchmark, b.cudnn.allow_tf32,  # noqa: E731
                     b.cuda.matmul.allow_tf32)
    saved = flags()
    try:
        b.cudnn.deterministic, b.cudnn.benchmark = False, True
        b.cudnn.allow_tf32 = b.cuda.matmul.allow_tf32 = True
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        with reproducible_cuda():
            assert flags() == (True, False, False, False)
        assert flags() == (False, True, True, True)
        with pytest.raises(RuntimeError), reproducible_cuda():
            raise RuntimeError
        assert flags() == (False, True, True, True)
        p = protections.get("random", seed=0)
        seen, real = [], type(p).perturb
        monkeypatch.setattr(type(p), "perturb",
                            lambda self, x, lab: (seen.append(flags()), real(self, x, lab))[1])
        x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
        p.fit(x, torch.arange(4)).apply(x, torch.arange(4))
        assert seen == [(True, False, False, False)] and flags() == (False, True, True, True)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        with reproducible_cuda():  # no CUDA: nothing changes
            assert flags() == (False, True, True, True)
    finally:
        (b.cudnn.deterministic, b.cudnn.benchmark, b.cudnn.allow_tf32,
         b.cuda.matmul.allow_tf32) = saved


@pytest.mark.parametrize("spec", ["random", "ar", "ops"])  # the three budgets: linf, l2, none
def test_rounding_in_chunks_gives_the_images_of_one_pass(cifar_small, monkeypatch, spec):
    """``to_uint8`` works ``CHUNK`` images at a time (memory); every step is per image, so
    the protected set is the same whatever the chunk, also where a chunk is cut short."""
    from fuselib.protections import base

    x, y = cifar_small[0][:100], cifar_small[1][:100]
    p = protections.get(spec).fit(x, y)
    monkeypatch.setattr(base, "CHUNK", 1000)
    whole = p.apply(x, y)
    monkeypatch.setattr(base, "CHUNK", 7)
    assert torch.equal(p.apply(x, y), whole)
    assert not torch.equal(whole, x)
