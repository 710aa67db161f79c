"""Shortcut detection (:mod:`.detect`) measured over the protection zoo at a scale.

Three measurements, each a function returning plain rows (``bench/detect_zoo.py`` runs them and
writes one JSON a scale, ``results/detect_zoo_cpu.json`` at ``cpu``, with the generated tables
of its ``.md``):

1. :func:`per_dataset` — each protection's protected training set at the scale (the fit reused
   from the cache or the shipped records where there is one) and clean data. At each size the
   detector scores ``draws`` class-balanced subsets of the protected set and ``clean_draws``
   subsets of the clean training set (subset seeds from 100, apart from the calibration's 0-2):
   each protection's mean score (the largest excess over clean data; 0 = clean, 1 = a perfect
   fit), the share of its draws flagged, the AUC of its scores against the clean draws', and the
   detection rate at the clean draws' 95th percentile (a 5% false-positive rate); plus its four
   training accuracies on the whole set.
2. :func:`per_image` — partial poisoning: the clean set with a random share of its images
   replaced by their protected versions (:func:`mixed`); the per-image score's AUC (poisoned
   against clean images) and the precision and recall of flagging the ``ratio·N`` highest
   scores.
3. :func:`after_removal` — what flagging buys a data curator: the scale's fast classifier
   trained on the mixed set as it is, and again after the flagged images are removed, both
   tested on the clean test split.

:func:`load` reads a shipped measurement back for the notebooks (none: ``None``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from .. import data
from . import detect as D
from .names import protection as label
from .store import REPO

# every registered protection (sample-wise EM with its main-table settings); at ``cpu`` the
# fits take seconds to minutes each on one core, TAP's and sample-wise EM's about 20
PROTECTIONS = ("random", "random:mode=sample", "ar", "lsp", "ops", "cuda", "pil", "em", "fuse",
               "tap", "rem", "vtg", "em:mode=sample,pgd_steps=5,max_rounds=10", "pue", "gue",
               "dh", "uc")
SUBSET_SEED = 100      # the first subset seed of the draws (the calibration uses 0-2)
MIX_SEED = 1000        # + ratio·100: which images a partial-poisoning set protects


def path(scale: str) -> Path:
    """Where a scale's measurement is shipped (``results/detect_zoo_cpu.json`` at ``cpu``)."""
    return REPO / "results" / f"detect_zoo_{scale}.json"


def load(scale: str) -> dict | None:
    """The shipped measurement at ``scale``, or ``None`` when there is none."""
    p = path(scale)
    return json.loads(p.read_text()) if p.is_file() else None


def mixed(clean: torch.Tensor, protected: torch.Tensor, ratio: float) -> tuple:
    """``(images, poisoned)``: ``clean`` with a seeded random ``ratio`` share of its images
    replaced by their ``protected`` versions, and the mask of those images."""
    g = torch.Generator().manual_seed(MIX_SEED + int(round(ratio * 100)))
    poisoned = D.flag_top(torch.rand(clean.shape[0], generator=g), ratio)
    return torch.where(poisoned.view(-1, 1, 1, 1), protected, clean), poisoned


