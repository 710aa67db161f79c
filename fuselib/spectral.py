"""The spectral toolkit: DCT/FFT, radial frequency maps, filters, energy profiles, band sampling.

Convention (one for all of fuselib)
-----------------------------------
* Transforms act on the last two dimensions ``(..., H, W)`` of a float tensor, batched, on
  whatever device the tensor lives on. Integer input is rejected: convert images first.
* **DCT**: the orthonormal 2-D DCT-II, ``X = D_H · x · D_Wᵀ`` with
  ``D[k, n] = a_k cos(π (2n + 1) k / 2N)``, ``a_0 = √(1/N)``, ``a_k = √(2/N)``. Coefficient
  ``(u, v)`` is frequency ``u`` down the rows and ``v`` across the columns; ``(0, 0)`` is the
  (scaled) mean. Orthonormal, so energy is preserved (Parseval) and the inverse is the
  transpose. This is what JPEG uses and it has no wrap-around artefacts.
* **FFT**: ``torch.fft.fft2``, unshifted; index ``u`` has signed frequency ``fftfreq(H)[u]``.
* **Radial frequency** ``r ∈ [0, 1]``: each axis is normalised to ``[0, 1]`` (DCT: ``u/(H-1)``;
  FFT: ``|fftfreq(H)[u]| / max|fftfreq(H)|``) and ``r = √(f_h² + f_w²) / √2``. ``r = 0`` is
  the mean (DC), ``r = 1`` the highest frequency (the corner of the spectrum).
* **Filters**: low-pass at cutoff ``c`` keeps ``r ≤ c``; high-pass keeps ``r > c``, so
  ``lowpass(x, c) + highpass(x, c) == x`` exactly. ``bandpass(x, lo, hi)`` keeps
  ``lo < r ≤ hi``. The ``"gaussian"`` profile weights coefficients by ``exp(-r² / 2c²)``
  (high-pass: one minus that) instead of the ideal 0/1 mask. Ideal filters are projections.
* **Bands for Random Spectral Masking** are closed intervals ``[lo, hi]`` of ``r``
  (:func:`band_mask`); a band with ``lo = 0`` contains the DC term. :func:`sample_bands`
  draws them so that every radius is covered with the same probability.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

BASES = ("dct", "fft")
PROFILES = ("ideal", "gaussian")


def _check_float(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise ValueError(f"spectral transforms need a float tensor, got {x.dtype}; "
                         "convert uint8 images with x.float() / 255")
    if x.dim() < 2:
        raise ValueError(f"expected a tensor (..., H, W), got shape {tuple(x.shape)}")


def _check_basis(basis: str) -> None:
    if basis not in BASES:
        raise ValueError(f"unknown basis {basis!r}; use one of {BASES}")


@lru_cache(maxsize=64)
def _dct_matrix(n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.to(device=device, dtype=dtype)


def dct_matrix(n: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """The ``n × n`` orthonormal DCT-II matrix ``D`` (``D @ Dᵀ = I``)."""
    return _dct_matrix(int(n), torch.device(device or "cpu"), dtype)


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def dct2(x: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II over the last two dimensions."""
    _check_float(x)
    dt = _work_dtype(x)
    dh = dct_matrix(x.shape[-2], x.device, dt)
    dw = dct_matrix(x.shape[-1], x.device, dt)
    return (dh @ x.to(dt) @ dw.T).to(x.dtype)


