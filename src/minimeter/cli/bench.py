"""``minimeter bench``: the accuracy bench of STANDARDS.md through front end → meter."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from minimeter.lab.bench import (DEFAULT_SAMPLE_RATE_HZ, SUMMARY_HEADER, all_points, class_header, class_rows,
                                 expected_signal_s, run_bench, select_points, summary_rows, write_report)
from minimeter.lab.calibration import load_calibration
from minimeter.errors import MinimeterError
from minimeter.sources.frontend import PRESETS, preset


def _rows(text: str | None):
    if not text:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise MinimeterError(f"--rows {text!r}: expected row numbers 1–19, comma-separated") from None


@click.command("bench")
@click.option("--front-end", "front_end_name", type=click.Choice(list(PRESETS)), default="typical", show_default=True,
              help="Front-end preset the samples go through.")
@click.option("--calibration", "calibration_file", type=click.Path(dir_okay=False), default=None,
              help="Also run calibrated with this file (from `minimeter calibrate`): both runs side by side.")
@click.option("--rows", default=None, help="Only these STANDARDS.md rows, e.g. 1,3,7 or 16,17,18,19 (default: all, "
                                           "1–15 the manual's claim, 16–19 class 0.2S out of sample).")
@click.option("--sample-rate", type=float, default=DEFAULT_SAMPLE_RATE_HZ, show_default=True,
              help="Samples per second [Hz] (S4.7: any rate ≥ 2 kHz).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="bench-report", show_default=True,
              help="Directory for index.html, the PNG plots and bench.json.")
def bench_command(front_end_name, calibration_file, rows, sample_rate, out_dir):
    """Run the accuracy test points (STANDARDS.md) through a front end and the meter;
    percent registration from output 10's closures; report as HTML, PNG and JSON. Exit
    status 1 when a point fails."""
    if sample_rate < 2000:
        raise MinimeterError(f"--sample-rate {sample_rate:g} Hz: the bench needs at least 2000 Hz (S4.7)")
    fe = preset(front_end_name)
    points = select_points(all_points(), _rows(rows))
    if not points:
        raise MinimeterError(f"--rows {rows!r} selects no test point (rows 1–19)")
    runs_spec = [(f"{front_end_name} uncalibrated" if front_end_name != "ideal" else "ideal", None)]
    if calibration_file:
        runs_spec.append((f"{front_end_name} calibrated", load_calibration(calibration_file)))
    console = Console()
    on_terminal = console.is_terminal
    if not on_terminal:
        console = Console(width=160)
    runs = _run_all(console, on_terminal, fe, runs_spec, points, sample_rate)
    paths = write_report(runs, out_dir)
    table = Table(title=f"Accuracy bench summary ({sample_rate:g} Hz samples)")
    for h in SUMMARY_HEADER:
        if h == "run":                                  # the run's name whole: it says which run a line is
            table.add_column(h, justify="left", no_wrap=True, min_width=max(len(run.name) for run in runs))
        else:
            table.add_column(h, justify="right")
    for row in summary_rows(runs):
        table.add_row(*[f"[green]{c}[/]" if c == "pass" else f"[red]{c}[/]" if c == "FAIL" else c for c in row])
    console.print(table)
    if any(p.row >= 16 for p in points):
        klass = Table(title="Class 0.2S, out of sample (rows 16–19): the worst point per row")
        for h in class_header(runs):
            klass.add_column(h, justify="left")
        for row in class_rows(runs):
            klass.add_row(*[escape(c) for c in row])
        console.print(klass)
    failures = [(run.name, r) for run in runs for r in run.results if not r.passed]
    for name, r in failures[:40]:
        err = f"{r.error_percent:+.3f} %" if r.point.kind in ("accuracy", "run") else r.note
        console.print(escape(f"  FAIL [{name}] row {r.point.row} {r.point.label}: {err}"))
    if len(failures) > 40:
        console.print(f"  … {len(failures) - 40} more failure(s)")
    plots = (f"{len(paths['plots'])} plots" if paths["plots"]
             else "no plots: they draw row 7's current sweep and rows 16–19, not selected")
    console.print(f"report: {paths['html']} ({plots}), {paths['json']}")
    if failures:
        console.print(f"{len(failures)} of {sum(len(run.results) for run in runs)} point(s) failed", style="bold red")
        raise SystemExit(1)


def _run_all(console: Console, on_terminal: bool, fe, runs_spec, points, sample_rate) -> list:
    """Every run of the bench, with a progress bar on a terminal, else one line per point
    on stderr (a log or CI sees it move)."""
    total = sum(expected_signal_s(p) for p in points) * len(runs_spec)
    runs = []
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f} %"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
                  disable=not on_terminal) as progress:
        task = progress.add_task("bench", total=total)
        for name, cal in runs_spec:
            progress.update(task, description=f"bench: {name}")
            done_before = progress.tasks[0].completed
            done_points = 0

            def advance(seconds: float) -> None:
                progress.advance(task, seconds)

            def point_done(result, name=name) -> None:
                nonlocal done_before, done_points
                done_before += expected_signal_s(result.point)
                done_points += 1
                progress.update(task, completed=done_before)
                if not on_terminal:
                    click.echo(f"bench [{name}] {done_points}/{len(points)} row {result.point.row} "
                               f"{result.point.label}: {'pass' if result.passed else 'FAIL'}", err=True)

            runs.append(run_bench(name, fe, cal, points=points, sample_rate_hz=sample_rate, progress=advance,
                                  on_point=point_done))
    return runs


COMMANDS = [bench_command]
