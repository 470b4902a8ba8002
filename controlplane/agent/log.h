// The agent's log: one line per event on stderr, with a UTC timestamp and the
// PoP id (DESIGN.md: the PoP name appears wherever an operator looks).
#pragma once

#include <string>

namespace onramp::agent {

enum class LogLevel { kInfo, kWarning, kError };

// Set once at start; prefixes every line.
void set_log_pop(const std::string& pop);
void log(LogLevel level, const std::string& message);

}  // namespace onramp::agent
