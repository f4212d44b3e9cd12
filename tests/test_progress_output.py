"""What a person sees in a terminal: progress lines never split a progress bar."""
import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

SCRIPT = """
from mlr_mlflow.cli import _progress
from mlr_mlflow.round.proposals import progress_bar
with progress_bar(4, "one-pass") as bar:
    bar.update(2)
    _progress("hello from the round")
    bar.update(2)
"""


def test_a_progress_line_during_a_bar_starts_on_a_line_of_its_own():
    leader, follower = pty.openpty()  # a terminal, so the bar is drawn as a person sees it
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=follower, stdout=follower,
                            stderr=follower, close_fds=True)
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert proc.wait(timeout=60) == 0
    text = out.decode(errors="replace")
    at = text.index("[mlr-mlflow] hello from the round")
    assert text[:at].rstrip(" ").endswith(("\r", "\n", "\x1b[A")), repr(text[max(0, at - 80):at])
    assert text.count("4/4") >= 1
