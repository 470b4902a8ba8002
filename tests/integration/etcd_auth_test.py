#!/usr/bin/python3
"""Issue 13 item 1, "etcd's own authentication", with real processes, no
root: an etcd member started by the test on loopback (its own data
directory, stopped by PID) with a root user and auth enabled by etcdctl,
and onramp-controller on --store etcd://... with and without credentials.

Steps, each asserted:
  1. without --etcd-user the controller refuses to start, saying that
     etcd's authentication is enabled and which flags to give;
  2. with a wrong password it refuses to start, naming the user;
     --etcd-user without --etcd-password-file, or with an empty one, too;
  3. with --etcd-user root --etcd-password-file it creates the store,
     serves, and a write and a list go through etcd;
  4. after etcd's token TTL (--auth-token-ttl 2) has passed, a write still
     goes through: the controller took a new token;
  5. after a restart of etcd (its simple tokens forgotten), a write still
     goes through.

usage: etcd_auth_test.py --build-dir DIR --etcd ETCD --etcdctl ETCDCTL
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

from harness import (check, free_port, kill_group, log, missing_binaries, programs, run,
                     run_test, wait_for)

PASSWORD = "s3cret-for-the-test"


class Bed:
    def __init__(self, build, work, etcd, etcdctl):
        self.work, self.etcd, self.etcdctl = work, etcd, etcdctl
        self.bin = programs(build, "controller", "ctl")
        self.procs = {}
        self.client_port, self.peer_port = free_port(), free_port()
        self.url = f"etcd://127.0.0.1:{self.client_port}/onramp/test"
        self.admin, self.pop_addr = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        self.password_file = os.path.join(work, "etcd-password")
        with open(self.password_file, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(self.password_file, 0o600)
        self.wrong_file = os.path.join(work, "wrong-password")
        with open(self.wrong_file, "w") as f:
            f.write("not-the-password\n")

    def start(self, name, cmd):
        out = open(os.path.join(self.work, f"{name}.log"), "a")
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def start_etcd(self):
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.start("etcd", [
            self.etcd, "--name", "t", "--data-dir", os.path.join(self.work, "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"t={peer}", "--log-level", "warn", "--auth-token-ttl", "2",
            "--bcrypt-cost", "4"])

    def etcdctl_run(self, *args, check_rc=True):
        return run([self.etcdctl, f"--endpoints=127.0.0.1:{self.client_port}", *args],
                   check=check_rc, timeout=30, env={**os.environ, "ETCDCTL_API": "3"})

    def controller(self, *extra):
        return [self.bin["controller"], "--store", self.url, *extra]

    def ctl(self, *args):
        return run([self.bin["ctl"], "--controller", self.admin, "--plaintext", "--timeout", "5",
                    *args], timeout=30)

    def teardown(self):
        for name in list(self.procs):
            kill_group(self.procs.pop(name))


def refused(bed, extra, words):
    r = run(bed.controller("--init-only", *extra), check=False, timeout=30)
    check(r.returncode != 0, "the controller refuses to start", r)
    check(all(w in r.stderr for w in words), f"its error says {words}: {r.stderr!r}")
    return r.stderr.strip()


def steps(bed):
    bed.start_etcd()
    wait_for("etcd", lambda: bed.etcdctl_run("endpoint", "health", check_rc=False)
             .returncode == 0)
    bed.etcdctl_run("user", "add", f"root:{PASSWORD}")
    bed.etcdctl_run("auth", "enable")
    creds = ["--etcd-user", "root", "--etcd-password-file", bed.password_file]

    # 1. and 2.
    said = refused(bed, [], ["authentication is enabled", "--etcd-user",
                             "--etcd-password-file"])
    log(f"1. no credentials: {said}")
    said = refused(bed, ["--etcd-user", "root", "--etcd-password-file", bed.wrong_file],
                   ['user "root"', "--etcd-password-file"])
    check(PASSWORD not in said and "not-the-password" not in said,
          "the error shows no password")
    log(f"2. wrong password: {said}")
    alone = run(bed.controller("--init-only", "--etcd-user", "root"), check=False, timeout=30)
    check(alone.returncode == 2 and "--etcd-password-file" in alone.stderr,
          "--etcd-user without --etcd-password-file is a usage error", alone)
    empty = os.path.join(bed.work, "empty-password")
    open(empty, "w").close()
    said = refused(bed, ["--etcd-user", "root", "--etcd-password-file", empty],
                   ["--etcd-password-file", "empty"])
    log(f"2b. --etcd-user alone: usage error; an empty password file: {said}")

    # 3. With them.
    run(bed.controller("--init-only", *creds), timeout=30)
    bed.start("controller", bed.controller(
        "--admin-listen", bed.admin, "--pop-listen", bed.pop_addr, "--plaintext", *creds))
    wait_for("the controller", lambda: run(
        [bed.bin["ctl"], "--controller", bed.admin, "--plaintext", "pop", "list"],
        check=False, timeout=30).returncode == 0)
    bed.ctl("accelerator", "create", "web", "--vip", "203.0.113.10")
    check("web" in bed.ctl("accelerator", "list").stdout, "the accelerator is listed")
    keys = bed.etcdctl_run("--user", f"root:{PASSWORD}", "get", "--prefix", "--keys-only",
                           "/onramp/test/accelerators/").stdout.split()
    check(keys == ["/onramp/test/accelerators/web"], f"etcd holds it: {keys}")
    log("3. with --etcd-user and --etcd-password-file: store created, a write went to etcd")

    # 4. Token expired.
    time.sleep(3)
    bed.ctl("accelerator", "create", "api", "--vip", "203.0.113.20")
    with open(os.path.join(bed.work, "controller.log")) as f:
        renewed = f.read().count("etcd refused the auth token; authenticating again")
    check(renewed >= 1, "the controller said it took a new token")
    log("4. a write after the token's TTL went through (new token)")

    # 5. etcd restarted: its tokens are gone.
    kill_group(bed.procs.pop("etcd"))
    bed.start_etcd()
    wait_for("etcd back", lambda: bed.etcdctl_run("--user", f"root:{PASSWORD}", "endpoint",
                                                  "health", check_rc=False).returncode == 0)
    wait_for("a write after etcd's restart", lambda: run(
        [bed.bin["ctl"], "--controller", bed.admin, "--plaintext", "--timeout", "5",
         "accelerator", "create", "img", "--vip", "203.0.113.30"],
        check=False, timeout=30).returncode == 0, timeout=20)
    listed = bed.ctl("accelerator", "list").stdout
    check(all(a in listed for a in ("web", "api", "img")), f"all three listed: {listed}")
    log("5. a write after etcd's restart went through")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--etcd", required=True)
    ap.add_argument("--etcdctl", required=True)
    args = ap.parse_args()
    bed = Bed(os.path.abspath(args.build_dir), tempfile.mkdtemp(prefix="onramp-etcd-auth-"),
              args.etcd, args.etcdctl)
    if missing_binaries(bed.bin.values()):
        return 1
    return run_test("the controller on etcd with authentication enabled", bed.work,
                    lambda: steps(bed), bed.teardown)


if __name__ == "__main__":
    sys.exit(main())
