# The two commands of the README:
#   make book   install everything into .venv and build the HTML book into _build/html
#   make test   install everything into .venv and run the whole test suite (pytest + nbval)
# and `make bench` for the benchmarks in bench/.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MATHJAX_VERSION := 3.2.2
MATHJAX := _build/mathjax-npm/node_modules/mathjax/es5/tex-mml-chtml.js

# Hash-ordered output (sets, dict views of sets) must print the same in every run nbval compares.
export PYTHONHASHSEED := 0

.PHONY: install book test bench clean

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $@

book: $(STAMP) $(MATHJAX)
	$(BIN)/jupyter-book build . -W -n --keep-going

# MathJax, pinned, from the npm registry: served with the book so that pages render offline.
$(MATHJAX):
	npm install --no-save --no-package-lock --no-audit --no-fund --prefix _build/mathjax-npm mathjax@$(MATHJAX_VERSION)

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/mlp_step.py

clean:
	rm -rf _build
