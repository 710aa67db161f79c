"""ipywidgets for the notebooks: a cutoff slider with a filter toggle that shows a protected
image, what the filter leaves of it and of its perturbation, the perturbation's spectrum, and
the measured accuracy at that cutoff (looked up, never computed on the fly).

The drawing is a plain function, :func:`cutoff_view`, so it can be tested and reused without a
browser; :func:`cutoff_explorer` wires it to the widgets.
"""
from __future__ import annotations

import numpy as np
import torch

from . import plots, spectral


def filtered(images: torch.Tensor, kind: str, cutoff: float, basis: str = "dct"):
    """uint8 images through the named filter, as the countermeasure of that name does it."""
    from . import countermeasures
    return countermeasures.get(kind, cutoff=cutoff, basis=basis)(images)


def lookup(table, kind: str, cutoff: float):
    """The measured accuracy row nearest to ``cutoff`` for filter ``kind`` in ``table``
    (columns: protection, filter, cutoff, accuracy, ...); None when nothing was measured."""
    if table is None or len(table) == 0:
        return None
    rows = table[table["filter"] == kind]
    if len(rows) == 0:
        return None
    near = rows.iloc[(rows["cutoff"] - cutoff).abs().argsort()]
    best = near["cutoff"].iloc[0]
    return near[near["cutoff"] == best]


def cutoff_view(clean: torch.Tensor, protected: torch.Tensor, kind: str = "lowpass",
                cutoff: float = 0.25, table=None, eps: float = 8 / 255, scale=None,
                basis: str = "dct"):
    """A figure for one image (3, H, W) uint8 pair: protected, filtered, perturbation,
    filtered perturbation, log DCT energy of the perturbation with the kept region; plus the
    accuracy text from ``table`` at the nearest measured cutoff."""
    pair = torch.stack([clean, protected])
    f_clean, f_prot = filtered(pair, kind, cutoff, basis)
    delta = (protected.float() - clean.float()) / 255
    f_delta = (f_prot.float() - f_clean.float()) / 255
    energy = (spectral.dct2(delta) ** 2).sum(0).clamp_min(1e-12).log10()
    keep = spectral.filter_mask(delta.shape[-2:], cutoff, "low" if kind == "lowpass" else "high",
                                basis)
    shown = energy.clone()
    shown[keep <= 0] = energy.min()
    fig = plots.images({f"{kind} {cutoff:.2f}": [
        protected, f_prot, plots.perturbation_image(delta, eps),
        plots.perturbation_image(f_delta, eps)]},
        col_titles=["protected", "filtered", "δ (±ε)", "filtered δ"],
        title=f"{kind} at cutoff {cutoff:.2f}", scale=scale, size=150)
    rows = lookup(table, kind, cutoff)
    text = "no measured accuracy at this filter"
    if rows is not None:
        from .experiments import names

        text = "; ".join(f"{names.protection(r.protection)}: {100 * r.accuracy:.1f}%"
                         for r in rows.itertuples())
        text = f"measured at cutoff {rows['cutoff'].iloc[0]:.2f} → {text}"
    spec = plots.heatmaps({"log10 DCT energy of δ": energy, "what the filter keeps": shown},
                          title="perturbation spectrum (top-left = lowest frequency)",
                          scale=scale)
    return fig, spec, text


def _bundle(fig) -> dict:
    """A plotly figure as display data: the default renderer's (JupyterLab's plotly JSON,
    Colab's HTML), or the plotly JSON where no renderer is set (a plain Python process)."""
    import plotly.io as pio

    return fig._repr_mimebundle_() or pio.renderers["plotly_mimetype"].to_mimebundle(
        fig.to_dict())


def cutoff_explorer(clean: torch.Tensor, protected: torch.Tensor, table=None,
                    cutoffs=None, eps: float = 8 / 255, scale=None):
    """Slider + toggle + image index; returns the widget box (display it in Jupyter)."""
    import ipywidgets as W

    cutoffs = sorted(set(table["cutoff"])) if cutoffs is None and table is not None else \
        list(cutoffs or np.linspace(0.05, 1.0, 20))
    slider = W.SelectionSlider(options=[round(float(c), 3) for c in cutoffs],
                               value=round(float(cutoffs[len(cutoffs) // 2]), 3),
                               description="cutoff", continuous_update=False)
    kind = W.ToggleButtons(options=["lowpass", "highpass"], description="filter")
    index = W.BoundedIntText(value=0, min=0, max=clean.shape[0] - 1, description="image")
    label = W.HTML()
    out = W.Output()

    def redraw(*_):
        fig, spec, text = cutoff_view(clean[index.value], protected[index.value], kind.value,
                                      slider.value, table, eps, scale)
        label.value = f"<b>{text}</b> <i>(scale: {scale})</i>"
        # set the Output widget's state directly rather than capturing with `with out:`, which
        # hangs papermill/nbclient (no frontend to acknowledge the capture); and not with
        # `out.append_display_data(fig)`: IPython's formatter calls a plotly figure's
        # `_ipython_display_`, which shows it in the current cell (the first draw, above the
        # widget) and gives the Output nothing, so a slider move redrew nothing in a browser
        out.outputs = tuple({"output_type": "display_data", "data": _bundle(f),
                             "metadata": {}} for f in (fig, spec))

    for w in (slider, kind, index):
        w.observe(redraw, names="value")
    redraw()
    return W.VBox([W.HBox([slider, kind, index]), label, out])
