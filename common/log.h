// The one logger of every onramp binary: one line per event on stderr, in
// logfmt (key=value) so people read it and tools parse it, or as one JSON
// object a line (--log-format json) with the same keys:
//
//   ts=2026-12-04T22:49:48.123Z level=info prog=onramp-agent pop=FRA1 msg="applied table"
//   version=12
//
// Values from the network or from operators are escaped (quotes, backslashes,
// control bytes, ANSI escapes) and bounded in length, so no input can forge a
// line or flood the log. The level is set from a flag and may change at run
// time (SIGUSR1 one step more detail, SIGUSR2 one step less, in the daemons
// that call step_level_on_signals); spdlog writes the lines (thread-safe,
// one write per line).
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
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)), literal(true) {}
  Field(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), literal(true) {}
  Field(std::string_view k, double v);

  std::string_view key;
  std::string value;
  // A number or a boolean: JSON lines write it bare, not as a string.
  bool literal = false;
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

// Makes SIGUSR1 raise the level one step towards debug and SIGUSR2 lower it
// one step towards error, each change written as a "log level changed" line
// whatever the level. The handler only writes to a pipe; a thread of the
// logger reads it (with every signal blocked), so nothing unsafe runs in
// signal context. Call once, in main, before any thread is started.
Status step_level_on_signals();

enum class Format { logfmt, json };
void set_format(Format format);
// "logfmt" or "json".
Status set_format(std::string_view name);
Format format();
inline constexpr const char* kFormatNames = "logfmt, json";

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
// A value as a JSON string, quotes included: \" \\ \n \r \t and \u00NN for
// every other control or non-ASCII byte (so a line is valid JSON whatever
// the bytes), cut as escape_value cuts.
std::string json_string(std::string_view value);

}  // namespace onramp::log
