"""Strategies the fuzz tests share."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

# Date-times anywhere in the calendar with any offset ISO 8601 allows (up to 23:59): at the
# edges they pass for valid yet cannot become a UTC instant (issue 10, item 2).
EDGE_TIMES = st.sampled_from(
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "1899-12-31T23:59:59Z"]
) | st.builds(
    lambda when, minutes: when.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.datetimes(min_value=datetime.min, max_value=datetime.max),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
)
