"""The process on the other side of a sandbox: a warm server that forks a fresh child per request.

Requests arrive on stdin as length-prefixed pickles from the trusted parent. The server itself never
runs a target: it imports the target's module and the heavy libraries that module names in
`SANDBOX_PRELOAD` (torch, lightning: trusted code, imported once per server) and runs its
`SANDBOX_WARM_UP` once (trusted code on built-in components: torch's first-use set-up, so that
it is never charged to a hypothesis's time limit), then forks a child
that runs the target on the payload and answers in JSON through a private pipe. The server relays
that answer framed with the request's random nonce, so an answer can only ever be taken for the
request it belongs to. After every child it kills whatever that child left running and empties the
private temporary directory, so the next request starts from the state the server had before the
first one: only the server's own memory (modules imported before any hypothesis ran, copied on
write into each child) is shared between requests, and no hypothesis code ever ran in it. The
server is not dumpable, so a child cannot read or write its memory or file descriptors through
/proc. A child that dies without answering takes the server down the same way (same signal or
status), so the parent reports it exactly as it reports a dead worker and starts a fresh one.
fd 1 is pointed at stderr so that anything a hypothesis prints cannot corrupt the protocol.
While it waits, the server watches the deadline the child posts in a shared page (`alarm.Watch`):
once that deadline is `alarm.GRACE_S` past (a long call in C, which no signal interrupts), it kills
the child, answers with the posted reason and culprit (`"overtime"`), and serves on: the server
itself is unharmed, so a warm server survives a kill.
"""
from __future__ import annotations

import importlib
import json
import os
import pickle
import select
import shutil
import signal
import struct
import sys
import traceback

from .alarm import Watch, attach

HEADER = struct.Struct("!Q")
ANSWER_HEADER = struct.Struct("!16sQ")  # the request's nonce, then the answer's size
READY = (1 << 64) - 1  # the size field of the frame that says "warm; the child starts now"
MAX_ANSWER_BYTES = 64 << 20
WATCH_POLL_S = 0.1  # how often the server looks at the child's posted deadline while it waits
LIBRARIES = ("numpy", "torch", "lightning", "lightning.pytorch")  # what SANDBOX_PRELOAD may name


def _read_exact(stream, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _resolve(target: str):
    module, _, name = target.partition(":")
    if not module.startswith("mlr_mlflow."):
        raise ValueError(f"sandbox targets must live in mlr_mlflow, not {target!r}")
    return getattr(importlib.import_module(module), name)


def _answer(out, message: dict) -> None:
    body = json.dumps(message, allow_nan=True).encode()
    out.write(HEADER.pack(len(body)) + body)
    out.flush()


def run_request(request: dict) -> dict:
    """The target on the payload, as a JSON-ready message (runs in the child only)."""
    try:
        return {"ok": True, "result": _resolve(request["target"])(request["payload"])}
    except MemoryError:
        return {"ok": False, "error": "out of memory (the sandbox memory limit was reached)"}
    except RecursionError:
        return {"ok": False, "error": "maximum recursion depth exceeded"}
    except BaseException as exc:  # the target ran hostile code: report, never die silently
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                "trace": traceback.format_exc(limit=-4)[-4000:]}


_warmed: set[str] = set()  # modules whose SANDBOX_WARM_UP this server has run


def warm_up(target: str) -> None:
    """Import the target's module and the libraries it declares, then run its `SANDBOX_WARM_UP`
    (a function of the module, on built-in components only) once per server: trusted code, in the
    server, so that what torch initialises on first use is done before any child's clock runs."""
    try:
        module = importlib.import_module(target.partition(":")[0]) \
            if target.startswith("mlr_mlflow.") else None
        for name in getattr(module, "SANDBOX_PRELOAD", ()):
            if name in LIBRARIES:
                importlib.import_module(name)
        if module is not None and module.__name__ not in _warmed:
            _warmed.add(module.__name__)
            warm = getattr(module, "SANDBOX_WARM_UP", None)
            if warm is not None:
                getattr(module, warm)()
    except Exception:  # the child reports it, with its trace
        pass


