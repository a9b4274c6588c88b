"""The dashboard's web application: Sanic routes, sessions, CSRF, rendering, CSV downloads.

`create_app(url)` builds the app for one database. Pages need a logged-in account; admin
pages (accounts, advisors, a single conversation) need the admin role. Database work runs in
worker threads so a slow query never blocks other requests. Every error a visitor can cause
(bad dates, unknown filters, a bad CSRF token, a missing form field) is a 4xx page.
"""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import itertools
import logging
import os
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote

from sanic import Sanic, response
from sanic.exceptions import NotFound, SanicException
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import storage
from bot.dashboard import auth, etl, views
from bot.dashboard.filters import FilterError
from bot.dashboard.render import Renderer

logger = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "dash_session"
LOGIN_COOKIE = "dash_login"
_names = itertools.count()

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class HTTPError(SanicException):
    """An error page: a status and a code that `templates/error.html` words for the visitor."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code, status_code=status)
        self.code = code


class Context:
    """What the routes share: the engine, the renderer, the settings."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = storage.engine(url)
        self.renderer = Renderer(HERE / "templates")
        self.secure_cookies = os.environ.get("DASHBOARD_SECURE_COOKIES", "") == "1"

    async def db(self, work: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Runs blocking database work in a worker thread."""
        return await asyncio.to_thread(work, *args, **kwargs)


def set_cookie(context: Context, reply: HTTPResponse, name: str, value: str, max_age: Optional[int]) -> None:
    """Sets an HttpOnly, SameSite=Strict cookie (Secure when DASHBOARD_SECURE_COOKIES=1)."""
    reply.cookies[name] = value
    cookie = reply.cookies[name]
    cookie["httponly"] = True
    cookie["samesite"] = "Strict"
    cookie["path"] = "/"
    if max_age is not None:
        cookie["max-age"] = max_age
    if context.secure_cookies:
        cookie["secure"] = True


def create_app(url: Optional[str] = None, refresh_seconds: Optional[float] = None) -> Sanic:
    """The dashboard app for the database at `url` (default: the project's database).

    `refresh_seconds` (default `DASHBOARD_REFRESH_SECONDS`, 60; 0 turns it off) is how often the
    aggregates are brought up to date while the server runs; retention runs daily when
    `RETENTION_DAYS` is set.
    """
    app = Sanic(f"dashboard_{next(_names)}")
    app.config.FALLBACK_ERROR_FORMAT = "html"
    app.config.REQUEST_MAX_SIZE = 1_000_000
    context = Context(url or storage.database_url())
    app.ctx.dashboard = context
    app.static("/static", str(HERE / "static"), name="static")

    @app.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return response.text("ok")

    @app.middleware("request")
    async def attach_session(request: Request) -> None:
        request.ctx.session = None
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            request.ctx.session = await context.db(auth.session_for, context.engine, token)

    @app.middleware("response")
    async def headers(request: Request, reply: HTTPResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            reply.headers.setdefault(name, value)
        if not request.path.startswith("/static/"):
            reply.headers["Cache-Control"] = "no-store"

    @app.exception(FilterError)
    async def bad_filter(request: Request, error: FilterError) -> HTTPResponse:
        return error_page(context, request, 400, error.code, name=error.name, value=error.value)

    @app.exception(HTTPError)
    async def http_error(request: Request, error: HTTPError) -> HTTPResponse:
        return error_page(context, request, error.status_code, error.code)

    @app.exception(NotFound)
    async def not_found(request: Request, error: NotFound) -> HTTPResponse:
        return error_page(context, request, 404, "not_found")

    @app.exception(SanicException)
    async def other_client_error(request: Request, error: SanicException) -> HTTPResponse:
        status = getattr(error, "status_code", 400) or 400
        return error_page(context, request, status, "bad_request")

    views.register(app, context)
    if refresh_seconds is None:
        refresh_seconds = float(os.environ.get("DASHBOARD_REFRESH_SECONDS", 60))
    if refresh_seconds > 0:
        app.add_task(_keep_fresh(context, refresh_seconds))
    return app


def error_page(context: Context, request: Request, status: int, code: str, name: str = "",
               value: str = "") -> HTTPResponse:
    """The error page, worded by `templates/error.html` from the error's code."""
    html = context.renderer.render("error.html", status=status, code=code, name=name, value=value, current=None,
                                   session=getattr(request.ctx, "session", None), request=request)
    return response.html(html, status=status)


async def _keep_fresh(context: Context, every: float) -> None:
    from bot.dashboard import retention

    last_retention: Optional[dt.date] = None
    while True:
        try:
            await context.db(etl.Refresher(context.engine).run)
            days = retention.retention_days()
            if days and last_retention != dt.date.today():
                blanked = await context.db(retention.apply, context.engine, days)
                last_retention = dt.date.today()
                logger.info("retention: blanked %s", blanked)
        except Exception:
            logger.exception("refreshing the dashboard aggregates failed; trying again later")
        await asyncio.sleep(every)


def login_redirect(request: Request) -> HTTPResponse:
    """Sends an anonymous visitor to the login page, remembering where they were going."""
    target = request.path + (f"?{request.query_string}" if request.query_string else "")
    return response.redirect(f"/login?next={quote(target, safe='')}", status=303)


def csv_response(filename: str, columns, rows) -> HTTPResponse:
    """A table as a CSV download; cells a spreadsheet would run as formulas are quoted with '."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(value) for value in row])
    return response.text(buffer.getvalue(), content_type="text/csv; charset=utf-8",
                         headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def serve(host: str = "127.0.0.1", port: int = 5006, url: Optional[str] = None) -> None:
    """Runs the dashboard server until interrupted."""
    create_app(url).run(host=host, port=port, access_log=False, workers=1)
