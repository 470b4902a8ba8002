// The one logger of every onramp binary: one line per event on stderr, in
// logfmt (key=value) so people read it and tools parse it:
//
//   ts=2026-12-04T22:49:48.123Z level=info prog=onramp-agent pop=FRA1 msg="applied table"
//   version=12
//
// Values from the network or from operators are escaped (quotes, backslashes,
// control bytes, ANSI escapes) and bounded in length, so no input can forge a
// line or flood the log. The level is set from a flag and may change at run
// time; spdlog writes the lines (thread-safe, one write per line).
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "common/status.h"

namespace onramp::log {

enum class Level { debug, info, warn, error, off };

// One key=value pair of a line. Keys are identifiers written by us; values
// are escaped.
struct Field {
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  template <std::integral T>
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
  Field(std::string_view k, double v);

  std::string_view key;
  std::string value;
};

// Names the program in every line (prog=...). Call once, first thing in main.
void init(std::string_view program);
// Adds key=value to every later line, after prog (the agent's pop=FRA1).
// Setting a key again replaces its value.
void set_context(std::string_view key, std::string_view value);

void set_level(Level level);
// "debug", "info", "warn" (or "warning"), "error", "off".
Status set_level(std::string_view name);
Level level();
bool enabled(Level level);
// The accepted names, for --help.
inline constexpr const char* kLevelNames = "debug, info, warn, error, off";

void write(Level level, std::string_view message, std::initializer_list<Field> fields = {});

inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
  write(Level::error, m, f);
}

// A value as it appears in a line: bare when it is a plain token, otherwise
// quoted with \" \\ \n \r \t and \xNN for every other control or non-ASCII
// byte; cut to kMaxValueBytes with "..." appended.
inline constexpr size_t kMaxValueBytes = 1024;
std::string escape_value(std::string_view value);

}  // namespace onramp::log
