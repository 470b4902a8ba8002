#include "dataplane/xdp/steering.h"

#include "common/log.h"

namespace onramp::dp {
namespace {

// The names DPDK registers the AF_XDP PMD under.
bool is_af_xdp_vdev(std::string_view devargs) {
  return devargs.starts_with("net_af_xdp") || devargs.starts_with("eth_af_xdp");
}

bool names_program(std::string_view devargs) {
  size_t at = 0;
  while ((at = devargs.find("xdp_prog=", at)) != std::string_view::npos) {
    if (at > 0 && devargs[at - 1] == ',') return true;
    at += 1;
  }
  return false;
}

}  // namespace

std::string SteeredDestination::to_string() const {
  if (udp_port == 0) return address.to_string();
  std::string a = address.to_string();
  if (!address.is_v4()) a = "[" + a + "]";
  return a + ":" + std::to_string(udp_port) + "/udp";
}

SteeringSet steering_set(const TableSpec& spec) {
  SteeringSet set;
  for (const ListenerSpec& l : spec.listeners)
    for (const IpAddress& vip : l.vips) set.insert({.address = vip});
  if (!spec.relay_peers.empty()) {
    for (const auto& source : {spec.tunnel_source_v4, spec.tunnel_source_v6})
      if (source) set.insert({.address = *source, .udp_port = spec.resolved_relay_port()});
  }
  return set;
}

VipSteering::VipSteering(std::vector<std::unique_ptr<SteeringMaps>> ports)
    : ports_(std::move(ports)) {}

void VipSteering::update(const SteeredDestination& d, bool insert) {
  bool all = true;
  for (size_t p = 0; p < ports_.size(); ++p) {
    Status s = insert ? ports_[p]->insert(d) : ports_[p]->erase(d);
    // Relaxed: counters, read on their own.
    updates_.fetch_add(1, std::memory_order_relaxed);
    if (!s.ok()) {
      all = false;
      errors_.fetch_add(1, std::memory_order_relaxed);
      log::error(insert ? "cannot steer a destination to the dataplane"
                        : "cannot stop steering a destination to the dataplane",
                 {{"destination", d.to_string()}, {"port", p}, {"error", s.message()}});
    }
  }
  if (insert && all) installed_.insert(d);
  if (!insert && all) installed_.erase(d);
  destinations_.store(installed_.size(), std::memory_order_relaxed);
}

void VipSteering::before_swap(const SteeringSet& next) {
  for (const SteeredDestination& d : next)
    if (!installed_.contains(d)) update(d, true);
}

void VipSteering::after_swap(const SteeringSet& next) {
  // Copied: update() erases from installed_.
  std::vector<SteeredDestination> gone;
  for (const SteeredDestination& d : installed_)
    if (!next.contains(d)) gone.push_back(d);
  for (const SteeredDestination& d : gone) update(d, false);
}

SteeringCounters VipSteering::counters() const {
  return {.ports = ports_.size(),
          .destinations = destinations_.load(std::memory_order_relaxed),
          .map_updates = updates_.load(std::memory_order_relaxed),
          .map_errors = errors_.load(std::memory_order_relaxed)};
}

std::vector<std::string> with_xdp_program(const std::vector<std::string>& eal_args,
                                          std::string_view program, bool* changed) {
  std::vector<std::string> out = eal_args;
  if (changed) *changed = false;
  if (program.empty()) return out;
  for (size_t i = 0; i < out.size(); ++i) {
    std::string* devargs = nullptr;
    if (out[i].starts_with("--vdev=")) {
      devargs = &out[i];
      std::string_view v = std::string_view(*devargs).substr(7);
      if (!is_af_xdp_vdev(v) || names_program(v)) continue;
    } else if (out[i] == "--vdev" && i + 1 < out.size()) {
      devargs = &out[++i];
      if (!is_af_xdp_vdev(*devargs) || names_program(*devargs)) continue;
    } else {
      continue;
    }
    *devargs += ",xdp_prog=";
    *devargs += program;
    if (changed) *changed = true;
  }
  return out;
}

}  // namespace onramp::dp
