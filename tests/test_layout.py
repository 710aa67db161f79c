"""The house plan: plans resolve, generated files are current, no private names cross files,
the command line answers ``python -m fuselib``."""
import ast
import re
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


ROOT = PKG.parent
# a repository path as the text names it: a top-level folder of the project, then a path
PATH = re.compile(r"(?<![\w./-])((?:fuselib|notebooks|results|bench|tests|docs|figures|binder)"
                  r"/[\w./-]*\w)")
# folders the code writes at run time, named before they exist
MADE_AT_RUN_TIME = ("results/cache", "results/audits", "results/notebooks", "results/screenshots")
NOT_PATHS = {"fuselib/fuselib"}  # the repository's name on GitHub
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _named_paths(text: str):
    for m in PATH.finditer(text):
        p = m.group(1).rstrip(".")
        if not p.startswith(MADE_AT_RUN_TIME) and p not in NOT_PATHS:
            yield p


def _text_files():
    yield from (ROOT / n for n in ("README.md", "RESULTS.md", "results/README.md",
                                   "results/measured/README.md"))
    for pattern in ("docs/*.md", "bench/*.md", "notebooks/*.py", "fuselib/**/*.py",
                    "bench/*.py"):
        yield from sorted(ROOT.glob(pattern))


def test_every_repository_path_named_exists():
    """Every repository path the README, RESULTS.md, the docs, the notebooks and the code's
    docstrings and comments name exists; every relative Markdown link resolves, anchors
    included (a moved or renamed file fails here, not in a reader's hands)."""
    missing = []
    for f in _text_files():
        if not f.is_file():
            continue
        text = f.read_text()
        where = f.relative_to(ROOT)
        missing += [f"{where}: {p}" for p in _named_paths(text) if not (ROOT / p).exists()]
        if f.suffix != ".md":
            continue
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, frag = target.partition("#")
            dest = (f.parent / path).resolve() if path else f
            if not dest.exists():
                missing.append(f"{where}: link {target}")
            elif frag and dest.suffix == ".md" and frag not in {
                    report.anchor(h) for h in re.findall(r"^#+ (.+)$", dest.read_text(), re.M)}:
                missing.append(f"{where}: anchor {target}")
    assert not missing, missing


def test_scorecard_and_contents_are_generated():
    """The README opens with the generated scorecard (its rules beneath), RESULTS.md with a
    generated table of contents, and every claim's section with its generated finding, in the
    paper's order."""
    readme, results = (ROOT / "README.md").read_text(), (ROOT / "RESULTS.md").read_text()
    assert len(readme.splitlines()) <= 200
    first = readme.index("<!-- generated: scorecard -->")
    assert readme.index("\n## ") < first < readme.index("\n## ", readme.index("\n## ") + 1)
    assert "Near chance" in readme[first:]
    assert results.index("<!-- generated: toc -->") < results.index("\n## ")
    heads = re.findall(r"^## (.+)$", results, re.M)
    claims_at = [results.index(f"<!-- generated: finding {n} -->") for n in range(1, 8)]
    assert claims_at == sorted(claims_at)
    for h in (h for h in heads if h.startswith("Claim")):
        body = results.split(f"## {h}\n", 1)[1]
        assert body.lstrip().startswith("<!-- generated: finding"), h
