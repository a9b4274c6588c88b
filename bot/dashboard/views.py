"""The dashboard's pages, their CSV downloads, logging in and out, marking questions handled.

Each analytics page is a `PageSpec`: its path, the query function that computes its tables,
the template that shows them and the charts drawn beside the tables. The CSV of any table of
a page is at `/csv/<page>/<table>` with the page's own query string.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple
from urllib.parse import urlparse

import sqlalchemy as sa
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.dashboard import auth, charts, etl, handoffs, queries
from bot.dashboard import models as m
from bot.dashboard.filters import Filters, FilterError, choices, parse
from bot.dashboard.queries import Page


@dataclass(frozen=True)
class PageSpec:
    """One analytics page."""

    name: str
    path: str
    template: str
    extra_params: Tuple[str, ...] = ()


PAGES = {spec.name: spec for spec in (
    PageSpec("overview", "/", "overview.html", ("split",)),
    PageSpec("questions", "/questions", "questions.html"),
    PageSpec("calculator", "/calculator", "calculator.html"),
    PageSpec("handoffs", "/handoffs", "handoffs.html"),
    PageSpec("funnel", "/funnel", "funnel.html"),
)}


def today() -> dt.date:
    """Today in the dashboard's time zone (the default end of the date range)."""
    return dt.datetime.now(etl.timezone()).date()


def request_filters(request: Request, spec: PageSpec) -> Tuple[Filters, Dict[str, str]]:
    """The validated filters of a request, and its page-specific parameters."""
    args = {name: list(values) for name, values in request.args.items()}
    filters = parse(args, today(), extra=spec.extra_params)
    extra = {name: args[name][0] for name in spec.extra_params if name in args}
    if "split" in extra and extra["split"] not in queries.SPLITS:
        raise FilterError("unknown_value", "split", extra["split"])
    return filters, extra


def compute(engine: sa.engine.Engine, spec: PageSpec, f: Filters, extra: Dict[str, str],
            admin: bool = False) -> Tuple[Optional[Page], Optional[dt.datetime]]:
    """The page's figures, and when the aggregates were last brought up to date."""
    with engine.connect() as db:
        if spec.name == "overview":
            page = queries.overview(db, f, extra.get("split", "channel"))
        elif spec.name == "questions":
            page = queries.questions(db, f)
        elif spec.name == "calculator":
            page = queries.calculator(db, f)
        elif spec.name == "handoffs":
            page = handoffs.handoffs(db, f)
            if page is not None and admin:
                page.tables["tickets"] = handoffs.recent(db, f)
        else:
            page = queries.funnel(db, f)
        fresh = db.execute(sa.select(m.dash_state.c.updated_at).where(m.dash_state.c.name == "etl")).scalar()
    return page, fresh


def build_charts(spec: PageSpec, page: Optional[Page], f: Filters, locale: str) -> Dict[str, charts.Chart]:
    """The charts of a page, drawn from its tables."""
    if page is None:
        return {}
    t, days = page.tables, f.days
    if spec.name == "overview":
        daily = t["daily"]
        split = t["daily_split"]
        values = sorted({row[1] for row in split.rows})
        lines = [(value, [row[2] for row in split.rows if row[1] == value]) for value in values]
        return {
            "activity": charts.line_chart(days, [("conversations", daily.column("conversations")),
                                                 ("active_users", daily.column("active_users"))], locale),
            "new_returning": charts.stacked_columns(days, [("new_users", daily.column("new_users")),
                                                           ("returning_users", daily.column("returning_users"))],
                                                    locale),
            "split": charts.line_chart(days, lines, locale),
            **{name: charts.bar_chart([(r[0], r[1]) for r in t[f"by_{name}"].rows], locale, label_width=110)
               for name in queries.SPLITS},
        }
    if spec.name == "questions":
        return {
            "labels": charts.bar_chart([(r[0], r[1]) for r in t["labels"].rows[:15]], locale),
            "topics": charts.bar_chart([(r[0][4:], r[2]) for r in t["topics"].rows], locale),
            "fallback": charts.line_chart(days, [("fallback_rate", [r[3] * 100 for r in t["fallback_daily"].rows])],
                                          locale, height=180),
        }
    if spec.name == "calculator":
        return {
            "uses": charts.line_chart(days, [("calculations", t["uses"].column("calculations"))], locale, height=180),
            "terms": charts.bar_chart([(f"{r[1]} {r[0]}", r[2]) for r in t["terms"].rows], locale, label_width=110),
            "reminders": charts.bar_chart([(r[0], r[1]) for r in t["reminders"].rows], locale, label_width=110),
        }
    if spec.name == "handoffs":
        return {"reasons": charts.bar_chart([(r[0], r[1]) for r in t["reasons"].rows], locale, label_width=150)}
    return {"funnel": charts.bar_chart([(r[0], r[1]) for r in t["funnel"].rows], locale, label_width=110)}


