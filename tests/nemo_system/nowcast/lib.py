"""Functions the system's workers share."""

import arrow


def forcing_file_name(run_date):
    """The name of the day's forcing file: ``forcing_YYYYMMDD.txt``."""
    return f"forcing_{arrow.get(run_date).format('YYYYMMDD')}.txt"


def mean_temperature(lines):
    """The mean of the numbers in ``lines`` (one a line, blanks skipped)."""
    values = [float(line) for line in lines if line.strip()]
    if not values:
        raise ValueError("no values")
    return sum(values) / len(values)
