"""``fuselib export-data`` and ``fuselib audit``: a protection's data written as researchers share
it (fuselib.poisons), read back in the same order, and audited with the project's evaluator —
the same accuracy as the run — and every bad input refused (or reported) before any training."""
import json
import pickle
import re

import numpy as np
import pytest
import torch
from PIL import Image

from fuselib import cli, poisons
from fuselib.experiments import audit, runner

EPOCHS = 3  # the round trip at the smoke scale's recipe, shortened (the same for both sides)


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fuselib: error: "), err
    return err[0]


def _synthetic(n=40, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=g)
    return x, torch.arange(n) % 10


# --------------------------------------------------------------------------- the round trip
def test_export_then_audit_reproduces_the_run(results_tmp, tmp_path, capsys):
    run = runner.run("ar", "none", scale="smoke", seed=0, epochs=EPOCHS)
    clean, protected, labels = runner.protected_data("ar", "smoke", 0)
    reports = {}
    for fmt in poisons.FORMATS:
        out = audit.export_data("ar", tmp_path / fmt, "smoke", fmt=fmt, clean=fmt == "png")
        meta = (tmp_path / fmt / "fuselib.json").read_text()
        assert '"protection": "ar"' in meta and f'"format": "{fmt}"' in meta
        x, y, raw, _ = poisons.load(out["path"])
        assert raw.format == fmt and torch.equal(x, protected) and torch.equal(y, labels)
        reports[fmt] = audit.audit(tmp_path / fmt, countermeasures=["none"], scale="smoke",
                                   epochs=EPOCHS, write_report=False)
    for fmt, rep in reports.items():  # the same images, labels, order, recipe, seed, test set
        assert rep["rows"][0]["accuracy"] == run["accuracy"], fmt
        assert rep["rows"][0]["peak_accuracy"] == run["peak_accuracy"], fmt
        assert rep["digest"] == reports["npy"]["digest"]
    # the first format read trained (on exactly the run's data), the others met its record
    assert [rep["rows"][0]["cached"] for rep in reports.values()] == [False, True, True, True]
    # beside each cell, clean data under the same countermeasure, scale and trainer: the
    # runner's own run of it (trained once, then read), and the gap in the Markdown
    clean_run = runner.run("none", "none", scale="smoke", seed=0, epochs=EPOCHS)
    assert clean_run["cached"]
    assert {rep["rows"][0]["clean_accuracy"] for rep in reports.values()} == {
        clean_run["accuracy"]}
    gap = f"{100 * (clean_run['accuracy'] - run['accuracy']):.2f} points"
    assert gap in audit.markdown(reports["npy"])
    off = audit.prepare(tmp_path / "npy", scale="smoke", countermeasures=["lowpass:0.25"],
                        epochs=EPOCHS, reference="records")
    rows = {r["countermeasure"]: r for r in audit.run(off)["rows"]}
    assert rows["none"]["clean_accuracy"] == clean_run["accuracy"]  # read: it is measured
    assert rows["lowpass:0.25"]["clean_accuracy"] is None  # not measured: nothing trained
    assert "not measured" in audit.markdown(audit.run(off))
    with pytest.raises(ValueError, match="reference must be"):
        audit.prepare(tmp_path / "npy", scale="smoke", reference="maybe")
    # the clean reference: the run's training subset; the profile is the runner's
    cx, _, _, _ = poisons.load(tmp_path / "png-clean")
    assert torch.equal(cx, clean)
    a = audit.prepare(tmp_path / "png", clean=tmp_path / "png-clean", scale="smoke",
                      countermeasures=["none"], epochs=EPOCHS)
    assert a.distance["linf_max"] == int((protected.int() - clean.int()).abs().max())
    rep = audit.run(a)  # cached: nothing trained
    assert rep["rows"][0]["cached"] and rep["rows"][0]["accuracy"] == run["accuracy"]
    assert rep["profile"]["fractions"] == pytest.approx(
        runner.spectral_profile("ar", scale="smoke"), abs=1e-9)

    # the command line: export refuses a non-empty folder; audit writes its report
    assert cli.main(["export-data", "ar", str(tmp_path / "npy"), "--scale", "smoke"]) == 2
    assert "is not empty" in _one_error_line(capsys)
    out = tmp_path / "report"
    assert cli.main(["audit", str(tmp_path / "pickle"), "--clean", str(tmp_path / "png-clean"),
                     "--scale", "smoke", "--epochs", str(EPOCHS), "--countermeasures", "none",
                     "--out", str(out), "--detect"]) == 0
    printed = capsys.readouterr().out
    assert f"accuracy {run['accuracy']:.4f}" in printed and "[cached]" in printed
    assert {p.name for p in out.iterdir()} == {"audit.md", "accuracy.csv", "accuracy.png",
                                               "distances.csv", "audit.json"}
    # --detect: the shortcut check's section, before the accuracies, and its rows in the JSON
    md = (out / "audit.md").read_text()
    assert "## Detection" in md and md.index("## Detection") < md.index("## Clean test")
    det = json.loads((out / "audit.json").read_text())["detection"]
    assert {r["score"] for r in det["rows"]} >= {"linear/none", "mlp/lowpass:0.25"}
    assert f"detection: {'FLAGGED' if det['flagged'] else 'not flagged'}" in printed


