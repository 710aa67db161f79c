"""The claims' verdicts follow their rules: from records made up here, not the shipped ones."""
from functools import partial

import pandas as pd

from fuselib.experiments import claims

JPEG = "jpeg:10+lowpass:0.25"


def frame_of(rows, at="full"):
    """A ``frame(plan, scale)`` that knows ``rows`` (protection, countermeasure, seed, final %)
    for plan ``main_table`` at scale ``at`` and nothing else."""
    df = pd.DataFrame([{"protection": p, "countermeasure": c, "arch": "fastnet", "seed": s,
                        "accuracy": a / 100, "peak_accuracy": a / 100} for p, c, s, a in rows])

    def frame(plan, scale):
        return df if plan.name == "main_table" and scale == at else df.iloc[0:0]
    return partial(claims.evidence, frame=frame)


def test_near_chance_under_jpeg_then_lowpass_holds_or_not():
    clean = [("none", JPEG, s, 74 + s / 10) for s in range(3)]
    held = claims.claim4(frame_of(clean + [("fuse", JPEG, s, 12 + s) for s in range(3)]))
    assert held.verdict == "holds" and "13.00% ± 1.00" in held.numbers, held
    assert "`full`, 3 seeds" in held.numbers and not held.partial
    lost = claims.claim4(frame_of(clean + [("fuse", JPEG, s, 62 + s) for s in range(3)]))
    assert lost.verdict == "does not hold"


def test_missing_runs_say_how_much_is_measured():
    part = claims.claim4(frame_of([("none", JPEG, 0, 74.0), ("fuse", JPEG, 0, 12.0)]))
    assert part.partial == "measured in part: 2 of 6 runs" and "one seed" in part.numbers
    assert claims.claim4(frame_of([])).verdict == "not measured"
    assert claims.evidence("no_such_plan", frame=None).measured == 0


def test_a_gap_within_the_spread_is_no_difference():
    wide = claims.Cell((10.0, 20.0, 30.0), (10.0, 20.0, 30.0))
    narrow = claims.Cell((35.0, 35.5, 36.0), (35.0, 35.5, 36.0))
    assert not claims.below(wide, narrow)  # 15 points apart, std 10
    assert claims.below(claims.Cell((20.0, 20.5, 21.0), ()), narrow)
    assert claims.near_chance(claims.Cell((19.0,), ()), None)
    assert not claims.near_chance(claims.Cell((21.0,), ()), None)


def test_networks_are_read_from_the_victims_plans():
    """Claim 3 reads the paper's networks where their records are; nothing: not measured."""
    rows = [("none", "none", "resnet18", s, 90.0 + s) for s in range(3)]
    rows += [("fuse", "none", "resnet18", s, 10.0 + s) for s in range(3)]
    df = pd.DataFrame([{"protection": p, "countermeasure": c, "arch": a, "seed": s,
                        "accuracy": v / 100, "peak_accuracy": v / 100} for p, c, a, s, v in rows])

    def frame(plan, scale):
        return df if plan.name == "victims" and scale == "cpu" else df.iloc[0:0]
    v = claims.claim3(partial(claims.evidence, frame=frame))
    assert "ResNet-18 no filter 11.00% ± 1.00" in v.numbers, v.numbers
    assert v.verdict == "holds in part" and "CIFAR-10: not measured" in v.numbers
    assert v.partial.startswith("measured in part: 6 of ")
    nothing = claims.claim3(partial(claims.evidence, frame=lambda plan, scale: df.iloc[0:0]))
    assert nothing.verdict == "not measured"
    # a FUSE cell whose clean cell is not measured yet is named, not judged, and does not
    # hide the cells that are judged
    more = pd.concat([df, pd.DataFrame([{"protection": "fuse", "countermeasure": "lowpass:0.25",
                                         "arch": "resnet18", "seed": 0, "accuracy": 0.3,
                                         "peak_accuracy": 0.3}])])
    v = claims.claim3(partial(claims.evidence, frame=lambda plan, scale: more
                              if plan.name == "victims" and scale == "cpu" else more.iloc[0:0]))
    assert "ResNet-18 no filter 11.00% ± 1.00" in v.numbers, v.numbers
    assert "without clean data under the same filter yet: ResNet-18 low-pass 0.25 30.00%" \
        in v.numbers, v.numbers


