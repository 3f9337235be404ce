"""``arrears demo``: the whole pipeline on one machine, with a live view, ending in a report.

It starts the embedded broker, creates the topics, starts two ``arrears worker`` processes and
one ``arrears adapter`` per agency of the bundled config (arrears/demo/demo.yaml), runs the
simulated agencies in this process, simulates the loan book day by day, and writes the report.

Every process it starts, the broker included, runs in its own process group (so the terminal's
Ctrl-C, which goes to the whole foreground group, reaches only the demo, which stops them in
order) and gets SIGTERM from the kernel if the demo dies (PR_SET_PDEATHSIG), so nothing outlives
it. The first Ctrl-C (or SIGTERM) stops the simulation between two days, stops the processes
while it writes the report of what happened so far (within :data:`PARTIAL_REPORT_SECONDS`), and
prints one line saying so; a second one skips the report. Within 15 seconds either way.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from arrears.broker import EmbeddedBroker, die_with_parent, free_port
from arrears.errors import ArrearsError
from arrears.settings import Settings, load_settings

from .simulate import (
    PipelineSync,
    Progress,
    Simulation,
    SimulationOptions,
    health,
    idle_http,
    start_agencies,
    stop_agencies,
)

log = logging.getLogger(__name__)
ARREARS = [sys.executable, "-m", "arrears"]
PARTIAL_REPORT_SECONDS = 5.0  # reading the topics for the report of a stopped run (each of its two passes)
STOP_SECONDS = 8.0  # a process that has not stopped by then after SIGTERM is killed


@dataclass(frozen=True)
class DemoOptions:
    simulation: SimulationOptions = field(default_factory=lambda: SimulationOptions(loans=2000, days=120))
    workers: int = 2
    partitions: int = 6
    violation_rate: float = 0.05
    report: Path = Path("arrears-report.html")
    run_root: Path = Path(".")
    live: bool = True
    config: Path | None = None  # default: the bundled arrears/demo/demo.yaml


# --------------------------------------------------------------------------- config
def bundled_config() -> dict[str, Any]:
    text = resources.files("arrears").joinpath("demo/demo.yaml").read_text(encoding="utf-8")
    return dict(yaml.safe_load(text))


def localise_config(config: Mapping[str, Any], run_dir: Path, ports: Mapping[str, int]) -> dict[str, Any]:
    """The config with each webhook on its free local port and file drops under *run_dir* (pure)."""
    out = dict(config)
    agencies = []
    for agency in config.get("agencies", ()):
        agency = dict(agency)
        transport = dict(agency["transport"])
        if transport["type"] == "webhook":
            url = urlsplit(transport["url"])
            transport["url"] = urlunsplit(
                (url.scheme, f"127.0.0.1:{ports[agency['id']]}", url.path or "/", url.query, "")
            )
        else:
            transport["outbox"] = str(run_dir / agency["id"] / "out")
            transport["inbox"] = str(run_dir / agency["id"] / "in")
        agency["transport"] = transport
        agencies.append(agency)
    out["agencies"] = agencies
    return out


# --------------------------------------------------------------------------- processes
@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str | None = None


class Children:
    """Processes the demo started: own process group each, SIGTERM to them if the demo dies."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []
        self._terminated: float | None = None  # when SIGTERM went out

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str], url: str | None = None) -> Child:
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "ab") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [*ARREARS, *args], env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # the terminal's Ctrl-C goes to the demo only
                preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
            )
        child = Child(name, process, log_path, url)
        self.children.append(child)
        log.info("started %s (pid %d)", name, process.pid)
        return child

    def exited(self) -> list[Child]:
        return [c for c in self.children if c.process.poll() is not None]

    def terminate(self) -> None:
        """SIGTERM every process group, newest first (:meth:`stop` waits for them)."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                _signal_group(child.process, signal.SIGTERM)
        self._terminated = time.monotonic()

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """SIGTERM every process group (newest first) unless done already, then SIGKILL what is still there."""
        if self._terminated is None:
            self.terminate()
        assert self._terminated is not None
        deadline = self._terminated + timeout
        for child in reversed(self.children):
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0fs; killing it", child.name, timeout)
        for child in self.children:
            _signal_group(child.process, signal.SIGKILL)  # also any process the child left behind
            try:
                child.process.wait(5)
            except subprocess.TimeoutExpired:
                log.error("%s (pid %d) survived SIGKILL", child.name, child.process.pid)
        self.children.clear()
        self._terminated = None


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # its own session: the group id is its pid
    except (ProcessLookupError, PermissionError):
        pass


def wait_ready(children: Sequence[Child], timeout: float = 180.0, stop: threading.Event | None = None) -> None:
    """Until every child's /health answers 200 (raises when one exits or the time is up)."""
    deadline = time.monotonic() + timeout
    waiting = [c for c in children if c.url]
    while waiting:
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt
        for child in list(waiting):
            if child.process.poll() is not None:
                raise ArrearsError(f"{child.name} exited (code {child.process.returncode}); see {child.log_path}")
            body = health(child.url or "", timeout=1.0)
            if body is not None and body.get("status") == "ready":
                waiting.remove(child)
        if time.monotonic() > deadline:
            names = ", ".join(c.name for c in waiting)
            raise ArrearsError(f"not ready after {timeout:.0f}s: {names} (logs in {children[0].log_path.parent})")
        time.sleep(0.3)


