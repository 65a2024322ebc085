"""How a declared size divides into S3 multipart parts, for every size S3 can store.

S3 (and SeaweedFS) take at most 10,000 parts of 5 MiB to 5 GiB each, the last one may be
shorter: an object of up to 5 GiB x 10,000 (~48.8 TiB). The upload service signs exactly these
parts and the client cuts the file at the same offsets, so a wrong plan is a failed upload."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from streamify.upload.parts import MAX_PART_BYTES, MAX_PARTS, MIN_PART_BYTES, PartPlan, plan_parts

pytestmark = pytest.mark.unit

MiB = 1024 * 1024
GiB = 1024 * MiB
LARGEST = 5 * GiB * 10_000  # the largest object S3 can assemble from parts
DEFAULT_PART = 16 * MiB  # Settings.upload_part_size_bytes

SIZES = st.integers(min_value=1, max_value=LARGEST)
# Preferred sizes in whole MiB, as the setting's default: with a size that is not, a file just
# under 10,000 preferred parts already gets the next whole MiB (a valid plan, fewer parts).
PREFERRED = st.integers(min_value=5, max_value=5 * 1024).map(lambda n: n * MiB)


def lengths(plan: PartPlan) -> list[int]:
    return [plan.length_of(n) for n in range(1, plan.part_count + 1)]


def test_the_constants_are_s3s_limits():
    assert (5 * MiB, 5 * GiB, 10_000) == (MIN_PART_BYTES, MAX_PART_BYTES, MAX_PARTS)


def test_a_small_file_is_one_short_part():
    plan = plan_parts(1000, DEFAULT_PART)
    assert (plan.part_size, plan.part_count) == (DEFAULT_PART, 1)
    assert lengths(plan) == [1000]


def test_a_file_of_whole_parts_has_no_short_part():
    plan = plan_parts(3 * DEFAULT_PART, DEFAULT_PART)
    assert plan.part_count == 3
    assert lengths(plan) == [DEFAULT_PART] * 3


def test_one_byte_more_than_whole_parts_is_one_more_part_of_one_byte():
    plan = plan_parts(3 * DEFAULT_PART + 1, DEFAULT_PART)
    assert plan.part_count == 4
    assert plan.length_of(4) == 1


def test_a_preferred_size_below_the_s3_minimum_is_raised_to_5_mib():
    plan = plan_parts(12 * MiB, 1 * MiB)
    assert (plan.part_size, plan.part_count) == (5 * MiB, 3)
    assert lengths(plan) == [5 * MiB, 5 * MiB, 2 * MiB]


def test_a_file_too_large_for_10000_preferred_parts_gets_larger_whole_mib_parts():
    size = 10_000 * DEFAULT_PART + 1  # one byte too many for 16 MiB parts
    plan = plan_parts(size, DEFAULT_PART)
    assert plan.part_size == 17 * MiB
    assert plan.part_count == 9_412
    assert sum(lengths(plan)) == size


def test_the_largest_object_s3_can_hold_is_10000_parts_of_5_gib():
    plan = plan_parts(LARGEST, DEFAULT_PART)
    assert (plan.part_size, plan.part_count) == (5 * GiB, 10_000)
    assert plan.length_of(10_000) == 5 * GiB
    assert plan_parts(LARGEST, 5 * GiB) == plan


def test_one_byte_more_than_s3_can_hold_is_refused():
    with pytest.raises(ValueError, match="do not fit in 10000 parts of at most 5 GiB"):
        plan_parts(LARGEST + 1, DEFAULT_PART)


@pytest.mark.parametrize("size", [0, -1])
def test_an_empty_file_has_no_multipart_plan(size):
    with pytest.raises(ValueError, match="at least one byte"):
        plan_parts(size, DEFAULT_PART)


@pytest.mark.parametrize("number", [0, -1, 4])
def test_a_part_outside_the_plan_has_no_length(number):
    with pytest.raises(ValueError, match=r"outside 1\.\.3"):
        plan_parts(3 * DEFAULT_PART, DEFAULT_PART).length_of(number)


def check_plan(size: int, preferred: int) -> PartPlan:
    """Everything a plan must be, for any size S3 can store."""
    plan = plan_parts(size, preferred)
    size_per_part, count = plan.part_size, plan.part_count
    assert plan.total_size == size
    # S3's limits: at most 10,000 parts, each of 5 MiB to 5 GiB (only the last may be shorter)
    assert 1 <= count <= MAX_PARTS
    assert max(preferred, MIN_PART_BYTES) <= size_per_part <= MAX_PART_BYTES
    # the parts cover the file exactly: every part but the last is whole, the last is not empty
    last = plan.length_of(count)
    assert 0 < last <= size_per_part
    assert size_per_part * (count - 1) + last == size
    if count > 1:
        assert plan.length_of(1) == plan.length_of(count - 1) == size_per_part
    # the preferred size while it fits, else the smallest whole number of MiB that fits
    if -(-size // max(preferred, MIN_PART_BYTES)) <= MAX_PARTS:
        assert size_per_part == max(preferred, MIN_PART_BYTES)
    else:
        assert size_per_part % MiB == 0
        assert -(-size // (size_per_part - MiB)) > MAX_PARTS  # one MiB less would not fit
    return plan


@given(size=SIZES, preferred=PREFERRED)
@example(size=LARGEST, preferred=5 * MiB)
@example(size=10_000 * 6 * MiB + 1, preferred=5 * MiB)  # 10,000 parts of 6 MiB and one byte
@example(size=10_000 * 5 * MiB, preferred=5 * MiB)
def test_every_size_up_to_the_maximum_gets_a_plan_s3_accepts(size, preferred):
    check_plan(size, preferred)


@given(
    count=st.integers(min_value=1, max_value=MAX_PARTS),
    preferred=PREFERRED,
    short_by=st.integers(min_value=0, max_value=MIN_PART_BYTES),
)
def test_a_file_of_n_preferred_parts_is_n_parts(count, preferred, short_by):
    # whole parts exactly (short_by 0) or a last part up to 5 MiB short
    size = max(1, count * preferred - short_by)
    plan = check_plan(size, preferred)
    assert plan.part_count == count or (short_by >= preferred and plan.part_count == count - 1)
    if short_by == 0:
        assert plan.length_of(count) == preferred


@given(
    parts=st.integers(min_value=1, max_value=MAX_PARTS),
    mib=st.integers(min_value=17, max_value=5 * 1024),
)
def test_a_file_needing_larger_parts_gets_the_smallest_that_fits(parts, mib):
    # `mib` MiB parts are needed once the file is larger than 10,000 parts of `mib - 1` MiB
    size = 10_000 * (mib - 1) * MiB + parts
    plan = check_plan(size, DEFAULT_PART)
    assert plan.part_size == mib * MiB
