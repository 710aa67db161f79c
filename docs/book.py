"""The companion site (Jupyter Book 1.x): stage its sources, check the built site's links, and
take its screenshots. The Makefile's ``book``, ``book-check`` and ``book-screenshots`` run it.

``python docs/book.py stage [--committed]`` mirrors the pages named in ``docs/_toc.yml`` (the
README, RESULTS.md, the docs, the notebooks) into ``docs/_build/src/`` at their repository
paths, with ``docs/_config.yml`` and ``docs/_toc.yml`` beside them, so every relative link in
them means what it means on GitHub. Each numbered notebook is taken executed from
``results/notebooks/cpu/`` where ``make reproduce`` wrote it, else as committed (without
outputs; ``--committed`` always takes the committed one). Links to a notebook's py:percent twin
(``notebooks/04_main_results.py``) are pointed at its page; any other file a page links to
(source, a benchmark's output) is copied too, and becomes a download in the site. A plotly
figure's output keeps only its HTML (plotly.js inline in the first, so figures work offline),
without the MathJax it would load from a CDN. Files are only rewritten when they changed, so a
rebuild is incremental.

``python docs/book.py check [HTML_DIR]`` parses every page of the built site and checks that
each relative ``href``/``src`` names a file inside the site and each ``#fragment`` an id on its
page; offline (external links are counted, not fetched). Exit status 1 on any broken link.

``python docs/book.py screenshots [HTML_DIR]``: the front page and the first notebook page with
a plotly figure, once plotly has drawn it, in headless Chromium into ``results/screenshots/``.
"""
from __future__ import annotations

import argparse
import json
import posixpath
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
SRC = DOCS / "_build" / "src"
HTML = DOCS / "_build" / "html"
EXECUTED = REPO / "results" / "notebooks" / "cpu"
NOTEBOOK = re.compile(r"notebooks/\d\d_[A-Za-z0-9_]+")
PLOTLY_JSON = "application/vnd.plotly.v1+json"
# plotly's notebook renderer loads MathJax from a CDN with each figure; none of ours uses TeX
MATHJAX_CDN = re.compile(r'<script src="https://[^"]*/mathjax/[^"]*"></script>')
LINK = re.compile(r"(\]\()([^)\s]+)(\))")   # a Markdown link's target: [text](target)


def _toc_pages(toc: dict) -> list[str]:
    """The repository paths (no suffix) of the pages named in _toc.yml, globs expanded."""
    out: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for key, val in node.items():
                if key in ("root", "file"):
                    out.append(val)
                elif key == "glob":
                    out.extend(sorted(str(p.relative_to(REPO).with_suffix(""))
                                      for p in REPO.glob(val + ".ipynb")))
                else:
                    walk(val)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return out


def _source(page: str) -> Path:
    for suffix in (".md", ".ipynb"):
        if (REPO / (page + suffix)).exists():
            return REPO / (page + suffix)
    raise SystemExit(f"docs/_toc.yml names {page!r}, which is neither {page}.md nor {page}.ipynb")


def _rewrite(text: str, page: Path, pages: set[str], downloads: set[str]) -> str:
    """Point links at twins' notebook pages; note the other local files linked to."""
    here = posixpath.dirname(page.relative_to(REPO).as_posix())

    def fix(m):
        target = m.group(2)
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not parts.path or target.startswith("/"):
            return m.group(0)
        rel = posixpath.normpath(posixpath.join(here, unquote(parts.path)))
        stem, suffix = posixpath.splitext(rel)
        if suffix == ".py" and NOTEBOOK.fullmatch(stem) and stem in pages:
            new = posixpath.splitext(parts.path)[0] + ".ipynb"
            return m.group(1) + new + (f"#{parts.fragment}" if parts.fragment else "") + m.group(3)
        if stem not in pages and (REPO / rel).is_file():
            downloads.add(rel)
        return m.group(0)  # anything else missing is left for Sphinx to warn about

    return LINK.sub(fix, text)


