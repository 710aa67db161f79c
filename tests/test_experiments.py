import json

import pytest

from fuselib import experiments as E

TINY = dict(scale="ci", n_train=300, n_test=100, epochs=1,
            recipe={"batch_size": 64, "model_kwargs": {"widths": (8, 16, 16), "stem": 8}})


def test_cache_hit_changed_config_and_corruption(results_tmp):
    before = E.STATS["trained"]
    r1 = E.run(**TINY)
    assert not r1["cached"] and E.STATS["trained"] == before + 1
    assert r1["host"]["threads"] >= 1 and isinstance(r1["host"]["bf16_autocast"], bool)
    r2 = E.run(**TINY)
    assert r2["cached"] and E.STATS["trained"] == before + 1
    assert r2["accuracy"] == r1["accuracy"] and r2["key"] == r1["key"]
    r3 = E.run(**{**TINY, "seed": 1})
    assert not r3["cached"] and r3["key"] != r1["key"] and E.STATS["trained"] == before + 2
    # a truncated cache file is recomputed, not trusted
    path = results_tmp / f"{r1['key']}.json"
    path.write_text(path.read_text()[:50])
    r4 = E.run(**TINY)
    assert not r4["cached"] and E.STATS["trained"] == before + 3
    assert json.loads(path.read_text())["key"] == r1["key"]
    # a well-formed file with someone else's config is not trusted either
    doctored = json.loads(path.read_text())
    doctored["config"]["seed"] = 99
    path.write_text(json.dumps(doctored))
    assert not E.run(**TINY)["cached"]


def test_runs_keep_their_classifier_unless_told_not_to(results_tmp, monkeypatch):
    kept = E.run(**TINY)
    model = E.trained_model(kept["config"])
    assert model is not None and not model.training
    monkeypatch.setenv("FUSELIB_KEEP_MODELS", "0")
    other = E.run(**{**TINY, "seed": 3})
    assert not other["cached"] and E.trained_model(other["config"]) is None
    assert not any(p.name.startswith(other["key"]) for p in (results_tmp / "models").iterdir())


def test_interrupted_run_resumes_and_cleans_up(results_tmp, crash_in_epoch_two):
    """A run killed mid-training picks up at its last finished epoch: same record as a run
    never interrupted, and its checkpoint goes once the record is written."""
    two = {**TINY, "epochs": 2, "seed": 4}
    whole = E.run(**{**two, "cache": False})
    with crash_in_epoch_two():
        E.run(**two)
    partial = list((results_tmp / "partial").iterdir())
    assert [p.name for p in partial] == [f"{whole['key']}.pt"]
    resumed = E.run(**two)
    assert not resumed["cached"] and resumed["resumed_from_epoch"] == 1
    assert resumed["curve"] == whole["curve"] and "resumed_from_epoch" not in whole
    assert not any((results_tmp / "partial").iterdir())
    assert E.run(**two)["cached"]


def test_shipped_records_are_read_but_never_trusted_blindly(results_tmp, tmp_path, monkeypatch):
    """export() copies a scale's records; a fresh cache then reads them instead of training,
    FUSELIB_RECOMPUTE=1 / measured=False ignore them, a doctored record is recomputed."""
    first = E.run(protection="random", **TINY)
    shipped = tmp_path / "shipped"
    files = E.export("ci", shipped, fits=("random",))
    assert shipped / f"{first['key']}.json" in files
    assert any(f.parent.name == "protections" and f.suffix == ".pt" for f in files)
    index = (shipped / "index.csv").read_text().splitlines()
    assert len(index) == 2 and first["key"] in index[1] and "ci,cifar10,random,none," in index[1]
    assert E.export("cpu", tmp_path / "none_here") == []  # other scales are not copied
    monkeypatch.setenv("FUSELIB_RESULTS", str(tmp_path / "fresh"))
    monkeypatch.setenv("FUSELIB_MEASURED", str(shipped))
    trained, fitted = E.STATS["trained"], E.STATS["fitted"]
    r = E.run(protection="random", **TINY)
    assert r["cached"] and r["measured"] and r["accuracy"] == first["accuracy"]
    assert E.STATS["trained"] == trained
    E.run(protection="random", countermeasure="lowpass:0.5", **TINY)  # the shipped fit is reused
    assert E.STATS["fitted"] == fitted and E.STATS["trained"] == trained + 1
    assert not E.run(protection="random", measured=False, **TINY)["measured"]
    monkeypatch.setenv("FUSELIB_RECOMPUTE", "1")
    assert E.measured_dir() is None
    monkeypatch.delenv("FUSELIB_RECOMPUTE")
    monkeypatch.setenv("FUSELIB_MEASURED", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="typo"):
        E.measured_dir()
    monkeypatch.setenv("FUSELIB_MEASURED", str(shipped))
    rec = shipped / f"{first['key']}.json"
    doctored = json.loads(rec.read_text())
    doctored["config"]["seed"] = 5
    rec.write_text(json.dumps(doctored))
    monkeypatch.setenv("FUSELIB_RESULTS", str(tmp_path / "fresh2"))
    assert not E.run(protection="random", **TINY)["cached"]