def idct2(coeffs: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`dct2` (the orthonormal DCT-III)."""
    _check_float(coeffs)
    dt = _work_dtype(coeffs)
    dh = dct_matrix(coeffs.shape[-2], coeffs.device, dt)
    dw = dct_matrix(coeffs.shape[-1], coeffs.device, dt)
    return (dh.T @ coeffs.to(dt) @ dw).to(coeffs.dtype)


def fft2(x: torch.Tensor) -> torch.Tensor:
    """Unshifted 2-D FFT over the last two dimensions (complex)."""
    _check_float(x)
    return torch.fft.fft2(x.to(_work_dtype(x)))


def ifft2(spectrum: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Real part of the inverse 2-D FFT (the imaginary part is round-off for symmetric masks)."""
    return torch.fft.ifft2(spectrum).real.to(dtype)


def amplitude_spectrum(x: torch.Tensor, log: bool = True) -> torch.Tensor:
    """Centred FFT amplitude (DC in the middle), ``log1p`` of it by default; for plots."""
    amp = fft2(x).abs()
    amp = torch.fft.fftshift(amp, dim=(-2, -1))
    return torch.log1p(amp) if log else amp


@lru_cache(maxsize=64)
def _radial(h: int, w: int, basis: str, device: torch.device) -> torch.Tensor:
    def axis(n: int) -> torch.Tensor:
        if n == 1:
            return torch.zeros(1, dtype=torch.float64)
        if basis == "dct":
            return torch.arange(n, dtype=torch.float64) / (n - 1)
        f = torch.fft.fftfreq(n, dtype=torch.float64).abs()
        return f / f.max()

    fh, fw = axis(h).unsqueeze(1), axis(w).unsqueeze(0)
    r = torch.sqrt(fh**2 + fw**2) / math.sqrt(2.0)
    return r.clamp_(0.0, 1.0).to(device=device)  # float64: masks cast to the data's dtype


def radial_frequency(size, basis: str = "dct", device=None) -> torch.Tensor:
    """The ``(H, W)`` map of normalised radial frequency ``r ∈ [0, 1]`` for ``basis``."""
    _check_basis(basis)
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {(h, w)}")
    return _radial(h, w, basis, torch.device(device or "cpu"))


def _check_cutoff(name: str, c: float) -> float:
    c = float(c)
    if not 0.0 <= c <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (normalised radial frequency), got {c}")
    return c


def filter_mask(size, cutoff: float, kind: str = "low", basis: str = "dct",
                profile: str = "ideal", device=None) -> torch.Tensor:
    """The ``(H, W)`` multiplicative mask of a low- or high-pass filter in ``basis``."""
    cutoff = _check_cutoff("cutoff", cutoff)
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {PROFILES}")
    if kind not in ("low", "high"):
        raise ValueError(f"kind must be 'low' or 'high', got {kind!r}")
    r = radial_frequency(size, basis, device)
    if profile == "ideal":
        low = (r <= cutoff).double()
    elif cutoff == 0.0:
        low = (r == 0).double()
    else:
        low = torch.exp(-(r**2) / (2 * cutoff**2))
    return low if kind == "low" else 1.0 - low


def apply_mask(x: torch.Tensor, mask: torch.Tensor, basis: str = "dct") -> torch.Tensor:
    """Multiply the spectrum of ``x`` by ``mask`` (broadcast over leading dims) and invert."""
    _check_float(x)
    _check_basis(basis)
    if basis == "dct":
        return idct2(dct2(x) * mask.to(device=x.device, dtype=x.dtype))
    spec = fft2(x)
    return ifft2(spec * mask.to(device=x.device, dtype=spec.real.dtype), dtype=x.dtype)


def lowpass(x: torch.Tensor, cutoff: float, basis: str = "dct", profile: str = "ideal"):
    """Keep frequencies with ``r ≤ cutoff``."""
    return apply_mask(x, filter_mask(x.shape[-2:], cutoff, "low", basis, profile, x.device), basis)


def highpass(x: torch.Tensor, cutoff: float, basis: str = "dct", profile: str = "ideal"):
    """Keep frequencies with ``r > cutoff`` (the complement of :func:`lowpass`)."""
    return apply_mask(x, filter_mask(x.shape[-2:], cutoff, "high", basis, profile, x.device), basis)


def bandpass(x: torch.Tensor, lo: float, hi: float, basis: str = "dct"):
    """Keep frequencies with ``lo < r ≤ hi`` (ideal profile)."""
    lo, hi = _check_cutoff("lo", lo), _check_cutoff("hi", hi)
    if lo > hi:
        raise ValueError(f"need lo <= hi, got lo={lo}, hi={hi}")
    r = radial_frequency(x.shape[-2:], basis, x.device)
    return apply_mask(x, ((r > lo) & (r <= hi)).double(), basis)


def split_bands(x: torch.Tensor, cutoff: float, basis: str = "dct"):
    """``(low, high)`` parts of ``x`` at ``cutoff``; they sum to ``x``."""
    low = lowpass(x, cutoff, basis)
    return low, x - low


def band_edges(n_bands: int) -> torch.Tensor:
    """``n_bands + 1`` equally spaced edges of ``r`` over ``[0, 1]``."""
    if int(n_bands) < 1:
        raise ValueError(f"n_bands must be >= 1, got {n_bands}")
    return torch.linspace(0.0, 1.0, int(n_bands) + 1)


def band_index(size, n_bands: int, basis: str = "dct", device=None) -> torch.Tensor:
    """For each spectral coefficient, the index of its band ``[e_k, e_k+1)`` (last band closed)."""
    r = radial_frequency(size, basis, device)
    return torch.clamp((r * n_bands).long(), max=n_bands - 1)


def band_energy(x: torch.Tensor, n_bands: int = 16, basis: str = "dct") -> torch.Tensor:
    """Energy per radial band, shape ``(*x.shape[:-2], n_bands)``.

    Bands are the equal-width bins of :func:`band_edges`. Energies sum to ``(x**2).sum((-2,-1))``
    (Parseval): for the FFT the squared magnitudes are divided by ``H·W``.
    """
    _check_basis(basis)
    _check_float(x)
    if basis == "dct":
        power = dct2(x.double()) ** 2
    else:
        power = fft2(x.double()).abs() ** 2 / (x.shape[-2] * x.shape[-1])
    idx = band_index(x.shape[-2:], n_bands, basis, x.device).flatten()
    flat = power.flatten(-2)
    out = torch.zeros(*flat.shape[:-1], n_bands, dtype=flat.dtype, device=x.device)
    return out.index_add_(-1, idx, flat)


def energy_profile(x: torch.Tensor, n_bands: int = 16, basis: str = "dct",
                   remove_mean: bool = False) -> torch.Tensor:
    """Fraction of the total energy of a batch in each radial band, shape ``(n_bands,)``.

    ``remove_mean=True`` subtracts each channel's mean first, so the DC term of natural images
    does not dominate the first band.
    """
    _check_float(x)
    if remove_mean:
        x = x - x.mean(dim=(-2, -1), keepdim=True)
    e = band_energy(x, n_bands, basis).reshape(-1, n_bands).sum(0)
    total = e.sum()
    return e / total if total > 0 else e


def band_shares(x: torch.Tensor, bands=(0, 1 / 3, 2 / 3, 1), basis: str = "dct") -> list:
    """The share of the energy of ``x`` (float (N, C, H, W), perturbations say) in each radial
    band ``bands[i] ≤ r < bands[i+1]`` (the last includes r = 1), as a list of floats."""
    coeffs = dct2(x) if basis == "dct" else fft2(x).abs()
    energy = (coeffs.abs() ** 2).sum(dim=(0, 1))
    r = radial_frequency(x.shape[-2:], basis).to(energy.device)
    out = []
    for k, (lo, hi) in enumerate(zip(bands[:-1], bands[1:])):
        m = (r >= lo) & ((r <= hi) if k == len(bands) - 2 else (r < hi))
        out.append(float(energy[m].sum()))
    total = sum(out)
    return [e / total if total > 0 else 0.0 for e in out]


def coefficient_shares(size, bands=(0, 1 / 3, 2 / 3, 1), basis: str = "dct") -> list:
    """White noise's :func:`band_shares`: the share of the spectrum's coefficients in each."""
    r = radial_frequency(size, basis)
    return [float(((r >= lo) & ((r <= hi) if k == len(bands) - 2 else (r < hi))).float().mean())
            for k, (lo, hi) in enumerate(zip(bands[:-1], bands[1:]))]


def band_mask(size, lo, hi, basis: str = "dct", device=None) -> torch.Tensor:
    """Indicator of the closed band ``lo ≤ r ≤ hi``.

    ``lo`` and ``hi`` may be floats (mask ``(H, W)``) or 1-D tensors of length ``n`` (masks
    ``(n, H, W)``, one band per sample, as Random Spectral Masking uses).
    """
    r = radial_frequency(size, basis, device)
    lo_t = torch.as_tensor(lo, dtype=torch.float64, device=r.device)
    hi_t = torch.as_tensor(hi, dtype=torch.float64, device=r.device)
    if lo_t.dim() > 1 or lo_t.shape != hi_t.shape:
        raise ValueError("lo and hi must be two floats or two 1-D tensors of equal length")
    if bool((lo_t > hi_t).any()):
        raise ValueError("every band needs lo <= hi")
    if lo_t.dim() == 1:
        lo_t, hi_t = lo_t[:, None, None], hi_t[:, None, None]
    return ((r >= lo_t) & (r <= hi_t)).double()


def sample_bands(n: int, min_width: float = 0.1, max_width: float = 0.5,
                 generator: torch.Generator | None = None, device=None,
                 lowpass: float = 0.0, lowpass_min: float = 0.1):
    """Draw ``n`` random contiguous bands ``[lo, hi] ⊂ [0, 1]`` of radial frequency.

    The width ``w ~ U[min_width, max_width]`` and the centre ``c ~ U[-w/2, 1 + w/2]``; the band
    ``[c - w/2, c + w/2]`` is clipped to ``[0, 1]``. With this centre range every radius ``r``
    lies in the band with the same probability, the DC end and the highest frequencies
    included — what Random Spectral Masking needs so that no band is never removed.

    ``lowpass`` > 0: that share of the draws is instead the top band ``[c, 1]`` with
    ``c ~ U[lowpass_min, 1)`` — what a low-pass filter at cutoff ``c`` removes, which the bands
    above reach only for cutoffs above ``1 − max_width``. The rest of the draws are as without
    it (the same random numbers first), and ``lowpass_min > 0`` keeps the lowest frequencies,
    so no draw removes the whole spectrum.
    Returns ``(lo, hi)``, two float tensors of shape ``(n,)``.
    """
    if not 0.0 < min_width <= max_width <= 1.0:
        raise ValueError(f"need 0 < min_width <= max_width <= 1, got {min_width}, {max_width}")
    if not 0.0 <= lowpass <= 1.0 or not 0.0 < lowpass_min < 1.0:
        raise ValueError(f"need 0 <= lowpass <= 1 and 0 < lowpass_min < 1, got {lowpass}, "
                         f"{lowpass_min}")
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    u = torch.rand(2, int(n), generator=generator, dtype=torch.float64)
    w = min_width + (max_width - min_width) * u[0]
    c = -w / 2 + (1 + w) * u[1]
    lo = (c - w / 2).clamp(0.0, 1.0)
    hi = (c + w / 2).clamp(0.0, 1.0)
    if lowpass > 0:
        v = torch.rand(2, int(n), generator=generator, dtype=torch.float64)
        top = v[0] < lowpass
        lo = torch.where(top, lowpass_min + (1 - lowpass_min) * v[1], lo)
        hi = torch.where(top, torch.ones_like(hi), hi)
    return lo.float().to(device or "cpu"), hi.float().to(device or "cpu")


def remove_band(x: torch.Tensor, lo, hi, basis: str = "dct") -> torch.Tensor:
    """``x`` with the closed band ``[lo, hi]`` of its spectrum zeroed (one band per sample
    when ``lo``/``hi`` are tensors of length ``x.shape[0]``)."""
    keep = 1.0 - band_mask(x.shape[-2:], lo, hi, basis, x.device)
    if keep.dim() == 3:  # (n, H, W) -> broadcast over the channel dim of (n, C, H, W)
        keep = keep.reshape(keep.shape[0], *([1] * (x.dim() - 3)), *keep.shape[-2:])
    return apply_mask(x, keep, basis)
