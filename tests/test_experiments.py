import json

import pytest

from fuselib import experiments as E

TINY = dict(scale="ci", n_train=300, n_test=100, epochs=1,
            recipe={"batch_size": 64, "model_kwargs": {"widths": (8, 16, 16), "stem": 8}})


def test_cache_hit_changed_config_and_corruption(results_tmp):
    before = E.STATS["trained"]
    r1 = E.run(**TINY)
    assert not r1["cached"] and E.STATS["trained"] == before + 1
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


def test_ci_scale_learns(results_tmp):
    """The ci preset must learn clean CIFAR-10 clearly above chance (10%)."""
    r = E.run(scale="ci")
    assert r["accuracy"] >= 0.40, r["curve"]


def test_bad_names(results_tmp):
    with pytest.raises(KeyError, match="scale"):
        E.run(scale="huge")
    with pytest.raises(KeyError, match="protection"):
        E.run(protection="magic")
