"""The *Performance* appendix: the committed results of `make bench` (bench/results/) and their rendering.

`book/_ext/benchmark_results.py` renders every `bench/results/<benchmark>-<device>.json` that `make bench`
writes. Timings are never asserted here (they depend on what else the machine is doing); what is checked is
that every committed file has what the page needs, that its ratios and verdicts follow from its own times
and bounds, that the extension renders every file, and that the built page shows every configuration of
every file with the numbers the file holds.
"""

import json
import operator
import re
from datetime import datetime
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from docutils import nodes

from .conftest import HTML, ROOT, TOC_FILES, built

import benchmark_results  # noqa: E402  -- book/_ext, importable through conftest

RESULTS = ROOT / "bench" / "results"
FILES = sorted(RESULTS.glob("*.json"))
APPENDIX = HTML / "book" / "appendix_performance.html"
SCRIPTS = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem != "timing")
RELATIONS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt}


def read(path):
    return json.loads(path.read_text(encoding="utf-8"))


def rows(report):
    """(row name, the numbers the row shows, in order) for every row of the report's results tables."""
    r = report["results"]
    if report["benchmark"] == "mlp_step":
        return [(c["name"], [c["fast_ms"], c["reference_ms"], c["torch_ms"], c["ratio"], c["reference_ratio"]])
                for c in r["configs"]]
    if report["benchmark"] == "gradcheck":
        errors = {"loop": r["checks"]["loop_error"], "gradient_check": r["checks"]["gradient_check_error"],
                  "directional_check": r["checks"]["directional_error"]["correct"]}
        evaluations = {"loop": 2 * r["P"], "gradient_check": 2 * r["P"], "directional_check": 2 * r["directions"]}
        return [(name, [evaluations[name], r["seconds"][name], r["speedup_vs_loop"][name], errors[name]])
                for name in ("loop", "gradient_check", "directional_check")]
    if report["benchmark"] == "ntk":
        empirical = [(f"empirical-{e['n']}", [e["n"], e["bplib_s"], e["torch_func_s"], e["speedup"],
                                              e["bplib_peak_mib"], e["torch_func_peak_mib"], e["memory_ratio"]])
                     for e in r["empirical"]]
        a = r["analytic"]
        return empirical + [("analytic", [a["n"], a["d"], a["depth"], a["seconds"]])]
    raise AssertionError(f"no rows known for benchmark {report['benchmark']!r}")


def measured_in_results(report, target):
    """The value a target's verdict is about, read from the results the tables show."""
    r, name = report["results"], target["name"]
    if report["benchmark"] == "mlp_step":
        return next(c["ratio"] for c in r["configs"] if c["name"] == name)
    if report["benchmark"] == "gradcheck":
        if name in r["speedup_vs_loop"]:
            return r["speedup_vs_loop"][name]
        return r["checks"]["directional_error"][name.removeprefix("directional_")]
    if report["benchmark"] == "ntk":
        return r["empirical"][-1]["speedup"] if name == "empirical" else r["analytic"]["seconds"]
    raise AssertionError(f"no targets known for benchmark {report['benchmark']!r}")


# The files.

def test_every_benchmark_script_has_a_renderer_and_committed_cpu_results():
    assert SCRIPTS == sorted(benchmark_results.BENCHMARKS), "a benchmark in bench/ that the appendix cannot render"
    missing = [f"bench/results/{name}-cpu.json" for name in SCRIPTS if not (RESULTS / f"{name}-cpu.json").is_file()]
    assert not missing, f"not measured: {missing}; run `make bench` and commit bench/results/"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_has_what_the_page_needs(path):
    report = benchmark_results.load(path)  # raises, naming what is missing
    benchmark, device = path.stem.rsplit("-", 1)
    assert (report["benchmark"], report["machine"]["device"]) == (benchmark, device)
    machine = report["machine"]
    assert isinstance(machine["cpu"], str) and machine["cpu"].strip(), machine
    assert isinstance(machine["cpu_count"], int) and machine["cpu_count"] >= 1, machine
    assert isinstance(machine["threads"], int) and machine["threads"] >= 1, machine
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", machine["torch"]), machine
    assert datetime.fromisoformat(machine["date"]).utcoffset() is not None, "the date must carry its time zone"
    assert (machine["gpu"] is not None) == (device == "cuda"), machine
    assert report["targets"], f"{path.name} records no target"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_ratios_and_verdicts_follow_from_the_times(path):
    report = read(path)
    r, name = report["results"], report["benchmark"]
    ratios = []  # (stated, numerator / denominator): measured in the same run, so a stale ratio shows
    if name == "mlp_step":
        ratios += [(c["ratio"], c["fast_ms"] / c["torch_ms"]) for c in r["configs"]]
        ratios += [(c["reference_ratio"], c["reference_ms"] / c["torch_ms"]) for c in r["configs"]]
    elif name == "gradcheck":
        ratios += [(r["speedup_vs_loop"][m], r["seconds"]["loop"] / s) for m, s in r["seconds"].items()]
    elif name == "ntk":
        ratios += [(e["speedup"], e["torch_func_s"] / e["bplib_s"]) for e in r["empirical"]]
        ratios += [(e["memory_ratio"], e["torch_func_peak_mib"] / e["bplib_peak_mib"]) for e in r["empirical"]]
    assert ratios
    for stated, computed in ratios:
        assert stated == pytest.approx(computed, rel=1e-12)
    for target in report["targets"]:
        assert target["measured"] == measured_in_results(report, target), target
        assert target["met"] == RELATIONS[target["relation"]](target["measured"], target["bound"]), target


# The rendering, without Sphinx.

