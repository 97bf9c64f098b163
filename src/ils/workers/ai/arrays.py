"""The numeric series the statistics modules take: their type and their one check.

Forecasting and anomaly detection both take a series of values (one per day, week or
month) from callers who may hand over a list, a 2-D array or a NaN; both refuse such
input the same way, here, before any model sees it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def finite_series(series: FloatArray, what: str, *, advice: str = "") -> FloatArray:
    """``series`` as a 1-D float64 array, or ValueError naming ``what`` is wrong.

    Args:
        series: The values, one per period.
        what: What the caller calls them (``history``), for the message.
        advice: Appended to the message about NaN or infinities (what to use instead).
    """
    values = np.asarray(series, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional (1-D), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} contains NaN or infinite values{advice}")
    return values
