"""Printing a benchmark run: the machine it ran on and the table of figures with their ratios."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .stats import Targets, rows


def machine() -> dict[str, Any]:
    """What the figures depend on: cores, CPU model, memory, Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {
        "nproc": os.cpu_count() or 0,
        "cpu_model": model or platform.processor(),
        "ram_bytes": mem_kb * 1024,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(doc: Mapping[str, Any], targets: Targets | None = None) -> Table:
    targets = targets or Targets()
    out = Table(title="arrears bench", show_lines=False)
    out.add_column("figure")
    out.add_column("value", justify="right")
    out.add_column("unit")
    out.add_column("ratio")
    out.add_column("target")
    out.add_column("met")
    for row in rows(doc, targets):
        met = "" if row.met is None else ("[green]yes[/]" if row.met else "[red]no[/]")
        value = f"{row.value:,.0f}" if row.value >= 100 else f"{row.value:,.2f}"
        out.add_row(row.figure, value, row.unit, row.ratio, row.target, met)
    return out


def print_report(doc: Mapping[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    info = doc.get("machine", {})
    console.print(f"{info.get('nproc')} cores, {info.get('cpu_model')}, "
                  f"{info.get('ram_bytes', 0) / 2**30:.1f} GiB RAM, Python {info.get('python')}; "
                  f"broker: {doc.get('broker')}")
    console.print(f"conditions: {doc.get('conditions', '')}")
    console.print(table(doc))
    mix = doc.get("ingest", {}).get("mix", {})
    if mix:
        console.print("ingest mix: " + ", ".join(f"{k} {v:,}" for k, v in mix.items()))
