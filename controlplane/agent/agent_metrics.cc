#include "controlplane/agent/agent_metrics.h"

#include <utility>

#include "common/table_spec.h"

namespace onramp::agent {

void CounterContinuity::begin(bool restarted) {
  if (!restarted) return;
  for (auto& [key, s] : series_) {
    s.offset += s.last;
    s.last = 0;
  }
}

double CounterContinuity::value(const std::string& key, double raw) {
  Series& s = series_[key];
  // A listener or endpoint that left the table and came back counts from
  // zero again in the dataplane: the same as a restart, for that series.
  if (raw < s.last) s.offset += s.last;
  s.last = raw;
  return s.offset + raw;
}

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// The families of one scrape, in the order they are first added.
class Families {
 public:
  explicit Families(CounterContinuity& continuity) : continuity_(continuity) {}

  void counter(const std::string& name, const std::string& help, Labels labels, double raw) {
    std::string key = name;
    for (const auto& l : labels) key += "\x1f" + l.name + "=" + l.value;
    ClientMetric m;
    m.counter.value = continuity_.value(key, raw);
    m.label = std::move(labels);
    family(name, help, MetricType::Counter).metric.push_back(std::move(m));
  }
  void gauge(const std::string& name, const std::string& help, Labels labels, double value) {
    ClientMetric m;
    m.gauge.value = value;
    m.label = std::move(labels);
    family(name, help, MetricType::Gauge).metric.push_back(std::move(m));
  }
  std::vector<MetricFamily> take() { return std::move(out_); }

