#include "dataplane/core/fragment_table.h"

#include <cstring>

#include "dataplane/core/hash.h"

namespace onramp::dp {
namespace {

uint8_t key_proto(const ParsedPacket& p) { return p.family == 4 ? p.l4_proto : 0; }

bool expired(const FragmentTrain& t, uint32_t now_ms) {
  // Signed difference: right across a wrap of the clock.
  return static_cast<int32_t>(now_ms - t.expires_ms) >= 0;
}

}  // namespace

FragmentTrain& FragmentTable::slot(const ParsedPacket& p) {
  uint8_t key[40];
  std::memcpy(key, p.src.bytes.data(), 16);
  std::memcpy(key + 16, p.dst.bytes.data(), 16);
  const uint64_t tail = uint64_t{p.frag_id} << 8 | key_proto(p);
  std::memcpy(key + 32, &tail, 8);
  return slots_[hash_words(key, sizeof key, 0x66726167) & (kSlots - 1)];
}

FragmentTrain* FragmentTable::find(const ParsedPacket& p, uint32_t now_ms) {
  FragmentTrain& t = slot(p);
  if (!t.live || t.id != p.frag_id || t.proto != key_proto(p) || t.src != p.src || t.dst != p.dst)
    return nullptr;
  if (expired(t, now_ms)) {
    t.live = false;
    ++stats_.timed_out;
    return nullptr;
  }
  return &t;
}

FragmentTrain& FragmentTable::insert(const ParsedPacket& p, uint32_t now_ms) {
  FragmentTrain& t = slot(p);
  if (t.live) ++(expired(t, now_ms) ? stats_.timed_out : stats_.evicted);
  t = FragmentTrain{};
  t.src = p.src;
  t.dst = p.dst;
  t.id = p.frag_id;
  t.proto = key_proto(p);
  t.live = true;
  t.expires_ms = now_ms + kTimeoutMs;
  ++stats_.trains;
  return t;
}

bool FragmentTable::add(FragmentTrain& t, const ParsedPacket& p, uint32_t now_ms,
                        DropReason& reason) {
  const uint32_t b = p.frag_offset;
  const uint32_t e = b + data_len(p);
  reason = DropReason::fragment_overlap;
  if (t.poisoned) return false;
  // A last fragment fixes the datagram's length; bytes beyond it, or a
  // second last fragment that disagrees, are an overlap.
  if ((t.total && e > t.total) || (!p.frag_more && t.total && e != t.total)) {
    t.poisoned = true;
    return false;
  }
  if (!p.frag_more && t.n_ranges && t.end[t.n_ranges - 1] > e) {
    t.poisoned = true;
    return false;
  }
  int at = 0;  // first range that ends at or after b
  while (at < t.n_ranges && t.end[at] < b) ++at;
  // Overlap: the first range that ends after b starts before e. Empty
  // fragments (b == e) overlap nothing but are refused alike.
  const int k = at < t.n_ranges && t.end[at] == b ? at + 1 : at;
  if (b == e || (k < t.n_ranges && t.begin[k] < e)) {
    t.poisoned = true;
    return false;
  }
  const bool join_left = at < t.n_ranges && t.end[at] == b;
  const int right = join_left ? at + 1 : at;
  const bool join_right = right < t.n_ranges && t.begin[right] == e;
  if (join_left && join_right) {
    t.end[at] = t.end[right];
    for (int i = right; i + 1 < t.n_ranges; ++i) {
      t.begin[i] = t.begin[i + 1];
      t.end[i] = t.end[i + 1];
    }
    --t.n_ranges;
  } else if (join_left) {
    t.end[at] = e;
  } else if (join_right) {
    t.begin[right] = b;
  } else {
    if (t.n_ranges == FragmentTrain::kMaxRanges) {
      reason = DropReason::fragment_scattered;
      return false;
    }
    for (int i = t.n_ranges; i > at; --i) {
      t.begin[i] = t.begin[i - 1];
      t.end[i] = t.end[i - 1];
    }
    t.begin[at] = b;
    t.end[at] = e;
    ++t.n_ranges;
  }
  if (!p.frag_more) t.total = e;
  t.expires_ms = now_ms + kTimeoutMs;
  if (t.total && t.n_ranges == 1 && t.begin[0] == 0 && t.end[0] == t.total) {
    t.live = false;  // whole: the slot is free again
    ++stats_.completed;
  }
  return true;
}

}  // namespace onramp::dp
