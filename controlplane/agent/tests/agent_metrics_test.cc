// The agent's metric families: names, labels and values for known dataplane
// counters, and counters that stay monotonic when the dataplane restarts or
// a listener leaves the table and comes back.
#include "controlplane/agent/agent_metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <optional>
#include <sstream>

namespace onramp::agent {
namespace {

using prometheus::MetricFamily;

v1::DataplaneStats stats(uint64_t uptime_ms, uint64_t packets, uint64_t bytes, uint64_t flows) {
  v1::DataplaneStats s;
  s.set_pop("FRA1");
  s.set_uptime_ms(uptime_ms);
  s.set_table_version(7);
  s.set_tables_applied(2);
  s.set_rx_packets(packets + 3);
  s.set_rx_bytes(bytes + 300);
  s.set_forwarded(packets);
  s.set_new_flows(flows);
  s.set_flows_live(flows);
  s.set_flow_capacity(1024);
  s.set_flow_evictions(1);
  (*s.mutable_drops())["no_listener"] = 3;
  (*s.mutable_drops())["ttl_expired"] = 0;
  auto* l = s.add_listeners();
  l->set_name("web/http");
  l->set_packets(packets);
  l->set_bytes(bytes);
  l->set_new_flows(flows);
  auto* e = l->add_endpoints();
  e->set_address("198.51.100.7");
  e->set_label("eu (eu-central)");
  e->set_weight(100);
  e->set_healthy(true);
  e->set_packets(packets);
  e->set_bytes(bytes);
  e->set_new_flows(flows);
  return s;
}

AgentSample sample(std::optional<v1::DataplaneStats> s, int64_t now_ms) {
  AgentSample a;
  a.pop = "FRA1";
  a.stats = std::move(s);
  a.now_ms = now_ms;
  a.monotonic_ms = now_ms - 1'600'000'000'000;
  a.last_good_version = 7;
  a.last_apply_seconds = 0.012;
  auto* r = a.probes.add_results();
  r->set_accelerator("web");
  r->set_listener("http");
  r->set_endpoint_group("eu");
  r->set_address("198.51.100.7");
  r->set_known(true);
  r->set_healthy(true);
  r->set_rtt_ms(2.5);
  return a;
}

const MetricFamily* family(const std::vector<MetricFamily>& fs, const std::string& name) {
  for (const auto& f : fs)
    if (f.name == name) return &f;
  return nullptr;
}

std::string label(const prometheus::ClientMetric& m, const std::string& name) {
  for (const auto& l : m.label)
    if (l.name == name) return l.value;
  return "<none>";
}

// The value of the series of `name` whose `endpoint` label (or none) matches.
double value(const std::vector<MetricFamily>& fs, const std::string& name) {
  const MetricFamily* f = family(fs, name);
  EXPECT_NE(f, nullptr) << name;
  if (!f || f->metric.empty()) return -1;
  const auto& m = f->metric.front();
  return f->type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
}

TEST(AgentMetricsTest, EndpointCountersCarryEveryLabel) {
  AgentMetrics metrics([] { return AgentSample(); });
  auto fs = metrics.families(sample(stats(60000, 10, 1000, 4), 1'700'000'060'000));
  const MetricFamily* flows = family(fs, "onramp_new_flows_total");
  ASSERT_NE(flows, nullptr);
  EXPECT_EQ(flows->type, prometheus::MetricType::Counter);
  ASSERT_EQ(flows->metric.size(), 1u);
  const auto& m = flows->metric.front();
  EXPECT_EQ(label(m, "pop"), "FRA1");
  EXPECT_EQ(label(m, "accelerator"), "web");
  EXPECT_EQ(label(m, "listener"), "http");
  EXPECT_EQ(label(m, "endpoint_group"), "eu");
  EXPECT_EQ(label(m, "endpoint"), "198.51.100.7");
  EXPECT_EQ(m.counter.value, 4);
  EXPECT_EQ(value(fs, "onramp_forwarded_bytes_total"), 1000);
  EXPECT_EQ(value(fs, "onramp_forwarded_packets_total"), 10);
  EXPECT_EQ(value(fs, "onramp_listener_forwarded_bytes_total"), 1000);
  EXPECT_EQ(value(fs, "onramp_dataplane_received_packets_total"), 13);
  EXPECT_EQ(value(fs, "onramp_flow_table_flows"), 4);
  EXPECT_EQ(value(fs, "onramp_flow_table_capacity_flows"), 1024);
  EXPECT_EQ(value(fs, "onramp_table_version"), 7);
  EXPECT_EQ(value(fs, "onramp_table_apply_seconds"), 0.012);
  EXPECT_EQ(value(fs, "onramp_dataplane_up"), 1);
  EXPECT_EQ(value(fs, "onramp_dataplane_start_time_seconds"), 1'700'000'000);
  EXPECT_EQ(value(fs, "onramp_probe_healthy"), 1);
  EXPECT_EQ(value(fs, "onramp_probe_rtt_seconds"), 0.0025);
  const MetricFamily* drops = family(fs, "onramp_dataplane_dropped_packets_total");
  ASSERT_NE(drops, nullptr);
  ASSERT_EQ(drops->metric.size(), 2u);
  EXPECT_EQ(label(drops->metric[0], "reason"), "no_listener");
  EXPECT_EQ(drops->metric[0].counter.value, 3);
  // No BGP without --bird-config: no series rather than a false 0.
  EXPECT_EQ(family(fs, "onramp_bgp_announced"), nullptr);
}

// The exception path and the next hop (docs/dataplane.md): series only when
// the dataplane has them.
TEST(AgentMetricsTest, ExceptionPathAndNextHopWhenTheDataplaneHasThem) {
  AgentMetrics metrics([] { return AgentSample(); });
  auto plain = metrics.families(sample(stats(60000, 10, 1000, 4), 1'700'000'060'000));
  EXPECT_EQ(family(plain, "onramp_dataplane_kernel_packets_total"), nullptr);
  EXPECT_EQ(family(plain, "onramp_dataplane_next_hop_resolved"), nullptr);

  v1::DataplaneStats s = stats(61000, 10, 1000, 4);
  s.set_exception_interface("net_tap0");
  s.set_to_exception(9);
  s.set_to_kernel(8);
  s.set_to_kernel_refused(1);
  s.set_from_kernel(7);
  s.mutable_next_hop()->set_source("unresolved");
  auto fs = metrics.families(sample(s, 1'700'000'061'000));
  EXPECT_EQ(value(fs, "onramp_dataplane_exception_queued_packets_total"), 9);
  const MetricFamily* kernel = family(fs, "onramp_dataplane_kernel_packets_total");
  ASSERT_NE(kernel, nullptr);
  ASSERT_EQ(kernel->metric.size(), 4u);
  EXPECT_EQ(label(kernel->metric[0], "direction"), "to_kernel");
  EXPECT_EQ(label(kernel->metric[0], "result"), "sent");
  EXPECT_EQ(kernel->metric[0].counter.value, 8);
  EXPECT_EQ(label(kernel->metric[2], "direction"), "from_kernel");
  EXPECT_EQ(kernel->metric[2].counter.value, 7);
  const MetricFamily* resolved = family(fs, "onramp_dataplane_next_hop_resolved");
  ASSERT_NE(resolved, nullptr);
  EXPECT_EQ(label(resolved->metric.front(), "source"), "unresolved");
  EXPECT_EQ(resolved->metric.front().gauge.value, 0);
}

// Every name follows Prometheus' conventions, and the text exposition of a
// whole scrape parses as such (TYPE lines, _total counters).
TEST(AgentMetricsTest, NamesFollowPrometheusConventions) {
  AgentMetrics metrics([] { return sample(stats(1000, 1, 100, 1), 1'700'000'000'000); });
  auto fs = metrics.Collect();
  for (const auto& f : fs) {
    EXPECT_EQ(f.name.rfind("onramp_", 0), 0u) << f.name;
    bool total = f.name.size() > 6 && f.name.substr(f.name.size() - 6) == "_total";
    EXPECT_EQ(total, f.type == prometheus::MetricType::Counter) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
  }
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, fs);
  EXPECT_NE(text.str().find("# TYPE onramp_new_flows_total counter"), std::string::npos);
  EXPECT_NE(text.str().find("onramp_new_flows_total{pop=\"FRA1\",accelerator=\"web\",listener="
                            "\"http\",endpoint_group=\"eu\",endpoint=\"198.51.100.7\"} 1"),
            std::string::npos)
      << text.str();
}

TEST(AgentMetricsTest, CountersStayMonotonicAcrossADataplaneRestart) {
  AgentMetrics metrics([] { return AgentSample(); });
  const int64_t t0 = 1'700'000'000'000;
  auto before = metrics.families(sample(stats(60000, 100, 10000, 40), t0));
  EXPECT_EQ(value(before, "onramp_new_flows_total"), 40);
  // Restarted 5 s ago and already past its old count: a drop alone would
  // not show it; the start time does.
  auto after = metrics.families(sample(stats(5000, 150, 15000, 50), t0 + 10000));
  EXPECT_EQ(value(after, "onramp_new_flows_total"), 90);
  EXPECT_EQ(value(after, "onramp_forwarded_bytes_total"), 25000);
  EXPECT_EQ(value(after, "onramp_dataplane_start_time_seconds"), (t0 + 5000) / 1000.0);
  // Restarted and below its old count.
  auto again = metrics.families(sample(stats(1000, 1, 100, 1), t0 + 20000));
  EXPECT_EQ(value(again, "onramp_new_flows_total"), 91);
  // Without a restart the counters follow the dataplane's.
  auto later = metrics.families(sample(stats(11000, 11, 1100, 5), t0 + 30000));
  EXPECT_EQ(value(later, "onramp_new_flows_total"), 95);
}

TEST(AgentMetricsTest, ADataplaneThatDoesNotAnswerKeepsTheCountersForLater) {
  AgentMetrics metrics([] { return AgentSample(); });
  const int64_t t0 = 1'700'000'000'000;
  (void)metrics.families(sample(stats(60000, 100, 10000, 40), t0));
  auto down = metrics.families(sample(std::nullopt, t0 + 1000));
  EXPECT_EQ(value(down, "onramp_dataplane_up"), 0);
  EXPECT_EQ(family(down, "onramp_new_flows_total"), nullptr);
  auto back = metrics.families(sample(stats(500, 2, 200, 1), t0 + 2000));
  EXPECT_EQ(value(back, "onramp_new_flows_total"), 41);
}

// A step of the wall clock is no restart: restarts are told apart on the
// monotonic clock.
TEST(AgentMetricsTest, AWallClockStepIsNoRestart) {
  AgentMetrics metrics([] { return AgentSample(); });
  const int64_t t0 = 1'700'000'000'000;
  AgentSample a = sample(stats(60000, 100, 10000, 40), t0);
  (void)metrics.families(a);
  AgentSample b = sample(stats(61000, 101, 10100, 41), t0 + 1000 + 3'600'000);
  b.monotonic_ms = a.monotonic_ms + 1000;
  auto fs = metrics.families(b);
  EXPECT_EQ(value(fs, "onramp_new_flows_total"), 41);
}

TEST(AgentMetricsTest, AListenerBackInTheTableKeepsCounting) {
  CounterContinuity c;
  c.begin(false);
  EXPECT_EQ(c.value("a", 10), 10);
  EXPECT_EQ(c.value("b", 5), 5);
  c.begin(false);
  EXPECT_EQ(c.value("a", 2), 12);  // "a" left the table and came back
  EXPECT_EQ(c.value("b", 7), 7);
  c.begin(true);
  EXPECT_EQ(c.value("a", 20), 32);
  EXPECT_EQ(c.value("b", 0), 7);
}

}  // namespace
}  // namespace onramp::agent
