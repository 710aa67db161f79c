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
# # 06 · Interactive: move the cutoff, see what the filter leaves
#
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fuselib/fuselib/HEAD?labpath=notebooks%2F06_interactive_cutoff.ipynb)
# [![Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fuselib/fuselib/blob/main/notebooks/06_interactive_cutoff.ipynb)
#
# A slider sets the normalised radial cutoff, a toggle picks low-pass or high-pass. For one
# protected training image the view shows the image, its filtered version, the perturbation
# before and after the filter, and which part of the perturbation's DCT spectrum the filter
# keeps. Beside it: the accuracy **measured** at the nearest cutoff by the other notebooks (read
# from the result cache; this notebook never trains). Run `01_high_frequency_failure` and
# `04_main_results` at the same scale first to fill it.

# %%
# Colab, or a kernel without fuselib: install the companion first (%pip into this kernel).
import importlib.util

if importlib.util.find_spec("fuselib") is None:
    get_ipython().run_line_magic("pip", "install -q git+https://github.com/fuselib/fuselib")  # noqa: F821

# %% tags=["parameters"]
scale = "ci"         # "ci" (seconds on a CPU), "cpu" (minutes on a laptop), "full", "paper" (GPU)
seed = 0
data_root = None     # None: the default search ($FUSELIB_DATA, ../shared/data, the user cache)
device = None        # None: CUDA when available, else the CPU
protection = "fuse"  # any registered protection spec, e.g. "em", "ar", "lsp"

# %%
from fuselib import experiments, notebook, plots, widgets
from fuselib.notebook import show, static

env = notebook.setup(scale, seed, data_root, device)
print(env)
CUTOFFS = [0.125, 0.25, 0.375, 0.5, 0.625, 0.75]

# %%
clean, protected, labels = experiments.protected_data(protection, scale=scale, seed=seed)
# the slider's measured points: the plan "interactive" (every low- and high-pass cutoff), read
# from what is measured, nothing trained (`fuselib grid --plan interactive --scale cpu` trains them)
cms = experiments.plans.get("interactive").countermeasures(scale)
measured = experiments.grid(["none", protection], cms, scale=scale, seeds=[seed],
                            cached_only=True)
measured["filter"] = measured.countermeasure.map(lambda c: c.split(":")[0])
measured["cutoff"] = measured.countermeasure.map(experiments.cutoff_of)
measured = measured[measured["filter"] != "none"]
print(f"{len(measured)} measured runs at scale {scale} (protection {protection!r} and clean)")
measured[["protection", "filter", "cutoff", "accuracy"]].sort_values(["filter", "cutoff"])

# %%
show(notebook.finding(measured, [protection], scale=scale))

# %%
widgets.cutoff_explorer(clean[:64], protected[:64], measured, cutoffs=CUTOFFS, scale=scale)

# %% [markdown]
# The same view as a static figure (what the slider shows at cutoff 0.25, low-pass), saved to
# `figures/`:

# %%
fig, spec, text = widgets.cutoff_view(clean[0], protected[0], "lowpass", 0.25, measured,
                                      scale=scale)
show(text)
static(plots.save(fig, f"06_cutoff_view_{scale}"))
fig

# %%
static(plots.save(spec, f"06_cutoff_spectrum_{scale}"))
spec
