// The compiled decapsulation program (decap.bpf.c), embedded in the binary
// at build time by embed_bpf_object.py so onramp-decap needs no file beside it.
#pragma once

#include <span>

namespace onramp::decap {

std::span<const unsigned char> bpf_object_bytes();

}  // namespace onramp::decap
