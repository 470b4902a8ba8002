// The agent's /metrics: this PoP's dataplane counters per listener, endpoint
// group and endpoint, its flow table, its table, its probes and its BGP
// state, read at each scrape (docs/observability.md). The dataplane counts
// from its own start; the agent keeps them monotonic across dataplane
// restarts and table changes (CounterContinuity), so that a series resets
// only when the agent itself restarts.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "onramp/v1/dataplane.pb.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::agent {

// Keeps counters read from a source that restarts from zero monotonic: a
// series whose raw value goes down, or every series once the source says it
// restarted, carries what it had counted as an offset from then on.
class CounterContinuity {
 public:
  // Called once per read, before value(): `restarted` moves every series'
  // last raw value into its offset (a restart can leave a counter above
  // its old value by the next read, so a drop alone does not show it).
  void begin(bool restarted);
  // The monotonic value of series `key` for the raw value `raw` read now.
  double value(const std::string& key, double raw);
  size_t series() const { return series_.size(); }

 private:
  struct Series {
    double last = 0;
    double offset = 0;
  };
  std::map<std::string, Series> series_;
};

// Everything one scrape reads.
struct AgentSample {
  std::string pop;
  // The dataplane's counters; nullopt when it did not answer.
  std::optional<v1::DataplaneStats> stats;
  v1::ProbeReport probes;
  bool bgp_configured = false;
  bool bgp_announced = false;
  uint64_t last_good_version = 0;
  double last_apply_seconds = 0;
  uint64_t apply_failures = 0;
  // Flow logs (--flow-log-dir): records the agent wrote to its files, and
  // records it took from the dataplane but could not write.
  bool flow_logs = false;
  uint64_t flow_log_written = 0;
  uint64_t flow_log_lost = 0;
  // Wall clock of the read, Unix milliseconds (the start time exported),
  // and a monotonic clock, milliseconds (restarts told apart with it, so
  // that a step of the wall clock is not taken for one).
  int64_t now_ms = 0;
  int64_t monotonic_ms = 0;
};

class AgentMetrics final : public prometheus::Collectable {
 public:
  explicit AgentMetrics(std::function<AgentSample()> sample);
  // One scrape: sample(), then families().
  std::vector<prometheus::MetricFamily> Collect() const override;
  // The families for one sample, counters carried across dataplane
  // restarts from the samples before it.
  std::vector<prometheus::MetricFamily> families(const AgentSample& sample) const;

 private:
  std::function<AgentSample()> sample_;
  // Held from sample to families: two scrapes at once (the exposer has two
  // threads) would otherwise hand their reads over out of order, and an
  // older read after a newer one looks like a counter reset.
  mutable std::mutex scrape_mu_;
  mutable std::mutex mu_;  // guards the two below
  mutable CounterContinuity continuity_;
  // The dataplane's start on the monotonic clock (monotonic_ms -
  // uptime_ms) at the last read; nullopt before the first.
  mutable std::optional<int64_t> dataplane_start_;
};

}  // namespace onramp::agent
