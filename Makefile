# Quick start (README): `make run` sets up and runs the main study; `make test` sets up and runs
# the whole test suite. Both create the virtual environment $(VENV) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
REPORT ?= ntk_air_report
# A test whose xdist worker crashes (an intermittent segfault inside XLA's CPU compiler, seen in 1
# of 4 full runs) runs once more in a fresh worker; failures of assertions are never rerun, and a
# test that crashes twice fails (docs/reliability.md#test-suite).
PYTEST_ARGS ?= -n 2 -q --reruns 1 --only-rerun 'crashed while running'

.PHONY: run test lint notebooks docs nt-reference nt-upstream clean

# editable_mode=compat: the install puts the repository on sys.path, where the real package wins
# over a clone folder named ntk_air in the current directory (the default editable finder runs
# after Python's own search and loses to that folder).
$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e . --config-settings editable_mode=compat
	touch $@

# Tests also cover the optional neural-tangents backend: NT 0.6.5 is installed with --no-deps
# (its metadata would pull TensorFlow, which ntk_air never needs).
# The docs extra is part of the test setup: tests/test_docs.py builds the site with --strict.
$(VENV)/.installed-test: $(VENV)/.installed-run
	$(BIN)/python -m pip install -e ".[test,nt,docs]" --config-settings editable_mode=compat
	$(BIN)/python -m pip install --no-deps neural-tangents==0.6.5
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/ntk-air reproduce --out $(REPORT)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# JupyterLab on the paired notebooks (notebooks/README.md).
notebooks: $(VENV)/.installed-test
	$(BIN)/python -m pip install -e ".[notebooks]" --config-settings editable_mode=compat
	$(BIN)/jupyter lab notebooks/

# The API reference and the notebooks as a static site in site/ (git-ignored); open
# site/index.html, or serve it with `$(BIN)/mkdocs serve`.
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(VENV)/.installed-test
	$(BIN)/ruff check ntk_air tests benchmarks tools notebooks

# Rebuild the neural-tangents reference fixtures in a pinned side environment (jax 0.4.25).
nt-reference:
	bash tools/nt_reference/build_env.sh .nt-env
	.nt-env/bin/python tools/nt_reference/make_fixtures.py

# neural-tangents' own test suite against ntk_air's compatibility layer: NT 0.6.5's source
# distribution is downloaded at run time into .nt-upstream/ (git-ignored, never committed);
# the summary (counts, each failure with its category) goes to tools/nt_upstream/results.json.
nt-upstream: $(VENV)/.installed-test
	$(BIN)/python tools/nt_upstream/run.py

clean:
	rm -rf $(VENV) $(REPORT) site
