# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Training FUSE
#
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fuselib/fuselib/HEAD?labpath=notebooks%2F02_train_fuse.ipynb)
# [![Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fuselib/fuselib/blob/main/notebooks/02_train_fuse.ipynb)
#
# FUSE trains a small encoder–decoder **generator** whose output, averaged per class and bounded
# by ε·tanh, is the class's perturbation. Each epoch a **surrogate** classifier first learns the
# currently perturbed data; then the generator is updated so the perturbed data become *easy*
# (error-minimising) for that surrogate, with two additions:
#
# * **Random Spectral Masking (RSM)** — each step a random contiguous band of radial frequencies
#   is cut out of the perturbation, and the loss is computed on what remains, so every band (the
#   lowest included) sometimes has to carry the effect alone;
# * **Cross-Band Guidance (CBG)** — the low-frequency part (r ≤ cutoff) and the high-frequency
#   part of the perturbation must each be unlearnable and must lead the surrogate to the same
#   predictions (a symmetric KL between them).
#
# The paper's method section was not available; the choices (DCT, band sampler, loss weights,
# generator shape from the same lab's VTG code) are documented in
# `fuselib/protections/fuse.py` and are all parameters. `cpu` scale trains on a CPU; `paper`
# scale is for a GPU
# (multi-GPU: `torchrun --nproc_per_node N -m fuselib fit fuse --out fuse.pt`).

# %%
# Colab, or a kernel without fuselib: install the companion first (%pip into this kernel).
import importlib.util

if importlib.util.find_spec("fuselib") is None:
    get_ipython().run_line_magic("pip", "install -q git+https://github.com/fuselib/fuselib")  # noqa: F821

# %% tags=["parameters"]
scale = "ci"       # "ci" (seconds on a CPU), "cpu" (minutes on a laptop), "full", "paper" (GPU)
seed = 0
data_root = None   # None: the default search ($FUSELIB_DATA, ../shared/data, the user cache)
device = None      # None: CUDA when available, else the CPU

# %%
from pathlib import Path

import pandas as pd
import torch

import fuselib
from fuselib import experiments, notebook, plots, spectral
from fuselib.notebook import show, static

env = notebook.setup(scale, seed, data_root, device)
print(env)
CHECKPOINT = Path("..") / "results" / "checkpoints" / f"fuse_{scale}_seed{seed}.pt"

# %%
p = experiments.fitted("fuse", scale=scale, seed=seed)
rec = experiments.fit_record("fuse", scale=scale, seed=seed)
print("settings:", p.config())
print("cost:", p.cost)
if rec:
    print(f"fit: {rec['fit_seconds']:.0f} s on {rec['device']} ({rec['threads']} threads), "
          f"process peak RSS {rec['peak_rss_mb']:.0f} MB, {rec['created']}")

# %% [markdown]
# ## Loss curves
# `ue` is the surrogate's cross-entropy on clean + (RSM-masked) perturbation; `ce_low` /
# `ce_high` the same with only the low / high band of the perturbation; `kl` the cross-band
# consistency (CBG); `loss` the weighted total. Falling curves mean the generator finds a
# perturbation the surrogate fits easily in every band.

# %%
hist = pd.DataFrame(p.history)
hist.index = hist.index + 1
hist.round(4)

# %%
fig = plots.lines({k: hist[k].tolist() for k in hist.columns}, title="FUSE training losses",
                  xlabel="epoch", ylabel="mean loss over the epoch", scale=scale)
static(plots.save(fig, f"02_fuse_losses_{scale}"))
fig

# %%
assert len(p.history) == p.cfg.epochs
show(notebook.trend(hist, f"FUSE's losses, first epoch → last (scale `{scale}`, seed {seed})"))

# %% [markdown]
# ## The perturbations and their spectra

