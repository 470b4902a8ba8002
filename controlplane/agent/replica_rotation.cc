#include "controlplane/agent/replica_rotation.h"

#include <algorithm>

namespace onramp::agent {

ReplicaRotation::ReplicaRotation(std::vector<cp::ControllerAddress> list, cp::Resolver resolver,
                                 Backoff::Options backoff, Clock& clock, uint64_t seed)
    : list_(std::move(list)),
      resolver_(std::move(resolver)),
      options_(backoff),
      backoff_(backoff, seed),
      clock_(clock) {}

ReplicaRotation::Attempt ReplicaRotation::first() {
  std::vector<cp::Replica> replicas = cp::resolve_replicas(list_, resolver_);
  current_ = replicas.empty() ? cp::Replica{} : replicas.front();
  open_ = false;
  return {.replica = current_, .delay = std::chrono::milliseconds(0)};
}

void ReplicaRotation::opened() {
  open_ = true;
  opened_at_ = clock_.now();
}

ReplicaRotation::Attempt ReplicaRotation::next(bool heard) {
  bool worked = heard || (open_ && clock_.now() - opened_at_ > options_.max);
  if (worked) backoff_.reset();
  open_ = false;
  current_ = pick_after(current_);
  return {.replica = current_, .delay = backoff_.next()};
}

cp::Replica ReplicaRotation::pick_after(const cp::Replica& last) {
  std::vector<cp::Replica> replicas = cp::resolve_replicas(list_, resolver_);
  if (replicas.empty()) return last;
  auto it = std::find(replicas.begin(), replicas.end(), last);
  // One that left the list (its name no longer resolves to it): the list
  // starts again from the top.
  if (it == replicas.end()) return replicas.front();
  return ++it == replicas.end() ? replicas.front() : *it;
}

}  // namespace onramp::agent
