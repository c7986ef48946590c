"""The ``minimeter`` command.

Each module of this package (not starting with ``_``) contributes commands through a
module-level ``COMMANDS`` list of click commands; :func:`main` gathers them, so a new
command is one new module. Errors minimeter raises on purpose become one clear line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import click

from minimeter.errors import MinimeterError


class _Group(click.Group):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's, with its usage errors in two lines: what is wrong, and where the help is."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            path = exc.ctx.command_path if exc.ctx is not None else "minimeter"
            click.echo(f"minimeter: error: {exc.format_message()}\n  ({path} -h for the options)", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("minimeter: aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MinimeterError as exc:
            click.echo(f"minimeter: error: {exc}", err=True)
            sys.exit(2)
        except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
            click.echo(f"minimeter: error: {exc.strerror}: {exc.filename}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="minimeter")
def main() -> None:
    """The Leviton Mini Meter — a CT-rated, revenue-grade kWh meter, in software."""


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register()
