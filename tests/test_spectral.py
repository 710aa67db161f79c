import math

import numpy as np
import pytest
import scipy.fft
import torch

from fuselib import spectral as S


@pytest.fixture
def x():
    return torch.rand(4, 3, 32, 32, dtype=torch.float64)


def test_dct_matches_scipy_and_round_trips(x):
    ref = scipy.fft.dctn(x.numpy(), type=2, norm="ortho", axes=(-2, -1))
    assert np.allclose(S.dct2(x).numpy(), ref, atol=1e-10)
    x32 = x.float()
    assert (S.idct2(S.dct2(x32)) - x32).abs().max() < 1e-5
    rect = torch.rand(2, 3, 17, 40)
    assert (S.idct2(S.dct2(rect)) - rect).abs().max() < 1e-5


def test_dct_matrix_orthonormal():
    d = S.dct_matrix(32, dtype=torch.float64)
    assert torch.allclose(d @ d.T, torch.eye(32, dtype=torch.float64), atol=1e-12)


def test_fft_round_trip(x):
    assert torch.allclose(S.ifft2(S.fft2(x), dtype=torch.float64), x, atol=1e-12)


@pytest.mark.parametrize("basis", ["dct", "fft"])
def test_radial_map(basis):
    r = S.radial_frequency((32, 32), basis)
    assert r.shape == (32, 32)
    assert r[0, 0] == 0 and math.isclose(float(r.max()), 1.0, rel_tol=1e-6)
    assert r.min() >= 0
    if basis == "dct":
        assert math.isclose(float(r[-1, -1]), 1.0, rel_tol=1e-6)
    else:  # the Nyquist corner sits in the middle of the unshifted FFT
        assert math.isclose(float(r[16, 16]), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("basis", ["dct", "fft"])
@pytest.mark.parametrize("c", [0.0, 0.1, 0.3, 0.77])
def test_ideal_filters_are_projections_and_complementary(x, basis, c):
    lo = S.lowpass(x, c, basis)
    assert torch.allclose(S.lowpass(lo, c, basis), lo, atol=1e-10)
    hi = S.highpass(x, c, basis)
    assert torch.allclose(S.highpass(hi, c, basis), hi, atol=1e-10)
    assert torch.allclose(lo + hi, x, atol=1e-10)
    assert torch.allclose(S.lowpass(hi, c, basis), torch.zeros_like(x), atol=1e-10)


@pytest.mark.parametrize("basis", ["dct", "fft"])
def test_gaussian_filters_complementary(x, basis):
    lo = S.lowpass(x, 0.2, basis, "gaussian")
    hi = S.highpass(x, 0.2, basis, "gaussian")
    assert torch.allclose(lo + hi, x, atol=1e-10)
    assert not torch.allclose(S.lowpass(lo, 0.2, basis, "gaussian"), lo, atol=1e-4)


@pytest.mark.parametrize("basis", ["dct", "fft"])
def test_cutoff_extremes(x, basis):
    assert torch.allclose(S.lowpass(x, 1.0, basis), x, atol=1e-10)
    mean = x.mean(dim=(-2, -1), keepdim=True).expand_as(x)
    assert torch.allclose(S.lowpass(x, 0.0, basis), mean, atol=1e-10)


def test_bandpass_partition(x):
    parts = S.bandpass(x, 0.0, 0.2) + S.bandpass(x, 0.2, 0.6) + S.bandpass(x, 0.6, 1.0)
    assert torch.allclose(parts + S.lowpass(x, 0.0), x, atol=1e-10)


@pytest.mark.parametrize("basis", ["dct", "fft"])
@pytest.mark.parametrize("n_bands", [1, 7, 16])
def test_parseval_energy_profile(x, basis, n_bands):
    e = S.band_energy(x, n_bands, basis)
    assert e.shape == (4, 3, n_bands)
    assert torch.allclose(e.sum(-1), (x**2).sum((-2, -1)), rtol=1e-9)
    p = S.energy_profile(x, n_bands, basis)
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-9)


def test_energy_profile_separates_smooth_from_noise():
    smooth = S.lowpass(torch.randn(8, 3, 32, 32), 0.2)
    noise = torch.randn(8, 3, 32, 32)
    assert S.energy_profile(smooth, 4)[0] > 0.99
    assert S.energy_profile(noise, 4)[-1] > 0.05


def test_band_sampler_is_uniform_over_radius():
    g = torch.Generator().manual_seed(0)
    lo, hi = S.sample_bands(20000, 0.1, 0.4, generator=g)
    assert lo.shape == hi.shape == (20000,)
    assert bool(((0 <= lo) & (lo <= hi) & (hi <= 1)).all())
    assert bool(((hi - lo) <= 0.4 + 1e-6).all())
    cover = [float(((lo <= r) & (r <= hi)).float().mean()) for r in (0.0, 0.25, 0.5, 0.9, 1.0)]
    expected = 0.25 / 1.25  # mean width / (1 + mean width)
    assert all(abs(c - expected) < 0.02 for c in cover), cover


def test_sampler_is_seeded():
    a = S.sample_bands(5, generator=torch.Generator().manual_seed(3))
    b = S.sample_bands(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_remove_band_per_sample(x):
    lo = torch.tensor([0.0, 0.2, 0.5, 0.0])
    hi = torch.tensor([0.1, 0.4, 1.0, 1.0])
    out = S.remove_band(x, lo, hi)
    for i in range(4):
        keep = 1 - S.band_mask((32, 32), float(lo[i]), float(hi[i]))
        assert torch.allclose(out[i], S.apply_mask(x[i], keep), atol=1e-10)
    assert torch.allclose(out[3], torch.zeros_like(out[3]), atol=1e-10)  # whole band removed


def test_bad_input():
    with pytest.raises(ValueError, match="float"):
        S.dct2(torch.zeros(2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="cutoff"):
        S.lowpass(torch.zeros(1, 4, 4), 1.5)
    with pytest.raises(ValueError, match="basis"):
        S.lowpass(torch.zeros(1, 4, 4), 0.5, basis="wavelet")
    with pytest.raises(ValueError, match="width"):
        S.sample_bands(3, 0.5, 0.2)


def test_band_sampler_rehearses_low_pass_filters():
    """``lowpass``: a share of the draws is the top band [c, 1] (a low-pass at cutoff c) down to
    ``lowpass_min``; the other draws are exactly those without it; no draw removes everything."""
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    plain = S.sample_bands(4000, 0.1, 0.5, generator=g())
    lo, hi = S.sample_bands(4000, 0.1, 0.5, generator=g(), lowpass=0.5, lowpass_min=0.1)
    changed = (lo != plain[0]) | (hi != plain[1])
    assert bool((hi[changed] == 1).all())              # a changed draw is a low-pass band
    assert 0.4 < float(changed.float().mean()) < 0.55  # half the draws, less the top ones kept
    assert float(plain[0][plain[1] == 1].min()) >= 0.5  # without it: no cutoff below 0.5
    assert float(lo[changed].min()) < 0.15 and float(lo[changed].min()) >= 0.1
    assert float((hi - lo).max()) < 1.0 and float(lo[hi == 1].min()) > 0  # never all of it
    zero = S.sample_bands(4000, 0.1, 0.5, generator=g(), lowpass=0.0)
    assert torch.equal(zero[0], plain[0]) and torch.equal(zero[1], plain[1])
    with pytest.raises(ValueError, match="lowpass"):
        S.sample_bands(3, lowpass=1.5)
    with pytest.raises(ValueError, match="lowpass"):
        S.sample_bands(3, lowpass=0.5, lowpass_min=0.0)
