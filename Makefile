# The two commands of the README:
#   make book   install everything into .venv, run every notebook once (run time, memory, outputs against
#               the committed ones: the Execution status appendix) and build the HTML book into _build/html
#   make test   install everything, build the book, and run the whole test suite on two cores: pytest over
#               tests/, nbval over every notebook under perturbed numerics, the built pages in headless Chromium
# and `make bench` for the benchmarks in bench/ (their results: bench/results/, the Performance appendix).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MATHJAX_VERSION := 3.2.2
MATHJAX := _build/mathjax-npm/node_modules/mathjax/es5/tex-mml-chtml.js

# Hash-ordered output (sets, dict views of sets) must print the same in every run nbval compares.
export PYTHONHASHSEED := 0

# Every notebook runs twice in `make test`: once in `make book`, one after the other with this machine's own
# numerics (the timings stay meaningful), and once in the nbval pass of pytest, in the kernel below, with
# PyTorch's portable kernels and one thread. Another machine's CPU sums in another order; these perturbed
# numerics make an output that depends on it (printed rounding noise) fail here first. pyproject.toml names
# the kernel in nbval's options; each notebook's kernel has one thread, so pytest runs on TEST_WORKERS cores.
PORTABLE_KERNEL := $(VENV)/share/jupyter/kernels/python3-portable/kernel.json
PORTABLE_KERNEL_ENV := ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONHASHSEED=0
TEST_WORKERS ?= 2

.PHONY: install chromium book test bench clean

install: $(STAMP) $(PORTABLE_KERNEL) chromium

# Headless Chromium for the browser tests of the built book (Debian's package).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --editable .
	touch $@

$(PORTABLE_KERNEL): $(STAMP) Makefile
	$(BIN)/python -m ipykernel install --sys-prefix --name python3-portable \
	    --display-name "Python 3 (portable numerics)" $(foreach v,$(PORTABLE_KERNEL_ENV),--env $(subst =, ,$(v)))

book: $(STAMP) $(MATHJAX)
	$(BIN)/python book/_ext/measure_notebooks.py --out _build/execution_status.json
	$(BIN)/jupyter-book build . -W -n --keep-going

# MathJax, pinned, from the npm registry: served with the book so that pages render offline.
$(MATHJAX):
	npm install --no-save --no-package-lock --no-audit --no-fund --prefix _build/mathjax-npm mathjax@$(MATHJAX_VERSION)

# --dist loadscope keeps the cells of a notebook in one worker, in order, in one kernel. Each worker gets one
# core: one thread for the unit tests too (two busy OpenMP pools on two cores only get in each other's way).
test: book chromium $(PORTABLE_KERNEL)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

# The benchmarks, each against its reference in the same run; their JSON (results, machine, targets and
# verdicts) goes to bench/results/<benchmark>-<device>.json, which the Performance appendix renders: commit it.
# `make bench BENCH_DEVICE=cuda` measures on a GPU (bench/ntk.py measures the CPU only).
BENCH_DEVICE ?= cpu
RESULTS := bench/results

bench: $(STAMP)
	mkdir -p $(RESULTS)
	$(BIN)/python bench/mlp_step.py --device $(BENCH_DEVICE) --json $(RESULTS)/mlp_step-$(BENCH_DEVICE).json
	$(BIN)/python bench/gradcheck.py --device $(BENCH_DEVICE) --json $(RESULTS)/gradcheck-$(BENCH_DEVICE).json
ifeq ($(BENCH_DEVICE),cpu)
	$(BIN)/python bench/ntk.py --json $(RESULTS)/ntk-cpu.json
endif

clean:
	rm -rf _build