def per_dataset(specs, sizes, draws: int, clean_draws: int, seed: int = 0, scale: str = "cpu",
                progress=print) -> dict:
    from .runner import protected_data

    x, y = data.load("cifar10", "train")
    clean = {n: [D.verdict(D.scores(*data.subset(x, y, n, SUBSET_SEED + k), seed))["score"]
                 for k in range(clean_draws)] for n in sizes}
    rows = []
    for spec in ["none", *specs]:
        t0 = time.perf_counter()
        _, px, py = protected_data(spec, scale, 0)
        full = D.detect(px, py, seed)
        row = {"protection": spec, "n": int(py.shape[0]), "full_score": full["score"],
               "full_flagged": bool(full["flagged"]), "accuracy": full["accuracy"],
               "sizes": {}}
        for n in sizes:
            s = [D.verdict(D.scores(*data.subset(px, py, n, SUBSET_SEED + k), seed))["score"]
                 for k in range(draws)]
            c = torch.tensor(clean[n])
            fpr5 = float(torch.quantile(c, 0.95))
            row["sizes"][n] = {"scores": s, "mean": sum(s) / len(s),
                               "flagged": sum(v > D.FLAG_EXCESS for v in s) / len(s),
                               "auc": D.auc(torch.tensor(s), c),
                               "rate_at_5fpr": sum(v > fpr5 for v in s) / len(s)}
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        progress(f"{spec}: full {full['score']:+.2f}, "
                 + ", ".join(f"n={n} mean {v['mean']:+.2f} auc {v['auc']:.2f}"
                             for n, v in row["sizes"].items()) + f" ({row['seconds']:.0f} s)")
    return {"clean_scores": clean, "rows": rows}


def merge_rows(old: list, new: list, key=("protection",)) -> list:
    """``old`` with each row of ``new`` in place of the row with the same ``key`` fields, and the
    rows ``new`` adds appended: measuring more protections later adds to a table, and measuring
    one again replaces its row, never the others'."""
    ident = lambda r: tuple(r[k] for k in key)  # noqa: E731
    fresh = {ident(r): r for r in new}
    out = [fresh.pop(ident(r), r) for r in old]
    return out + [r for r in new if ident(r) in fresh]


SAME_EXCESS = 0.05  # two excesses closer than this read as the same (one detector run each)
SETTINGS = {"dataset": ("sizes", "draws", "clean_draws", "seed"), "image": ("ratios", "seed")}


def mismatch(args: dict, shipped: dict, part: str) -> list:
    """The settings of ``part`` in which this command's ``args`` differ from the measurement
    they would be merged into (rows measured under other settings cannot share a table)."""
    return [k for k in SETTINGS.get(part, ()) if k in shipped and args[k] != shipped[k]]


def per_image(specs, ratios, seed: int = 0, scale: str = "cpu", progress=print) -> list:
    from .runner import protected_data

    rows = []
    for spec in specs:
        x, px, y = protected_data(spec, scale, 0)
        for ratio in ratios:
            images, poisoned = mixed(x, px, ratio)
            t0 = time.perf_counter()
            score = D.per_image(images, y, seed)
            p, r = D.precision_recall(D.flag_top(score, ratio), poisoned)
            rows.append({"protection": spec, "ratio": ratio, "n": len(y),
                         "auc": D.auc(score[poisoned], score[~poisoned]), "precision": p,
                         "recall": r, "seconds": time.perf_counter() - t0})
            progress(f"{spec} ratio {ratio}: auc {rows[-1]['auc']:.3f}, precision {p:.3f}, "
                     f"recall {r:.3f}")
    return rows


