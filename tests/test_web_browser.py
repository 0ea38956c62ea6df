"""The dashboard in a real browser: the example system under supervisord, through
a good cycle and a failed one (a river outage), watched in headless Chromium
(Debian's chromium, driven by Playwright). Screenshots of each page are saved in
the test's temporary directory (and in $NOWCAST_WEB_SCREENSHOTS, if set)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import wait_for
from test_example_system import example  # noqa: F401 (a fixture)
from webtools import CHROMIUM_ARGS, chromium_path

BIN = Path(sys.executable).parent
CHAIN = [
    "prepare_run",
    "get_weather",
    "get_rivers",
    "run_model",
    "make_plots",
    "clear_checklist",
    "rotate_logs",
]


def bars(page) -> list[dict]:
    """The timeline's bars as the page draws them."""
    return page.eval_on_selector_all(
        "#timeline rect.bar",
        """nodes => nodes.map(n => ({worker: n.dataset.worker, cls: n.dataset.class,
            try: Number(n.dataset.try), width: n.getBBox().width,
            fill: getComputedStyle(n).fill}))""",
    )


def css_colour(page, name: str) -> str:
    """The colour the style sheet gives an outcome, as the browser computes it."""
    return page.evaluate(
        """name => { const s = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
            s.setAttribute('class', 'c-' + name); document.querySelector('#timeline svg').append(s);
            const fill = getComputedStyle(s).fill; s.remove(); return fill; }""",
        name,
    )


def shoot(page, directory: Path, name: str) -> None:
    path = directory / f"web-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    wanted = os.environ.get("NOWCAST_WEB_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / path.name)


