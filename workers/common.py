"""Helpers the example workers share: where a day's files go, reading CSV series."""

from __future__ import annotations

import csv
from pathlib import Path


def day_dir(config, run_date) -> Path:
    """The directory for one run date's files, created if needed."""
    path = Path(config["example system"]["run dir"]) / run_date.format("YYYY-MM-DD")
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_series(path: Path, header: list[str], rows: list[list[float]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def read_series(path: Path) -> tuple[list[str], list[list[float]]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [[float(x) for x in row] for row in reader]
