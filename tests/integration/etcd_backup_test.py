#!/usr/bin/python3
"""docs/controller.md "Backing up and restoring etcd", run as written, with
real processes, no root: a 3-member etcd cluster, replicas A and B on it,
PoP FRA1 (agent given A,B, fake dataplane).

Steps, each asserted:
  1. FRA1 runs the configuration (2 endpoints); `etcdctl snapshot save`
     from one member;
  2. a third endpoint after the backup: FRA1 runs a higher version;
  3. the whole cluster and both replicas lost (kill -9); the cluster rebuilt
     from the snapshot (`etcdctl snapshot restore` per member, a new
     cluster token); `onramp-controller --init-only --new-epoch`; A and B
     started again: the store keeps its id, its epoch is one higher, both
     replicas list the backup's configuration (no third endpoint), and
     FRA1 takes the restored table although its version is lower than the
     one it ran.

usage: etcd_backup_test.py --build-dir DIR --etcd ETCD --etcdctl ETCDCTL
"""
import os
import sys

from controller_ha_test import PREFIX, HaBed, add_endpoint
from etcd_cluster import etcd_test_main
from harness import check, log, run, wait_for


def identity(bed):
    value = bed.etcd.ctl("get", "--print-value-only", PREFIX + "meta/identity").stdout.split()
    return value[0], int(value[1])


def on_disk(bed, pop):
    with open(bed.table_file(pop)) as f:
        return f.read().count("endpoints {")


def steps(bed):
    bed.etcd.start()
    run([bed.bin["controller"], "--store", bed.etcd.url(PREFIX), "--init-only"], timeout=30)
    for r in "AB":
        bed.start_controller(r)
    bed.ctl("A", "accelerator", "create", "web", "--vip", "203.0.113.10")
    bed.ctl("A", "listener", "create", "https", "--accelerator", "web", "--protocol", "tcp",
            "--ports", "443")
    bed.ctl("A", "endpoint-group", "create", "eu", "--accelerator", "web", "--listener", "https",
            "--region", "eu-central")
    for address in ("198.51.100.1", "198.51.100.2"):
        check(add_endpoint(bed, "B", address).returncode == 0, f"add {address}")
    bed.start_agent("FRA1")
    backed_up = wait_for("FRA1 in sync on A", lambda: bed.in_sync("FRA1", "A"))
    store_id, epoch = identity(bed)
    snapshot = os.path.join(bed.work, "onramp-etcd.snapshot")
    bed.etcd.snapshot_save(snapshot, "m1")
    log(f"1. FRA1 runs version {backed_up}; snapshot saved from m1 (store {store_id}, "
        f"epoch {epoch})")

    check(add_endpoint(bed, "A", "198.51.100.3").returncode == 0, "add 198.51.100.3")
    later = wait_for("FRA1 on the version after the backup",
                     lambda: bed.in_sync("FRA1", "A") > backed_up and bed.in_sync("FRA1", "A"))
    wait_for("FRA1's table with 3 endpoints", lambda: on_disk(bed, "FRA1") == 3, timeout=5)
    log(f"2. a third endpoint after the backup: FRA1 runs version {later}")

    for r in "AB":
        bed.kill(r)
    bed.etcd.restore(snapshot)
    r = run([bed.bin["controller"], "--store", bed.etcd.url(PREFIX), "--init-only",
             "--new-epoch"], timeout=30, merge_stderr=True)
    restored_id, restored_epoch = identity(bed)
    check(restored_id == store_id and restored_epoch == epoch + 1,
          f"the restored store keeps its id and has epoch {epoch + 1}: "
          f"{restored_id} {restored_epoch}")
    for replica in "AB":
        bed.start_controller(replica)
        listed = set(bed.endpoints(replica))
        check(listed == {"198.51.100.1", "198.51.100.2"},
              f"replica {replica} lists the backup's endpoints: {sorted(listed)}")
    version = wait_for("FRA1 to take the restored table",
                       lambda: on_disk(bed, "FRA1") == 2 and bed.connected_to("FRA1") and
                       bed.in_sync("FRA1", bed.connected_to("FRA1")), timeout=15)
    check(version < later, f"FRA1 runs the restored version {version}, lower than {later}")
    log(f"3. cluster and replicas lost, rebuilt from the snapshot, epoch raised to "
        f"{restored_epoch}: A and B list the 2 backed-up endpoints, FRA1 runs restored version "
        f"{version} (it ran {later})")


def backup_bed(build, work, etcd, etcdctl):
    """Replicas A and B, both given every member; PoP FRA1 given A,B."""
    bed = HaBed(build, work, etcd, etcdctl)
    bed.members = {"A": ["m0", "m1", "m2"], "B": ["m1", "m2", "m0"]}
    bed.agents = {"FRA1": "AB"}
    return bed


def main():
    return etcd_test_main("an etcd snapshot restored into a new cluster, the epoch raised",
                          backup_bed, steps, "onramp-backup-")

if __name__ == "__main__":
    sys.exit(main())
