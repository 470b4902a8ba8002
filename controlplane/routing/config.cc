#include "controlplane/routing/config.h"

namespace onramp::ctl {

std::string accelerator_key(const std::string& name) { return name; }

std::string listener_key(const std::string& accelerator, const std::string& name) {
  return accelerator + "/" + name;
}

std::string group_key(const std::string& accelerator, const std::string& listener,
                      const std::string& name) {
  return accelerator + "/" + listener + "/" + name;
}

std::string endpoint_key(const std::string& accelerator, const std::string& listener,
                         const std::string& group, const std::string& address) {
  return accelerator + "/" + listener + "/" + group + "/" + address;
}

std::string key_of(const v1::Accelerator& a) { return accelerator_key(a.name()); }
std::string key_of(const v1::Listener& l) { return listener_key(l.accelerator(), l.name()); }
std::string key_of(const v1::EndpointGroup& g) {
  return group_key(g.accelerator(), g.listener(), g.name());
}
std::string key_of(const v1::Endpoint& e) {
  return endpoint_key(e.accelerator(), e.listener(), e.endpoint_group(), e.address());
}

void AddressIndex::add(const std::string& address, const std::string& key) {
  entries_[address + "|" + key] = true;
}

void AddressIndex::remove(const std::string& address, const std::string& key) {
  entries_.erase(address + "|" + key);
}

std::vector<std::string> AddressIndex::users(const std::string& address, size_t max) const {
  std::vector<std::string> out;
  const std::string prefix = address + "|";
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.starts_with(prefix) && out.size() < max; ++it)
    out.push_back(it->first.substr(prefix.size()));
  return out;
}

void Config::reindex() {
  endpoint_addresses.clear();
  for (const auto& [key, e] : endpoints) endpoint_addresses.add(e.address(), key);
  vip_owners.clear();
  for (const auto& [key, a] : accelerators)
    for (const std::string& vip : a.vips()) vip_owners.add(vip, key);
  endpoint_addresses_generation = endpoints.generation();
  vip_owners_generation = accelerators.generation();
}

}  // namespace onramp::ctl
