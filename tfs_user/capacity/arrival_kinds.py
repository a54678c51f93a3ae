"""The open loop's arrival kinds and their check (plain: the option parser uses it without gevent).

``poisson`` (exponential inter-arrival times), ``constant`` (evenly spaced) and ``gamma:CV`` (gamma
inter-arrival times with coefficient of variation CV: 1 is Poisson, above 1 bursty); the draws are in
``tfs_user.capacity.arrivals.Intervals``.
"""

ARRIVALS = ("poisson", "constant")
"""The arrival kinds without a parameter (``gamma:CV`` has one)."""


class ArrivalError(ValueError):
    """A rate, arrival mode or user split that cannot be used; one line naming the value."""


def check_arrival(arrival):
    """``arrival`` as given if it is ``poisson``, ``constant`` or ``gamma:CV`` (CV a number > 0: the
    inter-arrival times' coefficient of variation; 1 is Poisson, above 1 bursty); else ArrivalError."""
    name, sep, cv_text = str(arrival).partition(":")
    if (name in ARRIVALS and not sep) or (name == "gamma" and _cv(cv_text) is not None):
        return arrival
    raise ArrivalError(f"--arrival {arrival!r} is not known; expected one of {', '.join(ARRIVALS)} or gamma:CV "
                       "(CV > 0, e.g. gamma:2 for bursts)")


def _cv(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if 0 < value < float("inf") else None
