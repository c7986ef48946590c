"""Click glue for the command line: the meter options shared by the commands that build a
meter, and :func:`parsed`, which reads an option's text with a parser of
:mod:`minimeter.formats` and turns the project's error into click's usage error."""

from __future__ import annotations

from typing import Callable, TypeVar

import click

from minimeter.errors import MinimeterError

T = TypeVar("T")


def parsed(parse: Callable[[str], T], text: str, option: str) -> T:
    """``parse(text)``; a :class:`~minimeter.errors.MinimeterError` becomes
    ``click.BadParameter`` naming ``option`` (exit status 2, with the usage line)."""
    try:
        return parse(text)
    except MinimeterError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def meter_options(func):
    """The model and its options, shared by the commands that build a meter."""
    options = [
        click.option("--model", "-m", default="7B", show_default=True, help="Model prefix: MO, MK, 6S, 6F, 7B, 5B."),
        click.option("--ct", "ct_rating", default="200A", show_default=True,
                     help="CT rating: 100A, 200A, 400A (primary) or 0.1A, 0.2A (secondary)."),
        click.option("--ct-ratio", default=None, help="CT ratio for secondary-rated models, e.g. 200:0.1."),
        click.option("--register", default="lcd", show_default=True,
                     type=click.Choice(["lcd", "counter100", "counter1000"]), help="LCD or mechanical counter."),
        click.option("--t-suffix", is_flag=True, help="T model: no 1000 Wh/pulse output."),
    ]
    for option in reversed(options):
        func = option(func)
    return func
