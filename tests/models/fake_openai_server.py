"""A real HTTP server on 127.0.0.1 that speaks the chat-completions API, with scripted trouble:
slow answers, 5xx failures, 429 rate limits with Retry-After, dropped connections."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

# A behaviour for one call: "ok", "slow:<seconds>", "status:<code>", "429:<retry-after>", "drop".
Script = list[str]


def hashed_answer(prompt: str) -> str:
    """A deterministic answer, right for some questions and wrong for others."""
    words = ("yes", "no", "lung", "liver", "brain", "ct")
    return words[int(hashlib.sha256(prompt.encode()).hexdigest(), 16) % len(words)]


@dataclass
class ServerState:
    answer: Callable[[dict], str] = lambda body: hashed_answer(user_text(body))
    scripts: dict[str, Script] = field(default_factory=dict)  # prompt text -> behaviours in turn
    calls: list[dict] = field(default_factory=list)  # {"body", "headers", "behaviour", "time"}
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_behaviour(self, prompt: str) -> str:
        script = self.scripts.get(prompt)
        return script.pop(0) if script else "ok"


def user_text(body: dict) -> str:
    content = body["messages"][-1]["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def make_handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                behaviour = state.next_behaviour(user_text(body))
                state.calls.append({"body": body, "headers": dict(self.headers),
                                    "behaviour": behaviour, "time": time.monotonic()})
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            self.answered = False
            try:
                self.respond(body, behaviour)
            finally:
                self.leave()

        def leave(self) -> None:
            """The request stops counting as in flight once its answer starts, before the client
            can read it and send the next one (else a loaded machine counts one too many)."""
            if not self.answered:
                self.answered = True
                with state.lock:
                    state.in_flight -= 1

        def respond(self, body: dict, behaviour: str) -> None:
            if self.path != "/v1/chat/completions":
                return self.send_json(404, {"error": {"message": f"no route {self.path}"}})
            kind, _, arg = behaviour.partition(":")
            if kind == "drop":
                self.close_connection = True
                self.connection.close()
                return
            if kind == "status":
                return self.send_json(int(arg), {"error": {"message": f"scripted {arg}"}})
            if kind == "429":
                return self.send_json(429, {"error": {"message": "rate limited"}}, {"Retry-After": arg})
            if kind == "slow":
                time.sleep(float(arg))
            text = state.answer(body)
            self.send_json(200, {
                "id": "cmpl-test", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(user_text(body).split()),
                          "completion_tokens": len(text.split())},
            })

        def send_json(self, code: int, payload: dict, headers: Optional[dict] = None) -> None:
            raw = json.dumps(payload).encode()
            self.leave()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            try:
                self.wfile.write(raw)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                pass

    return Handler


class FakeOpenAIServer:
    """Context manager: `with FakeOpenAIServer() as server: server.base_url ...`."""

    def __init__(self, state: Optional[ServerState] = None) -> None:
        self.state = state or ServerState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAIServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
