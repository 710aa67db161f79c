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
