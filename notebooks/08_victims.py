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
# # 08 · The attacker's network
#
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/fuselib/fuselib/HEAD?labpath=notebooks%2F08_victims.ipynb)
# [![Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/fuselib/fuselib/blob/main/notebooks/08_victims.ipynb)
#
# Every other notebook trains one victim: `fastnet`, a small network trained for 10 epochs by
# the fast recipe. Whether an unlearnable example holds depends on the network and schedule
# that learn from it, so the paper's claims are measured here on the paper's own networks:
#
# * **ResNet-18 by the paper's recipe** (SGD, momentum 0.9, weight decay 5e-4, random crop
#   and flip, a cosine schedule; fp32): the paper's batch 128 at lr 0.1 at `paper` scale; at
#   `cpu` and `full` the cosine compressed to 15 epochs at batch 64, lr 0.05 (chosen on clean
#   data, below) — plan `victims`, three seeds;
# * **VGG-11, DenseNet-121 and ResNet-50** by the same recipe in bf16 (`victims_vgg11`,
#   `victims_densenet121`, `victims_resnet50`; why bf16: below) and a **ViT** by AdamW with
#   warm-up and cosine, in fp32 (`victims_vit`), one seed;
# * fastnet's runs of the same protections (plan `main_table`) as the reference.
#
# Nothing is trained here: a ResNet-18 run takes about half an hour on 2 CPU cores, so the
# notebook reads the measured records (`fuselib grid --plan victims --scale cpu` trains them).

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
from IPython.display import Markdown, display

from fuselib import experiments, notebook, plots
from fuselib.notebook import show, static
from fuselib.experiments import victims

env = notebook.setup(scale, seed, data_root, device)
print(env)

# the victims are trained at cpu scale and up; at a scale with none measured, show cpu's
shown = scale
summary = victims.summary(shown)
if not (summary.victim != victims.NETWORKS["fastnet"]).any():
    shown = "cpu"
    summary = victims.summary(shown)
    print(f"no victim but fastnet measured at scale {scale}: showing the records of scale cpu")
for name in victims.PLANS[1:]:
    plan = experiments.plans.get(name)
    measured = plan.run(shown, cached_only=True)
    print(f"{name}: {len(measured)} of {plan.size(shown)} runs measured at {shown} | "
          f"{plan.command(shown)}")

# %% [markdown]
# ## The schedule, chosen on clean data
# The paper trains ResNet-18 for 60–200 epochs; at `cpu` scale every victim gets 15 epochs of a
# cosine schedule. Which batch size and learning rate make the most of 15 epochs was decided on
# clean data alone (plans `schedule_*`, seed 0), never on a protection; plan `victims_long`
# checks the short schedule against 60 epochs.

# %%
schedules = victims.schedules(shown)
if len(schedules):
    fig = plots.lines({f"batch {r.batch}, lr {r.lr:g}": r.curve
                       for r in schedules.itertuples()},
                      title="ResNet-18 on clean data by each candidate schedule · seed 0",
                      xlabel="epoch", ylabel="clean test accuracy (%)", scale=shown)
    static(plots.save(fig, f"08_schedules_{scale}"))
    display(fig)
    display(schedules.drop(columns=["curve", "key"]).round(2))
show(victims.schedule_finding(schedules))

# %% [markdown]
# ## fp32 or bf16
# bf16 autocast about doubles the training throughput on a CPU with native bf16, but it trains
# the victims only if a clean run stays within 1 point of fp32: the same schedule and seeds
# both ways (plans `schedule_paper` against `victims_amp` at the paper's batch and lr;
# `victims` against `victims_bf16` at the chosen one). Tier 1 (`victims`) stays in fp32 so its
# seeds are one setting; the plans after it (`victims_vgg11`, `victims_densenet121`,
# `victims_resnet50`, `victims_more`, `victims_long`) set bf16; the ViT stays in fp32.

# %%
precision = victims.precision(shown)
display(precision.round(2))
show(victims.precision_finding(precision))

# %% [markdown]
# ## ResNet-18, the paper's network
# Final clean test accuracy, mean ± std over the measured seeds, with the peak over epochs in
# brackets where it is higher (an attacker who stops early keeps the peak).

# %%
display(Markdown(experiments.plans.get("victims").markdown(shown)))

# %%
VICTIMS = experiments.plans.get("victims")
show(notebook.finding(VICTIMS.run(shown, cached_only=True), victims.PROTECTIONS, victims.FILTERS,
                      scale=shown))

# %% [markdown]
# ## Over the epochs
# ResNet-18's test accuracy after each epoch, mean ± std over the measured seeds (a band where
# there are several): an attacker who stops training at the peak keeps it.

# %%
runs = VICTIMS.run(shown, cached_only=True)
for cm in [c for c in victims.FILTERS if c in set(runs.countermeasure)]:
    fig = notebook.curve_bands(runs, cm, victims.PROTECTIONS,
                               "ResNet-18: test accuracy after each epoch", shown)
    static(plots.save(fig, f"08_curves_{cm.replace(':', '')}_{shown}"))
    display(fig)

# %% [markdown]
# ## Every victim
# One group of bars per network and filter; error bars are the standard deviation over seeds
# where there are several. The dotted line is chance (10%).

# %%
cats, values, errors = victims.figure_data(summary)
fig = plots.bars(values, cats, errors=errors, hline=10, hline_label="chance",
                 title="Clean test accuracy by the attacker's network · mean ± std over the "
                       "seeds measured",
                 ylabel="clean test accuracy (%)", scale=shown,
                 yrange=(0, 100))
fig.update_layout(width=1100, height=480)
static(plots.save(fig, f"08_victims_{scale}"))
fig

# %%
summary.round(2)

# %% [markdown]
# ## What survives a change of victim
# Each line compares one finding of the fastnet tables with the paper's network, from the
# records above (blank where a cell is not measured yet).

# %%
def cell(victim, protection, countermeasure):
    row = summary[(summary.victim == victim) & (summary.protection == protection)
                  & (summary.countermeasure == countermeasure)]
    if row.empty:
        return "not measured"
    r = row.iloc[0]
    std = "" if r["std"] != r["std"] else f" ± {r['std']:.2f}"
    return f"{r['mean']:.2f}{std} ({r.seeds} seed{'s' if r.seeds > 1 else ''})"


for victim in (victims.NETWORKS["fastnet"], victims.NETWORKS["resnet18"]):
    print(victim)
    for p in victims.PROTECTIONS:
        print(f"  {p:5}", " | ".join(f"{c}: {cell(victim, p, c)}" for c in victims.FILTERS))


# %% [markdown]
# What the rules say, network by network (every victim plan, from the same records):

# %%
every = pd.concat([experiments.plans.get(n).run(shown, cached_only=True)
                   for n in victims.PLANS])
show(notebook.finding(every, victims.PROTECTIONS, victims.FILTERS, scale=shown))

# %% [markdown]
# Claim 3 reads these networks as one of its parts; judged by `fuselib.experiments.claims` at
# the best scale measured (the README's scorecard, from the same records):

# %%
show(notebook.claim(3))
