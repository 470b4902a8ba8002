#include "controlplane/controller/status_board.h"

#include <google/protobuf/util/json_util.h>

#include <cmath>

#include "common/log.h"
#include "controlplane/common/state_names.h"

namespace onramp::ctl {
namespace {

// A message as JSON with proto field names, every field present (a page
// reads "applied_version": 0 rather than a missing key).
std::string to_json(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) return "null";
  return out;
}

}  // namespace

StatusBoard::StatusBoard(const ConfigStore& store, const PopRegistry& registry)
    : store_(store), registry_(registry) {}

void StatusBoard::sample(int64_t now_ms) {
  const uint64_t config_version = store_.snapshot()->version;
  v1::ListPopsResponse pops = registry_.list_pops();
  v1::GetHealthResponse health;
  if (grpc::Status s = registry_.health(v1::GetHealthRequest{}, health); !s.ok()) {
    // Too many endpoints x PoPs for one answer: the page shows the rest.
    health.Clear();
  }
  auto routes = registry_.latest_routes();

  // What the changes list compares, one line per fact.
  std::map<std::string, std::string> facts;
  facts["configuration version"] = std::to_string(config_version);
  for (const v1::Pop& p : pops.pops()) {
    facts["PoP " + p.id()] = std::string(cp::pop_state_name(p.state()));
    facts["PoP " + p.id() + " applied version"] = std::to_string(p.applied_version());
    // The servers of a PoP come and go with their sessions ("gone").
    for (const v1::PopHost& h : p.hosts())
      if (!h.name().empty())
        facts["PoP " + p.id() + " host " + h.name()] =
            std::string(h.dataplane_healthy() ? "dataplane healthy" : "dataplane unhealthy") +
            (h.bgp_announced() ? ", announced" : ", withdrawn");
  }
  // The probe's error with an unhealthy verdict only: failures below the
  // threshold are no change of state.
  for (const v1::EndpointHealth& e : health.endpoints())
    facts[e.pop() + " sees " + e.accelerator() + "/" + e.listener() + " " + e.address()] =
        std::string(cp::health_state_name(e.state())) +
        (e.state() == v1::HEALTH_STATE_UNHEALTHY && !e.last_error().empty()
             ? " (" + e.last_error() + ")"
             : "");
  // A share is a change when its whole percent moves; the reason (whose
  // RTTs move every round) is said with it.
  std::map<std::string, std::string> reasons;
  std::string json = "{\"generated_ms\":" + std::to_string(now_ms) +
                     ",\"config_version\":" + std::to_string(config_version) +
                     ",\"pops\":" + to_json(pops) + ",\"endpoints\":" + to_json(health) +
                     // The PoP x PoP matrix beside PoP x region (pop matrix).
                     ",\"matrix\":" + to_json(registry_.matrix()) + ",\"routes\":[";
  bool first = true;
  for (const auto& [pop, listeners] : routes) {
    if (!listeners) continue;
    json +=
        std::string(first ? "" : ",") + "{\"pop\":" + log::json_string(pop) + ",\"listeners\":[";
    first = false;
    for (size_t i = 0; i < listeners->size(); ++i) {
      const v1::ListenerRoute& l = (*listeners)[i];
      json += (i ? "," : "") + to_json(l);
      for (const v1::GroupRoute& g : l.groups()) {
        std::string key =
            pop + " routes " + l.accelerator() + "/" + l.listener() + " to " + g.endpoint_group();
        facts[key] = std::to_string(std::lround(g.share_percent())) + " %";
        reasons[key] = g.reason();
      }
    }
    json += "]}";
  }
  json += "],\"changes\":[";

  std::lock_guard lock(mu_);
  auto note = [&](std::string text) {
    changes_.emplace_front(now_ms, std::move(text));
    if (changes_.size() > kMaxChanges) changes_.pop_back();
  };
  if (!sampled_) {
    note("status page started");
  } else {
    for (const auto& [key, value] : facts) {
      auto it = facts_.find(key);
      auto reason = reasons.find(key);
      std::string why = reason == reasons.end() ? "" : " (" + reason->second + ")";
      if (it == facts_.end())
        note(key + ": " + value + why);
      else if (it->second != value)
        note(key + ": " + it->second + " -> " + value + why);
    }
    for (const auto& [key, value] : facts_)
      if (!facts.count(key)) note(key + ": gone");
  }
  sampled_ = true;
  facts_ = std::move(facts);
  for (size_t i = 0; i < changes_.size(); ++i)
    json += std::string(i ? "," : "") + "{\"ms\":" + std::to_string(changes_[i].first) +
            ",\"text\":" + log::json_string(changes_[i].second) + "}";
  json += "]}";
  json_ = std::move(json);
}

std::string StatusBoard::json() const {
  std::lock_guard lock(mu_);
  return json_;
}

}  // namespace onramp::ctl
