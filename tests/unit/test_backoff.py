"""The one backoff of every retry loop: doubles per attempt from 0, never beyond the cap, with
equal jitter (at least half the ceiling: never an immediate retry), no overflow."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streamify.core.backoff import backoff_delay


def test_the_ceiling_doubles_from_the_first_retry_up_to_the_cap():
    highs = [backoff_delay(a, base=0.5, cap=20, rand=lambda: 1.0) for a in range(8)]
    assert highs == [0.5, 1, 2, 4, 8, 16, 20, 20]
    assert [backoff_delay(a, base=0.5, cap=20, rand=lambda: 0.0) for a in range(8)] == [
        h / 2 for h in highs
    ]


@given(
    attempt=st.integers(min_value=-5, max_value=10**9),
    jitter=st.floats(min_value=0, max_value=1),
    base=st.floats(min_value=0.01, max_value=5),
    cap=st.floats(min_value=0.01, max_value=60),
)
def test_a_delay_lies_between_half_and_all_of_its_capped_ceiling(attempt, jitter, base, cap):
    delay = backoff_delay(attempt, base=base, cap=cap, rand=lambda: jitter)
    ceiling = min(cap, base * 2 ** min(max(attempt, 0), 32))
    assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9
    assert delay <= cap + 1e-9
