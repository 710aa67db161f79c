"""The house plan: plans resolve, generated files are current, no private names cross files,
the command line answers ``python -m fuselib``."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from fuselib import experiments as E
from fuselib.experiments import plans, report

PKG = Path(__file__).resolve().parent.parent / "fuselib"


def test_no_private_names_cross_files():
    bad = []
    for f in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.level or "fuselib" in (node.module or "")):
                bad += [f"{f.relative_to(PKG)}: {a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
    assert not bad, bad


@pytest.mark.parametrize("scale", ["ci", "cpu", "paper"])
def test_every_plan_resolves(scale):
    """Every cell of every plan names registered methods with valid parameters."""
    for name in plans.names():
        plan = plans.get(name)
        for b in plan.blocks_for(scale):
            for p in b.protections:
                for c in b.countermeasures:
                    for a in b.archs:
                        E.build_config(p, c, arch=a, scale=scale, dataset=plan.dataset,
                                       recipe=dict(plan.recipe) or None)
        assert plan.command(scale).startswith("fuselib ")


def test_plan_tables_read_only_what_is_measured(monkeypatch):
    """At cpu scale the shipped records complete these plans: printing them trains nothing."""
    with report.shipped_only():
        before = dict(E.STATS)
        for name in ("headline", "lowpass_sweep", "suite", "ablations", "fuse_fix"):
            plan = plans.get(name)
            df = plan.run("cpu", cached_only=True)
            assert len(df) == plan.size("cpu"), name
            assert df.measured.all()
        assert E.STATS["trained"] == before["trained"] and E.STATS["fitted"] == before["fitted"]


def test_generated_files_are_current():
    """RESULTS.md and the README's generated blocks are what `make results` writes."""
    assert report.write(check=True) == [], "run `make results` and commit the result"


def test_fill_keeps_hand_written_text():
    text = "before\n<!-- generated: scales -->\nstale\n<!-- /generated -->\nafter\n"
    out = report.fill(text)
    assert out.startswith("before\n<!-- generated: scales -->\n| scale |")
    assert out.endswith("<!-- /generated -->\nafter\n") and "stale" not in out
    with pytest.raises(ValueError, match="unknown generated block"):
        report.fill("<!-- generated: nonsense -->\n<!-- /generated -->")


def test_python_dash_m_fuselib():
    out = subprocess.run([sys.executable, "-m", "fuselib", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "fit" in out.stdout and "results" in out.stdout
    out = subprocess.run([sys.executable, "-m", "fuselib", "--version"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("fuselib ")


def test_grid_plan_list_and_bad_use(capsys):
    from fuselib import cli

    assert cli.main(["grid", "--plan", "lowpass_sweep", "--scale", "cpu", "--list"]) == 0
    assert "lowpass:0.125" in capsys.readouterr().out
    assert cli.main(["grid", "ar", "--plan", "lowpass_sweep"]) == 2
    assert "--plan names the runs" in capsys.readouterr().err
    assert cli.main(["grid", "--plan", "certificates"]) == 2


def test_every_shipped_record_rebuilds_to_its_key():
    """The configs (and so the keys) of every shipped run record and fit are what the code builds
    today from their stored settings: a move or a new setting that changes a hash fails here."""
    import json

    from fuselib import countermeasures, protections
    from fuselib.experiments.scales import dataset_of, rebuild
    from fuselib.experiments.store import shipped_dir

    folder = shipped_dir()
    records = sorted(folder.glob("*.json"))
    assert records
    for f in records:
        c = json.loads(f.read_text())["config"]
        t = c.get("transfer")  # perturbations made on another dataset: both datasets named
        where = dict(dataset=dataset_of(c["data"]), source=dataset_of(t["data"])) if t else {}
        cfg, _, _ = E.build_config(
            rebuild(protections, c["protection"]), rebuild(countermeasures, c["countermeasure"]),
            trainer=c["trainer"], scale=c["scale"], seed=c["seed"], n_train=c["n_train"],
            n_test=c["n_test"], recipe=c["recipe"], poison_ratio=c.get("poison_ratio", 1.0),
            **where)
        cfg["data"] = c["data"]  # the data variant is this machine's, not the code's
        if t:
            cfg["transfer"]["data"] = t["data"]
        assert E.config_key(cfg) == f.stem, f.name
    for f in sorted((folder / "protections").glob("*.json")):
        c = json.loads(f.read_text())["config"]
        p = rebuild(protections, c["protection"])
        assert E.config_key({**c, "protection": E.describe(p)}) == f.stem, f.name


def test_calibration_block_sets_repeats_beside_their_records(tmp_path, monkeypatch):
    """A run measured again on another machine (results/measured/calibration/) is shown beside
    the shipped record of the same key, with the difference; no folder, no rows."""
    import json

    monkeypatch.setattr(report, "shipped_dir", lambda: tmp_path)
    assert "no repeated runs" in report.calibration_block()
    config, _, _ = E.build_config("ar", "lowpass:0.25", scale="full", seed=0)
    key = E.config_key(config)
    base = {"key": key, "config": config, "peak_accuracy": 0.5, "peak_epoch": 1, "curve": [0.5],
            "seconds": 1.0}
    (tmp_path / "calibration").mkdir()
    (tmp_path / f"{key}.json").write_text(json.dumps(
        dict(base, accuracy=0.3936, host={"cpu": "Xeon", "device": "cpu"})))
    (tmp_path / "calibration" / f"{key}.json").write_text(json.dumps(
        dict(base, accuracy=0.3707, host={"cpu": "Xeon", "gpu": "NVIDIA H200", "device": "cuda"})))
    out = report.calibration_block()
    row = next(line for line in out.splitlines() if line.startswith("| full | ar |"))
    assert "39.36% (Xeon)" in row and "37.07% (NVIDIA H200)" in row and "| -2.29 |" in row, out
    assert "1 config measured twice; the largest difference 2.29 points" in out
