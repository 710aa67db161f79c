"""Sweeps and tables: many runs as one tidy DataFrame, and that frame as a table of cells.

:func:`grid` runs (or, with ``cached_only=True``, reads) every combination of protections ×
countermeasures × architectures × seeds; :func:`table` pivots it into the tables the README,
RESULTS.md and ``fuselib grid`` print (final accuracy, the peak in brackets where higher;
mean ± std over seeds when there are several).
"""
from __future__ import annotations

from .. import countermeasures as _countermeasures
from .runner import fit_key, run

COLUMNS = ["protection", "countermeasure", "arch", "trainer", "scale", "seed", "accuracy",
           "peak_accuracy", "peak_epoch", "seconds", "cached", "measured", "curve", "key",
           "created", "host"]


def parse_worker(text: str) -> tuple:
    """``"2/3"`` -> ``(2, 3)``: worker 2 of 3 (counted from 1)."""
    i, slash, n = str(text).partition("/")
    try:
        worker = (int(i), int(n))
    except ValueError:
        worker = None
    if not slash or worker is None or not 1 <= worker[0] <= worker[1]:
        raise ValueError(f"worker {text!r}: write I/N with 1 <= I <= N, e.g. 1/2")
    return worker


def fit_keys(protections, seeds, **common) -> dict:
    """``{(protection's index, seed): the key of the fit its runs use}``, in grid order
    (countermeasures and classifiers share a fit)."""
    where = {k: common[k] for k in ("scale", "dataset", "n_train", "data_root") if k in common}
    return {(i, s): fit_key(p, seed=s, **where) for i, p in enumerate(protections)
            for s in seeds}


def fits_of(protections, seeds, **common) -> list:
    """The fit keys the runs of ``protections`` × ``seeds`` use, each once, seed by seed (every
    protection's seed-0 fit, then every seed-1 fit, ...): the order workers deal them in.

    Seed by seed, so that a protection's fits go to different workers at successive seeds
    (when the workers do not divide the protections) and the costlier protections' runs do
    not all fall to one worker."""
    keys = fit_keys(protections, seeds, **common)
    return list(dict.fromkeys(keys[i, s] for s in seeds for i in range(len(protections))))


def share(fits, worker) -> set:
    """The fits worker ``(i, n)`` runs when ``n`` workers share ``fits`` (an ordered list, e.g.
    :func:`fits_of`): every ``n``-th from the ``i``-th on, so each fit is made by one worker
    alone, together with every run that uses it."""
    i, n = worker
    return set(list(fits)[i - 1::n])


def cells(protections, countermeasures=("none",), archs=(None,), seeds=(0,), worker=None,
          fits=None, **common):
    """The runs of a :func:`grid`, in the order it makes them: ``(protection, countermeasure,
    arch, seed)``, only worker ``(i, n)``'s share when ``worker`` is given (see :func:`grid`)."""
    if isinstance(countermeasures, str):
        countermeasures = _countermeasures.SUITE if countermeasures == "all" else (countermeasures,)
    if isinstance(protections, str):
        protections = (protections,)
    skip = set()  # (protection's index, seed) of the runs left to the other workers
    if worker is not None:
        keys = fit_keys(protections, seeds, **common)
        mine = share(fits if fits is not None else fits_of(protections, seeds, **common), worker)
        skip = {run_of for run_of, key in keys.items() if key not in mine}
    for i, p in enumerate(protections):
        for c in countermeasures:
            for a in archs:
                for s in seeds:
                    if (i, s) not in skip:
                        yield p, c, a, s


