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
# # 00 · Quickstart: protect CIFAR-10 with FUSE, then try to learn from it
#
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fuselib/fuselib/HEAD?labpath=notebooks%2F00_quickstart.ipynb)
# [![Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fuselib/fuselib/blob/main/notebooks/00_quickstart.ipynb)
#
# An unlearnable example adds a perturbation of at most 8/255 per pixel to each training image,
# so that a classifier trained on the protected set fails on clean test images. FUSE makes
# one perturbation per class with a small generator trained so that every frequency band of the
# perturbation carries the effect (see `02_train_fuse`).
#
# This notebook protects the training set, looks at what changed, trains the same classifier on
# clean and on protected data, and compares their accuracy on the clean test set. Every number
# below is computed by the cells (or read back from the result cache of an identical run).

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
import torch

import fuselib
from fuselib import experiments, notebook, plots
from fuselib.notebook import show, static
from fuselib.protect import psnr

env = notebook.setup(scale, seed, data_root, device)
print(env)

# %% [markdown]
# ## Protect
# `protected_data` fits FUSE on this scale's training subset (or loads the fit from the result
# cache) and returns the clean images, the protected images and the labels, all `uint8`.

# %%
clean, protected, labels = experiments.protected_data("fuse", scale=scale, seed=seed)
delta = protected.int() - clean.int()
per_image_psnr = torch.tensor([psnr(a, b) for a, b in zip(protected[:2000], clean[:2000])])
print(f"{len(clean):,} training images protected; max |δ| = {delta.abs().max().item()}/255; "
      f"PSNR {per_image_psnr.mean():.1f} dB (mean over {len(per_image_psnr)} images)")
assert delta.abs().max() <= 8, "the budget is a guarantee: |δ| ≤ 8/255 on uint8"

# %%
names = fuselib.data.classes("cifar10")
first = [int((labels == c).nonzero()[0]) for c in range(10)]
fig = plots.images({"clean": [clean[i] for i in first],
                    "protected": [protected[i] for i in first],
                    "δ (×16, gray = 0)": [plots.perturbation_image(delta[i].float() / 255)
                                          for i in first]},
                   col_titles=names, title="FUSE on CIFAR-10: one image per class",
                   scale=scale, size=90)
static(plots.save(fig, f"00_quickstart_images_{scale}"))
fig

# %% [markdown]
# FUSE is class-wise: every image of a class receives the same perturbation, which is what
# lets a network take it as a shortcut for the label.

# %%
same = all(bool((delta[labels == c] == delta[first[c]]).float().mean() > 0.95) for c in range(10))
print("one perturbation per class (up to uint8 clipping at 0 and 255):", same)

# %% [markdown]
# ## Train on it
# The `fast` trainer (an airbench-style network) trains from scratch on the clean and on the
# protected training set; both are tested on the clean test set.

# %%
runs = experiments.plans.get("quickstart").run(scale, seeds=[seed], device=env.device)
runs[["protection", "accuracy", "peak_accuracy", "peak_epoch", "seconds", "cached"]]

# %%
fig = plots.lines({experiments.names.protection(r.protection): [100 * a for a in r.curve]
                   for r in runs.itertuples()}, keys=list(runs.protection),
                  title=f"Clean test accuracy while training on clean vs FUSE-protected data · "
                        f"seed {seed} · victim fastnet",
                  xlabel="epoch", ylabel="test accuracy (%)", scale=scale, hline=10,
                  hline_label="chance")
static(plots.save(fig, f"00_quickstart_curves_{scale}"))
fig

# %%
acc = dict(zip(runs.protection, runs.accuracy))
# the qualitative claim at every scale: training on FUSE data costs most of the accuracy
assert acc["fuse"] < acc["none"] - 0.2, acc
show(notebook.finding(runs, ["fuse"], scale=scale))

# %% [markdown]
# These numbers are at this notebook's scale (its first output says how many training images);
# notebook `04_main_results` shows the same comparison on all 50,000 images, with seeds.
