"""The attacker's network: every victim's runs of the victims plans as one summary.

The same protections meet several classifiers trained from scratch: fastnet by the fast recipe
(plan ``main_table``, the network every other table uses), ResNet-18 by the paper's recipe
(plan ``victims``, with seeds), VGG-11, DenseNet-121 and ResNet-50 by the same recipe
(``victims_vgg11``, ``victims_densenet121``, ``victims_resnet50``) and a ViT by AdamW with
warm-up and cosine (``victims_vit``).
:func:`summary` reads what is measured (nothing is trained) and reduces the seeds of each cell
to mean, standard deviation and peak, so a notebook or a report draws one figure from it::

    df = fuselib.experiments.victims.summary("cpu")
"""
from __future__ import annotations

from . import names
from . import plans as _plans

# victim plans, in the order a figure shows them; main_table gives fastnet as the reference
PLANS = ("main_table", "victims", *(f"victims_{a}" for a in _plans.VICTIM_ARCHS), "victims_vit")
NETWORKS = {**{a: names.arch(a) for a in ("resnet18", *_plans.VICTIM_ARCHS, "vit")},
            "fastnet": "fastnet (fast recipe)"}
NETWORKS = {"fastnet": NETWORKS.pop("fastnet"), **NETWORKS}
PROTECTIONS = _plans.VICTIM_PROTECTIONS
FILTERS = _plans.VICTIM_FILTERS
COLUMNS = ["victim", "protection", "countermeasure", "mean", "std", "peak", "seeds", "seconds"]


def summary(scale: str):
    """One row per victim × protection × filter measured at ``scale`` (accuracies in percent;
    ``std`` is NaN for one seed; ``peak`` is the mean over seeds of the peak over epochs)."""
    import pandas as pd

    rows = []
    for name in PLANS:
        df = _plans.get(name).run(scale, cached_only=True)
        if df.empty:
            continue
        df = df[df.protection.isin(PROTECTIONS) & df.countermeasure.isin(FILTERS)]
        for (arch, p, c), g in df.groupby(["arch", "protection", "countermeasure"]):
            rows.append({"victim": NETWORKS.get(arch, arch), "protection": p,
                         "countermeasure": c, "mean": 100 * g.accuracy.mean(),
                         "std": 100 * g.accuracy.std() if len(g) > 1 else float("nan"),
                         "peak": 100 * g.peak_accuracy.mean(), "seeds": len(g),
                         "seconds": float(g.seconds.sum())})
    out = pd.DataFrame(rows, columns=COLUMNS)
    order = {v: i for i, v in enumerate(NETWORKS.values())}
    out["_v"] = out.victim.map(lambda v: order.get(v, len(order)))
    out["_p"] = out.protection.map(PROTECTIONS.index)
    out["_c"] = out.countermeasure.map(FILTERS.index)
    return out.sort_values(["_v", "_c", "_p"]).drop(columns=["_v", "_p", "_c"]).reset_index(
        drop=True)


def schedules(scale: str):
    """The candidate short schedules of ResNet-18 on clean data (plans ``schedule_*``, one row
    each measured at ``scale``): batch, lr, final and peak test accuracy and the training
    accuracy of the last epoch (percent, on its augmented batches), the per-epoch test curve and
    the hours the run took."""
    import pandas as pd

    from .runner import run

    rows = []
    for name, recipe in _plans.SCHEDULE_CANDIDATES.items():
        plan = _plans.get(f"schedule_{name}")
        r = run("none", "none", trainer=plan.trainer, scale=scale, recipe=dict(plan.recipe),
                cached_only=True)
        if r is None:
            continue
        rows.append({"schedule": name, "batch": recipe["batch_size"], "lr": recipe["lr"],
                     "final": 100 * r["accuracy"], "peak": 100 * r["peak_accuracy"],
                     "train_last": 100 * r["train_accuracy"][-1],
                     "curve": [100 * a for a in r["curve"]], "hours": r["seconds"] / 3600,
                     "key": r["key"]})
    return pd.DataFrame(rows, columns=["schedule", "batch", "lr", "final", "peak", "train_last",
                                       "curve", "hours", "key"]).set_index("schedule")


def schedule_finding(df) -> str:
    """The schedule comparison in a sentence, from :func:`schedules`' rows."""
    if df.empty:
        return "No candidate schedule is measured at this scale yet."
    best = df.final.idxmax()

    def say(name):
        r = df.loc[name]
        return f"batch {int(r.batch)}, lr {r.lr:g}: {r.final:.2f}%"

    others = [say(n) for n in df.index if n != best]
    return (f"On clean data, seed 0, the best of {len(df)} candidate schedules is "
            f"**{say(best)}**" + (f" (against {'; '.join(others)})" if others else "")
            + ". One seed a candidate: a direction, not a measured spread.")

