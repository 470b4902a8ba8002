// The dataplane's counters: collected once into a DataplaneStats message
// (what the local API returns), and rendered as text for people and as that
// message's JSON for tools (docs/dataplane.md lists every field).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "dataplane/app/exception_path.h"
#include "dataplane/app/neighbour_watch.h"
#include "dataplane/app/ports.h"
#include "dataplane/app/table_publisher.h"
#include "dataplane/app/worker.h"
#include "dataplane/xdp/steering.h"
#include "onramp/v1/dataplane.pb.h"

namespace onramp::dp {

struct StatsSources {
  const TablePublisher* publisher;
  const std::vector<PortInfo>* ports;
  const std::vector<WorkerContext*>* workers;
  // AF_XDP ports' VIP steering; null without any.
  const VipSteering* steering = nullptr;
  const ExceptionPath* exception = nullptr;    // null while off
  const NeighbourWatch* neighbours = nullptr;  // null while not learning
};

// Where the tunnel packets' destination MAC comes from, and which it is.
onramp::v1::NextHop next_hop_status(const TableSpec& spec, const NeighbourWatch* neighbours);

// Sums every lcore's counters, the retired tables' included.
onramp::v1::DataplaneStats collect_stats(const StatsSources& in);

std::string stats_text(const onramp::v1::DataplaneStats& s);
// The counters as JSON: the proto's own JSON mapping, snake_case field names,
// every field present (64-bit counters as strings).
Result<std::string> stats_json(const onramp::v1::DataplaneStats& s);

// Every live flow and its endpoint (at exit, when workers have stopped): as
// text, and into the report's `flows`.
std::string flows_text(const StatsSources& in);
void add_flows(const StatsSources& in, onramp::v1::DataplaneStats& s);

}  // namespace onramp::dp
