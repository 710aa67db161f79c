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
# # 07 · The direct rivals: GUE, PUE, the learnability certificate and the RSK attack
#
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fuselib/fuselib/HEAD?labpath=notebooks%2F07_rivals.ipynb)
# [![Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fuselib/fuselib/blob/main/notebooks/07_rivals.ipynb)
#
# FUSE's main comparison puts it against two recent methods: **GUE** (a sample-wise U-Net
# generator trained as a Stackelberg game against the classifier) and **PUE** (class-wise
# error-minimising noise, with a robust variant optimised against Gaussian-perturbed surrogate
# weights, and a *certified* learnability bound). The paper says these methods regain accuracy
# after low-pass filtering and that some peak early in training. This notebook measures:
#
# 1. accuracy without filtering and across low-pass cutoffs, GUE and PUE next to FUSE;
# 2. the per-epoch test accuracy curves (early peaks show here);
# 3. the certified learnability bound (`fuselib.certify`, parametric smoothing of the trained
#    classifier's weights) for clean data, PUE, class-wise EM and FUSE;
# 4. CUDA under the random-sharpening + square-DCT low-pass attack (`rsk`), next to the
#    published number.
#
# Every number comes from a run cached by its full configuration (`results/`); at `cpu` scale
# the records shipped in `results/measured/` are read unless `FUSELIB_RECOMPUTE=1`.

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
import pandas as pd

from fuselib import experiments, notebook, plots
from fuselib.notebook import show, static

env = notebook.setup(scale, seed, data_root, device)
print(env)

# each section is a named plan (fuselib/experiments/plans.py). ci runs inside the test suite on
# 2 cores (1.5 min a run): it trains no rival of its own and reuses notebook 00's runs (GUE and
# PUE are tested in tests/test_rivals.py); the rivals start at cpu, where PUE and FUSE are swept
# over three cutoffs and GUE gets no filter and two. Certification: one training run, then
# n_samples + 1 evaluations of the test set (at cpu, of its first 2,000 images: all 10,000 take
# ~15 s an evaluation on 2 cores); at ci the FUSE classifier of notebook 00, whose weights the
# cache keeps: nothing retrained
LOWPASS, CERTS, RSK = (experiments.plans.get(n) for n in (
    "rivals_lowpass", "certificates", "cuda_rsk"))
RIVALS = LOWPASS.protections(scale)
CUTOFFS = sorted(experiments.cutoff_of(c) for c in LOWPASS.countermeasures(scale) if c != "none")
CERTIFY = CERTS.protections(scale)
CERT_SETTINGS = CERTS.settings_for(scale)
RSK_FOR = RSK.protections(scale)
for plan in (LOWPASS, CERTS, RSK):
    print(f"{plan.name}: {plan.size(scale)} | {plan.command(scale)}")
print("rivals:", RIVALS, "| cutoffs:", CUTOFFS, "| certified:", CERTIFY, CERT_SETTINGS)

# %% [markdown]
# ## Without filtering and across low-pass cutoffs

# %%
sweep = LOWPASS.run(scale, seeds=[seed], device=env.device)
sweep["cutoff"] = sweep.countermeasure.map(experiments.cutoff_of)
acc = experiments.by_cutoff(sweep, RIVALS)
peak = experiments.by_cutoff(sweep, RIVALS, "peak_accuracy")
print(f"final (peak) clean test accuracy (%) after low-pass at each cutoff (1.0 = no filter), "
      f"scale {scale}; blank: not run at this scale")
notebook.final_peak(acc, peak)

# %%
fig = plots.lines({experiments.names.protection(p): (list(acc[p].dropna().index),
                                                     acc[p].dropna().tolist()) for p in RIVALS},
                  keys=RIVALS, title=f"GUE, PUE and FUSE across low-pass cutoffs · seed {seed} · "
                                     f"victim fastnet",
                  xlabel="low-pass cutoff (normalised radial DCT frequency; 1 = no filter)",
                  ylabel="clean test accuracy (%)", scale=scale, hline=10, hline_label="chance")
