"""The dashboard's web application (Starlette): pages, their data as JSON, and the
live-update stream. Everything here reads; nothing writes what the manager uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import platform
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from nowcast import history
from nowcast.config import Config
from nowcast.web import queries
from nowcast.web.live import Live
from nowcast.web.settings import WebSettings

logger = logging.getLogger("web")
HERE = Path(__file__).parent

# Seconds between the event stream's keep-alive comments.
KEEP_ALIVE = 15.0

PAGES = {
    "today": "Today",
    "graph": "Graph",
    "checklist": "Checklist",
    "system": "System",
}


class Dashboard:
    """Builds each page's data from the history, the config and the live status."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.db_path = history.history_path(config)
        self.live = Live(config, self.db_path)

    @contextlib.contextmanager
    def history(self) -> Iterator[sqlite3.Connection | None]:
        """A read-only connection to the history database, or None while there is none."""
        try:
            conn = history.open_readonly(self.db_path)
        except history.HistoryError as e:
            logger.debug("no history to show: %s", e)
            yield None
            return
        try:
            yield conn
        finally:
            conn.close()

    def view(self, page: str, name: str | None = None) -> dict:
        """The data of one page (``name``: the worker, for the worker page)."""
        now = time.time()
        status = self.live.status
        with self.history() as conn:
            if page == "today":
                data = queries.today_view(conn, self.config, status, now)
            elif page == "graph":
                data = queries.graph_view(conn, self.config, status, now)
            elif page == "checklist":
                data = queries.checklist_view(conn, self.config, now)
            elif page == "worker":
                data = queries.worker_view(conn, self.config, str(name), now)
            elif page == "system":
                from nowcast.web.system import system_view

                data = system_view(
                    self.config,
                    status,
                    self.live.status_time,
                    queries.message_rate(conn, now),
                    queries.upcoming_launches(self.config, now, 10),
                    now,
                )
            else:  # pragma: no cover - routes only name the pages above
                raise KeyError(page)
            data["history"] = conn is not None
        data["version"] = self.live.version
        if "zone" not in data:  # (the pages that count days have named it)
            data["zone"] = queries.zone_name(self.config)
        data["manager_answering"] = status is not None
        return data

    def run(self, run_id: str) -> dict | None:
        with self.history() as conn:
            if conn is None:
                return None
            return queries.run_detail(conn, self.config, run_id)


def _script_json(data: Any) -> str:
    """JSON to embed in a page's <script> element: no '</script>' can end it early."""
    return (
        json.dumps(data, default=str)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def create_app(config: Config, settings: WebSettings) -> Starlette:
    """The ASGI application for the system ``config`` describes."""
    dashboard = Dashboard(config)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["script_json"] = _script_json
    system_name = platform.node()

    async def page(request: Request) -> Response:
        name = request.path_params.get("name")
        kind = request.url.path.strip("/").split("/")[0] or "today"
        data = await run_in_threadpool(dashboard.view, kind, name)
        return templates.TemplateResponse(
            request,
            f"{kind}.html",
            {
                "data": data,
                "page": kind,
                "pages": PAGES,
                "system": system_name,
                "title": f"{PAGES.get(kind, name)} · {system_name}",
            },
        )

    async def page_json(request: Request) -> Response:
        kind = request.path_params["page"]
        if kind not in PAGES:
            return JSONResponse({"error": f"no page {kind!r}"}, status_code=404)
        return JSONResponse(await run_in_threadpool(dashboard.view, kind))

    async def worker_json(request: Request) -> Response:
        data = await run_in_threadpool(dashboard.view, "worker", request.path_params["name"])
        return JSONResponse(data)

    async def run_json(request: Request) -> Response:
        found = await run_in_threadpool(dashboard.run, request.path_params["id"])
        if found is None:
            return JSONResponse({"error": "no such run"}, status_code=404)
        return JSONResponse(found)

    async def events(request: Request) -> Response:
        live = dashboard.live

        async def stream():
            seen = live.version
            yield f"retry: 1000\nevent: version\ndata: {seen}\n\n"
            while not live.stopping:
                version = await live.wait_change(seen, KEEP_ALIVE)
                if live.stopping:
                    break
                if version == seen:
                    yield ": keep-alive\n\n"
                else:
                    seen = version
                    yield f"event: version\ndata: {version}\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        tasks = [
            asyncio.create_task(dashboard.live.watch_files()),
            asyncio.create_task(dashboard.live.watch_status()),
        ]
        try:
            yield
        finally:
            dashboard.live.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            dashboard.live.close()

    routes = [
        Route("/", page, name="today"),
        Route("/today", page),
        Route("/graph", page, name="graph"),
        Route("/checklist", page, name="checklist"),
        Route("/system", page, name="system"),
        Route("/worker/{name}", page, name="worker"),
        Route("/api/worker/{name}.json", worker_json),
        Route("/api/run/{id}.json", run_json),
        Route("/api/{page}.json", page_json),
        Route("/events", events),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard = dashboard
    if settings.password is not None:
        from nowcast.web.auth import PasswordMiddleware

        return PasswordMiddleware(app, settings.user, settings.password)  # type: ignore[return-value]
    return app
