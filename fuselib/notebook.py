"""What every notebook does first: check its parameters, seed, pick the device, point the data
search at ``data_root``, and set plotly's renderer so executed notebooks keep their figures.

    env = fuselib.notebook.setup(scale, seed, data_root, device)
"""
from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

from .experiments import SCALES

REPO = "fuselib/fuselib"  # where the project is published (README badges, Colab install)


@dataclass
class Env:
    scale: str
    seed: int
    device: torch.device
    n_train: int | None
    colab: bool

    def __str__(self) -> str:
        n = "all" if self.n_train is None else f"{self.n_train:,}"
        return (f"scale {self.scale!r} ({n} training images) | seed {self.seed} | "
                f"device {self.device} | torch {torch.__version__} | "
                f"{torch.get_num_threads()} CPU threads")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup(scale: str = "ci", seed: int = 0, data_root=None, device=None,
          threads: int | None = None, download=None) -> Env:
    """``download``: fetch CIFAR-10 when it is not found locally (default: only on Colab)."""
    if scale not in SCALES or scale == "smoke":
        raise ValueError(f"scale must be one of {', '.join(s for s in SCALES if s != 'smoke')}"
                         f" (smoke is for grid plumbing checks, not notebooks); got {scale!r}")
    if data_root is not None:
        if not os.path.isdir(data_root):
            raise FileNotFoundError(f"data_root {data_root!r} is not a folder")
        os.environ["FUSELIB_DATA"] = str(data_root)
    if threads:
        torch.set_num_threads(int(threads))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dev = torch.device(device) if device else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    if download or (download is None and in_colab()):
        from . import data
        data.find("cifar10", download=True)
    import plotly.io as pio
    # figures go into the notebook file with their data (plotly.js included once), so they
    # survive papermill and open offline in JupyterLab and classic Jupyter; Colab has its own
    pio.renderers.default = "colab" if in_colab() else "plotly_mimetype+notebook"
    return Env(scale, int(seed), dev, SCALES[scale]["n_train"], in_colab())


def final_peak(final, peak=None, digits: int = 2):
    """A table of accuracies (%) as text, ``"final (peak)"`` when ``peak`` is given; cells not
    measured (NaN) left blank."""
    def cell(f, p=None):
        if f != f:  # NaN
            return ""
        return f"{f:.{digits}f}" if p is None else f"{f:.{digits}f} ({p:.{digits}f})"

    import pandas as pd

    if peak is None:
        return final.map(cell)
    peak = peak.reindex(index=final.index, columns=final.columns)
    return pd.DataFrame([[cell(f, p) for f, p in zip(fr, pr)]
                         for fr, pr in zip(final.to_numpy(), peak.to_numpy())],
                        index=final.index, columns=final.columns)


