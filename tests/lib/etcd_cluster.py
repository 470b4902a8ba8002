"""A real etcd cluster on loopback for the tests that need one: N etcd
members (3 by default) started by the test, each with its own data directory
and free ports, stopped by PID, with what the tests do to them: find the
leader (etcdctl endpoint status -w json), kill -9 a member and restart it on
its data directory, stop and continue one (SIGSTOP, SIGCONT: a member that
answers nothing, as one cut off by a partition), take a snapshot and
rebuild the whole cluster from it (etcdctl snapshot save, restore).

The members run as processes of the test's harness.Processes, named
etcd-NAME, their output in its work folder; with `netns`, inside that
network namespace, and etcdctl too.

etcd_test_main() is the main() of a test on such a cluster."""
import argparse
import json
import os
import shutil
import signal
import tempfile

from harness import Failure, free_port, log, missing_binaries, run, run_test, wait_for


class Member:
    def __init__(self, name, work):
        self.name = name
        self.data_dir = os.path.join(work, f"etcd-{name}")
        self.client = f"127.0.0.1:{free_port()}"
        self.peer = f"127.0.0.1:{free_port()}"


class EtcdCluster:
    """`procs` is the test's harness.Processes; the members' data directories
    go in its work folder."""

    def __init__(self, procs, etcd, etcdctl, size=3, token="onramp-test", netns=None):
        self.procs = procs
        self.netns = netns
        self.etcd = etcd
        self.etcdctl = etcdctl
        self.token = token
        self.members = [Member(f"m{i}", procs.work) for i in range(size)]

    def initial_cluster(self):
        return ",".join(f"{m.name}=http://{m.peer}" for m in self.members)

    def endpoints(self, members=None):
        """"host:port,host:port" of `members` (names; all by default), as an
        etcd:// URL and etcdctl --endpoints take them."""
        return ",".join(self.member(n).client
                        for n in (members or [m.name for m in self.members]))

    def url(self, prefix, members=None):
        return f"etcd://{self.endpoints(members)}{prefix}"

    def member(self, name):
        for m in self.members:
            if m.name == name:
                return m
        raise Failure(f"no etcd member {name}")

    def start(self, timeout=30):
        """Starts every member and waits until the cluster has a leader."""
        for m in self.members:
            self.start_member(m.name)
        wait_for("the etcd cluster to elect a leader", self.leader, timeout=timeout)

    def start_member(self, name):
        """Starts (or restarts on its data directory, ports and name) one
        member. A restarted member rejoins the cluster it was in: etcd reads
        the cluster from its data directory and ignores --initial-cluster."""
        m = self.member(name)
        self.procs.start(f"etcd-{name}", [
            self.etcd, "--name", name, "--data-dir", m.data_dir,
            "--listen-client-urls", f"http://{m.client}",
            "--advertise-client-urls", f"http://{m.client}",
            "--listen-peer-urls", f"http://{m.peer}",
            "--initial-advertise-peer-urls", f"http://{m.peer}",
            "--initial-cluster", self.initial_cluster(), "--initial-cluster-state", "new",
            "--initial-cluster-token", self.token, "--log-level", "warn"], netns=self.netns)

    def kill(self, name):
        """kill -9 of one member."""
        self.procs.kill(f"etcd-{name}", signal.SIGKILL)

    def pid(self, name):
        return self.procs.pid(f"etcd-{name}")

    def stop_member(self, name):
        """SIGSTOP: the member hangs; nothing it holds answers, peers see it gone."""
        os.kill(self.pid(name), signal.SIGSTOP)

    def continue_member(self, name):
        os.kill(self.pid(name), signal.SIGCONT)

    def alive(self, name):
        return self.procs.alive(f"etcd-{name}")

    def in_ns(self, cmd):
        return ["ip", "netns", "exec", self.netns, *cmd] if self.netns else cmd

    def ctl(self, *args, members=None, check=True, timeout=20):
        return run(self.in_ns([self.etcdctl, f"--endpoints={self.endpoints(members)}",
                               "--command-timeout=3s", *args]), check=check, timeout=timeout,
                   env={**os.environ, "ETCDCTL_API": "3"})

    def status(self):
        """{member name: its `endpoint status` entry} of the members that
        answer (each asked on its own, so a dead one does not hide the rest)."""
        out = {}
        for m in self.members:
            if not self.alive(m.name):
                continue
            r = self.ctl("endpoint", "status", "-w", "json", members=[m.name], check=False,
                         timeout=10)
            if r.returncode != 0:
                continue
            for entry in json.loads(r.stdout or "[]"):
                out[m.name] = entry
        return out

    def leader(self):
        """The name of the member that leads now, by what the members answer;
        None while they do not agree on one that is among them."""
        status = self.status()
        ids = {name: int(s["Status"]["header"]["member_id"]) for name, s in status.items()}
        # etcd leaves out a zero field: no "leader" while a member has none.
        leaders = {int(s["Status"].get("leader", 0)) for s in status.values()}
        if len(leaders) != 1 or 0 in leaders:
            return None
        lead = leaders.pop()
        for name, member_id in ids.items():
            if member_id == lead:
                return name
        return None

    def keys(self, prefix):
        """The keys under `prefix`, as a majority holds them now."""
        return self.ctl("get", "--prefix", "--keys-only", prefix).stdout.split()

    def snapshot_save(self, path, member):
        """etcdctl snapshot save of one member's data into `path`."""
        self.ctl("snapshot", "save", path, members=[member], timeout=60)

    def restore(self, snapshot):
        """The cluster rebuilt from `snapshot`, as after losing it: every
        member killed, its data directory replaced by `etcdctl snapshot
        restore` (same names and peer URLs, a new cluster token, so a new
        cluster id), then all started."""
        for m in self.members:
            self.kill(m.name)
            shutil.rmtree(m.data_dir, ignore_errors=True)
        self.token += "-restored"
        for m in self.members:
            run([self.etcdctl, "snapshot", "restore", snapshot, "--name", m.name,
                 "--data-dir", m.data_dir, "--initial-cluster", self.initial_cluster(),
                 "--initial-cluster-token", self.token, "--initial-advertise-peer-urls",
                 f"http://{m.peer}"], timeout=60, env={**os.environ, "ETCDCTL_API": "3"})
        self.start()


def etcd_test_main(title, make_bed, steps, work_prefix, argv=None):
    """The main() of an integration test on etcd: takes --build-dir, --etcd
    and --etcdctl, makes the test's bed with make_bed(build_dir, work,
    etcd, etcdctl) in a new temporary work folder named `work_prefix`...,
    checks its binaries (bed.bin) and runs steps(bed) through
    harness.run_test, killing every process of the bed at the end. Returns
    the exit code."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--etcd", required=True, help="etcd binary")
    ap.add_argument("--etcdctl", required=True, help="etcdctl binary")
    args = ap.parse_args(argv)
    bed = make_bed(os.path.abspath(args.build_dir), tempfile.mkdtemp(prefix=work_prefix),
                   args.etcd, args.etcdctl)
    if missing_binaries(bed.bin.values()):
        return 1
    return run_test(title, bed.work, lambda: steps(bed), bed.kill_all)
