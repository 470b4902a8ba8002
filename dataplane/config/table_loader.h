// Turns a ForwardingTable message (from a text-format file or the control
// plane) into a validated TableSpec. Every error names the field it is about,
// in the proto's own names, or the line and column of a syntax error.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "common/table_spec.h"
#include "onramp/v1/forwarding.pb.h"

namespace onramp::dp {

Result<TableSpec> table_spec_from_proto(const onramp::v1::ForwardingTable& msg);
Result<TableSpec> parse_table_text(std::string_view text);
// Errors start with the path.
Result<TableSpec> load_table_file(const std::string& path);

}  // namespace onramp::dp
