"""The README's screenshots of the web panel: docs/panel-desktop.png (1400×900) and
docs/panel-phone.png (390×844), taken in Debian's headless Chromium (Playwright) of a
panel served in-process on a meter that has run four simulated hours of a household
day — a fridge, a harmonic-rich load on L2, an oven for an hour, CT2 reversed for a
quarter of an hour, a supply sag of a few seconds — so the chart, the event log and
(when the meter measures them) the spectrum and registers have something to show.

    .venv/bin/python scripts/screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minimeter.formats import parse_load
from minimeter.live.runner import LiveMeter
from minimeter.live.web import create_app, serving
from minimeter.sources.installation import default_installation

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SIZES = {"desktop": (1400, 900), "phone": (390, 844)}
HOUR_S = 3600.0

# (simulated time [s], what the trainer does) — applied in order, the meter fed in between
SCRIPT = (
    (1.0 * HOUR_S, ("add", "3000@L1-L2")),
    (2.0 * HOUR_S, ("remove", 2)),
    (2.5 * HOUR_S, ("fault", "ct-reversed", {"ct": "CT2"})),
    (2.75 * HOUR_S, ("clear",)),
    (3.0 * HOUR_S, ("fault", "supply-voltage", {"volts": 84.0})),
    (3.0 * HOUR_S + 4.0, ("clear",)),
)
END_S = 4.0 * HOUR_S


def household_day() -> LiveMeter:
    """The meter after the script above (flat out, nothing stored)."""
    loads = tuple(parse_load(text) for text in ("200@L1", "1500@L2,pf=0.9lag,h3=0.25,h5=0.12"))
    live = LiveMeter(default_installation().with_loads(loads), speed=0)
    for time_s, (action, *args) in SCRIPT:
        live.advance_to(time_s)
        if action == "add":
            live.add_load(parse_load(args[0]))
        elif action == "remove":
            live.remove_load(args[0])
        elif action == "fault":
            live.inject_fault(args[0], **args[1])
        else:
            live.clear_faults()
    live.advance_to(END_S)
    live.publish()
    return live


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="the folder for panel-*.png")
    out: Path = parser.parse_args(argv).out
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only for the pictures

    app = create_app(household_day())
    with serving(app) as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for name, (width, height) in SIZES.items():
                page = browser.new_page(viewport={"width": width, "height": height})
                page.goto(base + "/")
                page.wait_for_function("document.getElementById('link').textContent === 'live'")
                page.wait_for_function("document.getElementById('events').children.length > 0")
                page.wait_for_timeout(500)
                path = out / f"panel-{name}.png"
                page.screenshot(path=str(path))
                print(f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}: {width}×{height}")
                page.close()
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