# fp32 against bf16 autocast on clean data, the same schedule and seeds each way: (what, fp32
# plan, bf16 plan). The paper's batch and lr first (the run that kept bf16 off), then the chosen
# schedule that every tier-1 run uses, with seeds.
PRECISION_PAIRS = (("batch 128, lr 0.1 (the paper's)", "schedule_paper", "victims_amp"),
                   ("batch 64, lr 0.05 (chosen)", "victims", "victims_bf16"))


def precision(scale: str):
    """Clean ResNet-18 in fp32 against bf16 autocast (:data:`PRECISION_PAIRS`), read from the
    records at ``scale``: one row per schedule and precision with the seeds measured both ways
    (a seed measured one way only is left out, so the two means are over the same seeds),
    the mean and std of the final test accuracy, the mean training accuracy of the last epoch
    (percent) and the mean hours a run."""
    import pandas as pd

    from .store import find_json

    rows = []
    for what, *names_ in PRECISION_PAIRS:
        runs = {}
        for way, name in zip(("fp32", "bf16"), names_):
            df = _plans.get(name).run(scale, cached_only=True)
            runs[way] = df[(df.protection == "none") & (df.countermeasure == "none")].set_index(
                "seed")
        seeds = sorted(set(runs["fp32"].index) & set(runs["bf16"].index))
        for way, df in runs.items():
            if not seeds:
                continue
            g = df.loc[seeds]
            # the training accuracy is in the run's record, not the grid's frame
            train_last = [100 * find_json(f"{k}.json", "key", k)["train_accuracy"][-1]
                          for k in g.key]
            rows.append({"schedule": what, "precision": way, "seeds": len(seeds),
                         "mean": 100 * g.accuracy.mean(),
                         "std": 100 * g.accuracy.std() if len(seeds) > 1 else float("nan"),
                         "train_last": sum(train_last) / len(train_last),
                         "hours": g.seconds.mean() / 3600})
    return pd.DataFrame(rows, columns=["schedule", "precision", "seeds", "mean", "std",
                                       "train_last", "hours"])


def precision_finding(df, allowed: float = 1.0) -> str:
    """Whether bf16 may train the victims, in a sentence per schedule: the gap of the means
    against ``allowed`` points (the issue's rule) and against two standard deviations over
    seeds (whether the gap is told from chance at all)."""
    if df.empty:
        return "No schedule is measured both ways yet."
    out = []
    for what, g in df.groupby("schedule", sort=False):
        f, b = (g[g.precision == w].iloc[0] for w in ("fp32", "bf16"))
        gap = b["mean"] - f["mean"]
        spread = max(f["std"], b["std"])
        n = int(f.seeds)
        text = (f"{what}: bf16 {gap:+.2f} points against fp32 over "
                + (f"{n} seeds" if n > 1 else "one seed") + ", ")
        if abs(gap) <= allowed:
            text += f"within {allowed:g} point"
        elif n < 2:
            text += f"more than {allowed:g} point, with no spread over seeds to judge it by"
        elif abs(gap) > 2 * spread:
            text += (f"more than {allowed:g} point and beyond two standard deviations "
                     f"({spread:.2f}): bf16 stays off")
        else:
            text += (f"more than {allowed:g} point but within two standard deviations "
                     f"({spread:.2f}): not told from chance yet")
        out.append(text)
    return "; ".join(out) + "."


def figure_data(df) -> tuple:
    """``(categories, values, errors)`` for :func:`fuselib.plots.bars`: one category per
    victim and filter, one bar per protection (by its display name)."""
    cats = list(dict.fromkeys(f"{v} · {names.countermeasure(c)}"
                              for v, c in zip(df.victim, df.countermeasure)))
    values, errors = {}, {}
    for p in PROTECTIONS:
        sub = df[df.protection == p]
        if sub.empty:
            continue
        at = {f"{v} · {names.countermeasure(c)}": (m, s)
              for v, c, m, s in zip(sub.victim, sub.countermeasure, sub["mean"], sub["std"])}
        values[names.protection(p)] = [at.get(k, (float("nan"),) * 2)[0] for k in cats]
        errors[names.protection(p)] = [at.get(k, (float("nan"),) * 2)[1] for k in cats]
    return cats, values, errors
