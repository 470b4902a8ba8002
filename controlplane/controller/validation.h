// Validation of admin requests at the API boundary (docs/design.md "Data model"): each
// function checks one resource against the current configuration, fills the
// defaults of unset fields and normalises what has several spellings
// (addresses, single-port ranges), or returns the status to answer with. The
// message names the field, in the proto's own names, and says why. Pure: a
// refused request changes nothing.
#pragma once

#include <grpcpp/support/status.h>

#include <optional>
#include <string>

#include "common/status.h"
#include "controlplane/controller/config_store.h"

namespace onramp::ctl {

enum class Mutation { create, update };

// Defaults of unset fields (resources.proto); those of health checks are in
// common/health_check.h.
constexpr uint32_t kDefaultWeight = 128;
constexpr uint32_t kDefaultTrafficDial = 100;
// EndpointGroup.unhealthy_drain_s: kDefaultUnhealthyDrainS, at most
// kMaxUnhealthyDrainS (common/table_spec.h, as the dataplane checks it).
constexpr uint32_t kDefaultTcpIdleS = 340;
constexpr uint32_t kDefaultUdpIdleS = 30;

// How much configuration the admin API accepts. Every message the controller
// sends grows with these counts and no other way (names, addresses, health
// checks and error texts have bounds of their own), so with them the largest
// message, a PoP's TableUpdate of every resource, stays under
// kMaxGrpcMessageBytes (docs/controller.md "Limits"; the worst case is
// computed in validation_test.cc, "Finding3"). Totals are checked against
// the configuration's own counts on create: O(1).
constexpr size_t kMaxAccelerators = 1000;
constexpr size_t kMaxListeners = 5000;
constexpr size_t kMaxEndpointGroups = 5000;
constexpr size_t kMaxEndpoints = 20000;
constexpr int kMaxVipsPerAccelerator = 16;
constexpr int kMaxPortRangesPerListener = 64;
constexpr int kMaxPortOverridesPerGroup = 64;

grpc::Status validate_accelerator(const Config& config, const v1::Accelerator& in,
                                  Mutation mutation, v1::Accelerator& out);
grpc::Status validate_listener(const Config& config, const v1::Listener& in, Mutation mutation,
                               v1::Listener& out);
grpc::Status validate_endpoint_group(const Config& config, const v1::EndpointGroup& in,
                                     Mutation mutation, v1::EndpointGroup& out);
grpc::Status validate_endpoint(const Config& config, const v1::Endpoint& in, Mutation mutation,
                               v1::Endpoint& out);

// Deletes: NOT_FOUND, or FAILED_PRECONDITION naming the children that are
// still there.
grpc::Status check_delete_accelerator(const Config& config, const std::string& name);
grpc::Status check_delete_listener(const Config& config, const std::string& accelerator,
                                   const std::string& name);
grpc::Status check_delete_endpoint_group(const Config& config, const std::string& accelerator,
                                         const std::string& listener, const std::string& name);

// [a-z][a-z0-9-]{0,62}: ok, or the problem prefixed with `field`.
Status check_name(const std::string& field, const std::string& value);

// The canonical text of an IPv4 or IPv6 address ("2001:DB8:0::1" ->
// "2001:db8::1"), or nullopt when `text` is not one.
std::optional<std::string> canonical_address(const std::string& text);

// PoP ids: IATA code plus a number, [A-Z]{3}[0-9]{1,2}.
bool is_pop_id(const std::string& id);

}  // namespace onramp::ctl
