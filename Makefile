# Two commands do everything on a fresh machine:  make reproduce  (the main job: every notebook
# at cpu scale)  and  make test  (the import contract, then pytest). Each creates .venv (if
# missing) and installs what it needs into it.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.14.1 torchvision==0.29.1
SCALE  ?= ci
BIN    := $(VENV)/bin

.PHONY: demo test install bench reproduce verify screenshots notebooks results book book-check book-screenshots clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/python -c "import fuselib; print('fuselib', fuselib.__version__, 'installed')"
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/fuselib demo --scale $(SCALE)

test: $(BIN)/.installed
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

# RESULTS.md and the README's generated blocks, from results/measured and the named plans
results: $(BIN)/.installed
	$(BIN)/fuselib results

# every notebook, executed by papermill at $(SCALE) (default cpu here), in order; executed copies
# go to results/notebooks/$(SCALE)/, figures to figures/; a rerun reuses the result cache, and
# runs shipped in results/measured/ are read, not retrained, unless RECOMPUTE=1
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
RSCALE    ?= $(if $(filter command line,$(origin SCALE)),$(SCALE),cpu)
RECOMPUTE ?= 0
reproduce: $(BIN)/.installed
	@mkdir -p results/notebooks/$(RSCALE)
	@start=$$(date +%s); for nb in $(NOTEBOOKS); do \
	  t0=$$(date +%s); \
	  FUSELIB_RECOMPUTE=$(RECOMPUTE) $(BIN)/papermill -k python3 --cwd notebooks -p scale $(RSCALE) --log-level WARNING \
	    $$nb results/notebooks/$(RSCALE)/$$(basename $$nb) || exit 1; \
	  echo "$$(basename $$nb): $$(( $$(date +%s) - t0 )) s"; \
	done; echo "all notebooks at scale $(RSCALE): $$(( $$(date +%s) - start )) s"

# recompute $(SAMPLE) shipped run records of $(RSCALE) from scratch (refit + retrain, no cache)
# and compare with what results/measured says; about 4-20 minutes a record at cpu scale
SAMPLE ?= 3
verify: $(BIN)/.installed
	$(BIN)/fuselib verify --scale $(RSCALE) --sample $(SAMPLE)

# keep each notebook's .ipynb and py:percent twin in sync after editing either
notebooks: $(BIN)/.installed
	$(BIN)/jupytext --sync notebooks/[0-9][0-9]_*.ipynb

# render every HTML figure of $(RSCALE) in headless Chromium (Debian: apt-get install chromium)
# into results/screenshots/, to check that the figures open in a browser, offline
CHROMIUM ?= chromium
screenshots:
	@mkdir -p results/screenshots; for f in figures/*_$(RSCALE).html; do \
	  $(CHROMIUM) --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,650 \
	    --screenshot=results/screenshots/$$(basename $$f .html).png file://$$PWD/$$f 2>/dev/null || exit 1; \
	done; ls results/screenshots/*_$(RSCALE).png | wc -l

# the companion site (Jupyter Book 1.x, the docs extra; built offline): README, RESULTS.md, the
# docs and the notebooks, executed where make reproduce left them in results/notebooks/cpu/, else
# as committed (not executed), staged by docs/book.py into docs/_build/src/ and built into
# docs/_build/html/ (open docs/_build/html/index.html; plotly figures work offline)
$(BIN)/.docs: $(BIN)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e ".[docs]"
	touch $@

BOOK := $(BIN)/jupyter-book build docs/_build/src --path-output docs --quiet --keep-going
book: $(BIN)/.docs
	$(BIN)/python docs/book.py stage
	$(BOOK)

# CI's check of the site: built afresh from the committed notebooks with every Sphinx warning an
# error (a broken cross-reference or anchor among them), then every relative href/src and
# #fragment of the built pages resolved (docs/book.py check; offline, external links not fetched)
book-check: $(BIN)/.docs
	$(BIN)/python docs/book.py stage --committed
	$(BOOK) --all --warningiserror
	$(BIN)/python docs/book.py check

# the built site's front page and its first notebook page with a plotly figure (drawn, or it
# fails) in headless Chromium, into results/screenshots/book_*.png
book-screenshots: $(BIN)/.installed
	$(BIN)/python docs/book.py screenshots

bench: $(BIN)/.installed
	$(BIN)/python bench/evaluator.py --scale $(SCALE)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache docs/_build
