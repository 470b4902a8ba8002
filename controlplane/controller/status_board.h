// What the status page shows, as one JSON document: every PoP (coordinates,
// state, versions), every endpoint's health as each PoP sees it, each
// listener's shares per PoP with the routing reason, and the last changes.
// Sampled from the PoP registry a few times a second, so any number of
// browsers polling the page cost the registry nothing more.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "controlplane/controller/config_store.h"
#include "controlplane/controller/pop_registry.h"

namespace onramp::ctl {

class StatusBoard {
 public:
  // The changes kept, newest first.
  static constexpr size_t kMaxChanges = 50;

  StatusBoard(const ConfigStore& store, const PopRegistry& registry);

  // Reads the registry and the store, notes what changed since the last
  // sample, and makes the result what json() answers. `now_ms`: Unix
  // milliseconds, stamped on the document and on the changes it finds.
  void sample(int64_t now_ms);

  // The latest sample: {"generated_ms", "config_version", "pops",
  // "endpoints", "routes", "changes"} (docs/observability.md "Status page").
  std::string json() const;

 private:
  const ConfigStore& store_;
  const PopRegistry& registry_;
  mutable std::mutex mu_;
  std::string json_ = "{}";                   // GUARDED_BY(mu_)
  std::map<std::string, std::string> facts_;  // GUARDED_BY(mu_): what a change is a change of
  std::deque<std::pair<int64_t, std::string>> changes_;  // GUARDED_BY(mu_)
  bool sampled_ = false;                                 // GUARDED_BY(mu_)
};

}  // namespace onramp::ctl
