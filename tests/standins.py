"""Local stand-ins of the Telegram Bot API and the Twilio REST API, on 127.0.0.1.

Each records every request it gets (method, path, decoded parameters) and answers like the
real service, or with an error a test asked for (`fail`). They run in a thread, so the Rasa
server under test in another process and the test's own event loop can both use them.
"""
from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl


@dataclass
class Recorded:
    """One request a stand-in received."""

    method: str
    path: str
    params: Dict[str, Any]
    headers: Dict[str, str]

    @property
    def name(self) -> str:
        """The API method: `sendMessage` for Telegram, `Messages.json` for Twilio."""
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Failure:
    """An error to answer instead of success, `times` times, to requests that match."""

    name: str
    status: int
    body: Dict[str, Any]
    times: int = 1
    match: Dict[str, str] = field(default_factory=dict)


class StandIn:
    """A recording HTTP server; subclasses answer like one service."""

    def __init__(self) -> None:
        self.requests: List[Recorded] = []
        self.failures: List[Failure] = []
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self._serve()

            def do_GET(self) -> None:  # noqa: N802
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                params = stand_in.decode(self.headers.get("Content-Type", ""), body, query)
                recorded = Recorded(self.command, path, params, dict(self.headers))
                status, answer = stand_in.answer(recorded)
                payload = json.dumps(answer).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # a client that hung up
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The base URL to give the library."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        """Stops the server."""
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def decode(content_type: str, body: bytes, query: str) -> Dict[str, Any]:
        """Form, JSON or query parameters; values that are JSON objects or lists are decoded."""
        if content_type.startswith("application/json") and body:
            return json.loads(body)
        pairs = parse_qsl(body.decode("utf-8") or query, keep_blank_values=True)
        params: Dict[str, Any] = {}
        for key, value in pairs:
            if value[:1] in "[{":
                try:
                    value = json.loads(value)
                except ValueError:
                    pass
            if key in params:
                params[key] = params[key] if isinstance(params[key], list) else [params[key]]
                params[key].append(value)
            else:
                params[key] = value
        return params

    def answer(self, recorded: Recorded) -> Tuple[int, Any]:
        """Records the request and picks the answer."""
        with self._lock:
            self.requests.append(recorded)
            for failure in self.failures:
                if failure.times > 0 and failure.name == recorded.name and all(
                        str(recorded.params.get(k)) == v for k, v in failure.match.items()):
                    failure.times -= 1
                    return failure.status, failure.body
        return self.succeed(recorded)

    def succeed(self, recorded: Recorded) -> Tuple[int, Any]:
        """The answer of the real service."""
        raise NotImplementedError

    def sent(self, name: Optional[str] = None) -> List[Recorded]:
        """Requests received so far (of one method, if named)."""
        with self._lock:
            return [r for r in self.requests if name is None or r.name == name]

    def wait_for(self, name: str, count: int, seconds: float = 10) -> List[Recorded]:
        """Waits until `count` requests of `name` arrived; returns them."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.sent(name)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return self.sent(name)

    def clear(self) -> None:
        """Forgets the requests and pending failures."""
        with self._lock:
            self.requests.clear()
            self.failures.clear()


class TelegramStandIn(StandIn):
    """The Telegram Bot API: `POST /bot<token>/<method>`."""

    BOT = {"id": 7000000001, "is_bot": True, "first_name": "Returnee assistant", "username": "returnee_test_bot"}

    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: List[Dict[str, Any]] = []
        self.forums: set = set()  # chat ids of groups with topics
        self._ids = itertools.count(100)
        self._topics = itertools.count(500)
        super().__init__()

    def fail(self, method: str, status: int, description: str, times: int = 1, retry_after: Optional[int] = None,
             **match: str) -> None:
        """The next `times` calls of `method` (whose parameters match) fail like Telegram fails."""
        body: Dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self.failures.append(Failure(method, status, body, times, match))

    def succeed(self, recorded: Recorded) -> Tuple[int, Any]:
        """Answers each method the way the Bot API does."""
        if not recorded.path.startswith(f"/bot{self.token}/"):
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        name, params = recorded.name, recorded.params
        if name == "getMe":
            return 200, {"ok": True, "result": self.BOT}
        if name in ("sendMessage", "sendPhoto", "sendDocument"):
            chat = params.get("chat_id")
            group = str(chat).startswith("-")
            message = {"message_id": next(self._ids), "date": int(time.time()),
                       "chat": {"id": int(chat) if str(chat).lstrip("-").isdigit() else chat,
                                "type": "supergroup" if group else "private"},
                       "from": self.BOT}
            if "text" in params:
                message["text"] = params["text"]
            if params.get("message_thread_id"):
                message["message_thread_id"] = int(params["message_thread_id"])
                message["is_topic_message"] = True
            return 200, {"ok": True, "result": message}
        if name == "getChat":
            chat = str(params.get("chat_id"))
            return 200, {"ok": True, "result": {"id": int(chat), "type": "supergroup", "title": "Advisors",
                                                "is_forum": chat in self.forums, "accent_color_id": 0,
                                                "max_reaction_count": 11}}
        if name == "createForumTopic":
            return 200, {"ok": True, "result": {"message_thread_id": next(self._topics), "name": params.get("name"),
                                                "icon_color": 7322096}}
        if name == "getUpdates":
            deadline = time.monotonic() + min(float(params.get("timeout") or 0), 0.5)
            while time.monotonic() < deadline and not self.updates:
                time.sleep(0.02)
            offset = int(params.get("offset") or 0)
            with self._lock:
                batch = [u for u in self.updates if u["update_id"] >= offset]
                self.updates = batch
            return 200, {"ok": True, "result": batch}
        return 200, {"ok": True, "result": True}  # sendChatAction, answerCallbackQuery, setWebhook...


