"""Agency results into ``agency.results``: validating a posted body, publishing a batch acknowledged."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from typing import Any

from arrears.topics import RESULT_TYPES
from producers.publisher import LoanEventPublisher
from schemas import Catalog, CodecError, from_json

from .csvformat import check_result

log = logging.getLogger(__name__)

Result = tuple[str, dict[str, Any]]  # (record name, Avro-ready value)


class InvalidResults(ValueError):
    """A result post that must be refused as a whole; the message names the item and field."""

    def __init__(self, reason: str, index: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


def parse_results(catalog: Catalog, body: bytes, agency_id: str) -> list[Result]:
    """Read a ``POST /results`` body: one result in JSON form or an array of them.

    Every item is validated before any is returned, so a request is accepted or refused whole.
    """
    try:
        doc = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidResults(f"body: not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise InvalidResults(
            f"body: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except RecursionError:
        raise InvalidResults("body: nested too deeply") from None
    try:
        json.dumps(doc, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # "\ud800" parses as JSON but is no Unicode text; Avro strings could not carry it.
        raise InvalidResults("body: contains an unpaired surrogate escape (\\udXXX)") from None
    single = not isinstance(doc, list)
    items = [doc] if single else doc
    results: list[Result] = []
    for index, item in enumerate(items):
        try:
            name, value = from_json(catalog, item, allowed=set(RESULT_TYPES))
            check_result(value, agency_id)
        except CodecError as exc:
            where = "" if single else f"[{index}] "
            raise InvalidResults(f"{where}{exc}", None if single else index) from None
        results.append((name, value))
    return results


class ResultSink:
    """Publishes result batches to ``agency.results``, each acknowledged before it returns.

    Batches are serialised: the publisher reports delivery failures per flush, so two batches
    flushing at once could see each other's failures and answer 202 for a lost record.
    """

    def __init__(self, publisher: LoanEventPublisher) -> None:
        self._publisher = publisher
        self._lock = threading.Lock()

    def publish_batch(self, results: Sequence[Result]) -> None:
        """Publish every result and wait for the broker; raise PublishError if any failed."""
        with self._lock:
            for name, value in results:
                self._publisher.publish(name, value)
            self._publisher.flush()
        if results:
            log.info("published %d result(s), first event %s", len(results), results[0][1]["event_id"])

    def close(self) -> None:
        with self._lock:
            self._publisher.close()
