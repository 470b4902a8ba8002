#include "dataplane/app/table_publisher.h"

#include <rte_rcu_qsbr.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "dataplane/app/worker.h"

namespace onramp::dp {
namespace {

uint64_t micros_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

void add(TrafficTotals& into, const TrafficTotals& t) {
  into.packets += t.packets;
  into.bytes += t.bytes;
  into.new_flows += t.new_flows;
}

}  // namespace

TablePublisher::TablePublisher(unsigned workers, std::unique_ptr<ForwardingTable> first,
                               BuildCpus build_cpus, unsigned build_threads)
    : workers_(workers),
      build_cpus_(build_cpus),
      build_threads_(build_threads),
      current_(first.get()),
      owned_(std::move(first)) {
  // Plain cache-aligned memory: the QSBR state needs no EAL heap, and so
  // outlives rte_eal_cleanup() safely.
  size_t size = (rte_rcu_qsbr_get_memsize(workers) + RTE_CACHE_LINE_SIZE - 1) &
                ~size_t{RTE_CACHE_LINE_SIZE - 1};
  qsbr_ = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(RTE_CACHE_LINE_SIZE, size));
  if (!qsbr_) throw std::bad_alloc();
  std::memset(qsbr_, 0, size);
  if (rte_rcu_qsbr_init(qsbr_, workers) != 0)
    throw std::runtime_error("cannot set up RCU for table swaps");
  for (unsigned i = 0; i < workers; ++i) rte_rcu_qsbr_thread_register(qsbr_, i);
}

TablePublisher::~TablePublisher() { std::free(qsbr_); }

void TablePublisher::worker_online(unsigned id) { rte_rcu_qsbr_thread_online(qsbr_, id); }
void TablePublisher::worker_quiescent(unsigned id) { rte_rcu_qsbr_quiescent(qsbr_, id); }
void TablePublisher::worker_offline(unsigned id) { rte_rcu_qsbr_thread_offline(qsbr_, id); }

Result<PublishTiming> TablePublisher::apply(const TableSpec& spec) {
  // One apply at a time, from build to retire: the build reads the table in
  // force (owned_), which only an apply replaces.
  std::lock_guard<std::mutex> serial(apply_mu_);
  PublishTiming timing;
  auto t0 = std::chrono::steady_clock::now();
  auto built = build_cpus_.run(
      // The workers' clock: an endpoint's drain is timed on it (Endpoint::draining).
      [&] {
        return ForwardingTable::build(spec, workers_, owned_.get(), build_threads_,
                                      static_cast<uint32_t>(clock_ms()),
                                      cache_ ? &*cache_ : nullptr);
      });
  timing.build_us = micros_since(t0);
  if (!built.ok()) return built.status();
  std::unique_ptr<ForwardingTable> next = std::move(*built);
  if (hooks_.before) hooks_.before(spec);

  std::lock_guard<std::mutex> guard(mu_);
  auto t1 = std::chrono::steady_clock::now();
  // Release: a worker that loads the new pointer (acquire) sees the whole
  // table as built above.
  current_.store(next.get(), std::memory_order_release);
  // Wait until every online worker has reported a quiescent state after the
  // store: none can still hold the old pointer. Offline (sleeping) workers
  // hold nothing and are not waited for. A worker keeps a burst in flight
  // from one loop to the next and reports only with none, so it is told that
  // a grace period has begun: release, after the token moved, so a worker
  // that sees the flag (acquire) reports against the new token.
  const uint64_t token = rte_rcu_qsbr_start(qsbr_);
  grace_period_.store(true, std::memory_order_release);
  rte_rcu_qsbr_check(qsbr_, token, true);
  grace_period_.store(false, std::memory_order_relaxed);
  timing.publish_us = micros_since(t1);
  if (hooks_.after) hooks_.after(spec);
  // The old table's counters are final now: fold them into the history.
  retire(*owned_);
  owned_ = std::move(next);
  ++tables_applied_;
  // The cache served its restart; from here `previous` shares what it can.
  if (!spec.listeners.empty()) cache_.reset();
  // Tables shared with the one before or copied from the file are written
  // again only along with a table that had to be filled.
  if (cache_writer_ && owned_->maglev_filled() > 0) cache_writer_->offer(owned_->maglev_tables());
  return timing;
}

void TablePublisher::retire(const ForwardingTable& old) {
  for (size_t li = 0; li < old.listeners().size(); ++li) {
    const Listener& l = old.listener(li);
    add(listener_history_[l.name], old.listener_totals(li));
    for (const Endpoint& e : l.endpoints)
      add(endpoint_history_[{l.name, e.address}], old.endpoint_totals(e));
  }
}

TrafficTotals TablePublisher::listener_history(const std::string& name) const {
  auto it = listener_history_.find(name);
  return it == listener_history_.end() ? TrafficTotals{} : it->second;
}

TrafficTotals TablePublisher::endpoint_history(const std::string& listener,
                                               const IpAddress& addr) const {
  auto it = endpoint_history_.find({listener, addr});
  return it == endpoint_history_.end() ? TrafficTotals{} : it->second;
}

}  // namespace onramp::dp
