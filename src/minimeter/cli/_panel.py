"""The terminal front panel: LCD, the three LEDs, outputs, counter (rich renderables)."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from minimeter.meter.core import Meter


def _led(name: str, on: bool, colour: str) -> Text:
    return Text.assemble(("● " if on else "○ ", colour if on else "grey37"), (name, "bold" if on else "grey50"))


def format_clock(seconds: float) -> str:
    """Simulated time as [Dd ]HH:MM:SS."""
    s = int(seconds)
    days, rest = divmod(s, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}d {text}" if days else text


def front_panel(meter: Meter, clock_s: float, power_w: list[float] | None = None, title: str = "") -> Panel:
    """A picture of the meter's face."""
    lcd = Text(f" {meter.lcd_text} kWh ", style="bold black on rgb(170,190,150)")
    leds = Text("   ").join([
        _led("POWER", meter.leds.power, "bold green"),
        _led("LOAD", meter.leds.load, "bold green"),
        _led("REVERSE PHASE", meter.leds.reverse, "bold red"),
    ])
    outputs = Table.grid(padding=(0, 2))
    outputs.add_column(justify="left")
    outputs.add_column(justify="right")
    outputs.add_column(justify="left")
    for name in meter.output_names:
        label = "counter" if name == "counter" else f"output {name} Wh/p"
        state = "[green]closed[/]" if meter.output_on(name) else "[grey50]open[/]"
        outputs.add_row(label, f"{meter.closures(name)} closures", state)
    lines = [Text.assemble(("time ", "grey50"), format_clock(clock_s)), lcd, leds, outputs]
    if meter.counter_value is not None:
        lines.append(Text(f"mechanical counter  {meter.counter_value:0{meter.spec.counter_digits}d}"))
    if power_w is not None:
        parts = "   ".join(f"element {k + 1}: {p:8.1f} W" for k, p in enumerate(power_w))
        lines.append(Text(f"{parts}   net: {sum(power_w):8.1f} W", style="cyan"))
    return Panel(Group(*lines), title=title or f"Mini Meter {meter.spec.model_number}", expand=False)
