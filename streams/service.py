"""The worker ``arrears worker`` runs: the Faust app (streams/app.py) with its web layer on top."""

from __future__ import annotations

from arrears.settings import Settings

from .app import Worker, build_app
from .ops_page import register_ops_page
from .web import register_views
from .workbench_api import register_workbench_views


def build_worker(settings: Settings, *, web_port: int = 6066, web_host: str = "127.0.0.1") -> Worker:
    """The app, its query API (with the workbench's endpoints) and its ops page (nothing connects until it runs)."""
    worker = build_app(settings, web_port=web_port, web_host=web_host)
    kit = register_views(worker, worker.table)
    register_workbench_views(worker, kit)
    register_ops_page(worker)
    return worker
