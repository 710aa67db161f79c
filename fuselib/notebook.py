"""What every notebook does first: check its parameters, seed, pick the device, point the data
search at ``data_root``, and set plotly's renderer so executed notebooks keep their figures.

    env = fuselib.notebook.setup(scale, seed, data_root, device)
"""
from __future__ import annotations

import os
import random
import sys
from dataclasses import dataclass

import numpy as np
import torch

from .experiments import SCALES

REPO = "fuselib/fuselib"  # where the project is published (README badges, Colab install)


@dataclass
class Env:
    scale: str
    seed: int
    device: torch.device
    n_train: int | None
    colab: bool

    def __str__(self) -> str:
        n = "all" if self.n_train is None else f"{self.n_train:,}"
        return (f"scale {self.scale!r} ({n} training images) | seed {self.seed} | "
                f"device {self.device} | torch {torch.__version__} | "
                f"{torch.get_num_threads()} CPU threads")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def setup(scale: str = "ci", seed: int = 0, data_root=None, device=None,
          threads: int | None = None, download=None) -> Env:
    """``download``: fetch CIFAR-10 when it is not found locally (default: only on Colab)."""
    if scale not in SCALES or scale == "smoke":
        raise ValueError(f"scale must be one of {', '.join(s for s in SCALES if s != 'smoke')}"
                         f" (smoke is for grid plumbing checks, not notebooks); got {scale!r}")
    if data_root is not None:
        if not os.path.isdir(data_root):
            raise FileNotFoundError(f"data_root {data_root!r} is not a folder")
        os.environ["FUSELIB_DATA"] = str(data_root)
    if threads:
        torch.set_num_threads(int(threads))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dev = torch.device(device) if device else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    if download or (download is None and in_colab()):
        from . import data
        data.find("cifar10", download=True)
    import plotly.io as pio
    # figures go into the notebook file with their data (plotly.js included once), so they
    # survive papermill and open offline in JupyterLab and classic Jupyter; Colab has its own
    pio.renderers.default = "colab" if in_colab() else "plotly_mimetype+notebook"
    return Env(scale, int(seed), dev, SCALES[scale]["n_train"], in_colab())


def final_peak(final, peak=None, digits: int = 2):
    """A table of accuracies (%) as text, ``"final (peak)"`` when ``peak`` is given; cells not
    measured (NaN) left blank."""
    def cell(f, p=None):
        if f != f:  # NaN
            return ""
        return f"{f:.{digits}f}" if p is None else f"{f:.{digits}f} ({p:.{digits}f})"

    import pandas as pd

    if peak is None:
        return final.map(cell)
    peak = peak.reindex(index=final.index, columns=final.columns)
    return pd.DataFrame([[cell(f, p) for f, p in zip(fr, pr)]
                         for fr, pr in zip(final.to_numpy(), peak.to_numpy())],
                        index=final.index, columns=final.columns)