def grid(protections=("none",), countermeasures=("none",), archs=(None,), seeds=(0,),
         on_run=None, worker=None, fits=None, **common):
    """Every combination of the lists, as one tidy DataFrame (one row per run).

    ``countermeasures="all"`` is the whole suite, :data:`fuselib.countermeasures.SUITE`;
    ``cached_only=True`` returns only the runs already in the cache (nothing is trained);
    ``on_run(record)`` is called after each run (e.g. to ship it at once).

    ``worker=(i, n)``: only this worker's share of the runs, so that ``n`` processes (one a
    core, say) run one grid together through the shared cache; runs are dealt out by the fit
    they use (:func:`share`), over ``fits`` (the ordered fit keys to deal; default the grid's
    own, :func:`fits_of`: a plan passes all of its blocks' so that its blocks agree)."""
    import pandas as pd

    rows = []
    for p, c, a, s in cells(protections, countermeasures, archs, seeds, worker, fits,
                            **common):
        r = run(protection=p, countermeasure=c, arch=a, seed=s, **common)
        if r is None:  # cached_only and not measured yet
            continue
        if on_run is not None:
            on_run(r)
        rows.append({
            "protection": p if isinstance(p, str) else p.name,
            "countermeasure": c if isinstance(c, str) else c.name,
            "arch": r["recipe"]["arch"], "trainer": r["config"]["trainer"],
            "scale": r["config"]["scale"], "seed": s,
            "accuracy": r["accuracy"], "peak_accuracy": r["peak_accuracy"],
            "peak_epoch": r["peak_epoch"], "seconds": r["seconds"],
            "cached": r["cached"], "measured": r.get("measured", False),
            "curve": r["curve"], "key": r["key"],
            "created": r.get("created"), "host": r.get("host"),
        })
    return pd.DataFrame(rows, columns=None if rows else COLUMNS)


def cutoff_of(countermeasure: str) -> float:
    """The cutoff of a ``"lowpass:0.25"``-style countermeasure name; 1.0 for ``"none"``."""
    return 1.0 if countermeasure == "none" else float(countermeasure.split(":")[1])


def cutoff_sweep(protections, cutoffs, filter: str = "lowpass", **common):
    """:func:`grid` over no filter and ``filter:c`` for every cutoff ``c``, with a ``cutoff``
    column (1.0 = no filter)."""
    sweep = grid(protections, ["none"] + [f"{filter}:{c}" for c in cutoffs], **common)
    sweep["cutoff"] = [cutoff_of(c) for c in sweep.countermeasure]
    return sweep


def by_cutoff(sweep, protections, value: str = "accuracy"):
    """A cutoff × protection table of ``value`` in percent, from :func:`cutoff_sweep`."""
    return sweep.pivot(index="cutoff", columns="protection", values=value)[list(protections)] * 100


# --------------------------------------------------------------------------- tables of cells
def cell(final: float, peak: float, markdown: bool = True) -> str:
    """One run as text: final accuracy, the peak in brackets (where higher, in Markdown)."""
    if markdown:
        return f"{final:.2%}" + (f" ({peak:.2%})" if peak > final else "")
    return f"{final:6.2%} ({peak:6.2%})"


def seeds_cell(finals, peaks) -> str:
    """Several seeds of one run as ``mean ± std`` of the final accuracy (peak likewise, in
    brackets where its mean is higher), in points; one seed as :func:`cell`."""
    import statistics

    finals, peaks = list(finals), list(peaks)
    if len(finals) == 1:
        return cell(finals[0], peaks[0])
    f, p = statistics.mean(finals), statistics.mean(peaks)
    text = f"{f:.2%} ± {statistics.stdev(finals) * 100:.2f}"
    if p > f:
        text += f" ({p:.2%} ± {statistics.stdev(peaks) * 100:.2f})"
    return text


def table(df, rows: str = "countermeasure", cols: str = "protection", markdown: bool = True,
          row_order=None, col_order=None, labels=None):
    """The cells of a :func:`grid` frame pivoted to ``rows`` × ``cols`` (strings; blank = not
    measured), in the order the lists were given. ``labels``: ``(row names, column names)``,
    dicts that rename them.

    A single run reads as one (no ± std); a cell over several seeds but fewer than the most any
    cell has (a plan part-way through its seeds) says how many, ``"[2 seeds]"``: a mean ± std
    over two seeds and one over three look alike."""
    import pandas as pd

    cells, counts = {}, {}
    for (r, c), g in df.groupby([rows, cols], sort=False):
        g = g.sort_values("seed")
        counts[(r, c)] = len(g)
        cells[(r, c)] = (seeds_cell(g.accuracy, g.peak_accuracy) if markdown or len(g) > 1
                         else cell(g.accuracy.iloc[0], g.peak_accuracy.iloc[0], markdown))
    most = max(counts.values(), default=0)
    for k, n in counts.items():
        if 1 < n < most:
            cells[k] = f"{cells[k]} [{n} seeds]"
    row_order = list(row_order or dict.fromkeys(df[rows]))
    col_order = list(col_order or dict.fromkeys(df[cols]))
    out = pd.DataFrame([[cells.get((r, c), "") for c in col_order] for r in row_order],
                       index=row_order, columns=col_order)
    out.index.name, out.columns.name = rows, cols
    if labels:
        out = out.rename(index=labels[0] or {}, columns=labels[1] or {})
    return out


