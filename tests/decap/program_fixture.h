// What the decap test binaries share: load the BPF program (or say why not
// and end the test: SKIP without root, as meson's exit code 77; FAIL else),
// run a frame through it with BPF_PROG_TEST_RUN, and report a case.
#pragma once

#include <bpf/bpf.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/decap/decap_program.h"

namespace onramp::decap::test {

inline constexpr int kSkip = 77;

inline std::unique_ptr<DecapProgram> load_program_or_exit() {
  auto loaded = DecapProgram::load();
  if (loaded.ok()) return std::move(*loaded);
  if (geteuid() != 0) {
    std::printf("SKIP: loading BPF needs root (uid %d): %s\n", geteuid(), loaded.error().c_str());
    std::exit(kSkip);
  }
  std::printf("FAIL: %s\n", loaded.error().c_str());
  std::exit(1);
}

struct ProgramRun {
  std::string error;  // the run or a counter read failed: nothing below holds
  uint32_t verdict = 0;
  std::vector<uint8_t> out;  // the frame as the program left it
  Counters moved{};          // how far each counter moved
};

// `in` through the program `fd` (one of `program`'s) once.
inline ProgramRun run_program(const DecapProgram& program, int fd, const std::vector<uint8_t>& in) {
  ProgramRun r;
  auto before = program.read_counters();
  if (!before.ok()) {
    r.error = before.error();
    return r;
  }
  r.out.resize(in.size() + 256);
  LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = in.data(), .data_out = r.out.data(),
              .data_size_in = static_cast<uint32_t>(in.size()),
              .data_size_out = static_cast<uint32_t>(r.out.size()), .repeat = 1);
  if (int err = bpf_prog_test_run_opts(fd, &run); err != 0) {
    r.error = std::string("test run: ") + std::strerror(-err);
    return r;
  }
  r.out.resize(run.data_size_out);
  r.verdict = run.retval;
  auto after = program.read_counters();
  if (!after.ok()) {
    r.error = after.error();
    return r;
  }
  for (size_t i = 0; i < r.moved.size(); ++i) r.moved[i] = (*after)[i] - (*before)[i];
  return r;
}

// Each counter that moved by other than `want` says (absent: 0), as
// " counter N moved by M;".
inline std::string counter_problems(const Counters& moved, const std::map<int, uint64_t>& want) {
  std::string problems;
  for (int i = 0; i < ONRAMP_DECAP_COUNTER_COUNT; ++i) {
    const auto w = want.find(i);
    if (moved[i] != (w == want.end() ? 0 : w->second))
      problems += " counter " + std::to_string(i) + " moved by " + std::to_string(moved[i]) + ";";
  }
  return problems;
}

// Two bytes a group: for a frame that differs from the expected one.
inline std::string hex(const std::vector<uint8_t>& b) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < b.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", b[i]);
    s += buf;
    if (i % 2 == 1) s += ' ';
  }
  return s;
}

// "ok   NAME" or "FAIL NAME:PROBLEMS"; whether it passed.
inline bool report(const std::string& name, const std::string& problems) {
  if (problems.empty()) {
    std::printf("ok   %s\n", name.c_str());
    return true;
  }
  std::printf("FAIL %s:%s\n", name.c_str(), problems.c_str());
  return false;
}

}  // namespace onramp::decap::test