# --------------------------------------------------------------------------- what a notebook found
def show(text: str) -> None:
    """Show ``text`` as a Markdown output: the finding a result cell leads to, readable in the
    executed notebook without running it."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def static(paths: dict) -> None:
    """Show the PNG :func:`fuselib.plots.save` wrote (``paths`` is what it returned), so the
    figure renders where JavaScript is off (GitHub's notebook view)."""
    from IPython.display import Image, display

    display(Image(filename=str(paths["png"])))


def claim(n: int) -> str:
    """Claim ``n``'s verdict and the numbers that decide it, from the shipped records at the
    best scale measured (:mod:`fuselib.experiments.claims`, as in the README's scorecard)."""
    from .experiments import claims, report

    return claims.verdict(n, report.measured_frame).line()


def best_evidence(plan, scales=("full", "cpu")) -> tuple:
    """A plan's measured runs at the first of ``scales`` where any is recorded (nothing is
    trained): ``(scale, frame, note)``; ``note`` says when it fell back, ``scale`` is None
    where nothing is measured at all."""
    for s in scales:
        df = plan.run(s, cached_only=True) if plan.size(s) else None
        if df is not None and len(df):
            note = ("" if s == scales[0] else f"Nothing of `{plan.name}` is measured at "
                    f"`{scales[0]}` scale yet: the figures show `{s}`.")
            return s, df, note
    return None, None, f"Nothing of `{plan.name}` is measured at {' or '.join(scales)} scale."


def seeded(df, min_seeds: int = 2):
    """The rows of ``df`` whose protection has at least ``min_seeds`` seeds."""
    n = df.groupby("protection").seed.nunique()
    return df[df.protection.map(n) >= min_seeds]


def provenance(df) -> str:
    """How many seeds and which victim a frame's cells read: ``3 seeds · victim fastnet``."""
    from .experiments import names

    n = df.groupby(["protection", "countermeasure"]).seed.nunique()
    seeds = ("one seed" if n.max() == 1 else f"{n.max()} seeds" if n.min() == n.max()
             else f"{n.min()}–{n.max()} seeds")
    archs = sorted({names.arch(a if a == a else None) for a in df.get("arch", [None])})
    return f"{'mean ± std over ' if n.max() > 1 else ''}{seeds} · victim {', '.join(archs)}"


def seeded_bars(df, protections, countermeasures, title: str, scale: str, labels=None):
    """Grouped bars of a frame's final accuracy (%): one bar per protection in its fixed colour
    (:data:`fuselib.plots.METHOD_COLOURS`), one group per countermeasure, error bars one
    standard deviation over seeds, chance dotted; the title gets the seeds and the victim."""
    from . import plots
    from .experiments import claims, names

    cells = claims.cells(df)
    get = {(p, c): x for (p, c, _), x in cells.items()}
    ps = [p for p in protections if any((p, c) in get for c in countermeasures)]
    cms = [c for c in countermeasures if any((p, c) in get for p in ps)]
    name = (labels or {}).get
    nan = float("nan")
    values = {name(p) or names.protection(p): [get[(p, c)].mean if (p, c) in get else nan
                                               for c in cms] for p in ps}
    # a spread only where there are seeds: one seed's bar gets no error bar, not one of 0
    errors = {name(p) or names.protection(p): [
        get[(p, c)].std if (p, c) in get and len(get[(p, c)].finals) > 1 else nan
        for c in cms] for p in ps}
    fig = plots.bars(values, [names.countermeasure(c) for c in cms], errors=errors, keys=ps,
                     title=f"{title} · {provenance(df)} (chance: {claims.CHANCE:g}%)",
                     ylabel="clean test accuracy (%)", scale=scale, yrange=(0, 100))
    fig.update_layout(width=1100, height=480)
    return fig


def curve_bands(df, countermeasure: str, protections, title: str, scale: str, labels=None):
    """Test accuracy after each epoch under ``countermeasure``: each protection's mean over
    seeds in its fixed colour, a band one standard deviation wide, chance dotted."""
    from . import plots
    from .experiments import claims, names

    these = df[df.countermeasure == countermeasure]
    series, bands, keys = {}, {}, []
    name = (labels or {}).get
    for p in protections:
        g = these[these.protection == p]
        if g.empty:
            continue
        length = max(len(c) for c in g.curve)
        cs = np.array([c for c in g.curve if len(c) == length], dtype=float) * 100
        mean, std = cs.mean(axis=0), cs.std(axis=0, ddof=1) if len(cs) > 1 else 0 * cs[0]
        label = name(p) or names.protection(p)
        epochs = list(range(1, length + 1))
        series[label], keys = (epochs, mean.tolist()), keys + [p]
        if len(cs) > 1:
            bands[label] = ((mean - std).tolist(), (mean + std).tolist())
    return plots.lines(series, keys=keys, bands=bands, hline=claims.CHANCE,
                       hline_label="chance", scale=scale, xlabel="epoch",
                       ylabel="clean test accuracy (%)",
                       title=f"{title}, {names.countermeasure(countermeasure)} · "
                             f"{provenance(these)}")


def finding(df, protections=None, countermeasures=None, labels=None, scale=None,
            peak: bool = False) -> str:
    """What a frame of runs shows, in the words of :mod:`fuselib.experiments.claims`: a line per
    countermeasure (and victim, where several) with clean data's accuracy and each
    protection's, grouped by what the rules call it (near chance, protects, in between, undone);
    mean ± std over seeds where several. ``peak``: the peak over epochs instead of the final
    accuracy (what an attacker who stops early keeps)."""
    from .experiments import claims, names

    if df is None or df.empty:
        return f"Nothing measured{f' at `{scale}` scale' if scale else ''} yet."
    # a victim of None (NaN in a frame) is the scale's default network
    cells = {(p, c, None if a != a else a): x.peak if peak else x
             for (p, c, a), x in claims.cells(df).items()}
    name = (labels or {}).get
    one = all(len(x.finals) == 1 for x in cells.values())  # the heading says "one seed" once
    text = (lambda x: f"{x.mean:.2f}%") if one else (lambda x: x.text())
    cms = list(dict.fromkeys(countermeasures or df.countermeasure))
    ps = [p for p in dict.fromkeys(protections or df.protection) if p != "none"]
    archs = list(dict.fromkeys(a for (_, _, a) in cells))
    lines = []
    for a in archs:
        for c in cms:
            here = {p: x for (p, cm, arch), x in cells.items() if cm == c and arch == a}
            if not any(p in here for p in ps):
                continue
            clean = here.get("none")
            groups = {w: [] for w in claims.WORDS}
            for p in ps:
                if p in here:
                    groups[claims.describe(here[p], clean)].append(
                        f"{name(p) or names.protection(p)} {text(here[p])}")
            head = f"clean data {text(clean)}" if clean else "clean data not measured"
            victim = f"{names.arch(a)} · " if len(archs) > 1 else ""
            lines.append(f"- **{victim}{names.countermeasure(c)}** ({head}): " + "; ".join(
                f"*{w}*: {', '.join(g)}" for w, g in groups.items() if g))
    where = f"`{scale}` scale, " if scale else ""
    what = "Peak clean test accuracy over the epochs" if peak else "Final clean test accuracy"
    return (f"{what} ({where}{provenance(df)}; chance {claims.CHANCE:g}%), each protection "
            f"called what the claims' rules call it against clean data under the same filter:"
            f"\n\n" + "\n".join(lines))


def listing(values, lead: str, digits: int = 0, unit: str = "%", labels=None) -> str:
    """``lead: A 93%, B 90%, ...``: a mapping (or Series) of protection specs to numbers, the
    highest first, each named by its display name."""
    from .experiments import names

    name = (labels or {}).get
    items = sorted(((k, float(v)) for k, v in dict(values).items() if v == v),
                   key=lambda kv: -kv[1])
    return f"{lead}: " + ", ".join(f"{name(k) or names.protection(k)} {v:.{digits}f}{unit}"
                                   for k, v in items) + "."


def trend(frame, lead: str, digits: int = 3) -> str:
    """``lead: a 2.301 → 0.052, b ...``: each column's first and last value (a loss history,
    one row an epoch) and where its lowest was."""
    parts = []
    for col in frame.columns:
        s = frame[col].dropna()
        if s.empty:
            continue
        parts.append(f"{col} {s.iloc[0]:.{digits}f} → {s.iloc[-1]:.{digits}f} (lowest "
                     f"{s.min():.{digits}f}, epoch {s.idxmin()})")
    return f"{lead} ({len(frame)} epochs): " + "; ".join(parts) + "."
