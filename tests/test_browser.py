"""A real browser on the interactive notebook: JupyterLab started here, notebook 06 opened in
headless Chromium (Selenium, the system ``chromium`` and ``chromedriver``; nothing downloaded),
every cell run at ``ci`` scale, the cutoff slider moved with the keyboard, and the view asserted
to follow it. Screenshots before and after go to ``results/screenshots/``.

Skipped when Chromium, chromedriver or Selenium are absent (``.ci/run`` installs Chromium and
chromedriver; Debian: ``apt-get install chromium chromium-driver``). What the browser found
(the explorer's figures drawn outside its Output widget, so a slider move redrew nothing) is
also checked without a browser.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = "06_interactive_cutoff.ipynb"
SHOTS = REPO / "results" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
JUPYTER_LAB = Path(sys.executable).with_name("jupyter-lab")

try:
    import selenium  # noqa: F401
except ImportError:  # pragma: no cover - the dev extra installs it
    selenium = None



def needs_browser(test):
    for mark in (
            pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                               reason="needs Chromium and chromedriver (apt-get install "
                                      "chromium chromium-driver)"),
            pytest.mark.skipif(selenium is None,
                               reason="needs selenium (pip install -e '.[dev]')"),
            pytest.mark.skipif(not JUPYTER_LAB.exists(),
                               reason="needs jupyterlab (the dev extra)")):
        test = mark(test)
    return test


START_TIMEOUT = 120   # JupyterLab's server and its page, on a busy 2-core machine
RUN_TIMEOUT = 600     # every cell of the notebook at ci scale
UPDATE_TIMEOUT = 120  # the view after the slider moved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(what: str, check, timeout: float, every: float = 0.5):
    """Poll ``check()`` until it returns something truthy; fail naming ``what`` otherwise."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            got = check()
        except AssertionError:  # a definite failure (a cell raised, the server exited)
            raise
        except Exception as e:  # noqa: BLE001 - a page still loading raises all sorts
            got, last = None, e
        if got:
            return got
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last})")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free localhost port with a token, serving a copy of the notebook, with
    its own settings, workspaces, result cache and figure folder (nothing of the user's)."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "root"
    (root / "notebooks").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # no "receive Jupyter news?" toast over the notebook
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = _free_port(), os.urandom(16).hex()
    env = {**os.environ,
           "JUPYTER_CONFIG_DIR": str(tmp / "config"),  # no user config, kernels or settings
           "JUPYTER_DATA_DIR": str(tmp / "data"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "FUSELIB_RESULTS": str(tmp / "results"),   # anything the notebook caches
           "FUSELIB_FIGURES": str(tmp / "figures"),   # the figures it saves
           "FUSELIB_PROGRESS": "0"}
    env.pop("FUSELIB_RECOMPUTE", None)
    log = open(tmp / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [str(JUPYTER_LAB), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.open_browser=False"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited:\n{(tmp / 'jupyterlab.log').read_text()}")
        with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
            return r.status == 200

    try:
        _wait_for("JupyterLab's server", up, START_TIMEOUT)
        yield {"url": f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}", "log": tmp}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1100", "--hide-scrollbars", "--no-first-run",
                "--disable-extensions"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(START_TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()


def _cutoff_view(driver):
    """What the widget shows now: the slider's readout, the label under it, the figure title."""
    return driver.execute_script("""
        const out = [...document.querySelectorAll('.jp-OutputArea-output')];
        const box = out.find(o => o.querySelector('.widget-hslider'));
        if (!box) return null;
        const readout = box.querySelector('.widget-hslider .widget-readout');
        const label = box.querySelector('.widget-html-content');
        const titles = [...box.querySelectorAll('.gtitle')].map(t => t.textContent);
        return {readout: readout && readout.textContent.trim(),
                label: label && label.textContent.trim(), titles: titles};
    """)


def _menu(d, menu: str, item: str) -> None:
    """Click ``menu`` in JupyterLab's menu bar, then its entry ``item``."""
    from selenium.webdriver.common.by import By

    def find(css, text):
        return next((e for e in d.find_elements(By.CSS_SELECTOR, css)
                     if e.is_displayed() and e.text.strip() == text), None)

    _wait_for(f"the {menu!r} menu", lambda: find(".lm-MenuBar-itemLabel", menu),
              START_TIMEOUT).click()
    _wait_for(f"{menu} > {item}", lambda: find(".lm-Menu-itemLabel", item),
              START_TIMEOUT).click()


def test_explorer_draws_into_its_output_widget():
    """Without a browser: every draw, the first and each after a slider move, puts both
    figures into the widget's own Output (the browser test found them going elsewhere)."""
    import torch

    from fuselib import widgets

    clean = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    prot = (clean.int() + torch.randint(-8, 9, clean.shape)).clamp(0, 255).to(torch.uint8)
    box = widgets.cutoff_explorer(clean, prot, cutoffs=[0.25, 0.5, 0.75], scale="ci")
    slider, out = box.children[0].children[0], box.children[2]

    def titles():
        assert len(out.outputs) == 2
        assert all("application/vnd.plotly.v1+json" in o["data"] for o in out.outputs)
        return [o["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
                for o in out.outputs]

    assert "cutoff 0.50" in titles()[0]
    slider.value = 0.75
    assert "cutoff 0.75" in titles()[0]


@needs_browser
def test_cutoff_slider_updates_the_view(lab, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        _check_cutoff_slider(lab, browser)
    except BaseException:
        browser.save_screenshot(str(SHOTS / "06_interactive_failure.png"))
        log = (lab["log"] / "jupyterlab.log").read_text()[-4000:]
        print(f"screenshot: {SHOTS / '06_interactive_failure.png'}\nJupyterLab log:\n{log}")
        raise


def _check_cutoff_slider(lab, d):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    t0 = time.monotonic()
    d.get(lab["url"])
    _wait_for("the notebook and its kernel", lambda: d.execute_script("""
        const app = window.jupyterapp;
        const w = app && app.shell.currentWidget;
        const s = w && w.sessionContext;
        return s && s.session && s.session.kernel && s.session.kernel.status === 'idle'
               && w.content && w.content.widgets.length > 0;"""), START_TIMEOUT)
    # Run -> Run All Cells, from the menu bar
    _menu(d, "Run", "Run All Cells")

    def all_ran():
        st = d.execute_script("""
            const w = window.jupyterapp.shell.currentWidget;
            const cells = w.content.widgets.filter(c => c.model.type === 'code');
            return {status: w.sessionContext.session.kernel.status,
                    counts: cells.map(c => c.model.executionCount),
                    errors: cells.flatMap(c => c.model.outputs.toJSON())
                                 .filter(o => o.output_type === 'error')
                                 .map(o => o.ename + ': ' + o.evalue)};""")
        assert not st["errors"], f"a cell raised: {st['errors']}"
        return st["status"] == "idle" and all(c is not None for c in st["counts"])

    _wait_for("every cell to run", all_ran, RUN_TIMEOUT, every=1)
    before = _wait_for("the cutoff explorer with its figure", lambda: (
        (v := _cutoff_view(d)) and v["readout"] and v["titles"] and v), UPDATE_TIMEOUT)
    handle = d.find_element(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-hslider "
                                             ".noUi-handle")
    d.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
    d.save_screenshot(str(SHOTS / "06_interactive_before.png"))

    handle.send_keys(Keys.ARROW_RIGHT)  # one step up: the next measured cutoff

    def moved():
        v = _cutoff_view(d)
        return v and v["readout"] != before["readout"] and v["titles"] != before["titles"] \
            and v
    after = _wait_for("the view to follow the slider", moved, UPDATE_TIMEOUT)
    d.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
    d.save_screenshot(str(SHOTS / "06_interactive_after.png"))

    old, new = float(before["readout"]), float(after["readout"])
    assert new > old, (before, after)
    # the figure is redrawn at the new cutoff, and the accuracy line says what it shows there
    assert any(f"cutoff {old:.2f}" in t for t in before["titles"]), before
    assert any(f"cutoff {new:.2f}" in t for t in after["titles"]), after
    if "measured at cutoff" in before["label"]:  # measured runs at this scale: the number
        assert after["label"] != before["label"], (before, after)
    else:                                       # none (ci): it says so, at every cutoff
        assert "no measured accuracy" in after["label"], after
    print(f"browser check: {time.monotonic() - t0:.0f} s; {before} -> {after}")
