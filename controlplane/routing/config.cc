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

}  // namespace onramp::ctl
