// The Maglev restart cache: what a dataplane writes after a table swap and
// reads back at its next start (dataplane/core/maglev_cache.h).
#include "dataplane/core/maglev_cache.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/core/forwarding_table.h"
#include "tests/unit/packet_builder.h"

namespace onramp::test {
namespace {

using dp::ForwardingTable;
using dp::MaglevCache;

TableSpec three_listeners() {
  TableSpec spec{.version = 1, .tunnel_source_v4 = ip("192.0.2.1"), .maglev_size = 1021};
  for (int i = 0; i < 3; ++i) {
    ListenerSpec l{.name = "l" + std::to_string(i),
                   .vips = {ip("203.0.113.10")},
                   .port_ranges = {{static_cast<uint16_t>(80 + i), static_cast<uint16_t>(80 + i)}}};
    for (int j = 0; j < 5; ++j)
      l.endpoints.push_back(
          {.address = ip(("198.51.100." + std::to_string(10 * i + j + 1)).c_str()),
           .weight = 10 + static_cast<uint32_t>(j)});
    spec.listeners.push_back(l);
  }
  spec.listeners[1].endpoints[2].healthy = false;  // weight 0 in its inputs
  return spec;
}

std::unique_ptr<ForwardingTable> build(const TableSpec& spec, const MaglevCache* cache) {
  EXPECT_EQ(validate_table_spec(spec).message(), "");
  auto t = ForwardingTable::build(spec, 1, nullptr, 1, 0, cache);
  EXPECT_TRUE(t.ok()) << t.error();
  return t.ok() ? std::move(*t) : nullptr;
}

std::vector<uint16_t> slots_of(const dp::Listener& l) { return {l.maglev.begin(), l.maglev.end()}; }

std::string file_of(const ForwardingTable& t) {
  return dp::encode_maglev_cache(t.maglev_tables().entries);
}

TEST(MaglevCache, ARestartWithTheSameTableGetsTheSameSlotsFromTheFile) {
  TableSpec spec = three_listeners();
  auto before = build(spec, nullptr);
  auto cache = MaglevCache::decode(file_of(*before));
  ASSERT_TRUE(cache.ok()) << cache.error();
  EXPECT_EQ(cache->tables(), 3u);
  auto after = build(spec, &*cache);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(slots_of(after->listener(i)), slots_of(before->listener(i))) << i;
}

TEST(MaglevCache, BuildCopiesWhatTheFileHoldsAndFillsTheRest) {
  TableSpec spec = three_listeners();
  auto t = build(spec, nullptr);
  ForwardingTable::MaglevTables tables = t->maglev_tables();
  // Listener 1's entry says every slot is its endpoint 3: a build that takes
  // it from the file shows it, one that fills it cannot. (The first entry
  // stays true: decode fills it again to check the file.)
  std::vector<uint16_t> marked(spec.maglev_size, 3);
  tables.entries[1].slots = marked;
  tables.entries.pop_back();  // listener 2: not in the file
  auto cache = MaglevCache::decode(dp::encode_maglev_cache(tables.entries));
  ASSERT_TRUE(cache.ok()) << cache.error();
  auto built = build(spec, &*cache);
  EXPECT_EQ(slots_of(built->listener(0)), slots_of(t->listener(0)));
  EXPECT_EQ(slots_of(built->listener(1)), marked);
  EXPECT_EQ(slots_of(built->listener(2)), slots_of(t->listener(2)));
  // Other inputs (one weight changed) are not what the file holds.
  spec.listeners[1].endpoints[0].weight += 1;
  auto changed = build(spec, &*cache);
  EXPECT_NE(slots_of(changed->listener(1)), marked);
}

TEST(MaglevCache, SameInputsAreWrittenOnce) {
  TableSpec spec = three_listeners();
  spec.listeners[2].endpoints = spec.listeners[0].endpoints;
  auto cache = MaglevCache::decode(file_of(*build(spec, nullptr)));
  ASSERT_TRUE(cache.ok()) << cache.error();
  EXPECT_EQ(cache->tables(), 2u);
}

TEST(MaglevCache, ADamagedShortOrForeignFileIsRefusedWithItsReason) {
  const std::string good = file_of(*build(three_listeners(), nullptr));
  ASSERT_TRUE(MaglevCache::decode(good).ok());

  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x40;
  EXPECT_NE(MaglevCache::decode(flipped).error().find("checksum"), std::string::npos);
  EXPECT_NE(MaglevCache::decode(good.substr(0, good.size() - 8)).error().find("checksum"),
            std::string::npos);
  EXPECT_NE(MaglevCache::decode("").error().find("not a Maglev cache"), std::string::npos);
  EXPECT_NE(MaglevCache::decode(std::string(64, 'x')).error().find("not a Maglev cache"),
            std::string::npos);
}

TEST(MaglevCache, AFileFromAnotherMaglevPopulationIsRefused) {
  // A well-formed file whose first table is not what this build fills from
  // its inputs: written by a build whose population differs.
  TableSpec spec = three_listeners();
  auto t = build(spec, nullptr);
  ForwardingTable::MaglevTables tables = t->maglev_tables();
  std::vector<uint16_t> other = slots_of(t->listener(0));
  std::swap(other[0], other[1]);
  ASSERT_NE(other, slots_of(t->listener(0)));
  tables.entries[0].slots = other;
  auto cache = MaglevCache::decode(dp::encode_maglev_cache(tables.entries));
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.error().find("another Maglev population"), std::string::npos);
}

TEST(MaglevCache, ATableNamingABackendItHasNotIsRefused) {
  TableSpec spec = three_listeners();
  auto t = build(spec, nullptr);
  ForwardingTable::MaglevTables tables = t->maglev_tables();
  std::vector<uint16_t> bad(spec.maglev_size, 7);  // 5 backends
  tables.entries[2].slots = bad;
  auto cache = MaglevCache::decode(dp::encode_maglev_cache(tables.entries));
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.error().find("names a backend"), std::string::npos);
}

TEST(MaglevCache, AnEmptyTableGivesAnEmptyFile) {
  auto cache = MaglevCache::decode(dp::encode_maglev_cache({}));
  ASSERT_TRUE(cache.ok()) << cache.error();
  EXPECT_EQ(cache->tables(), 0u);
}

}  // namespace
}  // namespace onramp::test
