"""FUSE: the generator, the two training ideas, checkpoint/resume and torchrun."""
import os
import re
import subprocess
import sys

import pytest
import torch

from fuselib import protections, spectral
from fuselib.protections.fuse import FuseConfig, FuseTrainer
from fuselib.protections.generators import Generator, class_mean

TINY = dict(epochs=2, portion=1.0, batch_size=40, surrogate_steps=3)


@pytest.fixture(scope="module")
def small():
    import fuselib

    x, y = fuselib.data.load("cifar10", "train")
    keep = torch.cat([(y == c).nonzero().flatten()[:12] for c in range(10)]).sort().values
    return x[keep], y[keep]


@pytest.mark.parametrize("size", [(32, 32), (30, 34), (64, 48)])
def test_generator_is_bounded_at_any_size(size):
    torch.manual_seed(0)
    g = Generator(eps=8 / 255)
    with torch.no_grad():
        for p in g.out.parameters():
            p.mul_(50)  # saturate the tanh: the bound must still hold
        d = g(torch.rand(3, 3, *size))
    assert d.shape == (3, 3, *size)
    assert float(d.abs().max()) <= 8 / 255 + 1e-7 and float(d.abs().max()) > 7 / 255


def test_class_mean():
    d = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2)
    m = class_mean(d, torch.tensor([0, 0, 2, 2]), 3)
    assert m[0].eq(0.5).all() and m[1].eq(0).all() and m[2].eq(2.5).all()


def test_config_errors():
    with pytest.raises(ValueError, match="unknown setting"):
        protections.get("fuse", warp=3)
    with pytest.raises(ValueError, match="input"):
        protections.get("fuse", input="text")
    with pytest.raises(ValueError, match="cutoff"):
        protections.get("fuse", cbg_cutoff=1.5)


def test_objective_switches(small):
    """RSM changes what the unlearnability loss sees; CBG adds its terms; off means absent."""
    x, y = small
    x = x[:40].float() / 255
    y = y[:40]
    torch.manual_seed(0)
    f = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    d = (torch.rand(x.shape) * 2 - 1) * 8 / 255
    losses = {}
    for rsm in (False, True):
        for cbg in (False, True):
            t = FuseTrainer(FuseConfig(rsm=rsm, cbg=cbg))
            gen = torch.Generator().manual_seed(0)
            loss, parts = t.generator_loss(f, x, y, d, gen)
            losses[rsm, cbg] = (loss.detach().item(), parts)
    assert set(losses[False, False][1]) == {"ue"}
    assert {"ce_low", "ce_high", "kl"} <= set(losses[False, True][1])
    assert losses[True, False][1]["ue"] != losses[False, False][1]["ue"]  # a band was removed
    assert losses[False, True][0] > losses[False, False][0]


def test_rsm_mask_is_one_contiguous_band_and_never_everything():
    lo, hi = spectral.sample_bands(500, 0.1, 0.5, torch.Generator().manual_seed(1))
    r = spectral.radial_frequency((32, 32))
    masks = spectral.band_mask((32, 32), lo, hi)  # 1 where RSM removes
    for m, a, b in zip(masks, lo, hi):
        removed = r[m.bool()]
        kept = r[~m.bool()]
        assert kept.numel() > 0  # never the whole spectrum
        if removed.numel():
            # contiguous in r: nothing kept lies between the smallest and largest removed radius
            inside = (kept >= removed.min()) & (kept <= removed.max())
            assert not bool(inside.any()) and float(b - a) <= 0.5 + 1e-6


def test_cbg_is_zero_exactly_when_the_bands_agree():
    from fuselib.protections.fuse import cross_band_consistency

    a = torch.randn(16, 10)
    assert float(cross_band_consistency(a, a.clone())) == 0.0
    assert float(cross_band_consistency(a, a + 5.0)) < 1e-6  # same softmax
    assert float(cross_band_consistency(a, torch.randn(16, 10))) > 0.01


