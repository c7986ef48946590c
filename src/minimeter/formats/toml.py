"""The located TOML table reader shared by the project's files (installations, reference
runs): typed getters over a parsed document that name, on every problem, the file, the
line and the key — ``bad.toml:14: load[2].power_factor: 1.5 is outside 0.01 … 1`` — and
raise the file's own error type (a :class:`~minimeter.errors.MinimeterError`).

A key is a path of names and 0-based array indices, ``('load', 1, 'power_factor')``,
written for the user 1-based: ``load[2].power_factor``.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Iterator, Sequence

from minimeter.errors import MinimeterError
from minimeter.sources.recordings._base import check_file

Key = tuple[str | int, ...]
MAX_FILE_BYTES = 1 << 20      # S15.1: an installation or reference-run file is at most 1 MiB
MAX_STRING_CHARS = 4096       # S15.1: a name, description, path or note in such a file
_REQUIRED: Any = ...          # the default of a key that must be given


def key_text(key: Key) -> str:
    """``('load', 1, 'power_factor')`` → ``'load[2].power_factor'``."""
    return "".join(f"[{k + 1}]" if isinstance(k, int) else f".{k}" for k in key).removeprefix(".")


def read_text(path: Path, error: type[MinimeterError], what: str) -> str:
    """The text of the file ``path``; ``error`` when it is missing (``no such {what} file``),
    not a regular file, over :data:`MAX_FILE_BYTES`, or unreadable."""
    if not path.exists():
        raise error(f"{path}: no such {what} file")
    check_file(path, MAX_FILE_BYTES, error)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot be read ({exc})") from None


_ARRAY_HEADER = re.compile(r"^\[\[\s*([\w.-]+)\s*\]\]$")
_TABLE_HEADER = re.compile(r"^\[\s*([\w.-]+)\s*\]$")
_ASSIGNMENT = re.compile(r"^([\w.\"'-]+)\s*=")


def line_of(lines: Sequence[str], key: Key) -> int | None:
    """Best-effort 1-based line of ``key`` in the TOML ``lines``: the line that sets it,
    else the header of the nearest table holding it, else None."""
    table: list = []                     # the table the current line is in, as a key
    arrays: dict[str, int] = {}          # [[name]] headers seen so far
    nearest = None
    for number, raw in enumerate(lines, 1):
        text = raw.split("#", 1)[0].strip()
        header = _ARRAY_HEADER.match(text) or _TABLE_HEADER.match(text)
        if header:
            table = header.group(1).split(".")
            if header.re is _ARRAY_HEADER:
                arrays[header.group(1)] = arrays.get(header.group(1), 0) + 1
                table.append(arrays[header.group(1)] - 1)
            if tuple(key[:len(table)]) == tuple(table):
                if len(key) == len(table):
                    return number
                nearest = number
            continue
        if tuple(key[:len(table)]) != tuple(table):
            continue
        names = [k for k in key[len(table):] if not isinstance(k, int)]
        assignment = _ASSIGNMENT.match(text)
        if names and assignment and assignment.group(1).strip("\"'") == names[0]:
            return number
    return nearest


class TomlReader:
    """A parsed TOML document (``data``) read key by key; every getter raises ``error``
    naming the file, the line (when ``locate``) and the key."""

    def __init__(self, path: str | Path, text: str, error: type[MinimeterError], *, locate: bool = True) -> None:
        self.path = Path(path)
        self.error = error
        self._lines = text.splitlines() if locate else None
        try:
            self.data: dict = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise error(f"{self.path}: not valid TOML: {exc}") from None
        except RecursionError:
            raise error(f"{self.path}: not valid TOML: nested too deeply") from None

    def fail(self, key: Key, problem: str) -> MinimeterError:
        """The error for ``problem`` at ``key`` (to raise)."""
        line = line_of(self._lines, key) if self._lines is not None else None
        where = f"{self.path}:{line}" if line else str(self.path)
        return self.error(f"{where}: {key_text(key)}: {problem}")

    def beside(self, written: str) -> Path:
        """A path written in the file: relative ones are relative to the file."""
        return Path(written) if Path(written).is_absolute() else self.path.parent / written

    # typed getters -------------------------------------------------------------
    def table(self, value: Any, key: Key) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table, got {type(value).__name__}")
        return value

    def tables(self, name: str, hint: str = "") -> Iterator[tuple[Key, dict]]:
        """The ``[[name]]`` tables at the top level, each with its key ``(name, index)``."""
        items = self.data.get(name, [])
        if not isinstance(items, list):
            raise self.fail((name,), f"expected [[{name}]] tables{hint}")
        if len(items) > 1000:
            raise self.fail((name,), f"{len(items):,} [[{name}]] tables — at most 1,000")
        for index, item in enumerate(items):
            yield (name, index), self.table(item, (name, index))

    def known(self, data: dict, key: Key, allowed: Sequence[str]) -> None:
        for name in data:
            if name not in allowed:
                raise self.fail(key + (name,), f"unknown key — valid here: {', '.join(sorted(allowed))}")

    def _given(self, data: dict, key: Key, default: Any) -> tuple[bool, Any]:
        """(True, the value) when ``data`` has the key's last name, else (False, the default)."""
        if key[-1] in data:
            return True, data[key[-1]]
        if default is _REQUIRED:
            raise self.fail(key, "missing (required)")
        return False, default

    def string(self, data: dict, key: Key, default: Any = _REQUIRED, choices: Sequence[str] | None = None) -> Any:
        given, value = self._given(data, key, default)
        if not given:
            return value
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"{value!r} is not one of: {', '.join(choices)}")
        if len(value) > MAX_STRING_CHARS:
            raise self.fail(key, f"{len(value):,} characters — at most {MAX_STRING_CHARS:,}")
        return value

    def number(self, data: dict, key: Key, default: Any = _REQUIRED, lo: float = -math.inf,
               hi: float = math.inf) -> Any:
        given, value = self._given(data, key, default)
        if not given:
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {value!r}")
        if not (abs(value) < 1e308 and lo <= value <= hi):      # NaN, inf and huge ints (no float) fail
            raise self.fail(key, f"{value!r} is outside {lo:g} … {hi:g}")
        return float(value)

    def boolean(self, data: dict, key: Key, default: bool) -> bool:
        value = data.get(key[-1], default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def integer(self, data: dict, key: Key, default: Any = _REQUIRED, lo: int = -(1 << 62),
                hi: int = 1 << 62) -> Any:
        given, value = self._given(data, key, default)
        if given and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.fail(key, f"expected a whole number, got {value!r}")
        if given and not lo <= value <= hi:
            raise self.fail(key, f"{value!r} is outside {lo} … {hi}")
        return value

    def array(self, data: dict, key: Key, max_items: int = 1000) -> list:
        value = data.get(key[-1], [])
        if not isinstance(value, list):
            raise self.fail(key, f"expected an array, got {value!r}")
        if len(value) > max_items:
            raise self.fail(key, f"{len(value):,} items — at most {max_items:,}")
        return value


__all__ = ["Key", "key_text", "read_text", "line_of", "TomlReader"]