# --------------------------------------------------------------------------- the run
class Interrupts:
    """First SIGINT/SIGTERM: stop gently (report, then shut down). Second: stop at once."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self._previous: dict[int, Any] = {}

    def install(self) -> Interrupts:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run_demo(options: DemoOptions, print_line: Callable[[str], None] = print) -> int:
    interrupts = Interrupts().install()
    stop = interrupts.stop
    started = time.monotonic()
    run_dir = (options.run_root / f"arrears-demo-{dt.datetime.now():%Y%m%d-%H%M%S}").resolve()
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    _log_to(run_dir / "logs" / "demo.log")
    print_line(f"Arrears demo: {options.simulation.loans} loans over {options.simulation.days} business days; "
               f"logs in {run_dir}/logs")
    # Its own process group: the terminal's Ctrl-C must not stop it under the workers' feet.
    broker = EmbeddedBroker(log_file=run_dir / "logs" / "broker.log", own_session=True)
    children = Children(run_dir / "logs")
    agencies: list[Any] = []
    monitor = None
    progress: Progress | None = None
    final = ""  # the line a stopped run ends with
    code = 0
    try:
        broker.start()
        settings, env, secrets_by_agency = _prepare(options, run_dir, broker.bootstrap_servers)
        tokens = api_tokens(settings)
        agency_ids = [a.id for a in settings.config.agencies]
        worker_urls = []
        for i in range(options.workers):
            port = free_port()
            child = children.start(f"worker-{i + 1}", ["worker", "--web-port", str(port)],
                                   {**env, **{t.variable: t.value for t in tokens}}, url=f"http://127.0.0.1:{port}")
            worker_urls.append(child.url or "")
        adapter_urls: dict[str, str | None] = {}
        for agency in settings.config.agencies:
            port = free_port()
            own_secret = {k: v for k, v in secrets_by_agency.items() if k == agency.transport.secret_env}
            child = children.start(f"adapter-{agency.id}", ["adapter", "--agency", agency.id, "--port", str(port),
                                                            "--host", "127.0.0.1"], {**env, **own_secret},
                                   url=f"http://127.0.0.1:{port}")
            adapter_urls[agency.id] = child.url if agency.transport.type == "webhook" else None
        print_line(f"starting the broker, {options.workers} workers and {len(agency_ids)} adapters...")
        wait_ready(children.children, stop=stop)
        print_line(f"ready after {time.monotonic() - started:.0f}s; worker query API and ops page at {worker_urls[0]}/")
        for line in sign_in_lines(worker_urls[0], tokens):
            print_line(line)
        reader = next((t.value for t in tokens if "read" in t.scopes and "pii" not in t.scopes), None)
        agencies = start_agencies(settings, adapter_urls, options.simulation, options.violation_rate)
        from .liveview import Monitor

        monitor = Monitor(settings, worker_urls, agency_ids).start()
        sync = PipelineSync(settings, worker_urls, agency_ids, idle=idle_http(agencies), stop=stop)
        progress = _simulate(settings, options, agencies, sync, monitor, stop, started, children)
        sync.close()
        params = {**options.simulation.parameters(), "workers": str(options.workers),
                  "simulated agencies": ", ".join(agency_ids),
                  "agency violation rate": f"{options.violation_rate:.0%} of case-days (varies by agency)",
                  "run": f"{progress.phase} after {progress.days_done} business days, "
                         f"{time.monotonic() - started:.0f}s"}
        if stop.is_set() or progress.phase != "done":
            code = 130
            ended = (f"after {progress.days_done} of {options.simulation.days} business days "
                     f"({time.monotonic() - started:.0f}s)")
            if monitor is not None:
                monitor.stop()
                monitor = None
            stop_agencies(agencies)
            agencies = []
            children.terminate()  # the report needs only the broker: the others stop meanwhile
            final = f"stopped {ended}; " + partial_report(settings, options.report, params)
        else:
            _wait_settled(settings, stop)
            from arrears.report import collect, write_report

            figures = collect(settings)
            print_line(cross_check(figures, worker_urls[0], agency_ids, reader))
            path = write_report(settings, options.report, params, figures)
            print_line(f"report: {path.resolve()}")
    except KeyboardInterrupt:
        code = 130
        final = "stopped before the simulation began; no report" if progress is None else "stopped; no report"
    finally:
        interrupts.restore()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup must run to the end
        try:
            if monitor is not None:
                monitor.stop()
            stop_agencies(agencies)
            children.stop()
            broker.stop()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    print_line(final or f"demo finished in {time.monotonic() - started:.0f}s")
    return code


def partial_report(settings: Settings, out: Path, params: Mapping[str, str]) -> str:
    """Write the report of a stopped run if the topics can be read soon enough; say where it is or why not."""
    from arrears.report import collect, write_report

    try:
        figures = collect(settings, timeout=PARTIAL_REPORT_SECONDS)
        path = write_report(settings, out, params, figures)
    except KeyboardInterrupt:
        return "no report (a second Ctrl-C)"
    except Exception as exc:  # noqa: BLE001 - stopping matters more than the report
        log.warning("no partial report: %s", exc)
        return f"no report ({exc})"
    return f"partial report: {path.resolve()}"


#: KPI names of the query API and of the report's figures that count the same thing
CROSS_CHECKED = {"assignments": "cases_assigned", "cases_held": "cases_held", "debtors_held": "debtors_held",
                 "contact_attempts": "contacts", "promises": "promises", "promises_kept": "promises_kept",
                 "promises_broken": "promises_broken", "violations": "violations",
                 # SPEC §10: collections.recoveries summed = the workers' tallies
                 "recoveries_attributed": "recoveries_attributed", "commission": "commission"}


def cross_check(figures: Any, worker_url: str, agency_ids: Sequence[str], token: str | None = None) -> str:
    """Compare the workers' KPIs (their tables, through the query API) with a count made from the topics."""
    import httpx

    from_topics = {k.agency_id: k for k in figures.agency_kpis(agency_ids)}
    differences = []
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for agency_id in agency_ids:
        try:
            api = httpx.get(f"{worker_url}/agencies/{agency_id}/kpis", headers=headers, timeout=10).json()
        except (httpx.HTTPError, ValueError) as exc:
            return f"cross-check skipped: the query API did not answer ({exc})"
        for api_name, topic_name in CROSS_CHECKED.items():
            counted = getattr(from_topics[agency_id], topic_name)
            if api.get(api_name) != counted:
                differences.append(f"{agency_id} {api_name}: API {api.get(api_name)}, topics {counted}")
    if differences:
        return "cross-check: the query API and the topics DISAGREE: " + "; ".join(differences)
    return (f"cross-check: the query API and the topics agree on {', '.join(CROSS_CHECKED)} "
            f"for {', '.join(agency_ids)}")