def after_removal(specs, ratios, seed: int = 0, scale: str = "cpu", device=None,
                  done=(), on_row=None, progress=print) -> list:
    """Per protection and ratio: the scale's fast classifier (fastnet, the shipped records'
    recipe) trained on the mixed set; on what is left after removing the ``ratio·N`` images of
    highest per-image score — the flagged ones (a curator who knows how much to remove;
    precision equals recall then); and, the control, after removing as many images drawn at
    random (what removal costs without the detector). All tested on the scale's clean test
    subset. ``done``: rows measured before (kept; a row without its control gets it added);
    ``on_row(rows)`` after each row (to save progress)."""
    from ..train import get_recipe, train
    from ..utils import default_device
    from .runner import protected_data
    from .scales import SCALES, recipe_overrides

    rows = {(r["protection"], r["ratio"]): dict(r) for r in done}
    recipe = get_recipe("fast", **recipe_overrides(scale, "fast", None, None, {}))
    xte, yte = data.subset(*data.load("cifar10", "test"), SCALES[scale]["n_test"], seed)
    device = device or default_device()

    def fit(images, labels):
        return train(images, labels, xte, yte, recipe, seed=seed, device=device)["accuracy"]

    for spec in specs:
        todo = [r for r in ratios if "accuracy_random" not in rows.get((spec, r), {})]
        if not todo:
            continue
        x, px, y = protected_data(spec, scale, 0)
        for ratio in todo:
            images, poisoned = mixed(x, px, ratio)
            t0 = time.perf_counter()
            row = rows.get((spec, ratio))
            if row is None:
                flagged = D.flag_top(D.per_image(images, y, seed), ratio)
                p, _ = D.precision_recall(flagged, poisoned)
                keep = ~flagged
                row = {"protection": spec, "ratio": ratio, "n": len(y),
                       "kept": int(keep.sum()), "precision": p,
                       "poisoned_left": int((poisoned & keep).sum()),
                       "accuracy_mixed": fit(images, y),
                       "accuracy_after": fit(images[keep], y[keep]),
                       "recipe": {"trainer": "fast", "scale": scale, "seed": seed,
                                  "epochs": recipe.epochs}, "seconds": 0.0}
            g = torch.Generator().manual_seed(MIX_SEED + seed)
            drop = D.flag_top(torch.rand(len(y), generator=g), 1 - row["kept"] / row["n"])
            row["accuracy_random"] = fit(images[~drop], y[~drop])
            row["seconds"] += time.perf_counter() - t0
            rows[(spec, ratio)] = row
            progress(f"{spec} ratio {ratio}: {row['accuracy_mixed']:.2%} mixed, "
                     f"{row['accuracy_after']:.2%} after removing the flagged, "
                     f"{row['accuracy_random']:.2%} after removing as many at random")
            if on_row is not None:
                on_row(list(rows.values()))
    return list(rows.values())


def trained(spec: str, scale: str) -> float | None:
    """The clean test accuracy (percent) of the scale's fast classifier (fastnet) trained on
    ``spec``'s protected set, unfiltered, seed 0 — the run the detector's data comes from —
    read from the run records (``None`` when not measured; nothing is trained)."""
    from .runner import run

    r = run(spec, "none", scale=scale, seed=0, cached_only=True)
    return None if r is None else 100 * r["accuracy"]


def frame(res: dict, scale: str | None = None):
    """One row a protection of a measurement's per-dataset part: its display name, the score
    (largest excess), flagged or not, and the largest excess of the two models on each view —
    the data as given and after low-pass — beside clean data of the same size; and what the
    protection does to fastnet unfiltered (:func:`trained`; NaN when not measured), with
    ``protects`` when that is more than :data:`.claims.PROTECTS` points below clean data's."""
    import pandas as pd

    from .claims import PROTECTS

    scale = scale or res.get("args", {}).get("scale", "cpu")
    clean = trained("none", scale)
    rows = []
    for r in res["per_dataset"]["rows"]:
        side = D.detection_side(32)
        view = {v: max(D.excess(r["accuracy"][f"{m}/{v}"],
                                D.clean_accuracy(side, r["n"], f"{m}/{v}")) for m in D.MODELS)
                for v in D.VIEWS}
        acc = clean if r["protection"] == "none" else trained(r["protection"], scale)
        rows.append({"protection": r["protection"], "label": label(r["protection"]),
                     "score": r["full_score"], "flagged": r["full_flagged"],
                     "as given": view["none"], f"after low-pass {D.LOWPASS}":
                     view[f"lowpass:{D.LOWPASS}"], "n": r["n"],
                     "fastnet accuracy": float("nan") if acc is None else acc,
                     "protects": (acc is not None and clean is not None
                                  and clean - acc > PROTECTS)})
    return pd.DataFrame(rows).set_index("protection")