def _not_dumpable() -> None:
    """PR_SET_DUMPABLE 0: processes of the same user cannot ptrace us or open /proc/<pid>/fd|mem."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _owns_its_world() -> bool:
    """A pid namespace of its own (we are its pid 1 or 2) or a user id of its own (`fresh_uid`):
    then every process this server may signal belongs to this sandbox."""
    from .identity import UID_BASE, UID_SPAN
    return os.getpid() <= 2 or UID_BASE <= os.getuid() < UID_BASE + UID_SPAN


def _sweep(everyone: bool) -> None:
    """Kill what the last child left running: everything this user may signal when the sandbox has
    its own pid namespace or user id (kill(-1) spares the caller and pid 1), else our process group."""
    if everyone:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
    me, group = os.getpid(), os.getpgid(0)
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (me, 1, os.getppid()):
            try:
                if os.getpgid(int(entry)) == group:
                    os.kill(int(entry), signal.SIGKILL)
            except OSError:
                pass
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _wipe(directory: str | None) -> None:
    if not directory or not os.path.isdir(directory):
        return
    for entry in os.listdir(directory):
        path = os.path.join(directory, entry)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass


def _read_watched(fd: int, n: int, pid: int, watch) -> tuple[bytes, dict | None]:
    """Up to n bytes from the child's answer pipe, or (what came, the posted note) once the
    child's posted deadline is overdue: then the child has been killed."""
    data = b""
    while len(data) < n:
        if select.select([fd], [], [], WATCH_POLL_S)[0]:
            chunk = os.read(fd, min(n - len(data), 1 << 20))
            if not chunk:
                break
            data += chunk
            continue
        note = watch.overdue()
        if note is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            return data, note
    return data, None


def _overtime_answer(note: dict) -> bytes:
    reason = note.get("reason") if isinstance(note.get("reason"), str) else "time limit reached"
    culprit = note.get("culprit") if isinstance(note.get("culprit"), list) else None
    return json.dumps({"ok": False, "error": reason[:2000],
                       "overtime": {"reason": reason[:2000], "culprit": culprit}}).encode()


def _child(request: dict, answer_fd: int, out, watch) -> None:
    try:
        attach(watch)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        out.close()
        with os.fdopen(answer_fd, "wb") as answer:
            _answer(answer, run_request(request))
    finally:
        os._exit(0)


def _mirror_death(status: int) -> None:
    """Die as the child died, so the parent's crash report names the real cause."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL and SIGSTOP keep their default anyway
            pass
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) and os.WEXITSTATUS(status) else 70)


def main() -> None:
    sweep_everyone = _owns_its_world()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _not_dumpable()
    requests = sys.stdin.buffer
    scratch = os.environ.get("TMPDIR")
    watch = Watch()
    while True:
        header = _read_exact(requests, HEADER.size)
        if header is None:
            return
        (size,) = HEADER.unpack(header)
        request = pickle.loads(_read_exact(requests, size))
        warm_up(request["target"])
        # the caller's clock for the call starts now: trusted imports are not the target's time
        out.write(ANSWER_HEADER.pack(request["nonce"], READY))
        out.flush()
        read_end, write_end = os.pipe()
        watch.post(None)
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            _child(request, write_end, out, watch)
        os.close(write_end)
        head, note = _read_watched(read_end, HEADER.size, pid, watch)
        (length,) = HEADER.unpack(head) if len(head) == HEADER.size and note is None else (None,)
        body = b""
        if length is not None and length <= MAX_ANSWER_BYTES:
            body, note = _read_watched(read_end, length, pid, watch)
        os.close(read_end)
        _, status = os.waitpid(pid, 0)
        _sweep(sweep_everyone)
        _wipe(scratch)
        watch.post(None)
        if note is not None:  # killed on its posted deadline: say so, and serve on
            body = _overtime_answer(note)
            length = len(body)
        elif length is None or len(body) != length:
            _mirror_death(status)
        out.write(ANSWER_HEADER.pack(request["nonce"], length) + body)
        out.flush()


if __name__ == "__main__":
    main()
