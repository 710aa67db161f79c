"""Sharing a grid or plan out among workers (``fuselib grid --worker I/N``): every run is made by
exactly one worker, and every run that uses a fit is made by the worker that makes the fit."""
import pytest
import torch

from fuselib import cli
from fuselib import experiments as E
from fuselib.experiments import sweeps


@pytest.fixture
def fake_runs(monkeypatch):
    """Replace training by a record of which runs were asked for."""
    calls = []

    def fake(protection="none", countermeasure="none", arch=None, seed=0, **common):
        calls.append((protection, countermeasure, seed))
        return {"recipe": {"arch": "fastnet"}, "config": {"trainer": "fast", "scale": "ci"},
                "accuracy": 0.5, "peak_accuracy": 0.5, "peak_epoch": 1, "seconds": 0.0,
                "cached": False, "curve": [0.5], "key": f"{protection}-{countermeasure}-{seed}"}

    monkeypatch.setattr(sweeps, "run", fake)
    return calls


def test_parse_worker():
    assert sweeps.parse_worker("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0", ""):
        with pytest.raises(ValueError, match="I/N"):
            sweeps.parse_worker(bad)


def test_shares_split_the_fits_without_overlap():
    fits = list("abcdefg")
    shares = [sweeps.share(fits, (i, 3)) for i in (1, 2, 3)]
    assert set().union(*shares) == set(fits)
    assert sum(len(s) for s in shares) == len(fits)
    assert shares[0] == {"a", "d", "g"}


def test_runs_of_one_fit_go_to_one_worker(fake_runs):
    grid = dict(protections=["none", "random", "em"], countermeasures=["none", "lowpass:0.25"],
                seeds=[0, 1], scale="ci")
    done = []
    for i in (1, 2):
        fake_runs.clear()
        df = E.grid(worker=(i, 2), **grid)
        assert len(df) == len(fake_runs)
        done.append(list(fake_runs))
    everything = [(p, c, s) for p in grid["protections"] for c in grid["countermeasures"]
                  for s in grid["seeds"]]
    assert sorted(done[0] + done[1]) == sorted(everything)   # each run once, by one worker
    fits = [{(p, s) for p, _, s in d} for d in done]
    assert not fits[0] & fits[1]                              # a fit belongs to one worker
    assert len(fits[0]) == len(fits[1]) == 3                  # six fits dealt evenly


def test_a_plans_workers_agree_across_its_blocks(fake_runs):
    """main_table's seed-0 runs of the seeded protections are in two blocks: both must go to
    the worker that makes the seed-0 fit, or two workers would make it at once."""
    plan = E.plans.get("main_table")
    fits = plan.fits("full")
    assert len(fits) == len(set(fits)) == 16 + 6 * 2
    shares = [plan.share("full", (i, 2)) for i in (1, 2)]
    assert not set(shares[0]) & set(shares[1])
    assert len(shares[0]) + len(shares[1]) == 28
    trained = []
    for i in (1, 2):
        fake_runs.clear()
        plan.run("full", worker=(i, 2))
        assert {(p, s) for p, _, s in fake_runs} == set(shares[i - 1])
        trained += fake_runs
    # every run of the plan asked for, the seed-0 cells of the second block by the same worker
    assert len(set(trained)) == plan.size("full")


def test_a_worker_given_one_seed_makes_its_share_of_the_whole_plan(fake_runs):
    """``bench/queue.sh`` hands each worker one seed at a time, and the two workers reach a
    seed at different times: a seed's share must not depend on which seeds a worker was given,
    or both would make one fit (and neither another). Dealt seed by seed, five protections
    alternate between two workers from one seed to the next."""
    plan = E.plans.get("victims")
    whole = [plan.share("cpu", (i, 2)) for i in (1, 2)]
    for i in (1, 2):
        by_seed = [pair for s in (0, 1, 2) for pair in plan.share("cpu", (i, 2), seeds=[s])]
        assert sorted(by_seed) == sorted(whole[i - 1])
        fake_runs.clear()
        plan.run("cpu", seeds=[1], worker=(i, 2))
        assert {(p, s) for p, _, s in fake_runs} == {(p, s) for p, s in whole[i - 1] if s == 1}
    assert not set(whole[0]) & set(whole[1]) and len(whole[0]) + len(whole[1]) == 15
    assert [len(whole[0]), len(whole[1])] == [8, 7]                 # 24 and 21 runs, not 27 and 18
    assert {p for p, s in whole[0] if s == 0} == {p for p, s in whole[1] if s == 1}


def test_worker_through_the_command_line(fake_runs, results_tmp, capsys):
    threads = torch.get_num_threads()
    try:
        assert cli.main(["grid", "none", "random", "--countermeasures", "none", "lowpass:0.25",
                         "--worker", "2/2", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert {p for p, _, _ in fake_runs} == {"random"}
    assert cli.main(["grid", "--plan", "main_table", "--scale", "full", "--worker", "1/2",
                     "--list"]) == 0
    out = capsys.readouterr().out
    assert "worker 1 of 2: 14 of the 28 fits" in out and "fuse seed 0" in out


@pytest.mark.parametrize("argv, needle", [
    (["--worker", "3/2"], "write I/N"),
    (["--worker", "1/2", "--cached-only"], "not with --cached-only"),
])
def test_bad_worker_is_one_line(argv, needle, fake_runs, results_tmp, capsys):
    assert cli.main(["grid", "none", *argv]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not fake_runs


def test_a_plans_queue_says_where_each_run_stands(results_tmp, crash_in_epoch_two, capsys):
    """``fuselib grid --plan P --list``: each run measured, part-trained (its checkpointed
    epoch) or to run, in the order a worker makes them, and the cost of the rest."""
    from fuselib.cli.grid import _print_queue
    from fuselib.experiments.plans import Block, Plan

    plan = Plan("tiny", "two tiny runs", {"*": (Block(("none",), ("none", "lowpass:0.25"),
                                                      seeds=(4,)),)})
    tiny = dict(n_train=300, n_test=100, epochs=2,
                recipe={"batch_size": 64, "model_kwargs": {"widths": (8, 16, 16), "stem": 8}})
    before = plan.queue("ci", **tiny)
    assert [(q["countermeasure"], q["record"], q["epoch"], q["epochs"]) for q in before] == [
        ("none", None, None, 2), ("lowpass:0.25", None, None, 2)]
    assert plan.queue("ci", worker=(2, 2), **tiny) == []     # one fit: worker 1 makes it all
    with crash_in_epoch_two():
        E.run(protection="none", countermeasure="lowpass:0.25", seed=4, scale="ci", **tiny)
    done = E.run(protection="none", seed=4, scale="ci", **tiny)
    after = plan.queue("ci", worker=(1, 2), **tiny)
    assert after[0]["record"]["key"] == done["key"] == after[0]["key"]
    assert after[1]["record"] is None and after[1]["epoch"] == 1
    _print_queue(after, (1, 2))
    out = capsys.readouterr().out
    assert "worker 1 makes them" in out and "part-trained: epoch 1 of 2 checkpointed" in out
    hours = done["seconds"] / 3600
    assert (f"1 measured, 1 part-trained, 0 to run; at the measured runs' mean ({hours:.2f} h, "
            f"over 1), about {hours / 2:.1f} h of compute left") in out