@pytest.mark.timeout(300)
def test_the_dashboard_follows_a_good_and_a_failed_cycle(example):  # noqa: F811
    chromium = chromium_path()
    from playwright.sync_api import sync_playwright

    directory, env = example
    config = directory / "config" / "nowcast.yaml"
    url = f"http://127.0.0.1:{yaml.safe_load(config.read_text())['web']['port']}"
    shots = directory / "screenshots"
    shots.mkdir()
    py = str(BIN / "python")

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, cwd=directory, env=env, capture_output=True, text=True, timeout=150, **kwargs
        )

    (directory / "logs").mkdir()
    (directory / "data").mkdir()
    assert run(str(BIN / "supervisord"), "-c", "supervisord.ini").returncode == 0
    assert run(py, "-m", "nowcast.status", str(config), "--timeout", "20").returncode == 0

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 560})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            wait_for(lambda: _answers(url), timeout=30, what="the dashboard")
            page.goto(url + "/")
            page.wait_for_selector("#live.on")
            page.evaluate("window.notReloaded = true")

            # a good cycle, watched live: bars appear, and the running ones grow
            since = time.time()
            launch = subprocess.Popen(
                [py, "-m", "workers.prepare_run", str(config)],
                cwd=directory,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            page.wait_for_selector("#timeline rect.bar[data-worker=prepare_run]", timeout=10000)
            running = page.wait_for_selector(
                "#timeline rect.bar.c-running[data-worker=run_model]", timeout=30000
            )
            # the page redraws at each update: find the bar by its run each time
            bar = f'#timeline rect.bar[data-run="{running.get_attribute("data-run")}"]'
            first = float(page.get_attribute(bar, "width"))
            page.wait_for_timeout(700)
            assert page.get_attribute(bar, "data-class") == "running"  # run_model takes ~15 s
            assert float(page.get_attribute(bar, "width")) > first
            assert launch.wait(30) == 0
            waited = run(
                py,
                "scripts/wait_for_cycle.py",
                str(config),
                "--last",
                "rotate_logs",
                "--since",
                str(since),
            )
            assert waited.returncode == 0, waited.stdout + waited.stderr
            page.wait_for_function(
                "document.querySelectorAll('#timeline rect.bar.c-success').length >= 7"
            )
            drawn = bars(page)
            assert sorted(b["worker"] for b in drawn) == sorted(CHAIN)
            assert {b["cls"] for b in drawn} == {"success"}
            assert {b["fill"] for b in drawn} == {css_colour(page, "success")}
            assert page.evaluate("window.notReloaded") is True  # all of it without a reload
            shoot(page, shots, "today-good")

            # the graph: edges from who launched what, the forcing workers joined
            page.goto(url + "/graph")
            page.wait_for_selector("svg.graph-svg")
            edges = page.eval_on_selector_all(
                "path.edge", "ns => ns.map(n => [n.dataset.from, n.dataset.to])"
            )
            edges = {tuple(e) for e in edges}
            for edge in [
                ("prepare_run", "get_weather"),
                ("prepare_run", "get_rivers"),
                ("run_model", "make_plots"),
                ("make_plots", "clear_checklist"),
                ("clear_checklist", "rotate_logs"),
            ]:
                assert edge in edges, (edge, edges)
            join = page.wait_for_selector("circle.join[data-join=run_model]")
            assert join.get_attribute("data-members") == "get_rivers,get_weather"
            assert ("get_rivers+get_weather", "run_model") in edges
            classes = page.eval_on_selector_all(
                "rect.node",
                "ns => Object.fromEntries(ns.map(n => [n.dataset.node, n.dataset.class]))",
            )
            assert all(classes[w] == "success" for w in CHAIN), classes
            shoot(page, shots, "graph")

            # a failed cycle: the rivers are down; watched on Today
            page.goto(url + "/")
            page.wait_for_selector("#live.on")
            since = time.time()
            assert (
                run(
                    py, "-m", "workers.prepare_run", str(config), "--simulate-outage", "rivers"
                ).returncode
                == 0
            )
            waited = run(
                py,
                "scripts/wait_for_cycle.py",
                str(config),
                "--last",
                "rotate_logs",
                "--since",
                str(since),
            )
            assert waited.returncode == 1 and "get_rivers" in waited.stderr
            page.wait_for_function(
                "document.querySelectorAll('#timeline rect.bar[data-worker=run_model]').length >= 2"
                " && !document.querySelector('#timeline rect.bar.c-running')"
            )
            rivers = [b for b in bars(page) if b["worker"] == "get_rivers"]
            assert [(b["try"], b["cls"]) for b in rivers] == [
                (1, "success"),
                (1, "retried"),
                (2, "failure"),
            ]
            model = [b["cls"] for b in bars(page) if b["worker"] == "run_model"]
            assert model == ["success", "failure"]
            failed_fill = {b["fill"] for b in bars(page) if b["cls"] == "failure"}
            assert failed_fill == {css_colour(page, "failure")} != {css_colour(page, "success")}
            summary = page.inner_text("#summary")
            assert "2 failed" in summary and "1 retried" in summary
            page.click("#timeline rect.bar.c-failure[data-worker=get_rivers]")
            page.wait_for_selector("#details pre.log")
            page.wait_for_function(
                "!document.querySelector('#details pre.log').textContent.includes('loading')"
            )
            assert "no river forcing" in page.inner_text("#details")
            shoot(page, shots, "today")

            page.goto(url + "/worker/get_rivers")
            page.wait_for_selector("#failures .failure pre.log")
            page.wait_for_function(
                "[...document.querySelectorAll('#failures pre.log')].every(p => !p.textContent.includes('loading'))"
            )
            assert len(page.query_selector_all("#failures .failure")) == 2
            assert "no river forcing" in page.inner_text("#failures")
            shoot(page, shots, "worker")

            page.goto(url + "/checklist")
            page.wait_for_selector("#tree details")
            page.fill("#search", "missing forcing")
            page.wait_for_timeout(200)
            assert "rivers.csv" in page.inner_text("#tree")
            assert "weather forcing" not in page.inner_text("#tree")
            page.fill("#search", "")
            rows = page.query_selector_all("#messages tbody tr")
            assert 1 <= len(rows) <= 20
            shoot(page, shots, "checklist")

            page.goto(url + "/system")
            page.wait_for_selector("#processes tbody tr")
            up = page.eval_on_selector_all(
                "#processes tr[data-process]",
                "ns => Object.fromEntries(ns.map(n => [n.dataset.process, n.dataset.up]))",
            )
            assert up["message_broker"] == up["manager"] == up["scheduler"] == up["web"] == "yes"
            shoot(page, shots, "system")
            assert errors == []
        finally:
            browser.close()
    assert sorted(p.name for p in shots.iterdir()) == [
        "web-checklist.png",
        "web-graph.png",
        "web-system.png",
        "web-today-good.png",
        "web-today.png",
        "web-worker.png",
    ]


def _answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/static/style.css", timeout=2):
            return True
    except OSError:
        return False