# --------------------------------------------------------------------------- bad inputs
def test_bad_shapes_dtypes_and_values_are_refused_in_one_line(results_tmp, tmp_path, capsys):
    x, y = _synthetic()
    hwc = x.permute(0, 2, 3, 1).numpy()
    np.save(tmp_path / "labels.npy", y.numpy())
    cases = {
        "3d.npy": (hwc[..., 0], "4 axes needed"),
        "rgba.npy": (np.concatenate([hwc, hwc[..., :1]], -1), "4 channel(s), 3 (RGB) needed"),
        "tiny.npy": (hwc[:, :4, :4], "4×4 pixels: at least 8×8"),
        "nan.npy": (np.where(np.arange(32)[None, :, None, None] == 3, np.nan, hwc / 255.0),
                    "hold NaN or infinite"),
        "range.npy": (hwc.astype(np.float32), "float values outside [0, 1]"),
        "int.npy": (hwc.astype(np.int32) * 2, "integer values outside 0..255"),
    }
    for name, (arr, why) in cases.items():
        np.save(tmp_path / name, arr)
        with pytest.raises(poisons.PoisonError, match=re.escape(why)):
            audit.prepare(tmp_path / name, labels=tmp_path / "labels.npy", scale="smoke")
    # the command line says it in one line, exit 2, before any work
    assert cli.main(["audit", str(tmp_path / "nan.npy"), "--labels",
                     str(tmp_path / "labels.npy"), "--scale", "smoke"]) == 2
    assert "hold NaN" in _one_error_line(capsys)
    assert not (results_tmp / "audits").exists()


def test_bad_labels_are_refused(results_tmp, tmp_path, capsys):
    x, y = _synthetic()
    np.save(tmp_path / "x.npy", x.permute(0, 2, 3, 1).numpy())
    (tmp_path / "short.txt").write_text("\n".join(map(str, y[:-1].tolist())) + "\n")
    np.save(tmp_path / "big.npy", y.numpy() + 5)
    np.save(tmp_path / "half.npy", y.numpy() + 0.5)
    (tmp_path / "ok.csv").write_text("label\n" + "\n".join(map(str, y.tolist())) + "\n")
    for labels, why in (("short.txt", "39 labels for 40 images"),
                        ("big.npy", "labels up to 14, but the test set has 10 classes"),
                        ("half.npy", "labels are not integers")):
        assert cli.main(["audit", str(tmp_path / "x.npy"), "--labels", str(tmp_path / labels),
                         "--scale", "smoke"]) == 2
        assert why in _one_error_line(capsys)
    assert cli.main(["audit", str(tmp_path / "x.npy"), "--scale", "smoke"]) == 2
    assert "no labels" in _one_error_line(capsys)
    a = audit.prepare(tmp_path / "x.npy", labels=tmp_path / "ok.csv", scale="smoke")
    assert torch.equal(a.labels, y) and torch.equal(a.images, x)