@dataclass(frozen=True)
class DemoToken:
    """A query API token the demo made up for this run."""

    name: str
    variable: str
    scopes: tuple[str, ...]
    value: str


def api_tokens(settings: Settings) -> list[DemoToken]:
    """A fresh random value for each token of the run's config (``api.tokens``)."""
    return [DemoToken(t.name, t.token_env, tuple(t.scopes), secrets.token_urlsafe(24))
            for t in settings.config.api.tokens]


def sign_in_lines(worker_url: str, tokens: Sequence[DemoToken]) -> list[str]:
    """Links that sign a browser in to the ops page; the token rides in the fragment, which no server sees."""
    lines = []
    for token in tokens:
        what = ("personal data unmasked, every answer recorded on collections.audit" if "pii" in token.scopes
                else "personal data masked")
        if "act" in token.scopes:
            what += "; may release holds"
        lines.append(f"  sign in as {token.name} ({what}): {worker_url}/#token={token.value}")
    return lines


def _log_to(path: Path) -> None:
    """The demo's own log goes to a file: the terminal belongs to the live view."""
    from arrears.logs import setup_logging

    setup_logging("demo", "text", os.environ.get("ARREARS_LOG_LEVEL", "INFO"))
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().handlers[:] = [handler]


def _prepare(options: DemoOptions, run_dir: Path, bootstrap: str) -> tuple[Settings, dict[str, str], dict[str, str]]:
    """Write the run's config, create the topics, and build the children's environment."""
    raw = bundled_config() if options.config is None else dict(yaml.safe_load(options.config.read_text()))
    hooks = {a["id"]: free_port() for a in raw.get("agencies", ()) if a["transport"]["type"] == "webhook"}
    config = localise_config(raw, run_dir, hooks)
    config_path = run_dir / "demo.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8")
    secrets_by_agency = {
        a["transport"]["secret_env"]: secrets.token_hex(16)
        for a in config["agencies"] if a["transport"].get("secret_env")
    }
    # The simulated agencies run in this process and sign with the same secrets.
    os.environ.update(secrets_by_agency)
    overrides = {
        "kafka_bootstrap_servers": bootstrap,
        "arrears_config": config_path,
        "arrears_partitions": options.partitions,
        "arrears_data_dir": run_dir / "data",
        "arrears_session_timeout_ms": 6000,
        "arrears_topic_prefix": "",
    }
    settings = load_settings(**overrides)
    for agency in settings.config.agencies:
        if agency.transport.type == "files":
            for path in (agency.transport.outbox, agency.transport.inbox):
                Path(path).mkdir(parents=True, exist_ok=True)
    from streams.app import prepare_topics

    prepare_topics(settings)
    env = {k: v for k, v in os.environ.items() if k not in secrets_by_agency}
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "ARREARS_CONFIG": str(config_path),
        "ARREARS_PARTITIONS": str(options.partitions),
        "ARREARS_DATA_DIR": str(run_dir / "data"),
        "ARREARS_SESSION_TIMEOUT_MS": "6000",
        "ARREARS_TOPIC_PREFIX": "",
        "ARREARS_LOG_FORMAT": os.environ.get("ARREARS_LOG_FORMAT", "text"),
        "ARREARS_LOG_LEVEL": os.environ.get("ARREARS_LOG_LEVEL", "WARNING"),
        "PYTHONUNBUFFERED": "1",
    })
    return settings, env, secrets_by_agency


