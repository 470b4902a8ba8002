"""What the Python tests that drive real processes share: a failure that
names what went wrong, waiting for a condition, running a command."""
import socket
import subprocess
import time


class Failure(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def run(cmd, check=True, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise Failure(f"{' '.join(cmd)} -> {r.returncode}: {r.stderr.strip()}")
    return r


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, pred, timeout=30.0, interval=0.05):
    """Polls pred until it returns something true, and returns that; a
    Failure raised by pred counts as not yet."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except Failure as e:
            last = e
        time.sleep(interval)
    raise Failure(f"timed out after {timeout:.0f} s waiting for {what} (last: {last})")