@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_extension_renders_every_file(path):
    report = benchmark_results.load(path)
    rendered = benchmark_results.render(report)
    tables = [node for node in rendered if isinstance(node, nodes.table)]
    body_rows = [row for t in tables for row in t.findall(nodes.row) if isinstance(row.parent, nodes.tbody)]
    expected = [benchmark_results.row_id(report, row) for row, _ in rows(report)]
    assert [i for row in body_rows for i in row["ids"]] == expected
    assert len(body_rows) == len(expected) + len(report["targets"])  # the targets' table: one row each
    text = " ".join(node.astext() for node in rendered)
    assert report["machine"]["torch"] in text and report["machine"]["cpu"] in text
    assert "not when this page was built" in text


def test_load_says_what_is_wrong(tmp_path):
    path = FILES[0]
    good, benchmark = read(path), path.stem.rsplit("-", 1)[0]
    cases = [  # (file name, contents, what the error says)
        (path.name, json.dumps({k: v for k, v in good.items() if k != "targets"}), f"{path.name}: missing targets"),
        (path.name, json.dumps({**good, "machine": {}}), "missing machine.cpu, machine.cpu_count"),
        ("unknown-cpu.json", json.dumps(good), "unknown-cpu.json: no benchmark 'unknown'"),
        (f"{benchmark}-tpu.json", json.dumps(good), "not what its name says"),
        (path.name, "{", f"{path.name}: not JSON"),
    ]
    for name, contents, message in cases:
        (tmp_path / name).write_text(contents)
        with pytest.raises(ValueError, match=re.escape(message)):
            benchmark_results.load(tmp_path / name)


def test_missing_fields_names_the_item_that_lacks_one():
    report = {"results": {"configs": [{"name": "a"}, {}]}}
    assert benchmark_results.missing_fields(report, "results.configs[].name") == ["results.configs[1].name"]
    assert benchmark_results.missing_fields({"results": {"configs": []}}, "results.configs[].name") == [
        "results.configs[]"]
    assert benchmark_results.missing_fields(report, "results.configs[].name".replace("configs", "runs")) == [
        "results.runs"]


def test_the_cpu_comes_first_and_no_file_gives_a_sentence(tmp_path):
    for device in ("cuda", "cpu", "mps"):
        (tmp_path / f"ntk-{device}.json").write_text("{}")
    assert list(benchmark_results.result_files(tmp_path, "ntk")) == ["cpu", "cuda", "mps"]
    assert benchmark_results.result_files(tmp_path, "gradcheck") == {}
    sentence = benchmark_results.not_measured("gradcheck", "cpu", "bench/results").astext()
    assert "has not been measured" in sentence and "make bench" in sentence
    assert "BENCH_DEVICE=cuda" in benchmark_results.not_measured("gradcheck", "cuda", "bench/results").astext()


# The built page.

class RowsById(HTMLParser):
    """The text of every cell of every table row with an id, by id; and the page's text."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.row = None
        self.cell = None
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and attrs.get("id"):
            self.row = self.rows.setdefault(attrs["id"], [])
        elif tag == "td" and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.row.append(re.sub(r"\s+", " ", "".join(self.cell)).strip())
            self.cell = None
        elif tag == "tr":
            self.row = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


SUPERSCRIPTS = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")


def numbers(cells):
    """The numbers a row shows, as the text shows them: 16.6, 5,012×, 0.0121 s, 3.7 × 10⁻⁸."""
    found = []
    for cell in cells:
        cell = cell.replace("\u00a0", " ")
        if match := re.fullmatch(r"(\d\.\d) × 10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+)", cell):
            found.append(Decimal(f"{match.group(1)}e{match.group(2).translate(SUPERSCRIPTS)}"))
        elif match := re.fullmatch(r"([\d,]+(?:\.\d+)?)(?:×| s)?", cell):
            found.append(Decimal(match.group(1).replace(",", "")))
    return found


@pytest.fixture(scope="module")
def page():
    parser = RowsById()
    parser.feed(built(APPENDIX).read_text(encoding="utf-8"))
    return parser


def test_the_appendix_is_in_the_toc_after_the_execution_status():
    assert "book/appendix_performance" in TOC_FILES
    assert TOC_FILES.index("book/appendix_performance") == TOC_FILES.index("book/appendix_execution") + 1


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_the_built_page_shows_every_configuration_with_its_numbers(path, page):
    report = read(path)
    for row, values in rows(report):
        row_id = benchmark_results.row_id(report, row)
        assert row_id in page.rows, f"{path.name}: no row {row_id} on the built page (rebuild the book?)"
        shown = numbers(page.rows[row_id])
        assert len(shown) == len(values), (row_id, page.rows[row_id])
        for text, value in zip(shown, values):
            half_unit = float(Decimal(5) * Decimal(10) ** (text.as_tuple().exponent - 1))  # of the last digit shown
            assert abs(float(text) - value) <= half_unit * (1 + 1e-9), (row_id, text, value)
    for c in report["results"].get("configs", []):  # mlp_step: which network, and the batch
        sizes = "-".join(map(str, c["sizes"]))
        assert page.rows[benchmark_results.row_id(report, c["name"])][0] == f"{c['name']} {sizes}, batch {c['batch']}"
    when = datetime.fromisoformat(report["machine"]["date"])
    assert f"{when:%Y-%m-%d} at {when:%H:%M} UTC" in "".join(page.text), "the date of the measurement"


def test_the_built_page_says_which_benchmarks_have_no_gpu_results(page):
    text = re.sub(r"\s+", " ", "".join(page.text))
    for name, benchmark in benchmark_results.BENCHMARKS.items():
        if benchmark.gpu and not (RESULTS / f"{name}-cuda.json").is_file():
            assert f"{name}-cuda.json" in text, f"{name}: no sentence saying it has not been measured on a GPU"
