"""Throughput and memory of the Excel register reader: a 100,000-row BNetzA workbook of the 2023 layout.

The workbook is generated the way Excel writes one (texts in the shared-strings table, dates as date
cells, a <dimension>), with the register's value mix: one to six charge points per row (mostly two),
EVSE ids and public keys for many of them, the payment, opening-hours and parking vocabulary of the
real exports. `--inline` writes texts inline instead, as openpyxl and some export tools do (openpyxl
parses those several times slower).

The reader (`locations.registers.bnetza.iter_bnetza_workbook`: openpyxl read-only, rows streamed, the
shared strings spooled to disk, every row mapped to an OCPI Location) runs in a fresh process, so the
generator's memory is not counted. Prints rows/s and the resident set's peak after 1 %, 10 %, 50 % and
all of the rows (flat memory: the peak does not grow with the rows read); with `--tracemalloc` also
the peak of Python's allocations (several times slower). The issue's target is 3,000 rows/s (wall
clock; the CPU time is printed too, as the wall clock of a busy machine counts other work).
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import zipfile
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_ROWS_PER_SECOND = 3_000
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
COLUMNS = [
    "Ladeeinrichtungs-ID", "Betreiber", "Anzeigename (Karte)", "Status", "Art der Ladeeinrichtung",
    "Anzahl Ladepunkte", "Nennleistung Ladeeinrichtung [kW]", "Inbetriebnahmedatum", "Straße", "Hausnummer",
    "Adresszusatz", "Postleitzahl", "Ort", "Kreis/kreisfreie Stadt", "Bundesland", "Breitengrad", "Längengrad",
    "Standortbezeichnung", "Informationen zum Parkraum", "Bezahlsysteme", "Öffnungszeiten",
    "Öffnungszeiten: Wochentage", "Öffnungszeiten: Tageszeiten",
    *(f"{name}{n}" for n in range(1, 7) for name in ("Steckertypen", "Nennleistung Stecker", "EVSE-ID", "Public Key")),
]
STATES = ["Baden-Württemberg", "Bayern", "Berlin", "Brandenburg", "Bremen", "Hamburg", "Hessen",
          "Mecklenburg-Vorpommern", "Niedersachsen", "Nordrhein-Westfalen", "Rheinland-Pfalz", "Saarland",
          "Sachsen", "Sachsen-Anhalt", "Schleswig-Holstein", "Thüringen"]
PAYMENTS = ["Onlinezahlungsverfahren;RFID-Karte", "", "Onlinezahlungsverfahren;RFID-Karte;Sonstige",
            "RFID-Karte;Onlinezahlungsverfahren", "Onlinezahlungsverfahren",
            "Kreditkarte (NFC);Debitkarte (NFC);Onlinezahlungsverfahren;RFID-Karte"]
PLUGS = [("AC Typ 2 Steckdose", 22), ("AC Typ 2 Steckdose", 11), ("AC Typ 2 Fahrzeugkupplung", 22),
         ("DC Fahrzeugkupplung Typ Combo 2 (CCS)", 150), ("DC Fahrzeugkupplung Typ Combo 2 (CCS); DC CHAdeMO", None),
         ("AC Typ 2 Steckdose; AC Schuko", None)]
WEEK = "Montag; Dienstag; Mittwoch; Donnerstag; Freitag; Samstag; Sonntag"
EPOCH = date(1899, 12, 30)


def station(index: int, rng: random.Random) -> list:
    points = rng.choices([1, 2, 3, 4, 5, 6], weights=[32, 68, 2.4, 2.8, 0.1, 0.1])[0]
    opening = rng.choices(["Keine Angabe", "247", "Eingeschränkt"], weights=[64, 34, 2])[0]
    operator = rng.randrange(4000)
    row = [
        1_000_000 + index, f"Stadtwerke Beispiel {operator} GmbH", f"Beispielstrom {operator % 300}",
        rng.choices(["In Betrieb", "In Wartung"], weights=[999, 1])[0],
        "Schnellladeeinrichtung" if rng.random() < 0.27 else "Normalladeeinrichtung", points, 22 * points,
        date(2015, 1, 1).toordinal() + rng.randrange(4000), f"Beispielstraße {rng.randrange(20000)}",
        str(rng.randrange(1, 200)), "Parkplatz" if rng.random() < 0.1 else "", f"{rng.randrange(1067, 99999):05d}",
        f"Beispielort {rng.randrange(8000)}", f"Landkreis {rng.randrange(400)}", rng.choice(STATES),
        round(47.4 + rng.random() * 7.5, 6), round(6.0 + rng.random() * 8.9, 6),
        "Rathaus" if rng.random() < 0.2 else "", rng.choice(["Keine Beschränkung", "", "Nur für Kunden"]),
        rng.choice(PAYMENTS), opening, WEEK if opening == "Eingeschränkt" else "",
        "; ".join(["07:00-20:00"] * 7) if opening == "Eingeschränkt" else "",
    ]
    for point in range(1, 7):
        if point > points:
            row += [None, None, None, None]
            continue
        plugs, kw = rng.choice(PLUGS)
        power = kw if kw is not None else "; ".join(["50", "50"] if "CHAdeMO" in plugs else ["22", "3,7"])
        evse_id = f"DE*BSP*E{index:07d}*{point}" if rng.random() < 0.5 else ""
        key = "%096X" % rng.getrandbits(384) if rng.random() < 0.4 else ""
        row += [plugs, power, evse_id, key]
    return row


def preamble() -> list[list]:
    return [["Ladesäulenregister Bundesnetzagentur"], [], ["Hinweis: "],
            ["Die Liste beinhaltet die Ladeeinrichtungen aller Betreiberinnen und Betreiber, die das "
             "Anzeigeverfahren der Bundesnetzagentur "],
            ["zum Zeitpunkt der Aktualisierung vollständig abgeschlossen haben. "],
            ["Die Zahl der öffentlich zugänglichen Ladeeinrichtungen in Deutschland ist daher größer als hier "
             "dargestellt. "], [], ["Letzte Aktualisierung vom: 01.09.2026"], [],
            ["Allgemeine Informationen", *[None] * 22, *(f"{n}. Ladepunkt" if i == 0 else None
                                                        for n in range(1, 7) for i in range(4))]]


# --------------------------------------------------------------------------- the workbook


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


def write_workbook(path: Path, rows: int, *, inline: bool, seed: int = 1) -> None:
    rng = random.Random(seed)
    letters = [_column(i) for i in range(len(COLUMNS))]
    strings: dict[str, int] = {}
    total = len(preamble()) + 1 + rows
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{MAIN}">'
                        f'<dimension ref="A1:{letters[-1]}{total}"/><sheetData>'.encode())
            all_rows = [*preamble(), COLUMNS]
            number = 0
            for number, values in enumerate(all_rows, start=1):
                sheet.write(_row(number, values, letters, strings, inline).encode())
            for index in range(rows):
                number += 1
                sheet.write(_row(number, station(index, rng), letters, strings, inline, date_column=7).encode())
            sheet.write(b"</sheetData></worksheet>")
        if not inline:
            with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as table:
                table.write(f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="{MAIN}" '
                            f'count="{len(strings)}" uniqueCount="{len(strings)}">'.encode())
                for text in strings:
                    table.write(f'<si><t xml:space="preserve">{escape(text)}</t></si>'.encode())
                table.write(b"</sst>")
        _package(archive, shared_strings=not inline)


def _row(number: int, values: list, letters: list[str], strings: dict[str, int], inline: bool,
         date_column: int | None = None) -> str:
    cells = []
    for index, value in enumerate(values):
        if value is None or value == "":
            continue
        ref = f"{letters[index]}{number}"
        if index == date_column:
            cells.append(f'<c r="{ref}" s="1"><v>{value - EPOCH.toordinal()}</v></c>')
        elif isinstance(value, (int, float)):
            cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        elif inline:
            cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
        else:
            cells.append(f'<c r="{ref}" t="s"><v>{strings.setdefault(value, len(strings))}</v></c>')
    return f'<row r="{number}">{"".join(cells)}</row>'


def _package(archive: zipfile.ZipFile, *, shared_strings: bool) -> None:
    kinds = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = [("/xl/workbook.xml", f"{kinds}.sheet.main+xml"), ("/xl/worksheets/sheet1.xml", f"{kinds}.worksheet+xml"),
                 ("/xl/styles.xml", f"{kinds}.styles+xml")]
    relations = [("worksheet", "worksheets/sheet1.xml"), ("styles", "styles.xml")]
    if shared_strings:
        overrides.append(("/xl/sharedStrings.xml", f"{kinds}.sharedStrings+xml"))
        relations.append(("sharedStrings", "sharedStrings.xml"))
    archive.writestr("[Content_Types].xml", (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(f'<Override PartName="{part}" ContentType="{kind}"/>' for part, kind in overrides) + "</Types>"))
    archive.writestr("_rels/.rels", f'<Relationships xmlns="{RELS}"><Relationship Id="rId1" '
                                    f'Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
    archive.writestr("xl/workbook.xml", f'<workbook xmlns="{MAIN}" xmlns:r="{DOC_RELS}"><sheets>'
                                        '<sheet name="Ladesäulenregister" sheetId="1" r:id="rId1"/></sheets></workbook>')
    archive.writestr("xl/_rels/workbook.xml.rels", f'<Relationships xmlns="{RELS}">' + "".join(
        f'<Relationship Id="rId{n}" Type="{DOC_RELS}/{kind}" Target="{target}"/>'
        for n, (kind, target) in enumerate(relations, start=1)) + "</Relationships>")
    archive.writestr("xl/styles.xml", (
        f'<styleSheet xmlns="{MAIN}"><numFmts count="1"><numFmt numFmtId="164" formatCode="dd.mm.yyyy"/></numFmts>'
        '<fonts count="1"><font/></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
        '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164" applyNumberFormat="1"/></cellXfs>'
        '<cellStyles count="1"><cellStyle name="Standard" xfId="0" builtinId="0"/></cellStyles></styleSheet>'))


# --------------------------------------------------------------------------- reading


def _rss_mib() -> float:
    """The resident set's peak so far. ru_maxrss would count the generating parent's too (a forked
    child inherits it, exec keeps it); Linux's VmHWM belongs to this process's own memory."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def read(path: Path, rows: int, *, trace: bool) -> None:
    """Run in a fresh process: read the workbook and print what it cost."""
    from locations.registers.bnetza import iter_bnetza_workbook

    checkpoints = {max(1, rows // 100): "1 %", rows // 10: "10 %", rows // 2: "50 %"}
    baseline = _rss_mib()
    if trace:
        tracemalloc.start()
    ok = count = 0
    peaks = []
    started, cpu_started = time.perf_counter(), time.process_time()
    with path.open("rb") as file:
        for row in iter_bnetza_workbook(file):
            count += 1
            ok += row.ok
            if count in checkpoints:
                peaks.append(f"{checkpoints[count]} {_rss_mib():.0f}")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peaks.append(f"all {_rss_mib():.0f}")
    verdict = "meets" if count / seconds >= TARGET_ROWS_PER_SECOND else "MISSES"
    verdict = "traced: no speed figure" if trace else f"{verdict} the target of {TARGET_ROWS_PER_SECOND:,}"
    # CPU time too: on a machine shared with other work, the wall clock also counts the others.
    print(f"  read {count:,} rows ({ok:,} locations) in {seconds:.1f} s: {count / seconds:,.0f} rows/s "
          f"({verdict}); CPU {cpu:.1f} s: {count / cpu:,.0f} rows/s")
    print(f"  peak resident set, MiB, after the rows read: {', '.join(peaks)} (after imports: {baseline:.0f})")
    if trace:
        current, peak = tracemalloc.get_traced_memory()
        print(f"  Python allocations: peak {peak / 2**20:.1f} MiB, at the end {current / 2**20:.1f} MiB")
    if count != rows:
        raise SystemExit(f"read {count:,} rows, wrote {rows:,}")
    if not trace:  # make bench's table (bench/report.py)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from report import Report

        report = Report("bench_register_xlsx", dataset=f"{rows:,} rows, {path.stat().st_size / 2**20:.1f} MiB")
        report.add("read rows/s", count / seconds, "rows/s", target=(">=", TARGET_ROWS_PER_SECOND), higher=True,
                   cpu_ms=cpu * 1000 / count)
        report.add("peak resident set", _rss_mib(), "MiB", note=f"after the rows read: {', '.join(peaks)}")
        report.write()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--inline", action="store_true", help="texts inline, not in the shared-strings table")
    parser.add_argument("--tracemalloc", action="store_true", help="also measure Python's allocations (slower)")
    parser.add_argument("--read", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.read:
        read(options.read, options.rows, trace=options.tracemalloc)
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "Ladesaeulenregister.xlsx"
        started = time.perf_counter()
        write_workbook(path, options.rows, inline=options.inline)
        form = "inline strings" if options.inline else "shared strings, as Excel writes"
        print(f"BNetzA 2023 layout, {options.rows:,} rows, {form}: {path.stat().st_size / 2**20:.1f} MiB "
              f"(generated in {time.perf_counter() - started:.1f} s)")
        runs = [False, True] if options.tracemalloc else [False]
        for trace in runs:
            command = [sys.executable, __file__, "--read", str(path), "--rows", str(options.rows)]
            subprocess.run(command + (["--tracemalloc"] if trace else []), check=True)


if __name__ == "__main__":
    main()
