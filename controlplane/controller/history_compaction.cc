#include "controlplane/controller/history_compaction.h"

#include "common/log.h"

namespace onramp::ctl {

Status HistoryCompaction::run() {
  auto now = client_.get(probe_key_);
  if (!now.ok()) return now.status();
  const int64_t kept_from = previous_;
  previous_ = now->revision;
  if (kept_from <= compacted_) return ok_status();  // first turn, or nothing written since
  ONRAMP_RETURN_IF_ERROR(client_.compact(kept_from));
  compacted_ = kept_from;
  log::info("etcd history compacted", {{"revision", kept_from}, {"current", now->revision}});
  return ok_status();
}

}  // namespace onramp::ctl
