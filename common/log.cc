#include "common/log.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "common/text.h"

namespace onramp::log {
namespace {

constexpr const char* kTimeLogfmt = "ts=%Y-%m-%dT%H:%M:%S.%eZ %v";
constexpr const char* kTimeJson = "{\"ts\":\"%Y-%m-%dT%H:%M:%S.%eZ\",%v}";

struct State {
  std::mutex mu;
  std::string prefix = "prog=onramp";                       // GUARDED_BY(mu)
  std::string json_prefix = "\"prog\":\"onramp\"";          // GUARDED_BY(mu)
  Format format = Format::logfmt;                           // GUARDED_BY(mu)
  std::string program = "onramp";                           // GUARDED_BY(mu)
  std::map<std::string, std::string, std::less<>> context;  // GUARDED_BY(mu)
  std::shared_ptr<spdlog::logger> logger;
};

State& state() {
  static State* s = [] {
    auto* st = new State;  // never destroyed: threads may log during exit
    st->logger = std::make_shared<spdlog::logger>(
        "onramp", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    st->logger->set_pattern(kTimeLogfmt, spdlog::pattern_time_type::utc);
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
  s.json_prefix = "\"prog\":" + json_string(s.program);
  for (const auto& [k, v] : s.context) {
    s.prefix += " " + k + "=" + escape_value(v);
    s.json_prefix += "," + json_string(k) + ":" + json_string(v);
  }
}

// The line without its time, which spdlog's pattern adds.
std::string format_line(State& s, Level l, std::string_view message,
                        std::initializer_list<Field> fields) {
  std::string line;
  std::lock_guard<std::mutex> lock(s.mu);
  if (s.format == Format::json) {
    line = "\"level\":\"";
    line += level_name(l);
    line += "\",";
    line += s.json_prefix;
    line += ",\"msg\":";
    line += json_string(message);
    for (const Field& f : fields) {
      line += ',';
      line += json_string(f.key);
      line += ':';
      line += f.literal ? f.value : json_string(f.value);
    }
    return line;
  }
  line = "level=";
  line += level_name(l);
  line += ' ';
  line += s.prefix;
  line += " msg=";
  line += escape_value(message);
  for (const Field& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    line += escape_value(f.value);
  }
  return line;
}

// Writes a line whatever the level: the sinks, not the logger, filter
// nothing.
void write_always(State& s, Level l, std::string_view message,
                  std::initializer_list<Field> fields) {
  std::string line = format_line(s, l, message, fields);
  spdlog::details::log_msg msg(s.logger->name(), to_spdlog(l), line);
  for (auto& sink : s.logger->sinks()) {
    sink->log(msg);
    sink->flush();
  }
}

// The write end of the pipe the signal handler writes the signal number to.
std::atomic<int> signal_pipe{-1};

extern "C" void on_level_signal(int sig) {
  int saved = errno;  // write may change it under the interrupted code
  unsigned char b = static_cast<unsigned char>(sig);
  int fd = signal_pipe.load(std::memory_order_relaxed);  // set before the handler
  if (fd >= 0) (void)!::write(fd, &b, 1);
  errno = saved;
}

Level step(Level l, bool more_detail) {
  switch (l) {
    case Level::debug:
      return more_detail ? Level::debug : Level::info;
    case Level::info:
      return more_detail ? Level::debug : Level::warn;
    case Level::warn:
      return more_detail ? Level::info : Level::error;
    case Level::error:
      return more_detail ? Level::warn : Level::error;
    case Level::off:
      return more_detail ? Level::error : Level::off;
  }
  return l;
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
  literal = std::isfinite(v);  // JSON has no nan or inf
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
  s.logger->log(to_spdlog(l), format_line(s, l, message, fields));
}

void set_format(Format f) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  s.format = f;
  s.logger->set_pattern(f == Format::json ? kTimeJson : kTimeLogfmt,
                        spdlog::pattern_time_type::utc);
}

Status set_format(std::string_view name) {
  if (name == "logfmt") {
    set_format(Format::logfmt);
  } else if (name == "json") {
    set_format(Format::json);
  } else {
    return onramp::error("log format " + quote(name) + " is not one of " + kFormatNames);
  }
  return ok_status();
}

Format format() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.format;
}

Status step_level_on_signals() {
  State& s = state();
  if (signal_pipe.load() >= 0) return ok_status();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return onramp::error(std::string("log level signals: pipe: ") + std::strerror(errno));
  // A burst of signals must never block the handler.
  ::fcntl(fds[1], F_SETFL, O_NONBLOCK);
  signal_pipe.store(fds[1]);
  // The thread starts with every signal blocked: a daemon that blocks
  // SIGTERM in main after this (to sigwait for it) must not lose it here.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  std::thread([&s, in = fds[0]] {
    unsigned char sig = 0;
    for (;;) {
      ssize_t n = ::read(in, &sig, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n != 1) return;
      bool more = sig == SIGUSR1;
      Level now = step(level(), more);
      set_level(now);
      write_always(s, Level::info, "log level changed",
                   {{"new_level", level_name(now)}, {"signal", more ? "SIGUSR1" : "SIGUSR2"}});
    }
  }).detach();
  pthread_sigmask(SIG_SETMASK, &before, nullptr);
  struct sigaction sa {};
  sa.sa_handler = on_level_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGUSR1, SIGUSR2}) {
    if (::sigaction(sig, &sa, nullptr) != 0)
      return onramp::error(std::string("log level signals: sigaction: ") + std::strerror(errno));
    // A thread that blocks them (none should) would leave them to another.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  }
  return ok_status();
}

std::string json_string(std::string_view value) {
  static const char hex[] = "0123456789abcdef";
  bool cut = value.size() > kMaxValueBytes;
  if (cut) value = value.substr(0, kMaxValueBytes);
  std::string out = "\"";
  for (unsigned char c : value) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  if (cut) out += "...";
  out += '"';
  return out;
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
