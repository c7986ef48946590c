"""The terminal front panel: LCD, the three LEDs, outputs, counter (rich renderables),
drawn from a meter's state — of a :class:`~minimeter.meter.Meter` in hand
(:func:`front_panel`) or of a live meter's stream (:class:`PanelSink`)."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from minimeter.meter import Meter, MeterSnapshot, MeterSpec
from minimeter.meter.register import counter_reading, lcd_text


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
    return meter_face(meter.spec, meter.state(), clock_s, power_w, title)


def meter_face(spec: MeterSpec, state: MeterSnapshot, clock_s: float, power_w=None, title: str = "") -> Panel:
    """A picture of the face of a meter of ``spec`` in ``state``."""
    lcd = Text(f" {lcd_text(state.register_quanta)} kWh ", style="bold black on rgb(170,190,150)")
    leds = Text("   ").join([
        _led("POWER", state.power_led, "bold green"),
        _led("LOAD", state.load_led, "bold green"),
        _led("REVERSE PHASE", state.reverse_led, "bold red"),
    ])
    outputs = Table.grid(padding=(0, 2))
    outputs.add_column(justify="left")
    outputs.add_column(justify="right")
    outputs.add_column(justify="left")
    on = dict(state.outputs_on)
    for name, closures in state.closures:
        label = "counter" if name == "counter" else f"output {name} Wh/p"
        outputs.add_row(label, f"{closures:,} closures since new",
                        "contact [green]closed[/]" if on[name] else "contact [grey50]open[/]")
    lines = [Text.assemble(("time ", "grey50"), format_clock(clock_s)), lcd, leds, outputs]
    if spec.counter_kh_wh:
        count = counter_reading(state.register_quanta, spec.counter_kh_wh, spec.counter_digits)
        lines.append(Text(f"mechanical counter  {count:0{spec.counter_digits}d}"))
    if power_w is not None:
        parts = "   ".join(f"element {k + 1}: {p:8.1f} W" for k, p in enumerate(power_w))
        lines.append(Text(f"{parts}   net: {sum(power_w):8.1f} W", style="cyan"))
    return Panel(Group(*lines), title=title or f"Mini Meter {spec.model_number}", expand=False)


class PanelSink:
    """The terminal panel as a sink of a live meter's stream: it keeps the newest
    snapshot, and rich's ``Live`` draws it (``__rich__``) at its own refresh rate."""

    def __init__(self) -> None:
        self._snapshot = None

    def update(self, snapshot) -> None:
        self._snapshot = snapshot

    def __rich__(self) -> Panel | Text:
        s = self._snapshot
        if s is None:
            return Text("starting…")
        return meter_face(s.spec, s.meter, s.time_s, list(s.power_w),
                          title=f"Mini Meter {s.spec.model_number} — live, "
                                + ("flat out" if s.speed == 0 else f"×{s.speed:g}"))
