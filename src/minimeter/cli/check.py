"""``minimeter check INSTALLATION.toml``: the manual's §3.9 "Testing the Installation"
(SPEC S11.1) on a simulated installation — a PASS/FAIL line per test with the measured
value and, on FAIL, the manual's instruction."""

from __future__ import annotations

from dataclasses import replace

import click

from minimeter.lab.diagnostics import check_installation
from minimeter.formats import parse_duration_s
from minimeter.formats.installation import load_installation
from minimeter.cli._args import parsed
from minimeter.cli.diagnose import generation_option


@click.command("check")
@click.argument("installation", type=click.Path(dir_okay=False))
@click.option("--max-time", default="2h", show_default=True,
              help="Longest simulated time to wait for the Load LED to pulse: 10min, 2h, …")
@generation_option
def check_command(installation: str, max_time: str, generation: bool | None) -> None:
    """Test an installation as the manual's §3.9 says: supply voltage per leg and the
    Power LED, the reverse phase LED (needs a load of at least 1 A), and the Load LED
    pulsing at 50 % duty under constant load. A test that cannot be made (the reverse
    phase LED under 1 A) is "not tested", not failed. With generation declared, a lit
    reverse phase LED and a still Load LED while exporting are expected. Exit status 1
    when a test fails."""
    setup = load_installation(installation)
    if generation is not None:
        setup = replace(setup, generation=generation)
    result = check_installation(setup, max_s=parsed(parse_duration_s, max_time, "--max-time"))
    click.echo(f"Testing the installation (manual §3.9): {setup.name} — {setup.spec.model_number}, "
               f"{result.simulated_s / 60:.0f} min simulated")
    section = None
    for line in result.lines:
        if line.section != section:
            section = line.section
            click.echo(f"\n{section}")
        click.echo(f"  {line.line()}")
    untested = [line.test for line in result.lines if not line.tested]
    verdict = "all tests passed" if result.passed else "some tests FAILED"
    click.echo(f"\n{verdict}" + (f" ({', '.join(untested)} not tested)" if untested else ""))
    if not result.passed:
        raise SystemExit(1)


COMMANDS = [check_command]
