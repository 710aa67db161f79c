# Two commands do everything on a fresh machine:  make demo   and   make test
# Each creates .venv (if missing) and installs what it needs into it.
PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.14.1 torchvision==0.29.1
SCALE  ?= ci
BIN    := $(VENV)/bin

.PHONY: demo test install bench clean

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
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python bench/evaluator.py --scale $(SCALE)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
