// JSON text written by hand where a proto's JSON mapping does not fit (YAML
// turned into JSON, flow log lines): one way to quote a string.
#pragma once

#include <string>
#include <string_view>

namespace onramp {

// A JSON string literal of `text`, quotes included: '"' and '\\' escaped,
// control bytes as \u00XX, every other byte as it is (UTF-8 stays UTF-8).
std::string json_string(std::string_view text);

}  // namespace onramp