static(plots.save(fig, f"07_rivals_lowpass_{scale}"))
fig

# %%
assert sweep.accuracy.between(0, 1).all()
show(notebook.finding(sweep, RIVALS, LOWPASS.countermeasures(scale), scale=scale))

# %% [markdown]
# ## Per-epoch test accuracy
# A protection that "peaks early" lets an attacker who stops training at the right epoch (the
# `early_stop` countermeasure) keep the peak. First figure: no filter; second (when measured
# at this scale): after low-pass at cutoff 0.25, the paper's headline setting.

# %%
for cm in ["none"] + (["lowpass:0.25"] if 0.25 in CUTOFFS else []):
    rows = sweep[sweep.countermeasure == cm].set_index("protection").loc[RIVALS]
    curves = {experiments.names.protection(p): [a * 100 for a in rows.loc[p, "curve"]]
              for p in RIVALS}
    fig = plots.lines(curves, keys=RIVALS, xlabel="epoch",
                      title=f"Clean test accuracy per epoch, training on protected data "
                            f"({experiments.names.countermeasure(cm)}) · seed {seed} · "
                            f"victim fastnet",
                      ylabel="clean test accuracy (%)", scale=scale, hline=10,
                      hline_label="chance")
    static(plots.save(fig, f"07_rivals_curves_{cm.replace(':', '')}_{scale}"))
    display(fig)  # noqa: F821
    print(cm, "epoch of the peak:", rows.peak_epoch.to_dict())

# %%
show(notebook.finding(sweep, RIVALS, ["none", "lowpass:0.25"], scale=scale, peak=True))

# %% [markdown]
# ## The certified learnability bound
# `fuselib.certify` (the PUE paper's certificate): the classifier trained on the protected data
# is smoothed in *weight* space, θ + N(0, σ²); with probability at least 1 − α over the weight
# draws, the q-quantile of the smoothed classifier's clean test accuracy is at most the bound
# (for every θ' within ‖θ' − θ‖ ≤ η; η = 0 here). A lower bound means data that are certifiably
# less learnable — *for this architecture and training recipe*, not for every learner (see the
# docstring of `fuselib.certify`). Every protection in the registry is certified the same way.

# %%
certs = CERTS.run(scale, seeds=[seed], device=env.device)
certs = certs.set_index("protection").to_dict("index")
cert = pd.DataFrame({
    "accuracy, all test (%)": {p: c["accuracy"] * 100 for p, c in certs.items()},
    "unsmoothed, certified images (%)": {p: c["clean_accuracy"] * 100 for p, c in certs.items()},
    "mean smoothed (%)": {p: c["mean"] * 100 for p, c in certs.items()},
    "certified bound (%)": {p: (float("nan") if c["abstain"] else c["bound"] * 100)
                            for p, c in certs.items()},
    "order": {p: c["order"] for p, c in certs.items()},
}).loc[CERTIFY]
print(f"certified (q={CERT_SETTINGS['q']}, η={CERT_SETTINGS['eta']})-learnability, "
      f"σ={CERT_SETTINGS['sigma']}, {CERT_SETTINGS['n_samples']} weight draws, "
      f"{certs[CERTIFY[0]]['n_eval']} test images, "
      f"confidence {1 - CERT_SETTINGS['alpha']:.0%}, scale {scale}")
cert.round(2)

# %%
fig = plots.bars({"trained": cert["accuracy, all test (%)"].tolist(),
                  "certified bound": cert["certified bound (%)"].tolist()},
                 [experiments.names.protection(p) for p in CERTIFY],
                 title="Certified learnability of each protection's training data",
                 ylabel="clean test accuracy (%)", scale=scale)
static(plots.save(fig, f"07_certified_{scale}"))
fig

# %%
assert all(0 <= c["bound"] <= 1 for c in certs.values())
show(notebook.listing(cert["certified bound (%)"], f"Certified bound on clean test accuracy "
                      f"(scale `{scale}`; none where the certificate abstains)", digits=2))

