"""Admin-only pages: staff accounts, advisors, and single conversations (pseudonymised).

Every route here answers 403 to a staff account and sends an anonymous visitor to log in.
Forms carry the session's CSRF token.
"""
from __future__ import annotations

import unicodedata
from typing import Any, Dict, List, Optional

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.dashboard import auth, conversations, privacy
from bot.dashboard.filters import CHANNELS, choices
from bot.dashboard.models import advisors
from bot.handoff.advisors import AdvisorError as ContactError
from bot.handoff.advisors import normal_contact
from bot.storage import utcnow

ADVISOR_CHANNELS = tuple(c for c in CHANNELS if c != "webchat")


class AdvisorError(ValueError):
    """An advisor form with a missing or invalid field."""


def advisor_values(form: Dict[str, str], languages: List[str]) -> Dict[str, Any]:
    """Validated columns of an advisor from a submitted form, the contact in the form the desk
    looks advisors up by (`bot.handoff.advisors.normal_contact`)."""
    name = form.get("name", "").strip()
    if not 1 <= len(name) <= 100 or any(unicodedata.category(ch) == "Cc" for ch in name):
        raise AdvisorError("name")
    channel = form.get("channel", "")
    if channel not in ADVISOR_CHANNELS:
        raise AdvisorError("channel")
    try:
        contact = normal_contact(channel, form.get("contact", ""))
    except ContactError:
        raise AdvisorError("contact_telegram" if channel == "telegram" else "contact_phone") from None
    programme = form.get("programme") or None
    if programme is not None and programme not in choices()["programme"]:
        raise AdvisorError("programme")
    known = choices()["language"]
    if not languages or any(language not in known or language == "unknown" for language in languages):
        raise AdvisorError("languages")
    return {"name": name, "channel": channel, "contact": contact, "programme": programme,
            "languages": " ".join(languages)}


def save_advisor(engine: Engine, values: Dict[str, Any]) -> int:
    """Adds an advisor, or updates and reactivates the one with the same channel and contact
    (as `bot.handoff.advisors.add` does); returns their id."""
    now = utcnow()
    with engine.begin() as db:
        found = db.execute(sa.select(advisors.c.id).where(advisors.c.channel == values["channel"],
                                                          advisors.c.contact == values["contact"])).first()
        if found:
            db.execute(sa.update(advisors).where(advisors.c.id == found.id)
                       .values(**values, active=True, updated_at=now))
            return found.id
        return db.execute(sa.insert(advisors).values(**values, active=True, created_at=now, updated_at=now)
                          ).inserted_primary_key[0]


def register(app: Sanic, context: Any) -> None:
    """Adds the admin routes to `app`."""
    from bot.dashboard.app import HTTPError, login_redirect
    from bot.dashboard.views import check_form

    renderer, engine = context.renderer, context.engine

    def require_admin(request: Request) -> Optional[HTTPResponse]:
        if request.ctx.session is None:
            return login_redirect(request)
        if not request.ctx.session.is_admin:
            raise HTTPError(403, "admins_only")
        return None

    def render(request: Request, template: str, status: int = 200, **values: Any) -> HTTPResponse:
        html = renderer.render(template, session=request.ctx.session, request=request, current="admin",
                               choices=choices(), **values)
        return response.html(html, status=status)

    # -- accounts -----------------------------------------------------------------------------

    async def accounts_page(request: Request, error: Optional[str] = None, status: int = 200) -> HTTPResponse:
        rows = await context.db(auth.accounts, engine)
        return render(request, "accounts.html", status=status, accounts=rows, error=error)

    @app.get("/admin/accounts")
    async def accounts(request: Request) -> HTTPResponse:
        return require_admin(request) or await accounts_page(request)

    @app.post("/admin/accounts")
    async def create_account(request: Request) -> HTTPResponse:
        denied = require_admin(request)
        if denied:
            return denied
        form = check_form(request)
        try:
            await context.db(auth.create_account, engine, form.get("username", ""), form.get("password", ""),
                             form.get("role", ""))
        except auth.AccountError as error:
            return await accounts_page(request, error.code, 400)
        return response.redirect("/admin/accounts", status=303)

    @app.post("/admin/accounts/<username:str>/<change:str>")
    async def change_account(request: Request, username: str, change: str) -> HTTPResponse:
        denied = require_admin(request)
        if denied:
            return denied
        form = check_form(request)
        if username == request.ctx.session.username and change in ("disable", "role"):
            return await accounts_page(request, "own_account", 400)
        try:
            if change in ("disable", "enable"):
                await context.db(auth.set_active, engine, username, change == "enable")
            elif change == "password":
                await context.db(auth.set_password, engine, username, form.get("password", ""))
            elif change == "role":
                await context.db(auth.set_role, engine, username, form.get("role", ""))
            else:
                raise HTTPError(404, "not_found")
        except auth.AccountError as error:
            return await accounts_page(request, error.code, 400)
        return response.redirect("/admin/accounts", status=303)

    # -- advisors -----------------------------------------------------------------------------

    def list_advisors() -> List:
        with engine.connect() as db:
            return db.execute(sa.select(advisors).order_by(advisors.c.active.desc(), advisors.c.name)).all()

    async def advisors_page(request: Request, error: Optional[str] = None, status: int = 200) -> HTTPResponse:
        return render(request, "advisors.html", status=status, advisors=await context.db(list_advisors),
                      channels=ADVISOR_CHANNELS, error=error)

    @app.get("/admin/advisors")
    async def advisors_list(request: Request) -> HTTPResponse:
        return require_admin(request) or await advisors_page(request)

    @app.post("/admin/advisors")
    async def add_advisor(request: Request) -> HTTPResponse:
        denied = require_admin(request)
        if denied:
            return denied
        form = check_form(request)
        try:
            values = advisor_values(form, list(request.form.getlist("languages") or []))
        except AdvisorError as error:
            return await advisors_page(request, str(error), 400)

        await context.db(save_advisor, engine, values)
        return response.redirect("/admin/advisors", status=303)

    @app.post("/admin/advisors/<advisor_id:int>/<change:str>")
    async def change_advisor(request: Request, advisor_id: int, change: str) -> HTTPResponse:
        denied = require_admin(request)
        if denied:
            return denied
        check_form(request)
        if change not in ("disable", "enable"):
            raise HTTPError(404, "not_found")

        def work() -> int:
            with engine.begin() as db:
                return db.execute(sa.update(advisors).where(advisors.c.id == advisor_id)
                                  .values(active=change == "enable", updated_at=utcnow())).rowcount

        if not await context.db(work):
            raise HTTPError(404, "advisor_missing")
        return response.redirect("/admin/advisors", status=303)

    # -- single conversations -------------------------------------------------------------------

    @app.get("/unanswered/<question_id:int>/context")
    async def question_context(request: Request, question_id: int) -> HTTPResponse:
        denied = require_admin(request)
        if denied:
            return denied

        def work():
            with engine.connect() as db:
                return conversations.question_context(db, question_id, privacy.key(engine))

        return render(request, "conversation.html", transcript=await context.db(work), kind="question")

    @app.get("/handoffs/<ticket_id:int>/transcript")
    async def ticket_transcript(request: Request, ticket_id: int) -> HTTPResponse:
        denied = require_admin(request)
        if denied:
            return denied

        def work():
            with engine.connect() as db:
                return conversations.ticket_transcript(db, ticket_id, privacy.key(engine))

        return render(request, "conversation.html", transcript=await context.db(work), kind="ticket")
