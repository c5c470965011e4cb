"""bench/report.py: the figures `make bench` sums up (ratio to the floor, target verdict, JSON round trip)."""

import io
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import report  # noqa: E402

pytestmark = pytest.mark.smoke


def test_ratio_is_times_worse_than_the_floor_either_way():
    latency = report.Figure("b", "p50", 12.0, "ms", ["<=", 15.0], floor=3.0)
    throughput = report.Figure("b", "rps", 200.0, "req/s", [">=", 300.0], floor=400.0, higher=True)
    assert latency.ratio == 4.0 and latency.verdict == "PASS"
    assert throughput.ratio == 2.0 and throughput.verdict == "MISS"
    assert report.Figure("b", "boot", 1.5, "s").ratio is None


def test_figures_written_as_json_come_back_in_the_summary_table(tmp_path, monkeypatch):
    monkeypatch.setenv(report.REPORT_DIR_ENV, str(tmp_path))
    written = report.Report("bench_x", backend="postgresql", dataset="10 rows")
    written.add("p50", 8.0, "ms", target=("<=", 10), floor=4.0, cpu_ms=2.5, note="why")
    path = written.write()
    assert path == tmp_path / "bench_x-postgresql.json"

    (figure,) = report.read_figures([tmp_path, tmp_path / "missing"])
    assert (figure.name, figure.value, figure.floor, figure.cpu_ms, figure.dataset) == ("p50", 8.0, 4.0, 2.5, "10 rows")
    assert figure.load  # the load average of the time it was measured
    out = io.StringIO()
    report.print_table([figure], out=out)
    row = next(line for line in out.getvalue().splitlines() if line.startswith("bench_x"))
    assert "<= 10 PASS" in row and "2.00x" in row and "2.500" in row


def test_cpu_seconds_of_this_process_are_counted():
    import os

    spent = sum(range(2_000_000))  # some CPU to count
    assert spent and report.proc_cpu_seconds(os.getpid()) > 0
