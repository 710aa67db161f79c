import os

import pytest
import torch

os.environ.setdefault("FUSELIB_PROGRESS", "0")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def results_tmp(tmp_path, monkeypatch):
    """An empty results cache for one test."""
    monkeypatch.setenv("FUSELIB_RESULTS", str(tmp_path / "results"))
    (tmp_path / "measured").mkdir()
    monkeypatch.setenv("FUSELIB_MEASURED", str(tmp_path / "measured"))  # none shipped
    monkeypatch.delenv("FUSELIB_RECOMPUTE", raising=False)
    return tmp_path / "results"


@pytest.fixture
def crash_in_epoch_two(monkeypatch):
    """``with crash_in_epoch_two():`` trains until the end of epoch 2's training pass, then
    raises KeyboardInterrupt (as a Ctrl-C would) — epoch 1 is finished and checkpointed."""
    import contextlib

    from fuselib import train as T

    real = T.evaluate

    @contextlib.contextmanager
    def armed():
        calls = []

        def evaluate(*a, **k):
            calls.append(1)
            if len(calls) == 2:
                raise KeyboardInterrupt
            return real(*a, **k)

        monkeypatch.setattr(T, "evaluate", evaluate)
        try:
            with pytest.raises(KeyboardInterrupt):
                yield
        finally:
            monkeypatch.setattr(T, "evaluate", real)

    return armed


@pytest.fixture(scope="session")
def cifar_small():
    """A few hundred local CIFAR-10 images (uint8) and labels."""
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    return x[:256], y[:256]
