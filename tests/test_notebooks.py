"""The notebooks' contract: each ``notebooks/NN_*.ipynb`` has its ``py:percent`` twin with the
same cells, a papermill ``parameters`` cell with the four standard parameters, and writes its
figures through ``plots.save`` under a name that carries the scale. (The notebooks themselves
run under nbval at ``ci`` scale: ``pytest --nbval-lax notebooks/``.)"""
import re
from pathlib import Path

import jupytext
import pytest

NB = Path(__file__).resolve().parent.parent / "notebooks"
PAIRS = sorted(NB.glob("[0-9][0-9]_*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_every_notebook_is_paired():
    assert len(PAIRS) >= 7
    ipynbs = sorted(NB.glob("[0-9][0-9]_*.ipynb"))
    assert [p.stem for p in ipynbs] == [p.stem for p in PAIRS]


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_pair_in_sync(py):
    a = jupytext.read(py)
    b = jupytext.read(py.with_suffix(".ipynb"))
    assert _cells(a) == _cells(b), f"{py.name} and its .ipynb differ: run `jupytext --sync {py}`"


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_parameters_cell(py):
    nb = jupytext.read(py)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters' (papermill)"
    src = params[0].source
    for name, default in [("scale", '"ci"'), ("seed", "0"), ("data_root", "None"),
                          ("device", "None")]:
        assert re.search(rf"^{name} = {re.escape(default)}", src, re.M), (name, src)


@pytest.mark.parametrize("py", PAIRS, ids=lambda p: p.stem)
def test_figures_name_their_scale(py):
    text = py.read_text()
    names = re.findall(r"plots\.save\([^,]+,\s*f?\"([^\"]+)\"", text)
    # the notebook's scale, the scale of the records shown ({shown}: full, else cpu), or the
    # one scale a figure always reads (e.g. "_full")
    assert all("{scale}" in n or "{shown}" in n or re.search(r"_(cpu|full|paper)$", n)
               for n in names), names
