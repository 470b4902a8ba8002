// Protobuf text format in and out of files (forwarding tables, saved plans,
// tables an operator applies by hand): one parser, whose errors say the line
// and column instead of going to protobuf's own log.
#pragma once

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "common/status.h"

namespace onramp {

// Fills `msg` from text format; the error is "line L:C: what".
Status parse_text_proto(std::string_view text, google::protobuf::Message& msg);
// The same from a file (read_file's bounds); errors start with the path.
Status load_text_proto_file(const std::string& path, google::protobuf::Message& msg);

}  // namespace onramp
