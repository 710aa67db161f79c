"""The ground floor's shared checkpoint loader and fit clock, on their own."""
import pytest
import torch

from fuselib.utils import FitClock, atomic_save, load_checkpoint


def test_load_checkpoint_names_what_differs(tmp_path):
    """No file: None. Another format: refused by kind. Another run: refused with every entry
    that differs, dotted inside dicts, including a key only one side has."""
    path = tmp_path / "run.pt"
    stamp = {"config": {"eps": 8, "steps": 10}, "seed": 0}
    assert load_checkpoint(path, "x/1", stamp, "a test") is None
    assert load_checkpoint(None, "x/1", stamp, "a test") is None
    atomic_save({"format": "x/1", **stamp, "weights": torch.ones(2)}, path)
    state = load_checkpoint(path, "x/1", stamp, "a test")
    assert torch.equal(state["weights"], torch.ones(2))
    with pytest.raises(ValueError, match=r"is not a checkpoint of a test \(y/1\)"):
        load_checkpoint(path, "y/1", stamp, "a test")
    other = {"config": {"eps": 4, "steps": 10, "mode": "class"}, "seed": 1}
    with pytest.raises(ValueError, match=r"differs in: config\.eps, config\.mode, seed\)"):
        load_checkpoint(path, "x/1", other, "a test")


def test_fit_clock_adds_the_time_a_checkpoint_carried_in():
    clock = FitClock()
    assert clock.before == 0.0 and 0.0 <= clock.seconds() < 60
    clock.resume({"seconds": 100.0})  # a checkpoint written after 100 s of fitting
    assert clock.before == 100.0 and 100.0 <= clock.seconds() < 160
    clock.resume({})  # a checkpoint from before fits were timed counts nothing earlier
    assert clock.before == 0.0 and clock.seconds() < 60