# %% [markdown]
# ## CUDA under random sharpening + square-DCT low-pass (`rsk`) and under COIN
# Kim & Sandoval-Segura (2024) lift CUDA on CIFAR-10 from 23.25% to **78.53%** with this attack
# (ResNet-18, full data; clean 94.34%) — published numbers, for comparison only. COIN (Wang et
# al., AAAI 2025: random multiplicative bilinear interpolation) is the other published answer to
# convolution-based protections. Ours come from the fast trainer at this notebook's scale (at
# `cpu`, the shipped records; a countermeasure not measured yet is left out).

# %%
if RSK_FOR:
    rsk = RSK.run(scale, seeds=[seed], device=env.device)
    measured = [c for c in RSK.countermeasures(scale) if c in set(rsk.countermeasure)]
    rsk_table = rsk.pivot(index="protection", columns="countermeasure",
                          values="accuracy").loc[RSK_FOR, measured] * 100
    rsk_table["published, rsk (%)"] = [{"none": 94.34, "cuda": 78.53}[p] for p in RSK_FOR]
    print(f"clean test accuracy (%), scale {scale}; last column: published (ResNet-18, full "
          "data)")
    display(rsk_table.round(2))  # noqa: F821
    assert rsk.accuracy.between(0, 1).all()
    show(notebook.finding(rsk, RSK_FOR, measured, scale=scale))
else:
    print(f"scale {scale}: the RSK section is skipped (set RSK_FOR)")

# %% [markdown]
# ## Is this data unlearnable? Detection without a clean reference
# Unlearnable examples are shortcuts, and a shortcut is nearly linearly separable (Zhu, Yu and
# Gao, AAAI 2024): a linear model and a small two-layer network fit protected data to near 100%
# training accuracy within a few epochs, where clean data stays far lower. `fuselib detect DATA`
# (and `fuselib audit --detect`) measures exactly that, on the data as given and after low-pass
# 0.25, against clean data of the same size (`fuselib.experiments.detect`); the score is 0 at
# clean data's training accuracy and 1 at a perfect fit, flagged over 0.5. At `ci` this notebook
# scores the protected sets it has at hand; from `cpu` on it reads the zoo measurement shipped
# by `bench/detect_zoo.py` (`results/detect_zoo_cpu.md`, with the per-image scores under partial
# poisoning).

# %%
from fuselib.experiments import detect_zoo

ZOO = None if scale == "ci" else (detect_zoo.load(scale) or detect_zoo.load("cpu"))
if ZOO is None:  # nothing shipped: score clean data, AR and FUSE now (seconds each)
    ZOO = {"per_dataset": detect_zoo.per_dataset(["ar", "fuse"], sizes=[], draws=0,
                                                 clean_draws=0, seed=seed, scale=scale)}
    print(f"scored now at scale {scale}")
else:
    print(f"read from the shipped measurement: {ZOO['command']} ({ZOO['machine']})")
det = detect_zoo.frame(ZOO)
det.drop(columns=["n"]).round(3)

# %%
views = ["as given", "after low-pass 0.25"]
fig = plots.bars({r.label: [r[v] for v in views] for _, r in det.iterrows()}, views,
                 keys=list(det.index), hline=0.5, hline_label="flagged above",
                 title=f"Shortcut detection: excess training accuracy over clean data · "
                       f"{int(det.n.iloc[0]):,} images",
                 ylabel="excess (0 = clean data, 1 = a perfect fit)", scale=scale)
static(plots.save(fig, f"07_detect_{scale}"))
fig

# %%
assert det.score.between(-1, 1).all()
show(detect_zoo.finding(ZOO))

# %% [markdown]
# ## What the records say about the rivals under low-pass filtering
# Claim 1 (GUE and PUE are among the prior UEs it reads), judged by
# `fuselib.experiments.claims` at the best scale measured, whatever this notebook's scale (the
# README's scorecard, from the same records).

# %%
show(notebook.claim(1))