def _simulate(settings: Settings, options: DemoOptions, agencies: Sequence[Any], sync: PipelineSync,
              monitor: Any, stop: threading.Event, started: float, children: Children) -> Progress:
    from rich.console import Console
    from rich.live import Live
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    from .liveview import render

    sim = options.simulation
    bar = Bar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
              TimeRemainingColumn())
    task = bar.add_task("publishing the book's history", total=sim.days)
    state: dict[str, Any] = {"progress": Progress("history", days_total=sim.days), "status": "publishing history"}

    def on_progress(p: Progress) -> None:
        state["progress"] = replace(p)
        if p.phase == "history":
            state["status"] = f"history: {p.published:,} records published"
        else:
            bar.update(task, completed=p.days_done, description=f"business date {p.business_date}")
            state["status"] = f"{p.published:,} input records; {sum(p.agency_results.values()):,} agency results"
        dead = children.exited()
        if dead:
            stop.set()
            names = ", ".join(f"{c.name} (code {c.process.returncode}, log {c.log_path})" for c in dead)
            raise ArrearsError(f"a process of the demo exited: {names}")

    def now() -> Any:
        p: Progress = state["progress"]
        return monitor.snapshot(business_date=p.business_date, day=p.days_done, days=sim.days,
                                elapsed=time.monotonic() - started, status=state["status"])

    def view() -> Any:
        return render(now(), bar)

    simulation = Simulation(settings, sim, agencies=agencies, sync=sync, on_progress=on_progress, stop=stop)
    console = Console()
    if not console.is_terminal:
        console = Console(width=150)  # a log file or CI: room for the whole view, not 80 clipped columns
    if options.live and console.is_terminal:
        with Live(get_renderable=view, console=console, refresh_per_second=2, transient=False):
            return simulation.run()
    # Not a terminal (a CI log, a pipe): the view every ten days instead of a redrawn screen.
    def quiet(p: Progress) -> None:
        on_progress(p)
        if stop.is_set():
            return  # stopping: the run ends with one line, not another view
        if p.phase == "done" or (p.phase == "days" and p.days_done % 10 == 0 and p.days_done < sim.days):
            console.print(render(now()))

    simulation.on_progress = quiet
    return simulation.run()


def _wait_settled(settings: Settings, stop: threading.Event, timeout: float = 30.0) -> None:
    """Give the processor a moment to apply the last results before the report reads the topics."""
    from arrears.lag import GroupLag
    from arrears.topics import inputs_group

    lag = GroupLag(settings)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not stop.is_set():
            try:
                if lag.lag(inputs_group(settings.arrears_app_id), settings.topics.inputs) == 0:
                    return
            except Exception as exc:  # noqa: BLE001 - a broker hiccup (a timeout) only means "not yet"
                log.info("waiting for the processor to settle: %s", exc)
            stop.wait(0.5)
    finally:
        lag.close()
