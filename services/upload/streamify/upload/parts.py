"""S3 multipart rules: how a declared size divides into parts.

S3 (and SeaweedFS) accept at most 10,000 parts of 5 MiB to 5 GiB each (the last may be
smaller), so the part size grows with the file: the preferred size while it fits, else the
smallest whole number of MiB that keeps the count within 10,000.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
MIN_PART_BYTES = 5 * MiB
MAX_PART_BYTES = 5 * 1024 * MiB
MAX_PARTS = 10_000


@dataclass(frozen=True)
class PartPlan:
    part_size: int
    part_count: int
    total_size: int

    def length_of(self, part_number: int) -> int:
        """Exact size of a part (1-based); only the last one may be short."""
        if not 1 <= part_number <= self.part_count:
            raise ValueError(f"part {part_number} is outside 1..{self.part_count}")
        if part_number < self.part_count:
            return self.part_size
        return self.total_size - self.part_size * (self.part_count - 1)


def plan_parts(total_size: int, preferred_part_size: int) -> PartPlan:
    if total_size <= 0:
        raise ValueError("a multipart upload needs at least one byte")
    needed = -(-total_size // MAX_PARTS)  # ceil: the smallest size within 10,000 parts
    needed = -(-needed // MiB) * MiB  # rounded up to whole MiB
    part_size = max(preferred_part_size, MIN_PART_BYTES, needed)
    if part_size > MAX_PART_BYTES:
        raise ValueError(f"{total_size} bytes do not fit in {MAX_PARTS} parts of at most 5 GiB")
    return PartPlan(
        part_size=part_size, part_count=-(-total_size // part_size), total_size=total_size
    )
