// Publishes forwarding tables to the worker lcores with RCU: the new table is
// built off the fast path, made current with one atomic pointer store, and the
// old one is freed once every worker has passed a quiescent state
// (rte_rcu_qsbr). Workers never wait and never lose a packet to a swap.
// Counters of retired tables are kept, by listener name and endpoint address,
// so statistics run on across table changes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "dataplane/app/build_cpus.h"
#include "dataplane/app/maglev_cache_file.h"
#include "dataplane/core/forwarding_table.h"

struct rte_rcu_qsbr;

namespace onramp::dp {

struct PublishTiming {
  uint64_t build_us = 0;
  uint64_t publish_us = 0;  // store + grace period
};

class TablePublisher {
 public:
  // `workers` worker threads will register with ids 0..workers-1. Tables
  // applied later are built on `build_cpus` by build_cpus.threads(build_threads)
  // threads.
  TablePublisher(unsigned workers, std::unique_ptr<ForwardingTable> first,
                 BuildCpus build_cpus = {}, unsigned build_threads = 1);
  ~TablePublisher();
  TablePublisher(const TablePublisher&) = delete;
  TablePublisher& operator=(const TablePublisher&) = delete;

  // Builds a table from `spec` (already validated) and publishes it. Returns
  // the build and publish times, or the build error (the current table then
  // stays). Serialised: one apply at a time.
  Result<PublishTiming> apply(const TableSpec& spec);

  // Called by apply() with the spec of the table it publishes: `before` once
  // the table is built, before any worker can see it; `after` once no worker
  // holds the old one. Not called for the first table. Set before the first
  // apply.
  struct SwapHooks {
    std::function<void(const TableSpec&)> before;
    std::function<void(const TableSpec&)> after;
  };
  void set_swap_hooks(SwapHooks hooks) { hooks_ = std::move(hooks); }

  // The restart cache (maglev_cache_file.h): `read` lends its Maglev tables
  // to builds until a table with listeners has been built; `writer`, when
  // not null, is offered the tables of every table published. Set before
  // the first apply.
  void set_maglev_cache(std::optional<MaglevCache> read, MaglevCacheWriter* writer) {
    cache_ = std::move(read);
    cache_writer_ = writer;
  }

  // Worker side.
  const std::atomic<ForwardingTable*>& current() const { return current_; }
  // True while an apply waits for every worker's quiescent report: a worker
  // with a burst in flight finishes it, and reports, rather than start
  // another.
  bool grace_period() const { return grace_period_.load(std::memory_order_acquire); }
  void worker_online(unsigned id);
  void worker_quiescent(unsigned id);
  void worker_offline(unsigned id);

  // Control side: the table in force, for reading counters and config. Hold
  // the returned lock while using it (an apply waits for it).
  std::unique_lock<std::mutex> lock() const { return std::unique_lock<std::mutex>(mu_); }
  const ForwardingTable& table() const { return *owned_; }
  TrafficTotals listener_history(const std::string& name) const;
  TrafficTotals endpoint_history(const std::string& listener, const IpAddress& addr) const;
  uint64_t tables_applied() const { return tables_applied_; }

 private:
  void retire(const ForwardingTable& old);

  unsigned workers_;
  BuildCpus build_cpus_;
  unsigned build_threads_;
  std::optional<MaglevCache> cache_;
  MaglevCacheWriter* cache_writer_ = nullptr;
  rte_rcu_qsbr* qsbr_;
  std::atomic<ForwardingTable*> current_;
  std::atomic<bool> grace_period_{false};
  std::unique_ptr<ForwardingTable> owned_;
  mutable std::mutex mu_;  // guards owned_, the history maps, apply()
  std::mutex apply_mu_;    // one apply() at a time
  std::map<std::string, TrafficTotals> listener_history_;
  std::map<std::pair<std::string, IpAddress>, TrafficTotals> endpoint_history_;
  uint64_t tables_applied_ = 1;
  SwapHooks hooks_;
};

}  // namespace onramp::dp
