// libFuzzer target: the controller's request validation on arbitrary
// resources (hardening review: a fuzz target over the controller's request
// validation). The first byte picks the kind and create or update, the rest
// is the resource in protobuf wire format, validated against a small
// configuration. Besides "no crash" (ASan, UBSan), it checks two promises:
// what validation accepts it returns normalised, so validating that again
// accepts it unchanged; and what it refuses it says in printable text of
// bounded size, whatever bytes the request carried (no control characters
// reach an operator's terminal or a log line).
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "controlplane/controller/validation.h"

namespace {

using namespace onramp;
using namespace onramp::ctl;

const Config& base() {
  static const Config config = [] {
    Config c;
    v1::Accelerator a;
    a.set_name("web");
    a.set_enabled(true);
    a.add_vips("203.0.113.10");
    c.accelerators[key_of(a)] = a;
    v1::Listener l;
    l.set_accelerator("web");
    l.set_name("http");
    l.set_protocol(v1::TCP);
    auto* r = l.add_port_ranges();
    r->set_first(80);
    r->set_last(80);
    c.listeners[key_of(l)] = l;
    v1::EndpointGroup g;
    g.set_accelerator("web");
    g.set_listener("http");
    g.set_name("eu");
    g.set_traffic_dial_percent(100);
    c.groups[key_of(g)] = g;
    v1::Endpoint e;
    e.set_accelerator("web");
    e.set_listener("http");
    e.set_endpoint_group("eu");
    e.set_address("198.51.100.1");
    e.set_weight(128);
    c.endpoints[key_of(e)] = e;
    return c;
  }();
  return config;
}

void check_refusal(const grpc::Status& s) {
  const std::string& m = s.error_message();
  if (m.empty() || m.size() > 4096) std::abort();
  for (unsigned char c : m)
    if (c < 0x20 || c == 0x7f) std::abort();
}

template <typename T, typename Validate>
void run(const uint8_t* data, size_t size, Mutation mutation, Validate validate) {
  T in;
  if (!in.ParseFromArray(data, static_cast<int>(size))) return;
  T out;
  grpc::Status s = validate(base(), in, mutation, out);
  if (!s.ok()) {
    check_refusal(s);
    return;
  }
  T again;
  if (!validate(base(), out, mutation, again).ok()) std::abort();
  if (!google::protobuf::util::MessageDifferencer::Equals(out, again)) std::abort();
}

}  // namespace

// Strings that are not UTF-8 are refused by the parser with a log line each:
// quiet, the refusal itself is what is tested.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Mutation m = data[0] & 1 ? Mutation::update : Mutation::create;
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  switch ((data[0] >> 1) & 3) {
    case 0:
      run<v1::Accelerator>(body, n, m, validate_accelerator);
      break;
    case 1:
      run<v1::Listener>(body, n, m, validate_listener);
      break;
    case 2:
      run<v1::EndpointGroup>(body, n, m, validate_endpoint_group);
      break;
    default:
      run<v1::Endpoint>(body, n, m, validate_endpoint);
      break;
  }
  return 0;
}
