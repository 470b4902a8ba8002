// The table view of every admin API answer, one function per message. Each
// lives in its resource's file; they are declared together so the golden
// tests reach them. `wide` (-o wide) adds the columns a list has no room
// for: creation and update times, a PoP's location and tunnel source.
#pragma once

#include <ostream>

#include "onramp/v1/admin.pb.h"
#include "onramp/v1/resources.pb.h"

namespace onramp::cli {

void print_accelerator(std::ostream& out, const v1::Accelerator& a, bool wide = false);
void print_accelerators(std::ostream& out, const v1::ListAcceleratorsResponse& list,
                        bool wide = false);
void print_listener(std::ostream& out, const v1::Listener& l, bool wide = false);
void print_listeners(std::ostream& out, const v1::ListListenersResponse& list, bool wide = false);
void print_endpoint_group(std::ostream& out, const v1::EndpointGroup& g, bool wide = false);
void print_endpoint_groups(std::ostream& out, const v1::ListEndpointGroupsResponse& list,
                           bool wide = false);
void print_endpoint(std::ostream& out, const v1::Endpoint& e, bool wide = false);
void print_endpoints(std::ostream& out, const v1::ListEndpointsResponse& list, bool wide = false);
void print_pops(std::ostream& out, const v1::ListPopsResponse& list, bool wide = false);
void print_pop(std::ostream& out, const v1::Pop& pop);
void print_pop_matrix(std::ostream& out, const v1::GetPopMatrixResponse& matrix);
void print_routes(std::ostream& out, const v1::GetRoutesResponse& routes);
void print_trace(std::ostream& out, const v1::TraceFlowResponse& trace);
void print_health(std::ostream& out, const v1::GetHealthResponse& health, bool wide = false);
// `detail`: every counter of each PoP (stats --pop), not one summary line each.
void print_stats(std::ostream& out, const v1::GetStatsResponse& stats, bool detail);

}  // namespace onramp::cli
