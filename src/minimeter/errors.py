"""Exceptions a user can act on. Every error names what was wrong and the valid choices."""


class MinimeterError(Exception):
    """Base class of every error minimeter raises on purpose."""


class UnknownModel(MinimeterError, KeyError):
    """A model prefix that is not in the catalog."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidOption(MinimeterError, ValueError):
    """An option the chosen model cannot have (a 1000 output on a T model, CT2 on a
    single-element model, a secondary-rated model without a CT ratio, ...)."""


class InvalidSamples(MinimeterError, ValueError):
    """Samples the meter refuses: NaN or infinite values, mismatched channel lengths,
    a non-positive sample rate, the wrong number of channels."""


class InvalidLoad(MinimeterError, ValueError):
    """A load or service description that cannot be built."""
