"""What the Python tests that drive real processes share: a failure that
names what went wrong, waiting for a condition, running a command, and the
frame of a test's main (skip, pass or fail, logs on failure, cleanup).

Tests import it by name: meson puts tests/lib on PYTHONPATH for every Python
test, and scripts/demo, scripts/testbed and scripts/bench do the same."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

# The exit code meson reads as "skipped".
SKIP = 77
# Where each program is, inside a build folder.
PROGRAMS = {
    "controller": "controlplane/controller/onramp-controller",
    "agent": "controlplane/agent/onramp-agent",
    "ctl": "controlplane/cli/onrampctl",
    "dataplane": "dataplane/onramp-dataplane",
    "decap": "dataplane/decap/onramp-decap",
}


class Failure(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def check(cond, msg, result=None):
    """Raises Failure(msg) unless cond; `result`, a finished command, adds its
    exit code and output to the message."""
    if cond:
        return
    if result is not None:
        msg += (f"\n  exit {result.returncode}\n  stdout: {result.stdout!r}"
                f"\n  stderr: {result.stderr!r}")
    raise Failure(msg)


def run(cmd, check=True, merge_stderr=False, **kw):
    """Runs cmd (a list) to the end, its output captured as text. With check,
    a non-zero exit is a Failure naming the command, its code and what it
    said. merge_stderr puts stderr into stdout, in the order written."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE, text=True,
                       **kw)
    if check and r.returncode != 0:
        said = r.stdout if merge_stderr else r.stderr
        raise Failure(f"{' '.join(cmd)} -> {r.returncode}: {said.strip()}")
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


def not_root(why):
    """True, having said SKIP and why, when this process is not root."""
    if os.geteuid() == 0:
        return False
    log(f"SKIP: {why}")
    return True


def programs(build, *names):
    """{name: path} of the named programs in the build folder `build`."""
    return {n: os.path.join(build, PROGRAMS[n]) for n in names}


def kill_group(proc, sig=signal.SIGKILL, timeout=20):
    """Sends sig to the process group that proc leads (it was started with
    start_new_session) and waits for it; nothing when it has exited."""
    if proc and proc.poll() is None:
        os.killpg(proc.pid, sig)
        proc.wait(timeout=timeout)


def stop(proc, sig=signal.SIGTERM, timeout=10):
    """Sends sig to proc and waits up to `timeout` seconds for it to exit,
    then kills it. Returns its exit code."""
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class Processes:
    """The processes a test starts, by name: each in its own session (so a
    kill reaches its children), its output appended to `work`/NAME.log,
    optionally inside a network namespace. Tests' beds derive from it."""

    def __init__(self, work):
        self.work = work
        self.procs = {}

    def start(self, name, cmd, netns=None):
        out = open(os.path.join(self.work, f"{name}.log"), "a")
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def kill(self, name, sig=signal.SIGKILL):
        kill_group(self.procs.pop(name, None), sig)

    def alive(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def pid(self, name):
        return self.procs[name].pid

    def kill_all(self):
        for name in list(self.procs):
            self.kill(name)

    def output(self, name):
        """What NAME has written so far."""
        with open(os.path.join(self.work, f"{name}.log"), errors="replace") as f:
            return f.read()


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


def run_test(title, work, steps, teardown, on_failure=None, suffixes=(".log",), tail=4000):
    """The frame of a test's main: runs steps(), says PASS or FAIL, and on a
    Failure calls on_failure() and prints the logs in `work`. teardown() runs
    whatever happened (SIGTERM from meson's timeout included), then `work` is
    removed. Returns the exit code."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rc = 0
    try:
        steps()
        log(f"PASS {title}")
    except Failure as e:
        log(f"FAIL: {e}")
        if on_failure:
            on_failure()
        dump_logs(work, suffixes, tail)
        rc = 1
    finally:
        teardown()
        shutil.rmtree(work, ignore_errors=True)
    return rc
