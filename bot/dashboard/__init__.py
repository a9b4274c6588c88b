"""The programme staff's analytics dashboard (issue #7).

A small Sanic web application (`python -m bot.dashboard serve`, started by `make run`) that
reads Rasa's tracker store events and the project's own tables through SQLAlchemy, keeps
compact daily aggregates (`bot.dashboard.etl`), and shows them as server-side SVG charts and
tables with CSV downloads. Staff log in; admins also manage accounts and advisors.

Modules: `models` (tables), `etl` (events to aggregates), `filters` (query parameters),
`queries` (one function per page), `handoffs` (the handoff tickets), `charts`
(SVG geometry), `auth` (accounts, sessions, CSRF), `privacy` (pseudonyms, retention),
`app` (routes), `bench` (page timings), `__main__` (the command line).
"""
