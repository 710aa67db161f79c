"""Figures follow the house rules: one palette, no colour twice in a figure, the chance line
wherever a title mentions chance, legends beside the data."""
import pytest

from fuselib import plots


def test_no_colour_twice_in_one_figure():
    many = {f"series {i}": [i, i + 1] for i in range(len(plots.PALETTE))}
    fig = plots.lines(many)
    assert len({tr.line.color for tr in fig.data}) == len(many)
    with pytest.raises(ValueError, match="split the figure"):
        plots.bars({**many, "one more": [0, 1]}, ["a", "b"])


def test_a_title_that_mentions_chance_draws_it():
    fig = plots.bars({"FUSE": [10, 20]}, ["no filter", "low-pass 0.25"],
                     title="accuracy (chance: 10%)")
    assert [s.y0 for s in fig.layout.shapes] == [10.0]
    with pytest.raises(ValueError, match="mentions chance"):
        plots.lines({"FUSE": [1, 2]}, title="near chance")
    assert plots.lines({"FUSE": [1, 2]}, title="near chance", hline=10).layout.shapes


def test_legend_beside_the_axes():
    fig = plots.lines({"a": [1, 2, 3], "b": [3, 2, 1]}, title="two lines")
    mfig = plots.to_matplotlib(fig)
    mfig.canvas.draw()
    ax = mfig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1


def test_a_method_has_one_colour_in_every_figure():
    fuse = plots.METHOD_COLOURS["fuse"]
    bars = plots.bars({"clean data": [80, 70], "FUSE": [10, 20]}, ["no filter", "low-pass 0.25"])
    lines = plots.lines({"something else": [1, 2], "the paper's reading": [3, 4]},
                        keys=[None, "fuse"])
    assert bars.data[1].marker.color == fuse == lines.data[1].line.color
    assert bars.data[0].marker.color == plots.METHOD_COLOURS["none"]
    # FUSE made elsewhere is FUSE's colour, unless FUSE itself is in the figure
    assert plots.colours(1, ["fuse@cifar10"]) == [fuse]
    both = plots.colours(2, ["fuse", "fuse@cifar10"])
    assert both[0] == fuse and both[1] != fuse
    assert set(plots.METHOD_COLOURS.values()) <= set(plots.PALETTE)


def test_a_band_is_drawn_beside_its_line():
    fig = plots.lines({"FUSE": [10, 12, 11]}, bands={"FUSE": ([9, 10, 10], [11, 14, 12])},
                      keys=["fuse"])
    assert [tr.fill for tr in fig.data] == ["toself", None]
    mfig = plots.to_matplotlib(fig)
    assert len(mfig.axes[0].patches) == 1 and len(mfig.axes[0].lines) == 1


def test_error_bars_only_where_there_is_a_spread():
    """A bar of one seed (std NaN) gets no error bar in the static figure: a zero-length bar
    with caps would read as a measured spread of 0."""
    fig = plots.bars({"FUSE": [10, 20, 30]}, ["3 seeds", "one seed", "none"],
                     errors={"FUSE": [2.0, float("nan"), float("nan")]})
    ax = plots.to_matplotlib(fig).axes[0]
    drawn = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(drawn) == 1
    segments = drawn[0].lines[2][0].get_segments()
    assert len(segments) == 1 and [p[1] for p in segments[0]] == [8.0, 12.0]


def test_seeded_bars_give_one_seed_no_spread():
    import math

    import pandas as pd

    from fuselib import notebook

    df = pd.DataFrame([{"protection": p, "countermeasure": "none", "arch": None, "seed": s,
                        "accuracy": a / 100, "peak_accuracy": a / 100}
                       for p, s, a in (("fuse", 0, 10.0), ("fuse", 1, 12.0), ("em", 0, 40.0))])
    fig = notebook.seeded_bars(df, ["em", "fuse"], ["none"], "t", "cpu")
    spread = {tr.name: tr.error_y.array[0] for tr in fig.data}
    assert math.isnan(spread["class-wise EM"]) and abs(spread["FUSE"] - 2 ** 0.5) < 1e-9
