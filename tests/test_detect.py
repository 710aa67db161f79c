"""Shortcut detection (fuselib.experiments.detect, `fuselib detect`): a class-wise pattern is
flagged and clean data is not, planted poisons rank first per image, bad input fails in one line
before any work."""
import csv
import json

import pytest
import torch

from fuselib import poisons
from fuselib.cli import main
from fuselib.experiments import detect as D

N = 600  # small sets: a detection takes about a second


@pytest.fixture(scope="module")
def clean():
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    return fuselib.data.subset(x, y, N, 0)


def classwise(x, y, mask=None, seed=0):
    """A random ±8/255 pattern per class added to the images where ``mask`` (all by default)."""
    pattern = (torch.randint(0, 2, (10, *x.shape[1:]), generator=torch.Generator().manual_seed(
        seed)) * 16 - 8)
    out = (x.int() + pattern[y]).clamp(0, 255).to(torch.uint8)
    if mask is not None:
        out = torch.where(mask.view(-1, 1, 1, 1), out, x)
    return out


def test_classwise_pattern_flagged_clean_not(clean):
    x, y = clean
    ok = D.detect(x, y, seed=0)
    bad = D.detect(classwise(x, y), y, seed=0)
    assert not ok["flagged"] and bad["flagged"]
    assert bad["accuracy"]["linear/none"] > 0.97
    assert ok["score"] < D.FLAG_EXCESS < bad["score"]
    assert {r["score"] for r in bad["rows"]} == {f"{m}/{v}" for m in D.MODELS for v in D.VIEWS}


@pytest.mark.parametrize("ratio, least", [(0.2, 0.8), (0.5, 0.9)])
def test_planted_poisons_rank_first(ratio, least):
    import fuselib

    x, y = fuselib.data.subset(*fuselib.data.load("cifar10", "test"), 2000, 1)
    poisoned = D.flag_top(torch.rand(len(y), generator=torch.Generator().manual_seed(1)), ratio)
    score = D.per_image(classwise(x, y, poisoned), y, seed=0)
    auc = D.auc(score[poisoned], score[~poisoned])
    precision, recall = D.precision_recall(D.flag_top(score, ratio), poisoned)
    print(f"ratio {ratio}: auc {auc:.3f}, precision {precision:.3f}")
    assert auc > least and precision > least - 0.1 and recall == precision  # k = poisons


def test_auc_and_flags():
    pos, neg = torch.tensor([3.0, 2.0, 2.0]), torch.tensor([2.0, 1.0])
    brute = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / 6
    assert D.auc(pos, neg) == pytest.approx(float(brute))
    mask = D.flag_top(torch.tensor([0.1, 0.9, 0.5, 0.7]), 0.5)
    assert mask.tolist() == [False, True, False, True]
    assert D.precision_recall(mask, torch.tensor([False, True, True, False])) == (0.5, 0.5)


def test_clean_accuracy_interpolates_in_log_size():
    table = {32: {100: {"s": [0.8, 0.8]}, 10000: {"s": [0.4]}}}
    assert D.clean_accuracy(32, 1000, "s", table) == pytest.approx(0.6)
    assert D.clean_accuracy(32, 50, "s", table) == 0.8
    assert D.clean_accuracy(32, 10 ** 6, "s", table) == 0.4
    with pytest.raises(ValueError, match="no clean calibration at 64 px"):
        D.clean_accuracy(64, 1000, "s", table)
    # the shipped calibration covers every score at both resolutions
    shipped = D.calibration()
    assert set(shipped) == set(D.SIDES)
    for by_n in shipped.values():
        for scores in by_n.values():
            assert set(scores) == {f"{m}/{v}" for m in D.MODELS for v in D.VIEWS}