def test_images_over_the_budget_are_reported_not_refused(results_tmp, tmp_path, capsys):
    x, y = _synthetic()
    poisoned = x.clone()
    poisoned[[3, 17, 29]] = (poisoned[[3, 17, 29]].int() + 20).clamp(0, 255).to(torch.uint8)
    poisoned[5] = (poisoned[5].int() - 8).clamp(0, 255).to(torch.uint8)  # at the budget: fine
    poisons.write(poisoned, y, tmp_path / "p", "pt")
    poisons.write(x, y, tmp_path / "c", "npy")
    out = tmp_path / "report"
    cms = ["--countermeasures", "cutout", "early_stop"]  # a training-time defence too
    assert cli.main(["audit", str(tmp_path / "p"), "--clean", str(tmp_path / "c"), "--scale",
                     "smoke", "--epochs", "1", *cms, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert [line.split()[0] for line in printed.splitlines() if " peak " in line] == [
        "none", "cutout", "early_stop"]
    assert "3 of 40 images over the 8/255 budget (3, 17, 29)" in printed
    assert "max L-inf 20/255" in printed
    csv_rows = (out / "accuracy.csv").read_text().splitlines()
    assert csv_rows[0].endswith("images_over_budget,budget") and csv_rows[1].endswith(",3,8/255")
    assert len(csv_rows) == 4
    flagged = [r.split(",")[0] for r in (out / "distances.csv").read_text().splitlines()[1:]
               if r.endswith(",1")]
    assert flagged == ["3", "17", "29"]
    md = (out / "audit.md").read_text()
    assert "| 3 of 40 (7.50%) |" in md and "index in the data's order): 3, 17, 29;" in md
    # a looser budget: none over; a rerun replaces the earlier audit's folder, no training
    assert cli.main(["audit", str(tmp_path / "p"), "--clean", str(tmp_path / "c"), "--scale",
                     "smoke", "--epochs", "1", *cms, "--out", str(out), "--eps", "20/255"]) == 0
    printed = capsys.readouterr().out
    assert "0 of 40 images over the 20/255 budget" in printed and printed.count("[cached]") == 3
    assert "Every image is within 20/255." in (out / "audit.md").read_text()


def test_a_clean_reference_that_does_not_match_is_an_error(results_tmp, tmp_path, capsys):
    x, y = _synthetic()
    poisons.write(x, y, tmp_path / "p", "npy")
    poisons.write(x[:30], y[:30], tmp_path / "fewer", "npy")
    poisons.write(torch.nn.functional.interpolate(x.float(), 16).to(torch.uint8), y,
                  tmp_path / "smaller", "npy")
    for ref in ("fewer", "smaller"):
        assert cli.main(["audit", str(tmp_path / "p"), "--clean", str(tmp_path / ref),
                         "--scale", "smoke"]) == 2
        assert "must hold the same images, in the same order" in _one_error_line(capsys)
    # labels that differ from the reference's: a warning, not an error
    poisons.write(x, (y + 1) % 10, tmp_path / "relabelled", "npy")
    a = audit.prepare(tmp_path / "p", clean=tmp_path / "relabelled", scale="smoke")
    assert any("40 label(s) differ" in w for w in a.warnings)
    # a report folder that holds something else is refused before any work
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert cli.main(["audit", str(tmp_path / "p"), "--scale", "smoke", "--out",
                     str(tmp_path / "busy")]) == 2
    assert "holds no audit report that lists its files" in _one_error_line(capsys)


# --------------------------------------------------------------------------- the formats
def test_png_folders_read_in_their_numbered_order_and_pickles_run_no_code(tmp_path):
    x, y = _synthetic(n=12)
    poisons.write(x, y, tmp_path / "png", "png", classes=[f"c{k}" for k in range(10)])
    got, labels, raw, _ = poisons.load(tmp_path / "png")
    assert torch.equal(got, x) and torch.equal(labels, y) and len(raw.classes) == 10
    # a class folder per class, even an empty one; a non-empty folder is never written into
    assert sorted(p.name for p in (tmp_path / "png").iterdir() if p.is_dir())[-1] == "c9"
    with pytest.raises(FileExistsError, match="not empty"):
        poisons.write(x, y, tmp_path / "png", "npy")
    # names that are not all integers: sorted by class folder, then path
    for k, name in enumerate(("b.png", "a.png")):
        d = tmp_path / "named" / "cls0"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[k].permute(1, 2, 0).numpy()).save(d / name)
    got, _, raw, _ = poisons.load(tmp_path / "named")
    assert [p.name for p in raw.files] == ["a.png", "b.png"] and torch.equal(got[0], x[1])
    # CIFAR-style pickle: arrays only
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}))
    with pytest.raises(poisons.PoisonError, match="builtins.print, which is not an array"):
        poisons.read(tmp_path / "data_batch_1")


def test_countermeasure_sets():
    assert audit.countermeasure_list("quick") == list(audit.QUICK)
    suite = audit.countermeasure_list("suite")
    assert suite[0] == "none" and "ueraser" in suite and len(suite) == len(set(suite))
    assert audit.countermeasure_list(countermeasures=["jpeg:10"]) == ["none", "jpeg:10"]
    assert "lowpass:0.125" in audit.countermeasure_list("headline", scale="cpu")
