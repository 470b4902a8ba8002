// etcd keeps every revision of every key until it is compacted, and the
// controller writes often (commits, PoP records): without compaction etcd's
// database grows until its quota refuses every write. Compaction is one job
// for the whole cluster, run by the replica that owns the single-owner jobs
// (owner_election.h): at each turn it compacts to the revision it saw at its
// previous turn, so one interval of history stays for a watch that
// reconnects (docs/controller.md "Single owner").
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "controlplane/controller/etcd_client.h"

namespace onramp::ctl {

class HistoryCompaction {
 public:
  // `probe_key`: any key; reading it tells the cluster's revision.
  HistoryCompaction(EtcdClient& client, std::string probe_key)
      : client_(client), probe_key_(std::move(probe_key)) {}

  // One turn. Harmless when another replica compacts at the same time: a
  // revision already compacted is not an error.
  Status run();

  int64_t compacted() const { return compacted_; }

 private:
  EtcdClient& client_;
  const std::string probe_key_;
  int64_t previous_ = 0;   // the revision seen at the previous turn
  int64_t compacted_ = 0;  // the last revision this replica compacted to
};

}  // namespace onramp::ctl