def test_bad_input_one_line_before_work(clean, tmp_path, capsys, monkeypatch):
    x, y = clean
    with pytest.raises(ValueError, match=f"at least {D.MIN_IMAGES} images"):
        D.check_data(x[:10], y[:10])
    with pytest.raises(ValueError, match="two classes"):
        D.check_data(x, torch.zeros_like(y))
    with pytest.raises(ValueError, match="square"):
        D.check_data(x[..., :16], y)
    monkeypatch.setattr(D, "fit", lambda *a, **k: pytest.fail("trained on bad input"))
    for argv, message in [
        (["detect", str(tmp_path / "nothing")], "neither a file or folder nor a protection"),
        (["detect", "random", "--labels", "y.npy"], "--labels is for data files"),
        (["detect"], "give DATA"),
        (["detect", "random", "--calibrate"], "--calibrate takes no DATA"),
    ]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    poisons.write(x[:50], y[:50], tmp_path / "few", "npy")
    assert main(["detect", str(tmp_path / "few")]) == 2
    assert f"at least {D.MIN_IMAGES} images" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("someone's file")
    assert main(["detect", str(tmp_path / "few"), "--out", str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_command_writes_report_and_per_image_csv(clean, tmp_path, capsys):
    x, y = clean
    src = poisons.write(classwise(x, y), y, tmp_path / "data", "npy")
    before = sorted(p.name for p in src.iterdir())
    out = tmp_path / "report"
    assert main(["detect", str(src), "--out", str(out), "--seed", "1"]) == 0
    assert "FLAGGED" in capsys.readouterr().out
    assert sorted(p.name for p in src.iterdir()) == before  # the input is left alone
    rows = list(csv.DictReader(open(out / "per_image.csv")))
    assert len(rows) == N and set(rows[0]) == {"index", "label", "detect_score", "first_epoch"}
    assert [int(r["label"]) for r in rows] == y.tolist()
    report = json.loads((out / "detect.json").read_text())
    assert report["flagged"] and report["seed"] == 1 and report["n"] == N
    assert "| linear/none |" in (out / "detect.md").read_text()


def test_zoo_removal_trains_before_and_after_and_resumes(monkeypatch):
    """The zoo's removal measurement: the mixed set has the ratio's share protected, the flagged
    share is removed before the second training, and rows measured before are not redone."""
    from fuselib.experiments import detect_zoo as Z

    x = torch.zeros(10, 3, 8, 8, dtype=torch.uint8)
    images, poisoned = Z.mixed(x, x + 7, 0.3)
    assert int(poisoned.sum()) == 3 and int(images[poisoned].min()) == 7
    assert torch.equal(Z.mixed(x, x + 7, 0.3)[1], poisoned)  # seeded
    rows = Z.after_removal(["random"], [0.5], scale="smoke", progress=lambda *_: None)
    (r,) = rows
    assert r["kept"] == r["n"] - round(0.5 * r["n"]) and 0 <= r["poisoned_left"] <= r["kept"]
    assert all(0 <= r[k] <= 1 for k in ("accuracy_mixed", "accuracy_after", "accuracy_random"))
    old = {k: v for k, v in r.items() if k != "accuracy_random"}  # measured before the control
    import fuselib.train

    monkeypatch.setattr(fuselib.train, "train", lambda *a, **k: pytest.fail("retrained"))
    assert Z.after_removal(["random"], [0.5], scale="smoke", done=rows) == rows
    calls = []
    monkeypatch.setattr(fuselib.train, "train",
                        lambda *a, **k: calls.append(len(a[1])) or {"accuracy": 0.5})
    (added,) = Z.after_removal(["random"], [0.5], scale="smoke", done=[old])
    assert calls == [r["kept"]] and added["accuracy_random"] == 0.5  # only the control ran
    md = Z.markdown({"command": "c", "commit": "x", "machine": "m", "torch": "t", "threads": 1,
                     "seconds": 1.0, "args": {"sizes": [], "draws": 1, "clean_draws": 1,
                                              "seed": 0},
                     "per_dataset": {"rows": [{"protection": "none", "n": r["n"],
                                               "full_score": 0.0, "full_flagged": False,
                                               "accuracy": dict.fromkeys(D.SCORE_KEYS, 0.5),
                                               "sizes": {}}]},
                     "after_removal": rows}, "smoke")
    assert "After removing the flagged images" in md and f"{r['accuracy_after']:.2%}" in md


def test_zoo_rows_merge_by_protection():
    """Measuring more protections later adds their rows; measuring one again replaces its row."""
    from fuselib.experiments import detect_zoo as Z

    old = [{"protection": "none", "v": 0}, {"protection": "ar", "v": 1}]
    new = [{"protection": "none", "v": 2}, {"protection": "tap", "v": 3}]
    assert Z.merge_rows(old, new) == [{"protection": "none", "v": 2},
                                      {"protection": "ar", "v": 1}, {"protection": "tap", "v": 3}]
    rows = [{"protection": "em", "ratio": 0.1, "v": 0}, {"protection": "em", "ratio": 0.5, "v": 1}]
    assert Z.merge_rows(rows, [{"protection": "em", "ratio": 0.5, "v": 9}],
                        key=("protection", "ratio"))[1]["v"] == 9
    args = {"sizes": [500], "draws": 3, "clean_draws": 10, "seed": 0, "ratios": [0.1]}
    assert Z.mismatch(args, {**args, "draws": 5}, "dataset") == ["draws"]
    assert Z.mismatch(args, {**args, "draws": 5}, "image") == []


def test_zoo_bench_adds_protections_and_keeps_removal_rows(tmp_path, results_tmp):
    """bench/detect_zoo.py at smoke scale: a second command with another protection merges into
    the first one's JSON (rows and removal part kept); other settings are refused in one line."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "bench" / "detect_zoo.py"
    out = tmp_path / "z"
    common = ["--scale", "smoke", "--sizes", "200", "--draws", "1", "--clean-draws", "2",
              "--ratios", "0.5", "--threads", "1", "--out", str(out)]

    def bench(*extra):
        return subprocess.run([sys.executable, str(script), *common, *extra],
                              capture_output=True, text=True, timeout=600)

    first = bench("--protections", "random")
    assert first.returncode == 0, first.stderr
    res = json.loads(out.with_suffix(".json").read_text())
    res["after_removal"] = [{"protection": "random", "ratio": 0.5, "n": 512, "precision": 1.0,
                             "poisoned_left": 0, "accuracy_mixed": 0.3, "accuracy_after": 0.4,
                             "recipe": {"epochs": 2, "seed": 0}}]  # stands in for a measured row
    out.with_suffix(".json").write_text(json.dumps(res))
    second = bench("--protections", "ar")
    assert second.returncode == 0, second.stderr
    merged = json.loads(out.with_suffix(".json").read_text())
    assert [r["protection"] for r in merged["per_dataset"]["rows"]] == ["none", "random", "ar"]
    assert [r["protection"] for r in merged["per_image"]] == ["random", "ar"]
    assert merged["after_removal"] == res["after_removal"]
    assert merged["args"]["protections"] == ["random", "ar"] and len(merged["more_commands"]) == 1
    refused = bench("--protections", "ar", "--draws", "2")
    assert refused.returncode != 0 and "--draws 1" in refused.stderr.strip().splitlines()[-1]
