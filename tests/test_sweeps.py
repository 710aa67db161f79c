"""Tables made from grid frames: cells over seeds, the two-std check, per-epoch curves."""
import pandas as pd
import pytest

from fuselib.experiments import curves, separated
from fuselib.experiments.sweeps import curves_markdown, seeds_cell, table


def frame(rows):
    return pd.DataFrame(rows, columns=["protection", "countermeasure", "seed", "accuracy",
                                       "peak_accuracy", "curve"])


def test_curves_average_over_seeds_and_find_the_peak():
    df = frame([
        ("fuse", "none", 0, 0.10, 0.30, [0.1, 0.3, 0.1]),
        ("fuse", "none", 1, 0.12, 0.20, [0.1, 0.2, 0.12]),
        ("ar", "none", 0, 0.5, 0.5, [0.2, 0.3, 0.5]),
        ("fuse", "lowpass:0.25", 0, 0.4, 0.4, [0.1, 0.2, 0.4]),
    ])
    tab = curves(df, "none", order=["ar", "fuse", "absent"], labels={"fuse": "FUSE"})
    assert list(tab.index) == ["ar", "FUSE"]
    assert tab.loc["FUSE", 2] == pytest.approx(25.0)
    assert tab.loc["FUSE", 3] == pytest.approx(11.0)
    assert tab.loc["FUSE", "peak epoch"] == 2 and tab.loc["FUSE", "seeds"] == 2
    assert tab.loc["ar", "peak epoch"] == 3
    text = curves_markdown(tab)
    assert "| FUSE | 10.0 | **25.0** | 11.0 | 2 | 2 |" in text
    assert text.splitlines()[0].startswith("| protection | epoch 1 | epoch 2 | epoch 3 |")


def test_curves_of_different_lengths_are_not_averaged_together():
    df = frame([("fuse", "none", 0, 0.1, 0.1, [0.1, 0.1]),
                ("fuse", "none", 1, 0.1, 0.2, [0.1, 0.2, 0.1])])
    tab = curves(df, "none")
    assert tab.loc["fuse", "seeds"] == 1 and tab.loc["fuse", 2] == pytest.approx(20.0)


def test_a_cell_over_seeds_is_mean_and_std():
    assert seeds_cell([0.10], [0.10]) == "10.00%"
    assert seeds_cell([0.10, 0.12, 0.14], [0.2, 0.2, 0.2]) == "12.00% ± 2.00 (20.00% ± 0.00)"
    df = frame([("fuse", "none", s, a, a, [a]) for s, a in enumerate([0.10, 0.12, 0.14])])
    assert table(df).loc["none", "fuse"] == "12.00% ± 2.00"


def test_a_cell_with_an_unusual_number_of_seeds_says_it():
    """A plan part-way through its seeds: the usual count of the cells over seeds goes unsaid,
    the others are named, so a two-seed mean ± std is not read as one of three (a single run
    has no ± and needs no mark)."""
    rows = [(p, "none", s, a, a, [a]) for p in ("em", "fuse", "ar")
            for s, a in enumerate([0.10, 0.12, 0.14])]
    rows += [("pue", "none", s, a, a, [a]) for s, a in enumerate([0.30, 0.32])]
    rows += [("gue", "none", 0, 0.5, 0.5, [0.5])]
    tab = table(frame(rows))
    assert tab.loc["none", "fuse"] == "12.00% ± 2.00"
    assert tab.loc["none", "pue"] == "31.00% ± 1.41 [2 seeds]"
    assert tab.loc["none", "gue"] == "50.00%"
    assert "[" not in table(frame(rows[:9] + rows[-1:])).to_string()  # one count over seeds


def test_separated_needs_two_seeds_and_two_stds():
    rows = [("ref", "none", s, a, a, [a]) for s, a in enumerate([0.10, 0.11, 0.12])]
    rows += [("far", "none", s, a, a, [a]) for s, a in enumerate([0.30, 0.31, 0.32])]
    rows += [("near", "none", s, a, a, [a]) for s, a in enumerate([0.11, 0.12, 0.13])]
    rows += [("one", "none", 0, 0.5, 0.5, [0.5])]
    sep = separated(frame(rows), "ref").set_index("protection")
    assert set(sep.index) == {"far", "near"}
    assert bool(sep.exceeds["far"]) and not bool(sep.exceeds["near"])
    assert sep.difference["far"] == pytest.approx(20.0)


def test_grid_export_ships_each_run_as_it_ends(results_tmp, capsys):
    from fuselib import cli

    measured = results_tmp.parent / "measured"
    assert cli.main(["grid", "random", "--scale", "smoke", "--export"]) == 0
    out = capsys.readouterr().out
    shipped = sorted(p.name for p in measured.glob("*.json"))
    assert len(shipped) == 1 and f"shipped {shipped[0][:-5]}" in out
    assert (measured / "index.csv").read_text().count("\n") == 2  # header + the run
    assert cli.main(["grid", "random", "--scale", "smoke", "--export", "--cached-only"]) == 2
    assert "--export" in capsys.readouterr().err
