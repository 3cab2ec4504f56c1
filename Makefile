# The two commands of the README:
#   make book   install everything into .venv and build the HTML book into _build/html
#   make test   install everything, build the book, and run the whole test suite
#               (pytest over tests/, nbval over every notebook, the built pages in headless Chromium)
# and `make bench` for the benchmarks in bench/.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MATHJAX_VERSION := 3.2.2
MATHJAX := _build/mathjax-npm/node_modules/mathjax/es5/tex-mml-chtml.js

# Hash-ordered output (sets, dict views of sets) must print the same in every run nbval compares.
export PYTHONHASHSEED := 0

.PHONY: install chromium book test bench clean

install: $(STAMP) chromium

# Headless Chromium for the browser tests of the built book (Debian's package).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $@

book: $(STAMP) $(MATHJAX)
	$(BIN)/python book/_ext/measure_notebooks.py --out _build/execution_status.json
	$(BIN)/jupyter-book build . -W -n --keep-going

# MathJax, pinned, from the npm registry: served with the book so that pages render offline.
$(MATHJAX):
	npm install --no-save --no-package-lock --no-audit --no-fund --prefix _build/mathjax-npm mathjax@$(MATHJAX_VERSION)

test: book chromium
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/mlp_step.py
	$(BIN)/python bench/gradcheck.py

clean:
	rm -rf _build