def test_rsm_removes_every_band_over_training():
    """The bands RSM draws cover the whole spectrum, the lowest radii included."""
    lo, hi = spectral.sample_bands(4000, 0.1, 0.5, torch.Generator().manual_seed(0))
    for r in (0.0, 0.05, 0.5, 0.95, 1.0):
        share = float(((lo <= r) & (r <= hi)).float().mean())
        assert 0.15 < share < 0.45, (r, share)


def test_fit_lowers_the_surrogate_loss_and_is_class_wise(small, tmp_path):
    x, y = small
    p = protections.get("fuse", epochs=4, portion=1.0, batch_size=40, surrogate_steps=5,
                        input="images")
    p.device = torch.device("cpu")
    out = p.fit(x, y).apply(x, y)
    assert int((out.int() - x.int()).abs().max()) <= 8
    assert p.deltas.shape == (10, 3, 32, 32)
    assert len(p.history) == 4 and p.history[-1]["ue"] < p.history[0]["ue"]
    assert "RSM on, CBG on" in p.cost
    q = protections.load(p.save(tmp_path / "fuse.pt"))
    assert q.history == p.history and torch.equal(q.apply(x, y), out)
    assert (tmp_path / "fuse.pt").stat().st_size < 1_000_000  # a small file: ~85k weights + δ
    pngs = p.save_previews(tmp_path / "previews")
    assert len(pngs) == 11 and all(f.is_file() for f in pngs)
    # the trained generator perturbs images of another size, class-wise
    big = torch.nn.functional.interpolate(x[:20].float(), size=(40, 40)).round().to(torch.uint8)
    d = p.perturbations_for(big, y[:20])
    assert d.shape[1:] == (3, 40, 40) and float(d.abs().max()) <= 8 / 255 + 1e-7
    with pytest.raises(ValueError, match="perturbations_for"):
        p.apply(big, y[:20])


