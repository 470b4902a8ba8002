// The configuration routing reads: accelerators, listeners, endpoint groups
// and endpoints by key. The controller keeps every version of it in its
// store (controlplane/controller/config_store.h); an agent keeps the slice
// its PoP's table was computed from (RouteInputs), to route on its own while
// the controller is away (docs/routing.md "Static stability").
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "controlplane/routing/resource_map.h"
#include "onramp/v1/resources.pb.h"

namespace onramp::ctl {

namespace v1 = onramp::v1;

// Keys join the names that identify a resource with '/': names are
// [a-z0-9-] and addresses never hold '/', so "a/b/" is exactly the prefix of
// b's children.
std::string accelerator_key(const std::string& name);
std::string listener_key(const std::string& accelerator, const std::string& name);
std::string group_key(const std::string& accelerator, const std::string& listener,
                      const std::string& name);
std::string endpoint_key(const std::string& accelerator, const std::string& listener,
                         const std::string& group, const std::string& address);
std::string key_of(const v1::Accelerator& a);
std::string key_of(const v1::Listener& l);
std::string key_of(const v1::EndpointGroup& g);
std::string key_of(const v1::Endpoint& e);

// Which resources use an address (an endpoint's address, an accelerator's
// VIP), so that a mutation checks the addresses it brings in O(log n)
// instead of reading every resource (hardening finding 8). A copy shares its
// entries like a ResourceMap.
class AddressIndex {
 public:
  void add(const std::string& address, const std::string& key);
  void remove(const std::string& address, const std::string& key);
  // Keys of the resources that use `address`, in key order, at most `max`.
  std::vector<std::string> users(const std::string& address, size_t max = 2) const;
  size_t size() const { return entries_.size(); }
  void clear() { entries_.clear(); }

 private:
  ResourceMap<bool> entries_;  // address + '|' + key: addresses hold no '|'
};

// One version of the whole configuration. Immutable once published: readers
// hold a shared_ptr and never lock. A copy shares the resources it does not
// change with the original (ResourceMap), so a commit costs what it changes.
struct Config {
  uint64_t version = 0;
  ResourceMap<v1::Accelerator> accelerators;
  ResourceMap<v1::Listener> listeners;
  ResourceMap<v1::EndpointGroup> groups;
  ResourceMap<v1::Endpoint> endpoints;

  // Endpoint address -> endpoint keys, VIP -> accelerator keys. Right only
  // for the map generations they were kept for: a Config written to directly
  // (tests, an agent's RouteInputs) has none, and readers scan instead
  // (vips_indexed(), endpoints_indexed()). apply_change and reindex() keep
  // them.
  AddressIndex endpoint_addresses;
  AddressIndex vip_owners;
  uint64_t endpoint_addresses_generation = 0;
  uint64_t vip_owners_generation = 0;
  bool endpoints_indexed() const { return endpoint_addresses_generation == endpoints.generation(); }
  bool vips_indexed() const { return vip_owners_generation == accelerators.generation(); }
  // Builds both indexes from the maps: O(configuration), at load.
  void reindex();

  // The map that holds resources of kind T (T one of the four resources).
  template <typename T>
  ResourceMap<T>& map_of() {
    if constexpr (std::is_same_v<T, v1::Accelerator>)
      return accelerators;
    else if constexpr (std::is_same_v<T, v1::Listener>)
      return listeners;
    else if constexpr (std::is_same_v<T, v1::EndpointGroup>)
      return groups;
    else {
      static_assert(std::is_same_v<T, v1::Endpoint>);
      return endpoints;
    }
  }

  // Entries of `m` whose key starts with `parent_key` + "/".
  template <typename T>
  static std::vector<const T*> children(const ResourceMap<T>& m, const std::string& parent_key) {
    std::vector<const T*> out;
    std::string prefix = parent_key + "/";
    for (auto it = m.lower_bound(prefix); it != m.end() && it->first.starts_with(prefix); ++it)
      out.push_back(&it->second);
    return out;
  }
};

}  // namespace onramp::ctl