# %%
names = fuselib.data.classes("cifar10")
fig = plots.images({"δ (gray = 0, ±ε to black/white)": [plots.perturbation_image(d, p.eps)
                                                         for d in p.deltas]},
                   col_titles=names, title="FUSE's ten class-wise perturbations",
                   scale=scale, size=90)
static(plots.save(fig, f"02_fuse_perturbations_{scale}"))
fig

# %%
noise = (torch.rand(p.deltas.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * p.eps
energy = {name: (spectral.dct2(d) ** 2).sum(dim=(0, 1)).clamp_min(1e-12).log10()
          for name, d in [("FUSE", p.deltas), ("uniform noise ±ε", noise)]}
fig = plots.heatmaps(energy, title="log10 DCT energy, summed over classes and channels "
                     "(top-left = lowest frequency)", scale=scale)
static(plots.save(fig, f"02_fuse_spectrum_{scale}"))
fig

# %%
bands = spectral.energy_profile(p.deltas, n_bands=8)
ref = spectral.energy_profile(noise, n_bands=8)
edges = spectral.band_edges(8).tolist()
prof = pd.DataFrame({"band": [f"{a:.3f}-{b:.3f}" for a, b in zip(edges[:-1], edges[1:])],
                     "FUSE %": (100 * bands).tolist(),
                     "uniform noise %": (100 * ref).tolist()}).set_index("band").round(2)
print(f"energy per radial DCT band at scale {scale}")
prof

# %%
assert p.deltas.abs().max() <= p.eps + 1e-6
show(notebook.listing(prof.iloc[0], f"Share of the energy in the lowest of eight radial DCT "
                      f"bands ({prof.index[0]}), scale `{scale}`", digits=1,
                      labels={c: c.rstrip(" %") for c in prof.columns}))

# %% [markdown]
# ## How much of the perturbation a strong low-pass leaves
# A low-pass at cutoff c keeps only the perturbation's energy below c. The table compares the
# paper's reading with the variant that rehearses strong low-passes (`rsm_lowpass=0.5`, issue
# 24) and with the reference that spends its whole budget below 0.125 (nothing above it is
# left to lose). Share of each fit's energy per radial DCT band; blank where that fit is not
# cached at this scale (the `ci` notebooks fit nothing extra).

# %%
PROFILED = {"paper's reading": "fuse", "low-pass rehearsal": experiments.plans.FIX,
            "reference: all below 0.125": experiments.plans.REF_LOW}
CUTS = (0, 0.125, 0.25, 0.5, 1)
low_share = pd.DataFrame(
    {k: experiments.spectral_profile(v, scale=scale, seed=seed, bands=CUTS,
                                     cached_only=scale == "ci") or [float("nan")] * 4
     for k, v in PROFILED.items()},
    index=[f"{a}-{b}" for a, b in zip(CUTS[:-1], CUTS[1:])]).T * 100
print(f"% of perturbation energy by radial DCT band, scale {scale}, seed {seed}")
low_share.round(2)

# %%
show(notebook.listing(low_share.iloc[:, 0], f"Share of each fit's energy in the band the "
                      f"strongest low-pass keeps ({low_share.columns[0]}), scale `{scale}`",
                      digits=1, labels={k: k for k in low_share.index})
     if low_share.iloc[:, 0].notna().any() else
     f"None of these fits is cached at scale `{scale}`.")

# %% [markdown]
# ## Save the generator and the perturbations
# The saved file holds the class perturbations, the generator's weights, its per-class inputs
# and the loss history; `fuselib protect IN OUT --checkpoint <file>` applies it to a folder of
# your own images.

# %%
CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
p.save(CHECKPOINT)
back = fuselib.protections.load(CHECKPOINT)
assert torch.equal(back.deltas, p.deltas)
previews = p.save_previews(plots.figures_dir() / f"02_fuse_previews_{scale}")
print(f"saved {CHECKPOINT} ({CHECKPOINT.stat().st_size / 1e3:.0f} kB) and {len(previews)} "
      f"preview PNGs")
