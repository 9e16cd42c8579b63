# Fresh machine: only Python 3.11 is assumed. Both targets create .venv when missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,e2e,store,web,sweep]'
	touch $@

# The browser tests (tests/browser) drive Debian's chromium through Playwright; `playwright
# install` downloads browsers and fails on these machines.
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

demo: $(VENV)/.installed
	$(BIN)/neurolysis plan new --template lumbar-medial-branch > demo-plan.toml
	$(BIN)/neurolysis simulate demo-plan.toml --plot demo-plan.png
	@echo "plan in demo-plan.toml, figure in demo-plan.png"

# One BLAS thread: the solvers' vector products are too small to gain from threads, and
# OpenBLAS threads spinning on a busy 2-core machine made them up to 400x slower.
# scripts/with-postgres.sh starts a throwaway PostgreSQL server for the case-store tests (tests/store)
# and always stops it; without the server binaries those tests skip.
# The suite runs on every core (pytest-xdist; each worker inherits the one-BLAS-thread setting),
# tests handed out one at a time so that the long ones do not queue behind each other.
test: $(VENV)/.installed chromium
	OPENBLAS_NUM_THREADS=1 NEUROLYSIS_REQUIRE_BROWSER=1 scripts/with-postgres.sh $(BIN)/python -m pytest -n auto --dist worksteal

bench: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/rf_lesion.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