def test_resume_after_interruption_gives_the_same_result(small, tmp_path, monkeypatch):
    x, y = small
    cfg = FuseConfig(**TINY)
    whole = FuseTrainer(cfg, "cpu").fit(x, y)

    ckpt = tmp_path / "fuse.ckpt"
    real_save = FuseTrainer._save

    def save_then_die(self, epoch, gen):
        real_save(self, epoch, gen)
        raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(FuseTrainer, "_save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        FuseTrainer(cfg, "cpu", checkpoint=str(ckpt)).fit(x, y)
    monkeypatch.setattr(FuseTrainer, "_save", real_save)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
    resumed = FuseTrainer(cfg, "cpu", checkpoint=str(ckpt)).fit(x, y)
    assert torch.equal(resumed, whole)
    with pytest.raises(ValueError, match=r"another run \(differs in: config\.cbg_kl\)"):
        FuseTrainer(FuseConfig(**{**TINY, "cbg_kl": 2.0}), "cpu", checkpoint=str(ckpt)).fit(x, y)


def test_torchrun_two_cpu_processes(tmp_path):
    """DDP with gloo: two processes train one generator and stay in sync (``--device cpu``, so
    also on a machine with one GPU, where two nccl ranks could not share it)."""
    out = tmp_path / "fuse.pt"
    env = {**os.environ, "FUSELIB_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "-m", "fuselib", "fit", "fuse", "--out", str(out), "--images", "200", "--epochs", "1",
           "--portion", "1.0", "--batch-size", "40", "--surrogate-steps", "2", "--report-sync",
           "--device", "cpu"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    found = dict(re.findall(r"rank (\d)/2 generator ([0-9a-f]{16})", res.stdout))
    assert sorted(found) == ["0", "1"] and found["0"] == found["1"], res.stdout
    p = protections.load(out)
    assert p.deltas.shape == (10, 3, 32, 32) and float(p.deltas.abs().max()) <= 8 / 255 + 1e-7


def test_process_group_backend_follows_the_device(monkeypatch):
    """nccl only for processes that train on CUDA: ``--device cpu`` on a GPU machine is gloo
    (two nccl ranks cannot share one GPU; seen on a lent H100, 2026-11-26)."""
    from fuselib.protections import fuse as fz

    chosen = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(fz.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(fz.dist, "init_process_group", chosen.append)
    monkeypatch.setattr(fz.dist, "get_rank", lambda: 1)
    monkeypatch.setattr(fz.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert fz._dist("cpu") == (1, 2) and fz._dist("cuda") == (1, 2) and fz._dist() == (1, 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fz._dist()
    assert chosen == ["gloo", "nccl", "nccl", "gloo"]


def test_low_pass_rehearsal_setting(small):
    """``rsm_lowpass``: off by default and then absent from the config, so earlier
    FUSE records keep their keys; on, it enters the config and a tiny fit runs."""
    from fuselib.protections.fuse import LATER_DEFAULTS

    plain = protections.get("fuse")
    assert not set(LATER_DEFAULTS) & set(plain.config())
    p = protections.get("fuse:rsm_lowpass=0.5", **TINY)
    assert p.config()["rsm_lowpass"] == 0.5 and "rsm_lowpass_min" not in p.config()
    x, y = small
    p.fit(x, y)
    assert float(p.deltas.abs().max()) <= 8 / 255 + 1e-7 and len(p.history) == TINY["epochs"]
    again = protections.get(p.name, **p.config())  # what load() does
    assert again.config() == p.config()
    with pytest.raises(ValueError, match="lowpass"):
        protections.get("fuse:rsm_lowpass=2")
    q = protections.get("fuse:rsm_lowpass=0.5,rsm_images=True", **TINY).fit(x, y)
    assert q.config()["rsm_images"] is True and not torch.equal(q.deltas, p.deltas)
    assert float(q.deltas.abs().max()) <= 8 / 255 + 1e-7


def test_band_budget_holds_the_low_band_share():
    """``lowband``: share 1 puts the whole perturbation below the cutoff,
    share 0.5 halves both sides, off (0) is the identity."""
    from fuselib import spectral
    from fuselib.protections.fuse import FuseConfig, band_budget

    d = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) - 0.5
    assert torch.equal(band_budget(d, FuseConfig()), d)
    low = band_budget(d, FuseConfig(lowband=0.125, lowband_share=1.0))
    assert torch.allclose(spectral.lowpass(low, 0.125), low, atol=1e-5)  # nothing above it
    assert torch.allclose(low, spectral.lowpass(d, 0.125), atol=1e-6)
    half = band_budget(d, FuseConfig(lowband=0.125, lowband_share=0.5))
    assert torch.allclose(half, 0.5 * d, atol=1e-5)
    with pytest.raises(ValueError, match="lowband_share"):
        protections.get("fuse:lowband=0.125,lowband_share=1.5")


def test_lowband_and_fast_fits_keep_the_budget_and_the_old_keys(small):
    from fuselib import spectral

    assert "lowband" not in protections.get("fuse").config()
    assert "fast" not in protections.get("fuse").config()
    x, y = small
    p = protections.get("fuse:lowband=0.125,lowband_share=1.0,fast=True", **TINY).fit(x, y)
    assert p.config()["lowband"] == 0.125 and p.config()["fast"] is True
    assert float(p.deltas.abs().max()) <= 8 / 255 + 1e-7
    # the class perturbations live below the cutoff (the final clip to ε may leak a little)
    above = p.deltas - spectral.lowpass(p.deltas, 0.125)
    assert float(above.pow(2).sum()) < 0.05 * float(p.deltas.pow(2).sum())


def test_a_run_seed_seeds_the_protection_fit():
    """grid(seeds=...) varies the fit and the classifier together; seed 0 (every shipped
    record's) leaves the config as it was, and a spec's own seed wins."""
    from fuselib.experiments import build_config

    c0, p0, _ = build_config("fuse", seed=0)
    c2, p2, _ = build_config("fuse", seed=2)
    assert p0.seed == 0 and p2.seed == 2 and c2["protection"]["seed"] == 2
    assert c0["protection"]["seed"] == 0
    _, p5, _ = build_config("fuse:seed=5", seed=2)
    assert p5.seed == 5
