"""Figures: plotly builders for the notebooks, and :func:`save`, which writes each figure as
an interactive HTML page (offline: plotly.js is written once beside it) and a static PNG.

Every builder takes the ``scale`` the numbers were measured at and puts it in the title, so a
figure never travels without it. The PNG is drawn by matplotlib from the plotly figure's own
traces (:func:`to_matplotlib`), which works on any machine; plotly's own static export needs a
Chrome that CI does not have.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .utils import atomic_write

# one palette for every figure, and no colour twice in one figure (:func:`colours`)
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
           "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5", "#e7ba52"]


# one colour per method, the same in every figure: a protection's spec -> a colour of PALETTE
# (a variant of FUSE a shade of FUSE's red, clean data blue, the control gray); a series that is
# no method here takes the first colour of PALETTE its figure does not use yet
METHOD_COLOURS = {
    "none": "#1f77b4", "fuse": "#d62728", "fuse:rsm_lowpass=0.5": "#ff9896",
    "fuse:epochs=20": "#843c39", "fuse:fast=True": "#e7ba52", "fuse:rsm=False": "#f7b6d2",
    "fuse:cbg=False": "#c49c94", "fuse:rsm=False,cbg=False": "#7b4173",
    "random": "#7f7f7f", "ar": "#2ca02c", "em": "#ff7f0e",
    "em:mode=sample": "#ffbb78", "em:mode=sample,pgd_steps=5,max_rounds=10": "#ffbb78",
    "pue": "#9467bd", "pue:robust=True": "#c5b0d5", "gue": "#8c564b", "lsp": "#e377c2",
    "ops": "#bcbd22", "cuda": "#17becf", "tap": "#393b79", "rem": "#637939", "dh": "#8c6d31",
    "uc": "#aec7e8", f"uc:eps={16 / 255}": "#9edae5", "pil": "#98df8a", "vtg": "#dbdb8d",
}


def method_colour(key) -> str | None:
    """The fixed colour of a method, by its spec (``"fuse"``; ``"fuse@cifar10"`` is FUSE's) or
    its display name (``"FUSE"``, :mod:`fuselib.experiments.names`); None for anything else."""
    from .experiments import names

    key = str(key)
    if key in METHOD_COLOURS:
        return METHOD_COLOURS[key]
    by_name = {names.protection(s): c for s, c in METHOD_COLOURS.items()}
    if key in by_name:
        return by_name[key]
    base = key.partition("@")[0]
    return METHOD_COLOURS.get(base) if base != key else None


def colours(n: int, keys=None) -> list:
    """``n`` colours of :data:`PALETTE`, each once; more series than colours is an error, not a
    colour used twice. ``keys`` (a spec or display name a series) gives each method its fixed
    colour (:data:`METHOD_COLOURS`) where no earlier series of the figure took it."""
    if n > len(PALETTE):
        raise ValueError(f"{n} series in one figure, {len(PALETTE)} colours: split the figure")
    fixed = [method_colour(k) for k in keys] if keys is not None else [None] * n
    out = []
    for c in fixed:
        out.append(c if c is not None and c not in out else None)
    free = iter([c for c in PALETTE if c not in out])
    return [c if c is not None else next(free) for c in out]


def _rgba(colour: str, alpha: float) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def _guide(fig, title: str, hline, hline_label) -> None:
    """The dotted guide line at ``hline``; a title that mentions chance gets its chance line
    (read from the title, e.g. "chance: 10%", where ``hline`` is not given)."""
    import re

    if hline is None and "chance" in str(title).lower():
        m = re.search(r"chance\W*(\d+(?:\.\d+)?)\s*%", str(title), re.I)
        if m is None:
            raise ValueError(f"title {title!r} mentions chance: pass hline=<the chance level>")
        hline, hline_label = float(m.group(1)), hline_label or "chance"
    if hline is not None:
        fig.add_hline(y=hline, line_dash="dot", line_color="gray",
                      annotation_text=hline_label or "")


def figures_dir() -> Path:
    """``$FUSELIB_FIGURES``, else ``figures/`` of this repository, else ``./figures``."""
    if os.environ.get("FUSELIB_FIGURES"):
        return Path(os.environ["FUSELIB_FIGURES"])
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():
        return repo / "figures"
    return Path("figures")


def _title(text: str, scale: str | None) -> str:
    return f"{text} <span style='font-size:12px'>(scale: {scale})</span>" if scale else text


def _plain(text) -> str:
    import re
    return re.sub(r"<[^>]+>", "", str(text or ""))


# --------------------------------------------------------------------------- builders
def lines(series: dict, x=None, title="", xlabel="", ylabel="", scale=None, markers=True,
          yrange=None, hline=None, hline_label=None, keys=None, bands=None) -> go.Figure:
    """One line per entry of ``series`` (name -> y values, or name -> (x, y)); ``keys``: each
    series' method spec, for its fixed colour (default: the names themselves); ``bands``: the
    same names to ``(low, high)`` values drawn as a shaded band (mean ± std over seeds)."""
    fig = go.Figure()
    keys = list(series) if keys is None else list(keys)
    for colour, (name, ys) in zip(colours(len(series), keys), series.items()):
        xs, ys = ys if isinstance(ys, tuple) else (x if x is not None else
                                                   list(range(1, len(ys) + 1)), ys)
        if bands is not None and name in bands:
            lo, hi = (list(map(float, b)) for b in bands[name])
            fig.add_trace(go.Scatter(x=list(xs) + list(xs)[::-1], y=hi + lo[::-1],
                                     fill="toself", fillcolor=_rgba(colour, 0.18),
                                     line=dict(width=0, color=colour), hoverinfo="skip",
                                     showlegend=False, name=f"{name} ± std"))
        fig.add_trace(go.Scatter(x=list(xs), y=list(ys), name=str(name),
                                 mode="lines+markers" if markers else "lines",
                                 line=dict(color=colour)))
    _guide(fig, title, hline, hline_label)
    fig.update_layout(title=_title(title, scale), xaxis_title=xlabel, yaxis_title=ylabel,
                      template="plotly_white", legend=dict(font=dict(size=10)))
    if yrange:
        fig.update_yaxes(range=list(yrange))
    return fig


def bars(table: dict, categories, title="", ylabel="", scale=None, yrange=None, errors=None,
         hline=None, hline_label=None, keys=None) -> go.Figure:
    """Grouped bars: ``table`` maps a group name to one value per category; ``errors`` the same
    names to error-bar half-lengths (a standard deviation over seeds; NaN: none drawn);
    ``hline`` a dotted guide line (chance, say); ``keys`` each group's method spec, for its
    fixed colour (default: the names themselves)."""
    fig = go.Figure()
    keys = list(table) if keys is None else list(keys)
    for colour, (name, values) in zip(colours(len(table), keys), table.items()):
        err = None
        if errors is not None and name in errors:
            err = dict(type="data", array=[float(e) for e in errors[name]], visible=True)
        fig.add_trace(go.Bar(x=list(categories), y=list(values), name=str(name),
                             marker_color=colour, error_y=err))
    _guide(fig, title, hline, hline_label)
    fig.update_layout(title=_title(title, scale), yaxis_title=ylabel, barmode="group",
                      template="plotly_white")
    if yrange:
        fig.update_yaxes(range=list(yrange))
    return fig


def _to_hwc(img) -> np.ndarray:
    a = img.detach().cpu().numpy() if hasattr(img, "detach") else np.asarray(img)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return a


def images(rows: dict, col_titles=None, title="", scale=None, size=110) -> go.Figure:
    """A grid of images: ``rows`` maps a row name to a list of uint8 images (3, H, W)."""
    names = list(rows)
    ncols = max(len(v) for v in rows.values())
    titles = []
    for r in names:
        for c in range(ncols):
            titles.append(f"{r}" + (f" · {col_titles[c]}" if col_titles else "") if c == 0
                          else (col_titles[c] if col_titles else ""))
    fig = make_subplots(rows=len(names), cols=ncols, subplot_titles=titles,
                        horizontal_spacing=0.01, vertical_spacing=0.08)
    for i, r in enumerate(names):
        for j, img in enumerate(rows[r]):
            a = _to_hwc(img).astype(np.uint8)
            fig.add_trace(go.Image(z=a, hoverinfo="skip"), row=i + 1, col=j + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(title=_title(title, scale), width=max(400, size * ncols + 80),
                      height=size * len(names) + 110, margin=dict(l=10, r=10, t=80, b=10))
    return fig


def perturbation_image(delta, eps: float = 8 / 255) -> np.ndarray:
    """A perturbation (float, 3×H×W, in [−ε, ε]) as a viewable uint8 image (gray = 0)."""
    d = delta.detach().cpu().float().numpy() if hasattr(delta, "detach") else np.asarray(delta)
    return np.clip((d / (2 * eps) + 0.5) * 255, 0, 255).round().astype(np.uint8)


def heatmaps(maps: dict, title="", scale=None, colorscale="Viridis", zlabel="") -> go.Figure:
    """Side-by-side heatmaps (name -> 2-D array), e.g. log DCT energy of perturbations."""
    names = list(maps)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names,
                        horizontal_spacing=0.04)
    zs = [np.asarray(m.detach().cpu() if hasattr(m, "detach") else m, dtype=float)
          for m in maps.values()]
    lo, hi = min(z.min() for z in zs), max(z.max() for z in zs)
    for j, z in enumerate(zs):
        fig.add_trace(go.Heatmap(z=z, zmin=lo, zmax=hi, colorscale=colorscale,
                                 showscale=j == len(zs) - 1,
                                 colorbar=dict(title=zlabel)), row=1, col=j + 1)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(title=_title(title, scale), template="plotly_white",
                      width=max(420, 190 * len(names) + 120), height=300,
                      margin=dict(t=80))
    return fig


def table(df, title="", scale=None, fmt="{:.2f}") -> go.Figure:
    """A DataFrame as a plotly table (index included)."""
    d = df.reset_index()
    cells = [[fmt.format(v) if isinstance(v, (float, np.floating)) else str(v)
              for v in d[c]] for c in d.columns]
    fig = go.Figure(go.Table(header=dict(values=[str(c) for c in d.columns]),
                             cells=dict(values=cells)))
    fig.update_layout(title=_title(title, scale), height=80 + 28 * (len(d) + 1))
    return fig


# --------------------------------------------------------------------------- saving
def _axes_for(mfig, layout, xref: str, yref: str, cache: dict):
    key = (xref, yref)
    if key not in cache:
        xa = layout[("xaxis" + xref[1:]) if xref != "x" else "xaxis"]
        ya = layout[("yaxis" + yref[1:]) if yref != "y" else "yaxis"]
        x0, x1 = xa.domain or (0, 1)
        y0, y1 = ya.domain or (0, 1)
        left, bottom, w, h = 0.08 + 0.82 * x0, 0.1 + 0.76 * y0, 0.82 * (x1 - x0), 0.76 * (y1 - y0)
        ax = mfig.add_axes([left, bottom, w, h])
        if xa.title and xa.title.text:
            ax.set_xlabel(_plain(xa.title.text))
        if ya.title and ya.title.text:
            ax.set_ylabel(_plain(ya.title.text))
        if ya.range is not None:
            ax.set_ylim(*ya.range)
        if xa.visible is False:
            ax.set_xticks([])
        if ya.visible is False:
            ax.set_yticks([])
        cache[key] = ax
    return cache[key]


def to_matplotlib(fig: go.Figure):
    """A matplotlib rendering of a plotly figure made by the builders above (scatter, bar,
    heatmap, image and table traces; subplot domains and titles kept)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    layout = fig.layout
    width = (layout.width or 800) / 100
    height = (layout.height or 450) / 100
    mfig = plt.figure(figsize=(width, height), dpi=100)
    axes: dict = {}
    bar_groups: dict = {}
    for tr in fig.data:
        if tr.type == "bar":
            bar_groups.setdefault((tr.xaxis or "x", tr.yaxis or "y"), []).append(tr)
    for tr in fig.data:
        if tr.type == "table":
            ax = mfig.add_axes([0.02, 0.02, 0.96, 0.8])
            ax.axis("off")
            cols = list(zip(*tr.cells.values))
            t = ax.table(cellText=[list(r) for r in cols], colLabels=list(tr.header.values),
                         loc="upper center")
            t.auto_set_font_size(False)
            t.set_fontsize(8)
            continue
        ax = _axes_for(mfig, layout, tr.xaxis or "x", tr.yaxis or "y", axes)
        if tr.type == "scatter" and tr.fill == "toself":  # a band: mean ± std
            ax.fill(list(tr.x), list(tr.y), color=tr.line.color, alpha=0.18, lw=0)
        elif tr.type == "scatter":
            style = "-o" if tr.mode and "markers" in tr.mode else "-"
            color = tr.line.color if tr.line and tr.line.color else None
            ax.plot(list(tr.x), list(tr.y), style, label=tr.name, color=color, markersize=3)
        elif tr.type == "bar":
            group = bar_groups[(tr.xaxis or "x", tr.yaxis or "y")]
            k, n = group.index(tr), len(group)
            xs = np.arange(len(tr.x))
            w = 0.8 / n
            err = tr.error_y.array if tr.error_y and tr.error_y.array is not None else None
            at = xs - 0.4 + w * (k + 0.5)
            ax.bar(at, list(tr.y), width=w, label=tr.name,
                   color=tr.marker.color if tr.marker else None)
            if err is not None:  # an error bar only where there is a spread (one seed: none)
                e, y = np.asarray(err, float), np.asarray(tr.y, float)
                ok = np.isfinite(e) & np.isfinite(y)
                if ok.any():
                    ax.errorbar(at[ok], y[ok], yerr=e[ok], fmt="none", ecolor="black",
                                capsize=2, lw=1)
            ax.set_xticks(xs)
            labels = [str(c) for c in tr.x]
            crowded = sum(map(len, labels)) > 60  # long names side by side overlap: slant them
            ax.set_xticklabels(labels, fontsize=8, rotation=40 if crowded else 0,
                               ha="right" if crowded else "center")
        elif tr.type == "heatmap":
            ax.imshow(np.asarray(tr.z, dtype=float), vmin=tr.zmin, vmax=tr.zmax, cmap="viridis")
            ax.set_xticks([])
            ax.set_yticks([])
        elif tr.type == "image":
            ax.imshow(np.asarray(tr.z, dtype=np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            raise ValueError(f"to_matplotlib: trace type {tr.type!r} is not supported")
    for shape in layout.shapes or ():  # horizontal guide lines (add_hline)
        if shape.type == "line" and shape.y0 == shape.y1 and ("x", "y") in axes:
            axes[("x", "y")].axhline(shape.y0, ls=":", color="gray")
    for ax in axes.values():
        if ax.get_legend_handles_labels()[0] and len(fig.data) > 1:
            # beside the axes, never over the data (savefig's tight box keeps it in)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)
    for ann in layout.annotations or ():  # subplot titles
        if ann.xref == "paper" and ann.yref == "paper" and ann.text:
            mfig.text(0.08 + 0.82 * ann.x, 0.1 + 0.76 * ann.y + 0.01, _plain(ann.text),
                      ha="center", va="bottom", fontsize=7)
    if layout.title and layout.title.text:
        mfig.suptitle(_plain(layout.title.text), fontsize=11)
    return mfig


def save(fig: go.Figure, name: str, folder=None, png: bool = True) -> dict:
    """Write ``<folder>/<name>.html`` (plotly.js beside it, so it opens offline) and
    ``<name>.png``; each through a temporary name, then renamed. Returns the paths."""
    import matplotlib.pyplot as plt

    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"a figure name must be a plain file stem, got {name!r}")
    folder = Path(folder) if folder is not None else figures_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    html = folder / f"{name}.html"
    with atomic_write(html, suffix=".html") as tmp:
        fig.write_html(str(tmp), include_plotlyjs="directory", full_html=True)
    out["html"] = html
    if png:
        mfig = to_matplotlib(fig)
        path = folder / f"{name}.png"
        with atomic_write(path, suffix=".png") as tmp:
            mfig.savefig(tmp, dpi=100, bbox_inches="tight")  # slanted labels stay in
        plt.close(mfig)
        out["png"] = path
    return out


def audit_figure(report: dict, path) -> Path:
    """The PNG of a :func:`fuselib.experiments.audit.run` report: clean test accuracy after
    each countermeasure (chance dotted) and, with a clean reference, where the perturbation's
    energy is (radial DCT bands, beside white noise's)."""
    import matplotlib
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from .experiments.names import countermeasure as countermeasure_name

    rows, prof = report["rows"], report["profile"]
    mfig, axes = plt.subplots(1, 2 if prof else 1, figsize=(11 if prof else 7, 4),
                              gridspec_kw={"width_ratios": [3, 1.3]} if prof else None,
                              squeeze=False)
    ax = axes[0][0]
    xs = np.arange(len(rows))
    ax.bar(xs, [100 * r["accuracy"] for r in rows], color=PALETTE[0], label="final")
    ax.plot(xs, [100 * r["peak_accuracy"] for r in rows], "_", color=PALETTE[1], ms=14,
            label="peak over epochs")
    ax.axhline(100 * report["chance"], ls=":", color="gray", label="chance")
    ax.set_xticks(xs)
    ax.set_xlim(-0.75, max(len(rows), 4) - 0.25)  # a few bars keep a bar's width
    ax.set_xticklabels([countermeasure_name(r["countermeasure"]) for r in rows], rotation=40,
                       ha="right", fontsize=8)
    ax.set_ylabel("clean test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.01), ncol=3, borderaxespad=0)
    if prof:
        bx = axes[0][1]
        names = ["low", "mid", "high"] if len(prof["fractions"]) == 3 else [
            f"{lo:.2f}" for lo in prof["bands"][:-1]]
        bxs = np.arange(len(names))
        bx.bar(bxs - 0.2, [100 * f for f in prof["fractions"]], 0.4, color=PALETTE[2],
               label="poisoned − clean")
        bx.bar(bxs + 0.2, [100 * f for f in prof["white_noise"]], 0.4, color=PALETTE[7],
               label="white noise")
        bx.set_xticks(bxs)
        bx.set_xticklabels(names)
        bx.set_ylabel("share of the energy (%)")
        bx.legend(fontsize=7, title="DCT radial bands", title_fontsize=8, loc="lower left",
                  bbox_to_anchor=(0, 1.01), borderaxespad=0)
    d = report["distance"]
    over = (f"; {d['n_over']} of {report['n']} images over the L∞ budget "
            f"{d['budget_levels']}/255" if d else "")
    mfig.suptitle(f"audit of {Path(report['path']).name}: {report['n']} images, tested on "
                  f"{report['test']} (scale: {report['scale']}){over}", fontsize=10)
    mfig.tight_layout()
    path = Path(path)
    with atomic_write(path, suffix=".png") as tmp:
        mfig.savefig(tmp, dpi=100)
    plt.close(mfig)
    return path
