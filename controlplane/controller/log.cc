#include "controlplane/controller/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace onramp::ctl {
namespace {

std::atomic<bool> g_enabled{true};

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::info:
      return "INFO";
    case LogLevel::warning:
      return "WARN";
    case LogLevel::error:
      return "ERROR";
  }
  return "?";
}

void emit(LogLevel level, std::string_view prefix, std::string_view message) {
  if (!g_enabled.load(std::memory_order_relaxed)) return;
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  // One fprintf per line: stdio locks the stream, so lines of concurrent
  // threads never interleave.
  std::fprintf(stderr, "%s.%03dZ %s %.*s%.*s\n", stamp, static_cast<int>(ms), level_name(level),
               static_cast<int>(prefix.size()), prefix.data(), static_cast<int>(message.size()),
               message.data());
}

}  // namespace

void log(LogLevel level, std::string_view message) { emit(level, "", message); }

void log_pop(LogLevel level, std::string_view pop, std::string_view message) {
  std::string prefix = "pop=" + std::string(pop.empty() ? "?" : pop) + " ";
  emit(level, prefix, message);
}

void set_log_enabled(bool enabled) { g_enabled.store(enabled, std::memory_order_relaxed); }

}  // namespace onramp::ctl