 private:
  MetricFamily& family(const std::string& name, const std::string& help, MetricType type) {
    auto [it, added] = index_.emplace(name, out_.size());
    if (added) out_.push_back(MetricFamily{.name = name, .help = help, .type = type});
    return out_[it->second];
  }
  CounterContinuity& continuity_;
  std::map<std::string, size_t> index_;
  std::vector<MetricFamily> out_;
};

Labels with(Labels labels, std::initializer_list<ClientMetric::Label> more) {
  labels.insert(labels.end(), more);
  return labels;
}

// "eu (eu-central)" (the endpoint's label in a controller's table) -> "eu".
std::string group_of(const std::string& label) {
  size_t paren = label.find(" (");
  return paren == std::string::npos ? label : label.substr(0, paren);
}

void add_dataplane(Families& f, const Labels& pop, const v1::DataplaneStats& s, int64_t start_ms) {
  f.gauge("onramp_dataplane_start_time_seconds",
          "When the dataplane last started, Unix seconds: its own counters start from zero then",
          pop, static_cast<double>(start_ms) / 1000.0);
  f.counter("onramp_dataplane_received_packets_total", "Packets the dataplane received", pop,
            s.rx_packets());
  f.counter("onramp_dataplane_received_bytes_total", "Bytes of the packets the dataplane received",
            pop, s.rx_bytes());
  f.counter("onramp_dataplane_forwarded_packets_total",
            "Packets the dataplane sent on to an endpoint", pop, s.forwarded());
  f.counter("onramp_dataplane_new_flows_total", "Flows that picked an endpoint", pop,
            s.new_flows());
  f.counter("onramp_dataplane_flows_moved_total",
            "Flows moved to another endpoint because theirs left or turned unhealthy", pop,
            s.flows_moved());
  // Sorted: a protobuf map's order is not stable from one read to the next.
  const std::map<std::string, uint64_t> drops(s.drops().begin(), s.drops().end());
  for (const auto& [reason, n] : drops)
    f.counter("onramp_dataplane_dropped_packets_total", "Packets dropped, by reason",
              with(pop, {{"reason", reason}}), n);
  const std::pair<const char*, uint64_t> exceptions[] = {
      {"echo_reply", s.echo_replies()},
      {"icmp_error_forwarded", s.icmp_errors_forwarded()},
      {"icmp_too_big_sent", s.icmp_too_big_sent()},
      {"fragmented", s.fragmented()},
      {"fragments_sent", s.fragments_sent()},
      {"fragments_forwarded", s.fragments_forwarded()},
      {"relayed_out", s.relayed_out()},
      {"relayed_in", s.relayed_in()},
  };
  for (const auto& [path, n] : exceptions)
    f.counter("onramp_dataplane_exception_packets_total",
              "Packets off the plain forwarding path, by what happened to them",
              with(pop, {{"path", path}}), n);
  // The exception interface to the kernel (docs/dataplane.md), when on.
  if (!s.exception_interface().empty()) {
    struct Kernel {
      const char* direction;
      const char* result;
      uint64_t n;
    };
    const Kernel kernel[] = {
        {"to_kernel", "sent", s.to_kernel()},
        {"to_kernel", "refused", s.to_kernel_refused()},
        {"from_kernel", "sent", s.from_kernel()},
        {"from_kernel", "refused", s.from_kernel_refused()},
    };
    f.counter("onramp_dataplane_exception_queued_packets_total",
              "Packets not for a VIP the workers queued for the kernel", pop, s.to_exception());
    for (const Kernel& k : kernel)
      f.counter("onramp_dataplane_kernel_packets_total",
                "Packets between the NIC and the kernel's exception interface, by direction and "
                "whether the transmit queue took them",
                with(pop, {{"direction", k.direction}, {"result", k.result}}), k.n);
  }
  if (s.has_next_hop() && !s.next_hop().source().empty()) {
    f.gauge("onramp_dataplane_next_hop_resolved",
            "1 when the dataplane knows the MAC of its next hop, by where it came from",
            with(pop, {{"source", s.next_hop().source()}}),
            s.next_hop().source() == "unresolved" ? 0 : 1);
    f.counter("onramp_dataplane_next_hop_changes_total",
              "Times the next hop's learned MAC changed (its first resolution included)", pop,
              s.next_hop().changes());
  }
  if (s.tsc_hz() > 0)
    f.counter("onramp_dataplane_busy_seconds_total",
              "Time the workers spent on polls that received packets, summed over workers", pop,
              static_cast<double>(s.busy_cycles()) / static_cast<double>(s.tsc_hz()));
  f.gauge("onramp_dataplane_workers", "Worker cores forwarding", pop, s.workers());
  f.gauge("onramp_flow_table_flows", "Live flows in the flow tables", pop, s.flows_live());
  f.gauge("onramp_flow_table_capacity_flows", "Flows the flow tables hold at most", pop,
          s.flow_capacity());
  f.counter("onramp_flow_table_inserts_total", "Flows written into the flow tables", pop,
            s.flow_inserts());
  f.counter("onramp_flow_table_evictions_total",
            "Live flows pushed out of a full flow table by a new one", pop, s.flow_evictions());
  f.counter("onramp_flow_table_expired_total", "Flows forgotten after their idle timeout", pop,
            s.flow_expired());
  f.counter("onramp_dataplane_flow_log_records_total",
            "Flow log records the workers put on their rings", pop,
            static_cast<double>(s.flow_log_records()));
  f.counter("onramp_dataplane_flow_log_dropped_total",
            "Flow log records lost to a full ring (forwarding never waits for one)", pop,
            static_cast<double>(s.flow_log_dropped()));
  f.gauge("onramp_table_version", "Version of the forwarding table the dataplane runs", pop,
          s.table_version());
  f.counter("onramp_tables_applied_total", "Forwarding tables the dataplane took", pop,
            s.tables_applied());
  for (const auto& p : s.ports()) {
    Labels port = with(pop, {{"port", p.name().empty() ? std::to_string(p.id()) : p.name()}});
    f.counter("onramp_port_received_packets_total", "Packets the port received", port,
              p.rx_packets());
    f.counter("onramp_port_transmitted_packets_total", "Packets the port sent", port,
              p.tx_packets());
    f.counter("onramp_port_missed_packets_total",
              "Packets the port dropped for lack of room in its receive ring", port, p.missed());
  }
  for (const auto& l : s.listeners()) {
    auto [accelerator, listener] = split_listener_name(l.name());
    Labels ll = with(pop, {{"accelerator", accelerator}, {"listener", listener}});
    f.counter("onramp_listener_new_flows_total", "Flows of the listener that picked an endpoint",
              ll, l.new_flows());
    f.counter("onramp_listener_forwarded_packets_total",
              "Packets of the listener sent on to an endpoint", ll, l.packets());
    f.counter("onramp_listener_forwarded_bytes_total",
              "Bytes of the listener's packets sent on to an endpoint, as received", ll, l.bytes());
    for (const auto& e : l.endpoints()) {
      Labels el = with(ll, {{"endpoint_group", group_of(e.label())}, {"endpoint", e.address()}});
      f.counter("onramp_new_flows_total", "Flows that picked the endpoint (GA NewFlowCount)", el,
                e.new_flows());
      f.counter("onramp_forwarded_packets_total", "Packets sent on to the endpoint", el,
                e.packets());
      f.counter("onramp_forwarded_bytes_total",
                "Bytes of the packets sent on to the endpoint, as received from clients (GA "
                "ProcessedBytesIn)",
                el, e.bytes());
      f.gauge("onramp_endpoint_weight", "The endpoint's weight in the table the dataplane runs", el,
              e.weight());
      f.gauge("onramp_endpoint_table_healthy",
              "1 when the table the dataplane runs lists the endpoint as healthy", el,
              e.healthy() ? 1 : 0);
    }
  }
}

}  // namespace

