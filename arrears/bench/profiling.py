"""Optional sampling profiles of a worker (py-spy), and what they say: the hottest functions."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def sampled(pid: int, out: Path | None, rate: int = 200) -> Iterator[None]:
    """Record *pid* with py-spy into *out* (collapsed stacks) while the block runs.

    Does nothing when *out* is None or py-spy is not installed (``pip install py-spy``).
    """
    beside = Path(sys.executable).with_name("py-spy")  # installed in this virtualenv, maybe not on PATH
    binary = shutil.which("py-spy") or (str(beside) if beside.exists() else None)
    if out is None or binary is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [binary, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--output", str(out),
         "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def hot_spots(collapsed: Iterable[str], top: int = 15) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """From collapsed stacks (``frame;frame;frame count``): the top frames by own and by total share.

    A frame's total counts each sample once even when the frame recurs in the stack.
    """
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return [], []
    return ([(f, n / samples) for f, n in own.most_common(top)],
            [(f, n / samples) for f, n in total.most_common(top)])
