"""``minimeter troubleshoot``: the manual's §5 Troubleshooting/FAQ (SPEC S11.2).

Given what a person sees — by flags, or by answering prompts — print the matching FAQ
problems and their checklists in the manual's words and order, most likely cause first.
"""

from __future__ import annotations

import click

from minimeter.lab.diagnostics import FAQ_PROBLEMS, check_installation, troubleshoot
from minimeter.formats.installation import load_installation


def _ask(value: str | None, question: str, choices: tuple[str, ...]) -> str | None:
    if value is not None:
        return value
    answer = click.prompt(question, type=click.Choice(choices + ("unknown",)), default="unknown")
    return None if answer == "unknown" else answer


@click.command("troubleshoot")
@click.option("--power-led", type=click.Choice(["on", "off"]), help="The green Power LED.")
@click.option("--load-led", type=click.Choice(["flashing", "steady", "off"]),
              help="The green Load LED: flashing, steady on, or off.")
@click.option("--reverse-led", type=click.Choice(["on", "off"]), help="The red reverse phase LED.")
@click.option("--registration", type=click.Choice(["normal", "low"]),
              help="Registered consumption against what you expect.")
@click.option("--installation", type=click.Path(dir_okay=False),
              help="Read the LEDs off a simulated installation instead (registration is not judged).")
@click.option("--all", "show_all", is_flag=True, help="Print the whole FAQ.")
def troubleshoot_command(power_led, load_led, reverse_led, registration, installation, show_all) -> None:
    """Say what you see (flags, or answer the prompts) and get the manual's FAQ
    checklists, in order, most likely cause first."""
    if installation is not None:
        result = check_installation(load_installation(installation))
        power_led = power_led or ("on" if result.power_led else "off")
        load_led = load_led or ("flashing" if result.load_led_pulsing else "steady")
        reverse_led = reverse_led or ("on" if result.reverse_led else "off")
        click.echo(f"Seen on the simulated installation: Power LED {power_led}, Load LED {load_led}, "
                   f"reverse phase LED {reverse_led}")
    if show_all:
        problems = FAQ_PROBLEMS
    else:
        if all(v is None for v in (power_led, load_led, reverse_led, registration)):
            click.echo("What do you see? (answer 'unknown' to skip)")
            power_led = _ask(power_led, "Power LED", ("on", "off"))
            load_led = _ask(load_led, "Load LED", ("flashing", "steady", "off"))
            reverse_led = _ask(reverse_led, "Reverse phase LED", ("on", "off"))
            registration = _ask(registration, "Registered consumption", ("normal", "low"))
        problems = troubleshoot(
            power_led_on=None if power_led is None else power_led == "on",
            load_led_flashing=None if load_led is None else load_led == "flashing",
            reverse_led_on=None if reverse_led is None else reverse_led == "on",
            registration_low=None if registration is None else registration == "low",
        )
    if not problems:
        click.echo("Nothing the FAQ covers: the meter looks normal. (Manual §4: if the meter is functioning "
                   "abnormally, consult the FAQ/Troubleshooting guide. If the answer cannot be found there, "
                   "contact Leviton technical support.)")
        return
    click.echo("Troubleshooting/FAQ (manual §5), most likely cause first:")
    for problem in problems:
        click.echo(f"\n{problem.number}. {problem.title}")
        for item in problem.checklist:
            click.echo(f"  • {item}")


COMMANDS = [troubleshoot_command]