def safe_next(target: Optional[str]) -> str:
    """A local path to go to after logging in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parsed = urlparse(target)
    return target if not parsed.scheme and not parsed.netloc else "/"


def check_form(request: Request) -> Dict[str, str]:
    """The submitted form, after checking the session's CSRF token and the Origin header."""
    from bot.dashboard.app import HTTPError

    session = request.ctx.session
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlparse(origin).netloc != request.host:
        raise HTTPError(403, "cross_site")
    form = {name: values[0] for name, values in (request.form or {}).items()}
    if session is None or not auth.csrf_ok(session.csrf_token, form.get("csrf")):
        raise HTTPError(403, "csrf")
    return form


def register(app: Sanic, context: Any) -> None:
    """Adds the pages, the CSV downloads and the login routes to `app`."""
    from bot.dashboard import admin
    from bot.dashboard.app import (HTTPError, LOGIN_COOKIE, SESSION_COOKIE, csv_response, login_redirect,
                                   set_cookie)

    renderer = context.renderer

    def page_route(spec: PageSpec) -> Callable:
        async def handler(request: Request) -> HTTPResponse:
            session = request.ctx.session
            if session is None:
                return login_redirect(request)
            f, extra = request_filters(request, spec)
            page, fresh = await context.db(compute, context.engine, spec, f, extra, session.is_admin)
            html = renderer.render(spec.template, page=page, f=f, extra=extra, charts=build_charts(
                spec, page, f, renderer.locale), choices=choices(), session=session, fresh=fresh,
                current=spec.name, pages=PAGES, request=request)
            return response.html(html)

        handler.__name__ = f"page_{spec.name}"
        return handler

    for spec in PAGES.values():
        app.add_route(page_route(spec), spec.path, methods=["GET"], name=f"page_{spec.name}")

    @app.get("/csv/<page_name:str>/<table:str>")
    async def download(request: Request, page_name: str, table: str) -> HTTPResponse:
        session = request.ctx.session
        if session is None:
            return login_redirect(request)
        spec = PAGES.get(page_name)
        if spec is None:
            raise HTTPError(404, "not_found")
        f, extra = request_filters(request, spec)
        page, _ = await context.db(compute, context.engine, spec, f, extra, session.is_admin)
        if page is None or table not in page.tables:
            raise HTTPError(404, "no_table")
        data = page.tables[table]
        return csv_response(f"{page_name}-{table}-{f.start}-{f.end}.csv", data.columns, data.rows)

    @app.get("/login")
    async def login_form(request: Request) -> HTTPResponse:
        if request.ctx.session is not None:
            return response.redirect(safe_next(request.args.get("next")), status=303)
        return _login_page(request, None, 200)

    def _login_page(request: Request, error: Optional[str], status: int) -> HTTPResponse:
        token = auth.new_login_token()
        html = renderer.render("login.html", csrf=token, error=error, next=safe_next(request.args.get("next")),
                               session=None, request=request)
        reply = response.html(html, status=status)
        set_cookie(context, reply, LOGIN_COOKIE, token, 3600)
        return reply

    @app.post("/login")
    async def login(request: Request) -> HTTPResponse:
        form = {name: values[0] for name, values in (request.form or {}).items()}
        if not auth.csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            raise HTTPError(403, "csrf_login")
        username, password = form.get("username", ""), form.get("password", "")
        account_id = None
        if username and password and len(password) <= 1024:
            account_id = await context.db(auth.authenticate, context.engine, username, password)
        if account_id is None:
            return _login_page(request, "wrong", 401)
        token = await context.db(auth.start_session, context.engine, account_id)
        reply = response.redirect(safe_next(form.get("next")), status=303)
        set_cookie(context, reply, SESSION_COOKIE, token, int(auth.session_hours() * 3600))
        del reply.cookies[LOGIN_COOKIE]
        return reply

    @app.post("/logout")
    async def logout(request: Request) -> HTTPResponse:
        check_form(request)
        await context.db(auth.end_session, context.engine, request.cookies.get(SESSION_COOKIE))
        reply = response.redirect("/login", status=303)
        del reply.cookies[SESSION_COOKIE]
        return reply

    @app.post("/unanswered/<question_id:int>/handled")
    async def handled(request: Request, question_id: int) -> HTTPResponse:
        if request.ctx.session is None:
            raise HTTPError(403, "login_first")
        form = check_form(request)

        def work() -> int:
            with context.engine.begin() as db:
                return queries.mark_handled(db, question_id)

        if await context.db(work) == 0:
            raise HTTPError(404, "question_missing")
        back = safe_next(form.get("back"))
        return response.redirect(back if back.startswith("/questions") else "/questions", status=303)

    admin.register(app, context)
