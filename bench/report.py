"""Benchmark figures in one shape, for `make bench`'s summary table.

A bench records each headline figure with its target (issue's bound), the floor it compares against
(measured in the same run, when the bench measures one), the CPU seconds per operation (steadier than wall
time on a busy machine) and the load average at the time, then writes them as JSON:

    from report import Report
    report = Report.from_args("bench_graphql", args, backend="postgresql", dataset="1,000,000 locations")
    report.add("find_ev p50", 12.2, "ms", target=("<=", 15), floor=2.7, cpu_ms=4.1)
    report.write()          # to --json FILE, else $EVHUB_BENCH_REPORT_DIR/<bench>-<backend>.json, else nowhere

`Report.add_argument(parser)` adds `--json FILE`. `scripts/bench.sh` sets EVHUB_BENCH_REPORT_DIR and prints
the summary with `python bench/report.py DIR_OR_FILES...`.

The ratio is how many times worse than the floor a figure is: value / floor for what should be small
(latency, CPU), floor / value for what should be large (throughput: `higher=True`). 1.0 is the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPORT_DIR_ENV = "EVHUB_BENCH_REPORT_DIR"


def load_average() -> str:
    """The 1/5/15-minute load averages, as `uptime` prints them (every figure is reported beside them)."""
    try:
        return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        return "?"


def proc_cpu_seconds(pid: int, *, children: bool = True) -> float:
    """user + system CPU seconds of a running process and (by default) of its live direct children
    (gunicorn's workers under the master), from /proc; 0.0 where /proc is missing."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        candidates = [p for p in os.listdir("/proc") if p.isdigit()] if children else [str(pid)]
    except OSError:
        return 0.0
    total = 0.0
    for candidate in candidates:
        try:
            with open(f"/proc/{candidate}/stat") as stat:
                text = stat.read()
        except OSError:
            continue  # gone meanwhile
        fields = text[text.rindex(")") + 2:].split()
        if int(candidate) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


@dataclass
class Figure:
    bench: str
    name: str
    value: float
    unit: str
    target: list | None = None      # [op, bound]: ["<=", 15.0]
    floor: float | None = None      # measured in the same run, same unit
    higher: bool = False            # True: bigger is better (throughput)
    cpu_ms: float | None = None     # CPU milliseconds per operation (which processes: see note)
    backend: str = ""
    dataset: str = ""
    note: str = ""
    load: str = field(default_factory=load_average)
    at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))

    @property
    def ratio(self) -> float | None:
        if not self.floor or not self.value:
            return None
        return self.floor / self.value if self.higher else self.value / self.floor

    @property
    def verdict(self) -> str:
        if not self.target:
            return ""
        op, bound = self.target
        ok = {"<=": self.value <= bound, ">=": self.value >= bound, "<": self.value < bound,
              ">": self.value > bound}[op]
        return "PASS" if ok else "MISS"


class Report:
    def __init__(self, bench: str, *, path: Path | None = None, backend: str = "", dataset: str = ""):
        self.bench, self.backend, self.dataset = bench, backend, dataset
        self.figures: list[Figure] = []
        if path is None and os.environ.get(REPORT_DIR_ENV):
            path = Path(os.environ[REPORT_DIR_ENV]) / f"{bench}-{backend or 'any'}.json"
        self.path = path

    @staticmethod
    def add_argument(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--json", type=Path, metavar="FILE",
                            help=f"write the headline figures as JSON (default: ${REPORT_DIR_ENV}/<bench>.json "
                                 "when set; `python bench/report.py FILE...` prints them as a table)")

    @classmethod
    def from_args(cls, bench: str, args: argparse.Namespace, **kwargs) -> Report:
        return cls(bench, path=getattr(args, "json", None), **kwargs)

    def add(self, name: str, value: float, unit: str, *, target: tuple | None = None, floor: float | None = None,
            higher: bool = False, cpu_ms: float | None = None, note: str = "", dataset: str | None = None) -> Figure:
        figure = Figure(self.bench, name, float(value), unit, list(target) if target else None,
                        None if floor is None else float(floor), higher,
                        None if cpu_ms is None else float(cpu_ms), self.backend,
                        self.dataset if dataset is None else dataset, note)
        self.figures.append(figure)
        return figure

    def write(self) -> Path | None:
        """Writes the figures (if a path is set) and prints them as a table."""
        print_table(self.figures, title=f"{self.bench} figures")
        if self.path is None:
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps([asdict(f) for f in self.figures], indent=1))
        return self.path


def read_figures(paths: list[Path]) -> list[Figure]:
    figures = []
    for path in paths:
        if not path.exists():
            continue  # a pass that did not run (e.g. no SQLite pass)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for file in files:
            try:
                rows = json.loads(file.read_text())
            except (OSError, ValueError) as exc:
                print(f"skipped {file}: {exc}", file=sys.stderr)
                continue
            figures += [Figure(**row) for row in rows]
    return figures


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if abs(value) < 10_000 else f"{value:,.0f}"


def print_table(figures: list[Figure], *, title: str = "summary", out=None) -> None:
    out = out or sys.stdout
    header = ("bench", "backend", "figure", "value", "target", "floor", "ratio", "CPU ms/op", "load 1/5/15", "dataset")
    rows = [header]
    for f in figures:
        target = f"{f.target[0]} {f.target[1]:g} {f.verdict}" if f.target else "-"
        rows.append((f.bench, f.backend or "-", f.name, f"{_number(f.value, 2)} {f.unit}", target,
                     _number(f.floor, 2), "-" if f.ratio is None else f"{f.ratio:.2f}x", _number(f.cpu_ms, 3),
                     f.load, f.dataset or "-"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    print(f"\n=== {title} (load now {load_average()}) ===", file=out)
    for i, row in enumerate(rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip(), file=out)
        if i == 0:
            print("  ".join("-" * width for width in widths), file=out)
    notes = [f for f in figures if f.note]
    for f in notes:
        print(f"  {f.bench} / {f.name}: {f.note}", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print benchmark figures (JSON files or directories) as one table.")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    figures = read_figures(args.paths)
    print_table(figures)
    return 0 if figures else 1


if __name__ == "__main__":
    sys.exit(main())
