"""Consumer-group lag: how far a group's committed offsets are behind the ends of its topics.

Reads committed offsets with an OffsetFetch through a consumer that never joins the group, so
looking does not disturb the group's members.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

from .errors import BrokerError
from .kafka import OffsetReader, client_config
from .settings import Settings


def lag_of(ends: Mapping[tuple[str, int], int], committed: Mapping[tuple[str, int], int | None]) -> int:
    """Messages between each partition's committed offset and its end (no commit yet: from 0)."""
    total = 0
    for key, end in ends.items():
        done = committed.get(key)
        total += max(0, end - (done if done is not None and done >= 0 else 0))
    return total


class GroupLag:
    """Lag of consumer groups on topics with the configured partition count."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._ends = OffsetReader(settings)
        self._lookups: dict[str, Consumer] = {}

    def committed(self, group: str, pairs: Iterable[tuple[str, int]], timeout: float = 5.0
                  ) -> dict[tuple[str, int], int | None]:
        consumer = self._lookups.get(group)
        if consumer is None:
            consumer = Consumer(client_config(self.settings, **{"group.id": group, "enable.auto.commit": False}))
            self._lookups[group] = consumer
        try:
            offsets = consumer.committed([TopicPartition(t, p) for t, p in pairs], timeout=timeout)
        except KafkaException as exc:
            raise BrokerError(f"cannot read the committed offsets of group {group}: {exc}") from exc
        return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in offsets}

    def ends(self, topics: Iterable[str], partitions: int | None = None) -> dict[tuple[str, int], int]:
        return self._ends.end_offsets(list(topics), partitions or self.settings.arrears_partitions)

    def lag(self, group: str, topics: Iterable[str], partitions: int | None = None) -> int:
        ends = self.ends(topics, partitions)
        return lag_of(ends, self.committed(group, ends))

    def close(self) -> None:
        for consumer in self._lookups.values():
            consumer.close()
        self._lookups.clear()
        self._ends.close()