def finding(res: dict, scale: str | None = None) -> str:
    """What a measurement says, in a sentence or three, from its numbers."""
    from .claims import PROTECTS

    df = frame(res, scale)
    prot = df.drop(index="none", errors="ignore")
    flagged, missed = prot[prot.flagged], prot[~prot.flagged]

    def named(part):
        return (", ".join(f"{r.label} {r.score:+.2f}" for r in part.itertuples())
                or "no protection")

    low = f"after low-pass {D.LOWPASS}"
    text = (f"**Flagged** ({len(flagged)} of {len(prot)}, score over {D.FLAG_EXCESS} on all "
            f"{int(df.n.iloc[0]):,} images): {named(flagged)}. **Not flagged**: {named(missed)}"
            + (f" (clean data {df.loc['none', 'score']:+.2f})." if "none" in df.index else "."))
    evade = prot[prot.protects & ~prot.flagged]
    if "none" in df.index and df["fastnet accuracy"].notna().any():
        text += (f" **Protecting yet not flagged** (fastnet unfiltered more than "
                 f"{PROTECTS:g} points below clean data's "
                 f"{df.loc['none', 'fastnet accuracy']:.2f}%, seed 0): "
                 + (", ".join(f"{r.label} {r['fastnet accuracy']:.2f}% (score {r.score:+.2f})"
                              for _, r in evade.iterrows()) or "none") + ".")
    if {"fuse", "em"} <= set(df.index):
        gap = df.loc["fuse", low] - df.loc["em", low]
        text += (f" {low.capitalize()} the detector still fits FUSE at an excess of "
                 f"{df.loc['fuse', low]:+.2f} and class-wise EM at {df.loc['em', low]:+.2f} "
                 f"over clean data: FUSE is "
                 + ("as easy to detect as" if abs(gap) < SAME_EXCESS
                    else "easier to detect than" if gap > 0 else "harder to detect than")
                 + " class-wise EM.")
    return text


def removal_finding(res: dict) -> str:
    """What removing the flagged images did, a clause a row (empty when not measured)."""
    rows = res.get("after_removal") or []
    if not rows:
        return ""
    parts = [f"{label(r['protection'])} at ratio {r['ratio']}: {r['accuracy_mixed']:.2%} on the "
             f"mixed set, {r['accuracy_after']:.2%} after removing the "
             f"{r['n'] - r['kept']:,} flagged images ({r['poisoned_left']:,} protected left)"
             + (f", {r['accuracy_random']:.2%} after removing as many at random"
                if "accuracy_random" in r else "")
             for r in rows]
    return ("Trained on (fastnet, the fast recipe, seed 0): " + "; ".join(parts) + ".")


