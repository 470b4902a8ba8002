#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>

#include "common/text.h"

namespace onramp::log {
namespace {

struct State {
  std::mutex mu;
  std::string prefix = "prog=onramp";                       // GUARDED_BY(mu)
  std::string program = "onramp";                           // GUARDED_BY(mu)
  std::map<std::string, std::string, std::less<>> context;  // GUARDED_BY(mu)
  std::shared_ptr<spdlog::logger> logger;
};

State& state() {
  static State* s = [] {
    auto* st = new State;  // never destroyed: threads may log during exit
    st->logger = std::make_shared<spdlog::logger>(
        "onramp", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    st->logger->set_pattern("ts=%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
    st->logger->set_level(spdlog::level::info);
    // stderr is unbuffered; flush after every line in case it was redirected.
    st->logger->flush_on(spdlog::level::trace);
    return st;
  }();
  return *s;
}

spdlog::level::level_enum to_spdlog(Level l) {
  switch (l) {
    case Level::debug:
      return spdlog::level::debug;
    case Level::info:
      return spdlog::level::info;
    case Level::warn:
      return spdlog::level::warn;
    case Level::error:
      return spdlog::level::err;
    case Level::off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

// Our names, not spdlog's ("warning"): the same words --log-level takes.
const char* level_name(Level l) {
  switch (l) {
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
    case Level::off:
      break;
  }
  return "off";
}

void rebuild_prefix(State& s) {
  s.prefix = "prog=" + escape_value(s.program);
  for (const auto& [k, v] : s.context) s.prefix += " " + k + "=" + escape_value(v);
}

bool plain(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-' || c == '_' || c == ':' || c == '/' || c == '@' || c == '+' || c == ',' ||
         c == '[' || c == ']' || c == '%';
}

void append_escaped(std::string& out, unsigned char c) {
  static const char hex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    default:
      if (c < 0x20 || c >= 0x7f) {
        out += "\\x";
        out += hex[c >> 4];
        out += hex[c & 15];
      } else {
        out += static_cast<char>(c);
      }
  }
}

}  // namespace

Field::Field(std::string_view k, double v) : key(k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  value = buf;
}

void init(std::string_view program) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.program = std::string(program);
  rebuild_prefix(s);
}

void set_context(std::string_view key, std::string_view value) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.context[std::string(key)] = std::string(value);
  rebuild_prefix(s);
}

void set_level(Level l) { state().logger->set_level(to_spdlog(l)); }

Status set_level(std::string_view name) {
  static const std::pair<std::string_view, Level> kNames[] = {
      {"debug", Level::debug},  {"info", Level::info},   {"warn", Level::warn},
      {"warning", Level::warn}, {"error", Level::error}, {"off", Level::off}};
  for (const auto& [n, l] : kNames) {
    if (n == name) {
      set_level(l);
      return ok_status();
    }
  }
  return onramp::error("log level " + quote(name) + " is not one of " + kLevelNames);
}

Level level() {
  switch (state().logger->level()) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return Level::debug;
    case spdlog::level::info:
      return Level::info;
    case spdlog::level::warn:
      return Level::warn;
    case spdlog::level::err:
    case spdlog::level::critical:
      return Level::error;
    default:
      return Level::off;
  }
}

bool enabled(Level l) { return l != Level::off && state().logger->should_log(to_spdlog(l)); }

void write(Level l, std::string_view message, std::initializer_list<Field> fields) {
  if (!enabled(l)) return;
  State& s = state();
  std::string line = "level=";
  line += level_name(l);
  line += ' ';
  {
    std::lock_guard<std::mutex> lock(s.mu);
    line += s.prefix;
  }
  line += " msg=";
  line += escape_value(message);
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    line += escape_value(f.value);
  }
  s.logger->log(to_spdlog(l), line);
}

std::string escape_value(std::string_view value) {
  bool cut = value.size() > kMaxValueBytes;
  if (cut) value = value.substr(0, kMaxValueBytes);
  bool bare = !value.empty() && !cut;
  for (unsigned char c : value) bare = bare && plain(c);
  if (bare) return std::string(value);
  std::string out = "\"";
  for (unsigned char c : value) append_escaped(out, c);
  if (cut) out += "...";
  out += '"';
  return out;
}

}  // namespace onramp::log