class TwilioStandIn(StandIn):
    """The Twilio REST API: `POST /2010-04-01/Accounts/<sid>/Messages.json`."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid, self.auth_token = account_sid, auth_token
        self._ids = itertools.count(1)
        super().__init__()

    def fail(self, status: int, code: int, message: str, times: int = 1, **match: str) -> None:
        """The next `times` message creations (whose parameters match) fail like Twilio fails."""
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status}
        self.failures.append(Failure("Messages.json", status, body, times, match))

    def succeed(self, recorded: Recorded) -> Tuple[int, Any]:
        """Creates the message resource, after checking the account's basic auth."""
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if recorded.headers.get("Authorization") != expected:
            return 401, {"code": 20003, "message": "Authenticate", "status": 401}
        if recorded.path != f"/2010-04-01/Accounts/{self.account_sid}/Messages.json":
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        params = recorded.params
        sid = f"SM{next(self._ids):032x}"
        return 201, {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": params.get("Body", ""),
            "date_created": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()),
            "direction": "outbound-api", "error_code": None, "error_message": None,
            "from": params.get("From"), "messaging_service_sid": params.get("MessagingServiceSid"),
            "num_media": "0", "num_segments": "1", "sid": sid, "status": "queued", "to": params.get("To"),
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }


class FakeTrackerStore:
    """Conversations a test prepared, by sender id."""

    def __init__(self) -> None:
        self.trackers: Dict[str, Any] = {}

    async def retrieve(self, sender_id: str) -> Any:
        """The prepared conversation, or None."""
        return self.trackers.get(sender_id)


class FakeAgent:
    """Stands for Rasa's agent: records each message and answers with the test's `replies`."""

    def __init__(self) -> None:
        self.tracker_store = FakeTrackerStore()
        self.messages: List[Any] = []
        self.replies: List[Dict[str, Any]] = [{"text": "ok"}]

    async def handle_message(self, message: Any) -> None:
        """Records `message`, then sends the replies through its output channel."""
        self.messages.append(message)
        for reply in self.replies:
            await message.output_channel.send_response(message.sender_id, dict(reply))


class ChannelServer:
    """A Sanic server on 127.0.0.1 serving one input channel's blueprint, like `rasa run` does."""

    _count = itertools.count()

    def __init__(self, channel: Any, agent: Optional[FakeAgent] = None) -> None:
        self.channel, self.agent = channel, agent or FakeAgent()
        self.server = None
        self.url = ""

    async def __aenter__(self) -> "ChannelServer":
        import socket

        from sanic import Sanic

        Sanic.test_mode = True  # lets several apps start in one process
        app = Sanic(f"channel_test_{next(self._count)}", configure_logging=False)
        app.ctx.agent = self.agent
        app.add_route(lambda request: __import__("sanic").response.text("up"), "/")  # like Rasa's root route
        app.blueprint(self.channel.blueprint(self.agent.handle_message),
                      url_prefix=f"/webhooks/{self.channel.url_prefix()}")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True,
                                              access_log=False)
        await self.server.startup()
        await self.server.after_start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.server.before_stop()
        await self.server.close()
        await self.server.after_stop()

    async def post(self, path: str, data: Any = None, headers: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
        """POSTs to the server; returns (status, body text)."""
        import aiohttp

        async with aiohttp.ClientSession() as client:
            async with client.post(self.url + path, data=data, headers=headers or {}) as answer:
                return answer.status, await answer.text()