def test_a_cell_is_called_what_the_rules_call_it():
    clean = claims.Cell((80.0, 80.5, 79.5), (80.0,) * 3)
    cell = lambda *xs: claims.Cell(xs, xs)  # noqa: E731
    assert claims.describe(cell(11.0, 12.0, 13.0), clean) == "near chance"
    assert claims.describe(cell(40.0, 41.0, 42.0), clean) == "protects"
    assert claims.describe(cell(72.0, 73.0, 74.0), clean) == "undone"
    assert claims.describe(cell(65.0, 66.0, 67.0), clean) == "in between"
    assert claims.describe(cell(40.0), None) == "in between"


def test_a_cell_over_fewer_seeds_than_its_neighbours_says_how_many():
    rows = [("fuse", "none", s, 10.0 + s) for s in range(3)]
    rows += [("fuse", "lowpass:0.25", s, 20.0 + s) for s in range(2)]
    rows += [("none", "lowpass:0.25", 0, 60.0)]
    df = pd.DataFrame([{"protection": p, "countermeasure": c, "arch": None, "seed": s,
                        "accuracy": a / 100, "peak_accuracy": a / 100} for p, c, s, a in rows])
    got = {k[:2]: v.text() for k, v in claims.cells(df).items()}
    assert got[("fuse", "none")] == "11.00% ± 1.00"
    assert got[("fuse", "lowpass:0.25")] == "20.50% ± 0.71 (2 seeds)"
    assert got[("none", "lowpass:0.25")] == "60.00% (one seed)"


def test_a_notebook_says_what_a_frame_shows():
    from fuselib import notebook

    rows = [(p, c, s, a + s) for p, a in (("none", 80), ("fuse", 11), ("ar", 75))
            for c in ("none", "lowpass:0.25") for s in range(3)]
    df = pd.DataFrame([{"protection": p, "countermeasure": c, "arch": None, "seed": s,
                        "accuracy": a / 100, "peak_accuracy": a / 100} for p, c, s, a in rows])
    text = notebook.finding(df, scale="full")
    assert "`full` scale, mean ± std over 3 seeds · victim fastnet" in text
    assert ("- **low-pass 0.25** (clean data 81.00% ± 1.00): *near chance*: FUSE 12.00% ± 1.00; "
            "*undone*: AR 76.00% ± 1.00") in text
    assert notebook.finding(df.iloc[:0], scale="cpu") == "Nothing measured at `cpu` scale yet."
    one = notebook.finding(df[df.seed == 0])
    assert "(one seed · victim fastnet; chance 10%)" in one
    assert "*near chance*: FUSE 11.00%" in one and "(one seed)" not in one


def test_victim_findings_judge_what_is_measured_and_name_what_is_not():
    """On ResNet-18, seed 0 of FUSE, class-wise EM and clean data unfiltered: the findings are
    judged on that cell "so far", name the filters not measured yet; a finding with none of its
    cells measured says how many runs are."""
    r18 = pd.DataFrame([{"protection": p, "countermeasure": c, "arch": None, "seed": 0,
                         "accuracy": a / 100, "peak_accuracy": a / 100}
                        for p, c, a in (("none", "none", 72.0), ("fuse", "none", 10.2),
                                        ("em", "none", 38.2), ("fuse", "lowpass:0.25", 20.5))])

    def frame(plan, scale):
        return r18 if plan.name == "victims" else r18.iloc[0:0]

    near, vs_em, prior, _ = claims.victim_findings(frame, "cpu")
    r18_part = lambda line: line.split("ResNet-18: ")[1]  # noqa: E731
    assert r18_part(near).startswith("holds so far (worst no filter 10.20% (one seed)")
    # each filter not judged yet names the cells it lacks (FUSE's low-pass 0.25 is measured)
    assert ("not measured yet: low-pass 0.25 (clean data), low-pass 0.125 (FUSE, clean data)"
            in near)
    assert r18_part(vs_em).startswith("apart under no filter so far")
    assert ("not measured yet: low-pass 0.25 (class-wise EM), low-pass 0.125 (FUSE, "
            "class-wise EM)") in vs_em
    assert "fastnet: not measured (0 of" in vs_em
    assert r18_part(prior).startswith("not measured (4 of 45 runs)")