def markdown(res: dict, scale: str = "cpu") -> str:
    """The measurement's generated tables."""
    a = res["args"]
    sizes = a["sizes"]
    n = res["per_dataset"]["rows"][0]["n"]
    lines = [f"# Shortcut detection over the zoo, `{scale}` scale", "",
             f"Generated by `bench/detect_zoo.py` from `detect_zoo_{scale}.json`; do not edit.",
             "", f"- command: `{res['command']}`",
             f"- commit {res['commit']}, {res['machine']}, torch {res['torch']}, "
             f"{res['threads']} threads; {res['seconds'] / 60:.1f} min; detection seed "
             f"{a['seed']}"]
    for extra in res.get("more_commands", []):
        lines.append(f"- then: `{extra['command']}` (commit {extra['commit']}, "
                     f"{extra['machine']}, {extra['threads']} threads; "
                     f"{extra['seconds'] / 60:.1f} min)")
    lines += ["", "## Per dataset", "",
              f"Score: the largest excess of the four training accuracies over clean data's at "
              f"the same size (0 = clean, 1 = a perfect fit; flagged over {D.FLAG_EXCESS}). "
              f"At each size, {a['draws']} subsets of the protection's {n:,} protected images "
              f"against {a['clean_draws']} of clean CIFAR-10; AUC against the clean subsets; "
              "the rate at 5% FPR counts the subsets over the clean subsets' 95th percentile "
              "(with 10 clean subsets that percentile lies between the two highest; the clean "
              f"data row is {a['draws']} subsets of the `{scale}`-scale clean set against it). "
              "The last column: fastnet's clean test accuracy trained on the protected set "
              "unfiltered (the fast recipe, seed 0, from the run records; blank when not "
              "measured), what the protection does when nobody detects it.",
              "", f"| protection | score, {n:,} images | " + " | ".join(
                  f"n={s}: mean score / flagged / AUC / rate at 5% FPR" for s in sizes)
              + " | fastnet, unfiltered |",
              "| --- | --- | " + " | ".join("---" for _ in sizes) + " | --- |"]
    fastnet = frame(res, scale)["fastnet accuracy"]  # the run records, read once a row
    for r in res["per_dataset"]["rows"]:
        cells = [f"{v['mean']:+.2f} / {v['flagged']:.0%} / {v['auc']:.2f} / "
                 f"{v['rate_at_5fpr']:.0%}" for v in (r["sizes"][str(s)] for s in sizes)]
        name = "clean data" if r["protection"] == "none" else r["protection"]
        flag = " (flagged)" if r["full_flagged"] else ""
        acc = fastnet[r["protection"]]
        lines.append(f"| {name} | {r['full_score']:+.2f}{flag} | " + " | ".join(cells)
                     + f" | {'' if acc != acc else f'{acc:.2f}%'} |")
    lines += ["", f"Training accuracy of each detection model on the whole {n:,}-image set:", "",
              "| protection | " + " | ".join(f"{k}" for k in D.SCORE_KEYS) + " |",
              "| --- | " + " | ".join("---" for _ in D.SCORE_KEYS) + " |"]
    for r in res["per_dataset"]["rows"]:
        name = "clean data" if r["protection"] == "none" else r["protection"]
        lines.append(f"| {name} | " + " | ".join(f"{r['accuracy'][k]:.3f}" for k in D.SCORE_KEYS)
                     + " |")
    if res.get("per_image"):
        lines += ["", "## Per image, partial poisoning", "",
                  f"A share of the clean {n:,}-image set replaced by its protected version; the "
                  "per-image score (`detect.per_image`: the linear model's mean confidence in "
                  "each image's label over the schedule, on the high-pass residual); the "
                  "`ratio·N` highest scores flagged, so precision equals recall.",
                  "", "| protection | ratio | AUC | precision | recall |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {r['protection']} | {r['ratio']} | {r['auc']:.3f} | {r['precision']:.3f} "
                  f"| {r['recall']:.3f} |" for r in res["per_image"]]
    if res.get("after_removal"):
        rows = res["after_removal"]
        ep = rows[0]["recipe"]["epochs"]
        lines += ["", "## After removing the flagged images", "",
                  f"The same mixed sets; fastnet trained by the fast recipe ({ep} epochs, seed "
                  f"{rows[0]['recipe']['seed']}) on the mixed set as it is, and again on what is "
                  "left after removing the `ratio·N` highest per-image scores, and after "
                  "removing as many images drawn at random (the control); clean test "
                  "accuracy on the scale's test subset.", "",
                  "| protection | ratio | precision | protected images left | accuracy, mixed "
                  "| accuracy, flagged removed | change | accuracy, as many removed at random |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['protection']} | {r['ratio']} | {r['precision']:.3f} | "
                  f"{r['poisoned_left']:,} of {round(r['ratio'] * r['n']):,} | "
                  f"{r['accuracy_mixed']:.2%} | {r['accuracy_after']:.2%} | "
                  f"{100 * (r['accuracy_after'] - r['accuracy_mixed']):+.2f} pts | "
                  + (f"{r['accuracy_random']:.2%} |" if "accuracy_random" in r
                     else "not measured |") for r in rows]
    return "\n".join(lines) + "\n"


__all__ = ["MIX_SEED", "PROTECTIONS", "SAME_EXCESS", "SETTINGS", "SUBSET_SEED", "after_removal", "finding", "frame", "load", "markdown", "merge_rows", "mismatch", "mixed", "path", "per_dataset", "per_image", "removal_finding", "trained"]
