"""Delinquency buckets: DPD ranges with names (M0, M1 ... M7+)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class BucketScheme:
    """Bucket names with the lowest DPD each starts at, in ascending order."""

    names: tuple[str, ...]
    lower_bounds: tuple[int, ...]

    @classmethod
    def from_mapping(cls, bounds: Mapping[str, int]) -> BucketScheme:
        """Build from {name: lowest DPD}; raise ValueError when the ranges do not tile 0..∞."""
        items = sorted(bounds.items(), key=lambda kv: kv[1])
        if not items or items[0][1] != 0:
            raise ValueError("the first bucket must start at DPD 0 (e.g. M0: 0)")
        lows = [low for _, low in items]
        if len(set(lows)) != len(lows):
            raise ValueError("two buckets start at the same DPD")
        return cls(tuple(name for name, _ in items), tuple(lows))

    def bucket_for(self, dpd: int) -> str:
        return self.names[bisect_right(self.lower_bounds, dpd) - 1]

    def rank(self, bucket: str) -> int:
        return self.names.index(bucket)


DEFAULT_BUCKETS = BucketScheme(
    names=("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M7+"),
    lower_bounds=(0, 1, 31, 61, 91, 121, 151, 181),
)
