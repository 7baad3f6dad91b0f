"""argparse types shared by the command-line tools: bad values fail at parse time, one line."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An int >= 1 (a count of repeats or runs)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not an int >= 1")
    return value


def non_negative_float(text: str) -> float:
    """A float >= 0 (a tolerance)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0") from None
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{value} is not a number >= 0")
    return value
