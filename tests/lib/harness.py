"""What the Python tests that drive real processes share: a failure that
names what went wrong, waiting for a condition, running a command."""
import os
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


def missing_binaries(paths):
    """The paths among `paths` that are not executables, each said."""
    missing = [p for p in paths if not os.access(p, os.X_OK)]
    for p in missing:
        print(f"missing {p}: build first", flush=True)
    return missing


def dump_logs(folder, suffixes=(".log",), tail=4000):
    """Prints the end of every log in `folder`, for a failure's post-mortem."""
    for name in sorted(os.listdir(folder)):
        if name.endswith(tuple(suffixes)):
            with open(os.path.join(folder, name), errors="replace") as f:
                log(f"--- {name} (tail) ---\n{f.read()[-tail:]}")
