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


@pytest.fixture(scope="session")
def cifar_small():
    """A few hundred local CIFAR-10 images (uint8) and labels."""
    import fuselib

    x, y = fuselib.data.load("cifar10", "test")
    return x[:256], y[:256]
