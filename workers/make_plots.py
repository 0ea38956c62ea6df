"""Publish the day's results: an HTML page with an SVG chart of the model's
water temperatures and the air temperature that drove them.

With ``--model-failed`` it publishes a notice instead, saying which inputs were
missing, so readers of the page know there is no forecast today.

Usage: ``python -m workers.make_plots config.yaml --run-date YYYY-MM-DD [--model-failed]``
"""

from __future__ import annotations

import html
import logging

import arrow

from nowcast import NowcastWorker, WorkerError
from workers.common import day_dir, read_series

NAME = "make_plots"
logger = logging.getLogger(NAME)

WIDTH, HEIGHT, MARGIN = 640, 340, 56
COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#d62728")


def main() -> None:
    worker = NowcastWorker(NAME, description=__doc__, package="workers")
    worker.init_cli()
    worker.cli.add_date_option("--run-date", arrow.utcnow().floor("day"), "Date of the results.")
    worker.cli.add_argument(
        "--model-failed", action="store_true", help="Publish a notice of failure."
    )
    worker.run(make_plots, success, failure)


def success(parsed_args) -> str:
    logger.info("results for %s published", parsed_args.run_date.format("YYYY-MM-DD"))
    return "success"


def failure(parsed_args) -> str:
    logger.critical("results for %s not published", parsed_args.run_date.format("YYYY-MM-DD"))
    return "failure"


def make_plots(parsed_args, config, *args) -> dict:
    directory = day_dir(config, parsed_args.run_date)
    date = parsed_args.run_date.format("YYYY-MM-DD")
    page = directory / "summary.html"
    if parsed_args.model_failed:
        missing = [n for n in ("weather.csv", "rivers.csv") if not (directory / n).exists()]
        why = f"missing forcing: {', '.join(missing)}" if missing else "see the nowcast log"
        body = f"<p><strong>No forecast for {date}</strong>: the model run failed ({html.escape(why)}).</p>"
        page.write_text(_page(date, body))
        logger.warning("published a failure notice for %s: %s", date, why)
        return {"page": str(page), "notice": why}
    results = directory / "results.csv"
    if not results.exists():
        raise WorkerError(f"no model results to publish: {results} is missing")
    header, rows = read_series(results)
    weather = read_series(directory / "weather.csv")[1]
    series = [(header[i], [r[i] for r in rows]) for i in range(1, len(header))]
    series.append(("air temperature", [w[1] for w in weather]))
    chart = _svg_chart(series)
    (directory / "temperatures.svg").write_text(chart)
    table = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{values[-1]:.2f} &deg;C</td></tr>"
        for name, values in series
    )
    body = f"{chart}<table><tr><th>series</th><th>at 24:00</th></tr>{table}</table>"
    page.write_text(_page(date, body))
    return {"page": str(page), "chart": str(directory / "temperatures.svg")}


def _page(date: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Estuary temperature, {date}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 12px;text-align:left}</style>"
        f"</head><body><h1>Estuary water temperature, {date}</h1>{body}</body></html>\n"
    )


def _svg_chart(series: list[tuple[str, list[float]]]) -> str:
    """A line chart of each series against the hour, 0 to 24."""
    values = [v for _, vs in series for v in vs]
    low, high = min(values) - 0.5, max(values) + 0.5

    def x(hour: float) -> float:
        return MARGIN + hour / 24 * (WIDTH - 2 * MARGIN)

    def y(value: float) -> float:
        return HEIGHT - MARGIN - (value - low) / (high - low) * (HEIGHT - 2 * MARGIN)

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{HEIGHT}' font-size='11'>",
        f"<rect width='{WIDTH}' height='{HEIGHT}' fill='white'/>",
    ]
    for hour in range(0, 25, 6):
        parts.append(
            f"<text x='{x(hour):.0f}' y='{HEIGHT - MARGIN + 16}' text-anchor='middle'>{hour:02d}:00</text>"
        )
    for step in range(5):
        value = low + step * (high - low) / 4
        parts.append(
            f"<text x='{MARGIN - 6}' y='{y(value):.0f}' text-anchor='end'>{value:.1f}</text>"
        )
    parts.append(
        f"<text x='12' y='{HEIGHT / 2:.0f}' transform='rotate(-90 12 {HEIGHT / 2:.0f})' "
        "text-anchor='middle'>temperature (&#176;C)</text>"
    )
    for (_, vs), colour in zip(series, COLOURS, strict=False):
        points = " ".join(f"{x(h):.1f},{y(v):.1f}" for h, v in enumerate(vs))
        parts.append(
            f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{points}'/>"
        )
    for i, ((name, _), colour) in enumerate(zip(series, COLOURS, strict=False)):
        parts.append(
            f"<text x='{MARGIN + 8}' y='{MARGIN - 24 + 13 * i}' fill='{colour}'>{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


if __name__ == "__main__":
    main()
