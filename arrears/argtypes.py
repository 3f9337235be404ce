"""Argument types of the ``arrears`` commands: each checks one kind of value up front.

A bad value stops the command with argparse's ``arrears X: error: argument --opt: <sentence>``
(exit status 2) before anything starts or connects.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from pathlib import Path


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def case_id(text: str) -> str:
    """A case id, ``<loan_id>:<n>``."""
    from arrears.topics import loan_id_of_case

    try:
        loan_id_of_case(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def port(text: str) -> int:
    """A TCP port to listen on or connect to."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return value


def _number(text: str, low: float, high: float, expected: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:  # NaN fails too
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number, 1 or more, got {text!r}")
    return value


def seconds(text: str) -> float:
    """A duration in seconds, zero or more."""
    return _number(text, 0, sys.float_info.max, "a number of seconds, 0 or more")


def non_negative(text: str) -> float:
    """A rate, zero or more."""
    return _number(text, 0, sys.float_info.max, "a number, 0 or more")


def fraction(text: str) -> float:
    """A share between 0 and 1 (0.05 is 5%)."""
    return _number(text, 0, 1, "a share between 0 and 1 (0.05 is 5%)")


def http_url(text: str) -> str:
    from .settings import check_http_url

    try:
        return check_http_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; got {text!r}") from None


def host(text: str) -> str:
    """A host name or IP address others reach this process by."""
    from .settings import check_host

    try:
        return check_host(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; got {text!r}") from None


def input_file(text: str) -> Path:
    """A file to read ('-' is stdin where the command says so)."""
    path = Path(text)
    if text != "-" and not path.is_file():
        why = "is a directory" if path.is_dir() else "no such file"
        raise argparse.ArgumentTypeError(f"{text}: {why}")
    return path


def input_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such directory")
    return path


def output_file(text: str) -> Path:
    """A file the command will write (checked now, not after the work)."""
    return _writable(text, directory=False)


def output_dir(text: str) -> Path:
    return _writable(text, directory=True)


def _writable(text: str, *, directory: bool) -> Path:
    from .settings import check_writable_path

    try:
        return check_writable_path(Path(text), directory=directory)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def timezone_name(text: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise argparse.ArgumentTypeError(f"unknown IANA timezone {text!r} (e.g. Asia/Shanghai)") from None
    return text


def name_value(text: str) -> tuple[str, str]:
    """``NAME=VALUE``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value