def test_verify_recomputes_shipped_records_from_scratch(results_tmp, tmp_path):
    """verify() rebuilds a record's config, refits and retrains without reading any cache,
    and flags a record whose number was edited."""
    first = E.run(protection="random", countermeasure="lowpass:0.5", **TINY)
    shipped = tmp_path / "shipped"
    E.export("ci", shipped, fits=())
    fitted, hits = E.STATS["fitted"], E.STATS["cache_hits"]
    df = E.verify("ci", sample=5, folder=shipped)
    assert len(df) == 1 and bool(df.reproduces[0]) and bool(df.same_config[0])
    assert df.recomputed[0] == first["accuracy"] and df.key[0] == first["key"]
    assert E.STATS["fitted"] == fitted + 1 and E.STATS["cache_hits"] == hits  # from scratch
    assert df.protection[0] == "random" and df.countermeasure[0] == "lowpass:cutoff=0.5"
    rec = shipped / f"{first['key']}.json"
    doctored = json.loads(rec.read_text())
    doctored["accuracy"] = first["accuracy"] + 0.1
    rec.write_text(json.dumps(doctored))
    df = E.verify("ci", keys=[first["key"]], folder=shipped)
    assert not df.reproduces[0] and df.same_config[0] and abs(df["diff"][0] + 0.1) < 1e-9
    with pytest.raises(KeyError, match="nope"):
        E.verify("ci", keys=["nope"], folder=shipped)
    with pytest.raises(FileNotFoundError):
        E.verify("cpu", folder=shipped)


def test_verify_fits_refits_shipped_protections(results_tmp, tmp_path, monkeypatch, capsys):
    """verify_fits() refits each shipped fit from its stored config and compares the protected
    images; an edited fit is flagged."""
    from fuselib import protections

    E.run(protection="random", **TINY)
    shipped = tmp_path / "shipped"
    E.export("ci", shipped, fits=("random",), runs=False)
    df = E.verify_fits(folder=shipped)
    assert len(df) == 1 and bool(df.reproduces[0]) and df.equal_pixels[0] == 1.0
    assert df.protection[0] == "random" and df.n_train[0] == 300 and bool(df.same_config[0])
    assert E.verify_fits("ci", folder=shipped).empty  # ci's own size is 5,000 images
    assert E.verify_fits(folder=shipped, names=["em"]).empty
    pt = next((shipped / "protections").glob("*.pt"))
    p = protections.load(pt)
    p.deltas = -p.deltas  # a fit that was not what its config makes
    p.save(pt)
    df = E.verify_fits(folder=shipped)
    assert not df.reproduces[0] and df.mean_abs_diff[0] > 1 and df.max_abs_diff[0] <= 16
    with pytest.raises(FileNotFoundError, match="no shipped fits"):
        E.verify_fits(folder=tmp_path / "nothing")
    from fuselib import cli

    monkeypatch.setenv("FUSELIB_MEASURED", str(shipped))
    assert cli.main(["verify", "--fits", "random", "--scale", "ci"]) == 2  # none of ci's size
    assert "no shipped ci-scale fits of random" in capsys.readouterr().err


def test_config_covers_everything(results_tmp):
    cfg, _, _ = E.build_config(protection="random:eps=0.02", countermeasure="lowpass:0.4")
    assert cfg["protection"] == {"name": "random", "eps": 0.02, "seed": 0, "mode": "class"}
    assert cfg["countermeasure"]["cutoff"] == 0.4
    assert cfg["data"].startswith("cifar10/") and cfg["fuselib"]
    assert cfg["recipe"]["epochs"] == E.SCALES["ci"]["fast"]["epochs"]
    other, _, _ = E.build_config(protection="random:eps=0.03", countermeasure="lowpass:0.4")
    assert E.config_key(cfg) != E.config_key(other)


def test_protection_fit_is_cached(results_tmp):
    before = E.STATS["fitted"]
    E.run(protection="random", **TINY)
    E.run(protection="random", countermeasure="lowpass:0.5", **TINY)
    assert E.STATS["fitted"] == before + 1


