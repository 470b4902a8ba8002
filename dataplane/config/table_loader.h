// Turns a ForwardingTable message (from a text-format file or the control
// plane) into a validated TableSpec. Every error names the field it is about,
// in the proto's own names, or the line and column of a syntax error.
#pragma once

#include <string>

#include "dataplane/core/table_spec.h"
#include "onramp/v1/forwarding.pb.h"

namespace onramp::dp {

// Each returns "" and fills `out`, or returns the error and leaves `out`
// unspecified.
std::string table_spec_from_proto(const onramp::v1::ForwardingTable& msg, TableSpec& out);
std::string parse_table_text(const std::string& text, TableSpec& out);
std::string load_table_file(const std::string& path, TableSpec& out);

}  // namespace onramp::dp
