"""Training-time defences: the batch operations, and each one through the trainer at ci scale."""
import pytest
import torch
import torch.nn.functional as F

from fuselib.countermeasures import training as defenses
from fuselib import experiments as E
from fuselib import models


def _gen(s=0):
    return torch.Generator().manual_seed(s)


def test_cutout_blanks_one_square():
    x = torch.full((64, 3, 32, 32), 0.3)
    out = defenses.cutout(x, 16, _gen())
    zeros = (out == 0).all(1).flatten(1).sum(1)
    assert int(zeros.max()) == 256 and int(zeros.min()) >= 64  # clipped at a border: >= 8×8
    assert torch.equal(out[out != 0], x[out != 0])


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing(kind):
    torch.manual_seed(0)
    x = torch.rand(16, 3, 32, 32) - 0.5
    out, partner, lam = defenses.mix(x, kind, 1.0, _gen())
    assert 0.0 <= lam <= 1.0 and sorted(partner.tolist()) == list(range(16))
    if kind == "mixup":
        assert torch.allclose(out, lam * x + (1 - lam) * x[partner])
    else:
        same = (out == x).all(1).flatten(1).float().mean(1)
        moved = partner != torch.arange(16)
        assert torch.allclose(same[moved], torch.full_like(same[moved], lam), atol=1e-6)


@pytest.mark.parametrize("norm,eps,step", [("linf", 8 / 255, 2 / 255), ("l2", 1.0, 0.25)])
def test_pgd_stays_in_budget_and_raises_loss(norm, eps, step):
    torch.manual_seed(0)
    model = models.get("fastnet", 10, widths=(8, 16, 16), stem=8).eval()
    x = torch.rand(32, 3, 32, 32) - 0.5
    y = torch.randint(0, 10, (32,))
    adv = defenses.pgd(model, x, y, norm, eps, 10, step, _gen())
    d = (adv - x).flatten(1)
    size = d.abs().max(1).values if norm == "linf" else d.norm(dim=1)
    assert float(size.max()) <= eps + 1e-5
    assert float(adv.min()) >= -0.5 and float(adv.max()) <= 0.5
    with torch.no_grad():
        assert F.cross_entropy(model(adv), y) > F.cross_entropy(model(x), y)


def test_ueraser_picks_the_hardest_draw():
    torch.manual_seed(0)
    model = models.get("fastnet", 10, widths=(8, 16, 16), stem=8).eval()
    x = torch.rand(8, 3, 32, 32) - 0.5
    y = torch.randint(0, 10, (8,))
    chosen = defenses.ueraser_inputs(model, x, y, 4, _gen(3),
                                     lambda: torch.autocast("cpu", enabled=False))
    g = _gen(3)
    draws = [defenses.strong_augment(x, g) for _ in range(4)]
    with torch.no_grad():
        losses = torch.stack([F.cross_entropy(model(d), y, reduction="none") for d in draws])
        got = F.cross_entropy(model(chosen), y, reduction="none")
    assert torch.allclose(got, losses.max(0).values, atol=1e-5)
    assert float(chosen.min()) >= -0.5 and float(chosen.max()) <= 0.5


@pytest.mark.parametrize("spec,field", [("cutout", "cutout"), ("cutmix", "mix"),
                                        ("mixup", "mix"), ("adv:linf", "adv"), ("adv:l2", "adv"),
                                        ("ueraser", "ueraser")])
def test_training_defences_run_at_ci_scale(spec, field, results_tmp):
    # the ci preset's recipe, one epoch on a ci subset (adversarial training costs 11 passes a
    # batch): each defence through the real trainer, cheaply
    r = E.run(countermeasure=spec, scale="ci", epochs=1, n_test=500,
              n_train=1024 if spec.startswith("adv") else 2048)
    assert 0.0 <= r["accuracy"] <= 1.0 and len(r["curve"]) == 1
    assert r["recipe"][field] not in (0, "none")
    assert r["config"]["countermeasure"]["name"] == spec.split(":")[0]


def test_early_stop_reads_the_peak_without_retraining(results_tmp):
    tiny = dict(scale="ci", n_train=300, n_test=100, epochs=3,
                recipe={"batch_size": 64, "model_kwargs": {"widths": (8, 16, 16), "stem": 8}})
    base = E.run(**tiny)
    trained = E.STATS["trained"]
    es = E.run(countermeasure="early_stop", **tiny)
    assert E.STATS["trained"] == trained
    assert es["accuracy"] == base["peak_accuracy"] == max(base["curve"])
    assert es["final_accuracy"] == base["accuracy"]
    assert es["config"]["countermeasure"]["name"] == "early_stop"


def test_grid_all_expands_to_the_suite(monkeypatch, results_tmp):
    from fuselib import countermeasures

    seen = []

    def fake_run(protection, countermeasure, arch, seed, **kw):
        seen.append(countermeasure)
        return {"accuracy": 0.5, "peak_accuracy": 0.5, "peak_epoch": 1, "seconds": 0.0,
                "cached": True, "curve": [0.5], "key": "k", "recipe": {"arch": "fastnet"},
                "config": {"trainer": "fast", "scale": "ci"}}

    monkeypatch.setattr(E.sweeps, "run", fake_run)
    df = E.grid(protections=["none", "random"], countermeasures="all")
    assert len(df) == 2 * len(countermeasures.SUITE)
    assert seen[:len(countermeasures.SUITE)] == list(countermeasures.SUITE)