def test_grid_dataframe(results_tmp):
    df = E.grid(protections=["none", "random"], countermeasures=["none"], **TINY)
    assert list(df["protection"]) == ["none", "random"]
    assert {"accuracy", "peak_accuracy", "curve", "seconds", "cached"} <= set(df.columns)


# that the ci preset learns clean CIFAR-10 (> 40%) is asserted by notebook 01 at ci scale, which
# trains that run anyway (a full ci run is 1.5 minutes on 2 cores)


def test_bad_names(results_tmp):
    with pytest.raises(KeyError, match="scale"):
        E.run(scale="huge")
    with pytest.raises(KeyError, match="protection"):
        E.run(protection="magic")


def test_spectral_profile_and_cli_profile(results_tmp, capsys):
    from fuselib import cli

    low = E.spectral_profile("lsp", scale="ci")
    assert len(low) == 3 and abs(sum(low) - 1) < 1e-6 and low[0] > 0.8  # patches: low freq
    white = E.spectral_profile("random:mode=sample", scale="ci")
    assert white[1] > white[2] > white[0]  # white noise follows the coefficient shares
    cached = list((results_tmp / "profiles").glob("*.json"))
    assert len(cached) == 2
    for f in cached:  # a cached profile is what the next call returns, read not recomputed
        f.write_text(f.read_text().replace(str(low[0]), "0.5").replace(str(white[0]), "0.5"))
    assert E.spectral_profile("lsp", scale="ci")[0] == 0.5
    assert E.spectral_profile("lsp", scale="ci", cache=False)[0] == low[0]
    assert cli.main(["profile", "random", "lsp"]) == 0
    out = capsys.readouterr().out
    assert "white noise" in out and out.count("%") == 9