AgentMetrics::AgentMetrics(std::function<AgentSample()> sample) : sample_(std::move(sample)) {}

std::vector<prometheus::MetricFamily> AgentMetrics::Collect() const {
  std::lock_guard lock(scrape_mu_);
  return families(sample_());
}

std::vector<prometheus::MetricFamily> AgentMetrics::families(const AgentSample& sample) const {
  std::lock_guard lock(mu_);
  const Labels pop = {{"pop", sample.pop}};
  bool restarted = false;
  if (sample.stats) {
    const int64_t uptime = static_cast<int64_t>(sample.stats->uptime_ms());
    const int64_t start = sample.monotonic_ms - uptime;
    // The start moves with the jitter of the read; a restart moves it by at
    // least the dataplane's start-up, well over a second.
    restarted = dataplane_start_ && start > *dataplane_start_ + 1000;
    if (!dataplane_start_ || restarted) dataplane_start_ = start;
  }
  continuity_.begin(restarted);
  Families f(continuity_);
  f.gauge("onramp_dataplane_up", "1 when the dataplane answered the agent's read of its counters",
          pop, sample.stats ? 1 : 0);
  if (sample.stats)
    add_dataplane(f, pop, *sample.stats,
                  sample.now_ms - static_cast<int64_t>(sample.stats->uptime_ms()));
  f.gauge("onramp_agent_table_version", "Version of the agent's last good table", pop,
          sample.last_good_version);
  f.gauge("onramp_table_apply_seconds",
          "How long the last table the agent applied took, from its request to the dataplane's "
          "answer",
          pop, sample.last_apply_seconds);
  f.counter("onramp_table_apply_failures_total",
            "Tables the dataplane refused or did not answer for", pop,
            static_cast<double>(sample.apply_failures));
  if (sample.flow_logs) {
    f.counter("onramp_flow_log_records_written_total",
              "Flow log records the agent wrote to its files", pop,
              static_cast<double>(sample.flow_log_written));
    f.counter("onramp_flow_log_records_lost_total",
              "Flow log records the agent took from the dataplane but could not write", pop,
              static_cast<double>(sample.flow_log_lost));
  }
  if (sample.bgp_configured)
    f.gauge("onramp_bgp_announced", "1 when BIRD announces this PoP's VIPs", pop,
            sample.bgp_announced ? 1 : 0);
  for (const auto& r : sample.probes.results()) {
    Labels el = with(pop, {{"accelerator", r.accelerator()},
                           {"listener", r.listener()},
                           {"endpoint_group", r.endpoint_group()},
                           {"endpoint", r.address()}});
    // Unknown until the first verdict: no sample rather than a false 0.
    if (r.known())
      f.gauge("onramp_probe_healthy", "1 when this PoP's probes find the endpoint healthy", el,
              r.healthy() ? 1 : 0);
    if (r.rtt_ms() >= 0)
      f.gauge("onramp_probe_rtt_seconds", "Smoothed round-trip time of this PoP's probes", el,
              r.rtt_ms() / 1000.0);
  }
  return f.take();
}

}  // namespace onramp::agent
