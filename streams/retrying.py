"""Blocking broker calls from the event loop, retried until they succeed."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


async def retry_blocking(call: Any, what: str, *, passthrough: tuple[type[BaseException], ...] = ()) -> Any:
    """Run a blocking broker call in a thread until it succeeds (a broker error never stops the worker).

    *what* completes "cannot ..." in the warnings; exceptions in *passthrough* are raised at once.
    """
    loop = asyncio.get_running_loop()
    attempt = 0
    while True:
        try:
            return await loop.run_in_executor(None, call)
        except passthrough:
            raise
        except Exception as exc:  # noqa: BLE001 - every broker trouble is waited out
            attempt += 1
            if attempt in (1, 10) or attempt % 50 == 0:
                log.warning("cannot %s (attempt %d), retrying: %s", what, attempt, exc)
            await asyncio.sleep(min(5.0, 0.2 * attempt))