def _notebook(path: Path, at: Path, pages: set[str], downloads: set[str]) -> str:
    """The notebook at ``path`` with its links rewritten as if it lay at ``at``."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = _rewrite(src, at, pages, downloads)
        for out in cell.get("outputs", ()):
            if "text/html" in out.get("data", {}):  # a plotly figure: its HTML (plotly.js
                out["data"].pop(PLOTLY_JSON, None)   # inline) is what a page can show, and
                html = out["data"]["text/html"]      # MathJax from a CDN it does not need
                html = "".join(html) if isinstance(html, list) else html
                out["data"]["text/html"] = MATHJAX_CDN.sub("", html)
            md = out.get("data", {}).get("text/markdown")
            if md is not None:
                md = "".join(md) if isinstance(md, list) else md
                out["data"]["text/markdown"] = _rewrite(md, at, pages, downloads)
    return json.dumps(nb, ensure_ascii=False, indent=1) + "\n"


def _write(path: Path, data: bytes, written: set[Path]) -> None:
    written.add(path)
    if path.exists() and path.read_bytes() == data:
        return  # unchanged: Sphinx keeps its cached page
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def stage(committed: bool = False, dest: Path = SRC) -> None:
    import yaml

    toc = yaml.safe_load((DOCS / "_toc.yml").read_text(encoding="utf-8"))
    pages = _toc_pages(toc)
    page_set = set(pages)
    downloads: set[str] = set()
    written: set[Path] = set()
    executed = []
    for page in pages:
        src = _source(page)
        rel = src.relative_to(REPO)
        if src.suffix == ".ipynb":
            run = EXECUTED / src.name
            if not committed and NOTEBOOK.fullmatch(page) and run.exists():
                executed.append(src.name)
                text = _notebook(run, src, page_set, downloads)  # links as from notebooks/
            else:
                text = _notebook(src, src, page_set, downloads)
        else:
            text = _rewrite(src.read_text(encoding="utf-8"), src, page_set, downloads)
        _write(dest / rel, text.encode("utf-8"), written)
    for rel in sorted(downloads):
        _write(dest / rel, (REPO / rel).read_bytes(), written)
    for name in ("_config.yml", "_toc.yml"):
        _write(dest / name, (DOCS / name).read_bytes(), written)
    for path in sorted((DOCS / "_static").rglob("*")):  # custom.css: found there by the book
        if path.is_file():
            _write(dest / path.relative_to(DOCS), path.read_bytes(), written)
    for path in sorted(dest.rglob("*"), reverse=True):  # what an earlier stage left behind
        if path.is_file() and path not in written:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    nbs = sum(p.startswith("notebooks/") and NOTEBOOK.fullmatch(p) is not None for p in pages)
    print(f"staged {len(pages)} pages and {len(downloads)} linked files into "
          f"{dest.relative_to(REPO)}/; notebooks executed ({EXECUTED.relative_to(REPO)}/): "
          f"{', '.join(executed) or 'none'}; the other {nbs - len(executed)} as committed")


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            if attrs.get(key) and (tag != "link" or key == "href"):
                self.links.append(attrs[key])


def check(root: Path = HTML) -> int:
    root = root.resolve()
    # the theme's Jinja macro files under _static/ are templates, not pages
    pages = sorted(p for p in root.rglob("*.html") if "_static" not in p.relative_to(root).parts)
    if not pages:
        print(f"no HTML pages under {root}; build the site first (make book)")
        return 1
    parsed: dict[Path, _Page] = {}

    def parse(path: Path) -> _Page:
        if path not in parsed:
            parsed[path] = p = _Page()
            p.feed(path.read_text(encoding="utf-8", errors="replace"))
        return parsed[path]

    broken, checked, external = [], 0, 0
    for page in pages:
        for link in parse(page).links:
            parts = urlsplit(link)
            if parts.scheme in ("http", "https", "mailto") or parts.netloc:
                external += 1
                continue
            if parts.scheme:  # data:, javascript:
                continue
            checked += 1
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(root)}: {link}"
            if root not in target.parents and target != root:
                broken.append(f"{where} (outside the site)")
            elif not target.is_file():
                broken.append(f"{where} (no such file)")
            elif parts.fragment and target.suffix == ".html" \
                    and unquote(parts.fragment) not in parse(target).ids:
                broken.append(f"{where} (no id {parts.fragment!r} there)")
    for line in broken:
        print("broken link:", line)
    print(f"{len(pages)} pages, {checked} internal links checked, {len(broken)} broken; "
          f"{external} external links not checked (offline)")
    return 1 if broken else 0


def screenshots(root: Path = HTML, out: Path = REPO / "results" / "screenshots") -> int:
    """The built site's front page, and the first notebook page with a plotly figure scrolled to
    that figure once plotly has drawn it, in headless Chromium (Selenium, the system chromium
    and chromedriver, as tests/test_browser.py drives them) into ``out``. Exit status 1 when no
    page has a figure or none is drawn."""
    import shutil
    import time

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    root = root.resolve()
    figured = [p for p in sorted((root / "notebooks").glob("*.html"))
               if "plotly-graph-div" in p.read_text(encoding="utf-8", errors="replace")]
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1800,1000", "--hide-scrollbars", "--no-first-run",
                "--disable-extensions"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")),
                              options=opts)
    driver.set_page_load_timeout(120)
    out.mkdir(parents=True, exist_ok=True)
    try:
        driver.get((root / "index.html").as_uri())  # a redirect to the README's page
        time.sleep(1)
        driver.save_screenshot(str(out / "book_front_page.png"))
        print(f"{out / 'book_front_page.png'}: {driver.title}")
        if not figured:
            print("no notebook page has a plotly figure: run make reproduce, then make book")
            return 1
        page = figured[0]
        driver.get(page.as_uri())
        deadline = time.time() + 60
        while not (drawn := driver.find_elements(By.CSS_SELECTOR,  # figures plotly has drawn
                                                 ".plotly-graph-div:has(.main-svg)")):
            if time.time() > deadline:
                print(f"{page.name}: plotly drew no figure in 60 s")
                return 1
            time.sleep(0.5)
        fig = drawn[0].find_element(By.XPATH, "./ancestor::div[contains(@class, 'cell')][1]")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", fig)
        time.sleep(1)
        shot = out / f"book_notebook_{page.stem}.png"
        driver.save_screenshot(str(shot))
        print(f"{shot}: {driver.title} ({len(drawn)} plotly figure(s) drawn)")
    finally:
        driver.quit()
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stage", help="mirror the book's pages into docs/_build/src/")
    st.add_argument("--committed", action="store_true",
                    help="the committed notebooks, even where executed ones exist")
    ck = sub.add_parser("check", help="check every internal link of the built site")
    ck.add_argument("html", nargs="?", type=Path, default=HTML)
    sh = sub.add_parser("screenshots", help="the front page and a notebook page with a figure, "
                        "in headless Chromium, into results/screenshots/")
    sh.add_argument("html", nargs="?", type=Path, default=HTML)
    args = ap.parse_args(argv)
    if args.cmd == "screenshots":
        return screenshots(args.html)
    if args.cmd == "stage":
        stage(args.committed)
        return 0
    return check(args.html)


if __name__ == "__main__":
    sys.exit(main())
