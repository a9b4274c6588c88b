"""A small round-robin HTTP load balancer for the Rasa replicas on one machine (`make run-prod`).

    python -m bot.loadbalancer --port 5005 http://127.0.0.1:5006 http://127.0.0.1:5007

Each request goes to the next replica that is up. A replica that refuses the connection is
marked down and the request goes to the next one: nothing was sent, so nothing can run twice.
A replica that fails after the request was sent (killed mid-message) gets a 502, which Telegram
and Twilio retry; the load balancer does not replay it itself, since the replica may have
finished the turn. A health check every `--check-every` seconds brings replicas back.
In a real deployment nginx does this job (`deploy/nginx.conf`).
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import sys
import time
from typing import Dict, List, Optional

import aiohttp
from aiohttp import web

logger = logging.getLogger("bot.loadbalancer")

MAX_BODY = 2 * 1024 * 1024  # bytes; larger requests get 413
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}


class Backend:
    """One replica and whether it is believed up."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.down_until = 0.0
        self.served = 0

    @property
    def up(self) -> bool:
        """Whether requests may go to this replica now."""
        return time.monotonic() >= self.down_until

    def mark_down(self, seconds: float, why: str) -> None:
        """Keeps requests away for `seconds` (or until a health check succeeds)."""
        if self.up:
            logger.warning("replica %s is down (%s)", self.url, why)
        self.down_until = time.monotonic() + seconds

    def mark_up(self) -> None:
        """Lets requests reach the replica again."""
        if not self.up:
            logger.info("replica %s is up", self.url)
        self.down_until = 0.0


class LoadBalancer:
    """Round robin over backends, skipping those that are down."""

    def __init__(self, urls: List[str], timeout: float = 300, down_for: float = 30,
                 check_every: float = 2) -> None:
        self.backends = [Backend(u) for u in urls]
        self._next = itertools.cycle(range(len(self.backends)))
        self.timeout = timeout
        self.down_for = down_for
        self.check_every = check_every
        self.session: Optional[aiohttp.ClientSession] = None

    def order(self) -> List[Backend]:
        """The backends to try for one request: up ones first, from the next in turn."""
        start = next(self._next)
        rotated = self.backends[start:] + self.backends[:start]
        return [b for b in rotated if b.up] + [b for b in rotated if not b.up]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Forwards one request to a replica and relays its answer."""
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "request too large"}, status=413)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["X-Forwarded-For"] = request.remote or ""
        headers["X-Forwarded-Host"] = request.host
        for backend in self.order():
            try:
                async with self.session.request(request.method, backend.url + request.path_qs, data=body,
                                                headers=headers, allow_redirects=False) as answer:
                    payload = await answer.read()
                    backend.served += 1
                    relayed = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP
                               and k.lower() != "content-encoding"}
                    return web.Response(status=answer.status, body=payload, headers=relayed)
            except aiohttp.ClientConnectorError:
                backend.mark_down(self.down_for, "connection refused")
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                backend.mark_down(self.down_for, f"{type(error).__name__} during a request")
                return web.json_response({"error": "the replica failed; retry"}, status=502)
        return web.json_response({"error": "no replica is up; retry later"}, status=503)

    async def check(self) -> None:
        """Marks replicas up or down by fetching `/` from each, forever."""
        while True:
            for backend in self.backends:
                try:
                    async with self.session.get(backend.url + "/", timeout=aiohttp.ClientTimeout(total=5)) as r:
                        if r.status < 500:
                            backend.mark_up()
                        else:
                            backend.mark_down(self.down_for, f"health check answered {r.status}")
                except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                    backend.mark_down(self.down_for, f"health check: {type(error).__name__}")
            await asyncio.sleep(self.check_every)

    def status(self) -> Dict[str, Dict[str, object]]:
        """Each replica: up or not, requests served."""
        return {b.url: {"up": b.up, "served": b.served} for b in self.backends}

    def app(self) -> web.Application:
        """The aiohttp application: every path is forwarded, except `/_lb/status`."""
        application = web.Application(client_max_size=MAX_BODY)

        async def start(_: web.Application) -> None:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=3),
                connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
            application["checker"] = asyncio.get_running_loop().create_task(self.check())

        async def stop(_: web.Application) -> None:
            application["checker"].cancel()
            await self.session.close()

        async def status(_: web.Request) -> web.Response:
            return web.json_response(self.status())

        application.on_startup.append(start)
        application.on_cleanup.append(stop)
        application.router.add_get("/_lb/status", status)
        application.router.add_route("*", "/{path:.*}", self.handle)
        return application


def main(argv: Optional[List[str]] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backends", nargs="+", help="replica base URLs")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5005)
    parser.add_argument("--check-every", type=float, default=2.0, help="seconds between health checks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    balancer = LoadBalancer(args.backends, check_every=args.check_every)
    web.run_app(balancer.app(), host=args.host, port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