def test_cli_grid_table_and_csv(results_tmp, tmp_path, monkeypatch, capsys):
    from fuselib import cli

    def fake_run(protection, countermeasure, arch, seed, **kw):
        acc = {"none": 0.9, "random": 0.8}[protection] - (0.1 if countermeasure != "none" else 0)
        return {"accuracy": acc, "peak_accuracy": acc + 0.01, "peak_epoch": 3, "seconds": 1.0,
                "cached": False, "curve": [acc], "key": "k", "recipe": {"arch": "fastnet"},
                "config": {"trainer": kw["trainer"], "scale": kw["scale"]}}

    assert cli.main(["grid", "magic"]) == 2  # unknown protection: a clear error, exit 2
    assert "unknown protection" in capsys.readouterr().err
    monkeypatch.setattr(E.sweeps, "run", fake_run)
    csv = tmp_path / "t.csv"
    assert cli.main(["grid", "none", "random", "--countermeasures", "none", "lowpass:0.3",
                     "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "90.00% (91.00%)" in out and "70.00% (71.00%)" in out and "lowpass:0.3" in out
    import pandas as pd

    df = pd.read_csv(csv)
    assert len(df) == 4 and set(df.protection) == {"none", "random"}

    # --cached-only trains nothing; a suite (more countermeasures than protections) runs down
    seen = []

    def cached_run(protection, countermeasure, arch, seed, **kw):
        seen.append(kw["cached_only"])
        return None if countermeasure == "median" else fake_run(protection, countermeasure,
                                                                 arch, seed, **kw)

    monkeypatch.setattr(E.sweeps, "run", cached_run)
    assert cli.main(["grid", "none", "--countermeasures", "none", "jpeg:10", "median",
                     "--cached-only"]) == 0
    out = capsys.readouterr().out
    assert seen == [True] * 3 and "median" not in out and "blank cells" in out
    lines = out.splitlines()
    assert any(line.startswith("jpeg:10") and "80.00% (81.00%)" in line for line in lines)
    assert cli.main(["grid", "none", "--countermeasures", "none", "jpeg:10", "median",
                     "--cached-only", "--markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "| countermeasure | none |" in lines and "| jpeg:10 | 80.00% (81.00%) |" in lines
    seen.clear()
    monkeypatch.setattr(E.sweeps, "run", lambda *a, **kw: None)
    assert cli.main(["grid", "none", "--countermeasures", "median", "--cached-only"]) == 0
    assert "nothing measured yet" in capsys.readouterr().out


def test_defence_fields_enter_the_config_only_when_on(results_tmp):
    plain, _, _ = E.build_config()
    assert not {"cutout", "mix", "adv", "ueraser", "adv_eps"} & set(plain["recipe"])
    cut, _, _ = E.build_config(countermeasure="cutout:8")
    adv, _, _ = E.build_config(countermeasure="adv:l2")
    assert cut["recipe"]["cutout"] == 8 and "adv" not in cut["recipe"]
    assert adv["recipe"]["adv"] == "l2" and adv["recipe"]["adv_eps"] == 1.0
    assert len({E.config_key(c) for c in (plain, cut, adv)}) == 3


def test_cutoff_tables():
    import pandas as pd

    assert E.cutoff_of("none") == 1.0
    assert E.cutoff_of("lowpass:0.375") == 0.375
    with pytest.raises(IndexError):
        E.cutoff_of("jpeg")
    sweep = pd.DataFrame({"protection": ["none", "em", "none", "em"],
                          "countermeasure": ["none", "none", "lowpass:0.25", "lowpass:0.25"],
                          "accuracy": [0.7, 0.5, 0.6, 0.4]})
    sweep["cutoff"] = sweep.countermeasure.map(E.cutoff_of)
    table = E.by_cutoff(sweep, ["em", "none"])
    assert list(table.columns) == ["em", "none"] and list(table.index) == [0.25, 1.0]
    assert table.loc[0.25, "em"] == pytest.approx(40.0)


def test_smoke_scale_is_for_grids_not_notebooks():
    from fuselib import notebook

    config, _, _ = E.build_config("ar", "cutout", scale="smoke")
    assert config["n_train"] == 1000 and config["recipe"]["epochs"] == 8
    assert config["recipe"]["cutout"] == 16
    with pytest.raises(ValueError, match="smoke is for grid"):
        notebook.setup("smoke")
    with pytest.raises(ValueError, match="scale must be one of ci"):
        notebook.setup("huge")


def test_fit_records_keep_the_fits_history(results_tmp):
    """An EM fit's record says how many rounds it ran (a fit that stopped early shows it)."""
    E.fitted("em:max_rounds=2", scale="smoke", n_train=200)
    E.fitted("random", scale="smoke", n_train=200)
    recs = [json.loads(p.read_text()) for p in (results_tmp / "protections").glob("*.json")]
    by_name = {r["config"]["protection"]["name"]: r for r in recs}
    rounds = by_name["em"]["history"]
    assert 1 <= len(rounds) <= 2 and [r[0] for r in rounds] == list(range(1, len(rounds) + 1))
    assert all(0 <= r[2] <= 1 for r in rounds)  # the surrogate's accuracy on perturbed data
    assert "history" not in by_name["random"]


@pytest.mark.parametrize("spec,owner,step", [
    ("fuse:epochs=2,portion=1.0,batch_size=100,surrogate_steps=1",
     "fuselib.protections.fuse.FuseTrainer", "epoch"),
    ("em:max_rounds=2,train_steps=2,stop_error=0", "fuselib.protections.em.ErrorMinimizing",
     "round")])
def test_interrupted_fit_resumes_from_its_checkpoint(results_tmp, monkeypatch, spec, owner, step):
    """A runner fit stopped after its first epoch (FUSE) or round (EM) leaves
    partial/fit-KEY.pt; the next run resumes it (the same noise as an uninterrupted fit), says
    so in the fit's record, counts the time before the stop, and removes it."""
    import importlib

    import torch

    module, name = owner.rsplit(".", 1)
    cls = getattr(importlib.import_module(module), name)
    whole = E.fitted(spec, scale="ci", n_train=300, cache=False)
    real_save = cls._save

    def save_then_die(self, *a):
        real_save(self, *a)
        raise KeyboardInterrupt

    monkeypatch.setattr(cls, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        E.run(protection=spec, **TINY)
    monkeypatch.setattr(cls, "_save", real_save)
    ckpts = list((results_tmp / "partial").glob("fit-*.pt"))
    saved = torch.load(ckpts[0], weights_only=True)
    assert len(ckpts) == 1 and saved[step] == 1 and saved["seconds"] > 0
    record = E.run(protection=spec, **TINY)
    assert not list((results_tmp / "partial").glob("fit-*.pt"))
    fit = E.fit_record(spec, scale="ci", n_train=300)
    assert fit["resumed_from_checkpoint"] and len(fit["history"]) == 2
    # the time before the stop counts, in the fit's record and in the run's
    assert fit["resumed_seconds"] == saved["seconds"]
    assert fit["fit_seconds"] > saved["seconds"] and record["seconds"] > fit["fit_seconds"]
    assert torch.equal(E.fitted(spec, scale="ci", n_train=300).deltas, whole.deltas)
