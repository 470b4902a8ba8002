// The decap test binaries' first step: load the BPF program, or say why not
// and end the test (SKIP without root, as meson's exit code 77; FAIL else).
#pragma once

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

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

}  // namespace onramp::decap::test
