"""Pausing delivery to an agency that refuses our requests as a whole, and resuming by itself.

A ``401`` after the agency rotated its secret, a ``404`` after it moved its endpoint: every
event would be refused the same way, and dead-lettering them would lose the agency's whole
stream, cancellations included. Instead the adapter pauses: no delivery starts, the event that
was refused is tried again every ``paused_retry_seconds`` by one lane (the *probe*), and the
first answer that is not such a refusal resumes delivery where it stopped. Offsets are not
committed meanwhile, so nothing is skipped. The pause is alerted on: the gauge
``arrears_adapter_paused`` is 1, ``arrears_adapter_pauses_total{status}`` counts pauses, and the
adapter logs an error naming the status and what to check.

A run of :data:`REFUSALS_BEFORE_PAUSE` refusals of single events with no delivery between them
pauses too: an endpoint that refuses everything is broken, not the events.
"""

from __future__ import annotations

import logging
import threading

from .delivery import DeliveryInterrupted
from .metrics import AdapterMetrics

log = logging.getLogger(__name__)

REFUSALS_BEFORE_PAUSE = 3
_HINTS = {
    "401": "check the secret shared with the agency (a rotation puts NEW,OLD in the secret variable)",
    "403": "check the secret and whether the agency allows our address",
    "404": "check the webhook url",
    "410": "check the webhook url",
}


class DeliveryGate:
    """Open while the agency takes our requests; paused while it refuses them as a whole."""

    def __init__(self, agency_id: str, metrics: AdapterMetrics) -> None:
        self.agency_id = agency_id
        self.metrics = metrics
        self._cond = threading.Condition()
        self._paused: str | None = None  # why, while paused
        self._prober: int | None = None  # the thread trying the refused event again
        self._refusals = 0

    @property
    def paused(self) -> str | None:
        with self._cond:
            return self._paused

    def acquire(self, abort: threading.Event) -> bool:
        """Wait while paused and another lane probes; True when the caller is now the probe."""
        with self._cond:
            while True:
                if self._paused is None:
                    return False
                if self._prober is None:
                    self._prober = threading.get_ident()
                    return True
                if abort.is_set():
                    raise DeliveryInterrupted("paused")
                self._cond.wait(0.5)

    def release_probe(self) -> None:
        """The probe stops probing (interrupted, or refused again): another lane may take over."""
        with self._cond:
            if self._prober == threading.get_ident():
                self._prober = None
            self._cond.notify_all()

    def pause(self, cause: str, error: str, what: str) -> None:
        """Stop starting deliveries; *cause* is the status (metric label), *what* the event's ids."""
        with self._cond:
            if self._paused is not None:
                return
            self._paused = error
            self.metrics.paused(True, cause)
        hint = _HINTS.get(cause, "check the agency's endpoint and our credentials")
        log.error("delivery to agency %s PAUSED: %s on %s; %s. Nothing is dead-lettered or skipped; "
                  "the event is tried again periodically and delivery resumes on its own once the agency accepts it",
                  self.agency_id, error, what, hint, extra={"agency_id": self.agency_id, "reason": "PAUSED"})

    def resume(self) -> None:
        """The agency answered something other than a refusal of us: deliver again."""
        with self._cond:
            was = self._paused
            self._paused = None
            self._prober = None
            self._refusals = 0
            self._cond.notify_all()
        if was is not None:
            self.metrics.paused(False)
            log.warning("delivery to agency %s resumed (it was paused by %s)", self.agency_id, was,
                        extra={"agency_id": self.agency_id})

    def delivered(self) -> None:
        with self._cond:
            self._refusals = 0

    def refused(self) -> bool:
        """Count a refusal of one event; True when the run is long enough to pause the agency."""
        with self._cond:
            self._refusals += 1
            return self._refusals >= REFUSALS_BEFORE_PAUSE
