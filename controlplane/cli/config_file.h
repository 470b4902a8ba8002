// The configuration as a file: what `onrampctl apply` and `diff` read and
// `onrampctl export` writes (docs/cli.md "Configuration as code"). YAML or
// JSON documents, each one resource with a `kind` and the fields of
// resources.proto under their proto names, as `-o yaml` prints them.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "common/status.h"
#include "onramp/v1/resources.pb.h"

namespace onramp::cli {

// In this order parents come before their children.
using AnyResource = std::variant<v1::Accelerator, v1::Listener, v1::EndpointGroup, v1::Endpoint>;

// One resource a file names.
struct FileResource {
  AnyResource resource;
  // The field-mask paths of the settings the document gives ("region",
  // "health_check.interval_ms"): what apply compares and changes. Identity
  // and output-only fields are never among them; fields a document leaves
  // out keep what the controller has.
  std::vector<std::string> paths;
  // "document 3" (or "document 3, item 2"), for messages.
  std::string where;
};

// "Accelerator", "Listener", "EndpointGroup", "Endpoint".
const char* kind_name(const AnyResource& r);

// What a person calls it: "listener web/https", "endpoint web/https/fra/192.0.2.1".
std::string label(const AnyResource& r);

// The resource as a protobuf message, for reflection and printing.
const google::protobuf::Message& message_of(const AnyResource& r);

// Reads every document of `text`. A document is a map with `kind` (or,
// without it, a map whose fields only one kind has, as `get -o yaml`
// prints it), a list response (`accelerators:` ... `endpoints:`, as `list -o
// yaml` prints it), or a sequence of such maps (export -o json). The error
// names the document and the field. Endpoint addresses come back in
// canonical form; a resource named twice is refused.
Result<std::vector<FileResource>> parse_config(const std::string& text);

// `resources` as documents apply reads: YAML separated by "---", or one JSON
// array; each with its `kind` first and without output-only fields.
std::string to_config_yaml(const std::vector<AnyResource>& resources);
std::string to_config_json(const std::vector<AnyResource>& resources);

// The value at a field-mask path, as a person reads it ("50", "[80, 443]",
// "unset"), and whether two resources agree on it.
std::string field_text(const google::protobuf::Message& m, const std::string& path);
bool same_at(const google::protobuf::Message& a, const google::protobuf::Message& b,
             const std::string& path);

}  // namespace onramp::cli
