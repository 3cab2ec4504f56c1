"""Outputs that hold on every machine: nbval's kernel perturbs the numerics, so CPU-dependent outputs fail here.

Another machine's CPU adds in another order, so a cell that prints rounding noise (a relative error of
4.7e-09 here, 4.5e-09 there) passes where it was committed and fails elsewhere. The test suite's nbval pass
runs every notebook in the `python3-portable` kernel (`make install` sets it up, pyproject.toml names it):
PyTorch's portable kernels and one thread, while the committed outputs come from a native run. This test
plants such a cell in a notebook of its own, commits its outputs natively (`jupyter execute --inplace`, with
two threads, as on the two-core machines the book is built on) and runs the repository's nbval configuration
on it: the cell that prints the residue must fail, the cell that prints a verdict must pass.
"""

import os
import subprocess
import sys
from xml.etree import ElementTree

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

from .conftest import ROOT

KERNEL = "python3-portable"
CELLS = [
    # 0: data; 1: the residue of three float64 sums, printed with two significant digits (rounding noise);
    # 2: the same residues held to a bound (a verdict); 3: the numerics the kernel runs with.
    "import math\nimport torch\n\n"
    "samples = [torch.randn(100_000, generator=torch.Generator().manual_seed(s), dtype=torch.float64)\n"
    "           for s in range(3)]\n"
    "residues = [abs(x.sum().item() - math.fsum(x.tolist())) / abs(math.fsum(x.tolist())) for x in samples]",
    'print(" ".join(f"{r:.1e}" for r in residues))',
    'print("every relative residue below 1e-12:", all(r < 1e-12 for r in residues))',
    "print(torch.get_num_threads(), torch.backends.cpu.get_cpu_capability())",
]


@pytest.fixture(scope="module")
def portable_env():
    try:
        return KernelSpecManager().get_kernel_spec(KERNEL).env
    except NoSuchKernel:
        pytest.fail(f"no kernel {KERNEL!r}: `make install` sets it up")


def nbval_results(tmp_path, portable_env) -> tuple[list[str], dict[str, str | None]]:
    """Plant the notebook and commit its outputs natively; then run nbval as the test suite does.
    The committed stdout of each cell, and nbval's verdict on each: cell name -> failure text or None."""
    path = tmp_path / "planted.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS]), path)
    native = {k: v for k, v in os.environ.items() if k not in portable_env} | {"OMP_NUM_THREADS": "2"}
    subprocess.run([sys.executable, "-m", "jupyter", "execute", "--inplace", str(path)],
                   env=native, check=True, capture_output=True)
    report = tmp_path / "report.xml"
    subprocess.run(  # the repository's pytest configuration (nbval, its kernel, the sanitize file), on this file
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
         "-p", "no:cacheprovider", "-q", f"--junitxml={report}", str(path)],
        cwd=ROOT, env=native, capture_output=True, text=True)
    committed = ["".join(o.get("text", "") for o in cell.outputs) for cell in nbformat.read(path, as_version=4).cells]
    cases = ElementTree.parse(report).getroot().iter("testcase")
    return committed, {case.get("name"): next((f.get("message", "") + (f.text or "") for f in case.iter("failure")),
                                              None) for case in cases}


def test_the_nbval_kernel_perturbs_the_numerics(portable_env):
    assert portable_env.get("ATEN_CPU_CAPABILITY") == "default" and portable_env.get("OMP_NUM_THREADS") == "1"


def test_rounding_noise_fails_the_perturbed_pass_and_a_verdict_passes(tmp_path, portable_env):
    committed, results = nbval_results(tmp_path, portable_env)
    assert committed[3].startswith("2 "), f"the committed outputs come from a two-thread run: {committed[3]!r}"
    assert set(results) == {f"Cell {i}" for i in range(len(CELLS))}, results
    assert results["Cell 0"] is None and results["Cell 2"] is None, "the data and the verdict must pass"
    assert results["Cell 1"] is not None and "Cell outputs differ" in results["Cell 1"], (
        "the residue printed natively must differ under perturbed numerics")
    assert results["Cell 3"] is not None and "1 DEFAULT" in results["Cell 3"], (
        "nbval's kernel must run with one thread and PyTorch's portable (DEFAULT) kernels")