def separated(df, reference: str, by: str = "countermeasure", what: str = "protection",
              value: str = "accuracy"):
    """Which differences from ``reference`` exceed two standard deviations over seeds.

    For every ``what`` (a protection, say) other than ``reference`` and every ``by`` (a
    countermeasure): the two means over seeds, their difference in points, and the larger of
    the two seed standard deviations; ``exceeds`` when |difference| > 2 × that std. Cells with
    fewer than two seeds on either side are left out (one seed gives no spread to judge by)."""
    import pandas as pd

    rows = []
    ref = df[df[what] == reference]
    for (w, b), g in df[df[what] != reference].groupby([what, by], sort=False):
        r = ref[ref[by] == b]
        if len(g) < 2 or len(r) < 2:
            continue
        diff = (g[value].mean() - r[value].mean()) * 100
        std = max(g[value].std(), r[value].std()) * 100
        rows.append({what: w, by: b, "mean": g[value].mean() * 100,
                     "reference mean": r[value].mean() * 100, "difference": diff,
                     "larger std": std, "seeds": min(len(g), len(r)),
                     "exceeds": abs(diff) > 2 * std})
    return pd.DataFrame(rows, columns=[what, by, "mean", "reference mean", "difference",
                                       "larger std", "seeds", "exceeds"])


def curves(df, countermeasure: str = "none", order=None, labels=None):
    """The test accuracy after every epoch (percent, mean over seeds) of each protection's runs
    under ``countermeasure``: protection × epoch, plus the epoch of the mean curve's peak and
    how many seeds it averages (the paper's claim 6: prior UEs peak early or recover after a
    filter; FUSE should stay low throughout). Runs with curves of different lengths are not
    averaged together: the longest wins."""
    import numpy as np
    import pandas as pd

    rows = {}
    for p, g in df[df.countermeasure == countermeasure].groupby("protection", sort=False):
        length = max(len(c) for c in g.curve)
        cs = np.array([c for c in g.curve if len(c) == length], dtype=float) * 100
        mean = cs.mean(axis=0)
        rows[p] = {**{e + 1: mean[e] for e in range(length)},
                   "peak epoch": int(mean.argmax()) + 1, "seeds": len(cs)}
    order = [p for p in (order or rows) if p in rows]
    out = pd.DataFrame([rows[p] for p in order], index=order)
    out.index.name = "protection"
    if labels:
        out = out.rename(index=labels)
    return out


def curves_markdown(tab) -> str:
    """:func:`curves` as Markdown: every epoch's accuracy to one decimal, the peak in bold."""
    lines = [f"| {tab.index.name} | " + " | ".join(
        f"epoch {c}" if isinstance(c, int) else str(c) for c in tab.columns) + " |",
        "| --- " * (len(tab.columns) + 1) + "|"]
    for name, r in tab.iterrows():
        peak = int(r["peak epoch"])
        cells = [(f"**{v:.1f}**" if c == peak else f"{v:.1f}") if isinstance(c, int)
                 else "" if v != v else str(int(v)) for c, v in r.items()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(tab) -> str:
    """A :func:`table` as a Markdown table (its index name heads the first column)."""
    lines = [f"| {tab.index.name} | " + " | ".join(map(str, tab.columns)) + " |",
             "| --- " * (len(tab.columns) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in tab.iterrows()]
    return "\n".join(lines)
