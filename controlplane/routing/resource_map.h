// The ordered map a Config keeps each kind of resource in. It reads like a
// std::map<std::string, T> (find, lower_bound, ordered iteration over
// pairs), but a copy shares its entries with the original: they live in
// chunks of at most 2 * kChunk entries behind shared pointers, and a write
// copies only the chunk it touches. A commit copies the newest Config and
// changes a few resources, so it costs O(changes * kChunk + entries /
// kChunk) rather than a copy of every resource.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace onramp::ctl {

template <typename T>
class ResourceMap {
  using Chunk = std::map<std::string, T>;
  // Chunks by a key no greater than any of theirs and greater than every key
  // of the chunk before.
  using Outer = std::map<std::string, std::shared_ptr<Chunk>>;

 public:
  static constexpr size_t kChunk = 32;
  using key_type = std::string;
  using mapped_type = T;
  using value_type = typename Chunk::value_type;

  class const_iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = typename Chunk::value_type;
    using difference_type = std::ptrdiff_t;
    using pointer = const value_type*;
    using reference = const value_type&;

    const_iterator() = default;
    reference operator*() const { return *inner_; }
    pointer operator->() const { return &*inner_; }
    const_iterator& operator++() {
      if (++inner_ == outer_->second->end()) settle(std::next(outer_));
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator before = *this;
      ++*this;
      return before;
    }
    bool operator==(const const_iterator& o) const {
      return outer_ == o.outer_ && (outer_ == end_ || inner_ == o.inner_);
    }

   private:
    friend class ResourceMap;
    using OuterIt = typename Outer::const_iterator;
    const_iterator(OuterIt outer, OuterIt end, typename Chunk::const_iterator inner)
        : outer_(outer), end_(end), inner_(inner) {}
    // Points at the first entry of the first non-empty chunk from `outer`.
    void settle(OuterIt outer) {
      outer_ = outer;
      while (outer_ != end_ && outer_->second->empty()) ++outer_;
      if (outer_ != end_) inner_ = outer_->second->begin();
    }
    OuterIt outer_{}, end_{};
    typename Chunk::const_iterator inner_{};
  };
  using iterator = const_iterator;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  const_iterator begin() const {
    const_iterator it(outer_.begin(), outer_.end(), {});
    it.settle(outer_.begin());
    return it;
  }
  const_iterator end() const { return const_iterator(outer_.end(), outer_.end(), {}); }

  const_iterator find(const std::string& key) const {
    auto o = chunk_of(key);
    if (o == outer_.end()) return end();
    auto in = o->second->find(key);
    return in == o->second->end() ? end() : const_iterator(o, outer_.end(), in);
  }
  size_t count(const std::string& key) const { return find(key) == end() ? 0 : 1; }
  bool contains(const std::string& key) const { return count(key) == 1; }
  const T& at(const std::string& key) const {
    auto it = find(key);
    if (it == end()) throw std::out_of_range("ResourceMap::at: " + key);
    return it->second;
  }
  // The first entry whose key is not less than `key`.
  const_iterator lower_bound(const std::string& key) const {
    auto o = chunk_of(key);
    if (o == outer_.end()) return begin();
    auto in = o->second->lower_bound(key);
    if (in != o->second->end()) return const_iterator(o, outer_.end(), in);
    const_iterator it(o, outer_.end(), {});
    it.settle(std::next(o));
    return it;
  }

  // How many keys start with `prefix`: whole chunks inside the range count
  // by their size, so this costs O(log n + matches / kChunk + kChunk).
  size_t count_prefix(const std::string& prefix) const {
    size_t n = 0;
    auto o = chunk_of(prefix);
    if (o == outer_.end()) o = outer_.begin();
    for (; o != outer_.end(); ++o) {
      const Chunk& c = *o->second;
      if (c.empty()) continue;
      if (c.begin()->first > prefix && !c.begin()->first.starts_with(prefix)) break;
      if (c.begin()->first.starts_with(prefix) && c.rbegin()->first.starts_with(prefix)) {
        n += c.size();
        continue;
      }
      for (auto it = c.lower_bound(prefix); it != c.end() && it->first.starts_with(prefix); ++it)
        ++n;
    }
    return n;
  }

  // Names the content this map holds: every write gives it a number no
  // other write in the process had, and a copy keeps it. Two maps with one
  // generation hold the same entries (an index built for one fits the other).
  uint64_t generation() const { return generation_; }

  // Writes copy the one chunk they touch when another map shares it.
  T& operator[](const std::string& key) {
    generation_ = next_generation();
    Chunk& c = writable_chunk_for(key);
    auto [it, inserted] = c.try_emplace(key);
    if (inserted) {
      ++size_;
      if (c.size() > 2 * kChunk) split(key);
      return find_mutable(key);
    }
    return it->second;
  }
  size_t erase(const std::string& key) {
    auto o = chunk_of(key);
    if (o == outer_.end() || !o->second->count(key)) return 0;
    generation_ = next_generation();
    Chunk& c = unshare(o);
    c.erase(key);
    --size_;
    if (c.empty()) outer_.erase(o);
    return 1;
  }
  void clear() {
    generation_ = next_generation();
    outer_.clear();
    size_ = 0;
  }

  // How many entries this map and `other` hold in the same memory: what a
  // copy did not have to copy.
  size_t shared_with(const ResourceMap& other) const {
    size_t n = 0;
    for (const auto& [key, chunk] : outer_)
      if (auto o = other.outer_.find(key); o != other.outer_.end() && o->second == chunk)
        n += chunk->size();
    return n;
  }

  friend bool operator==(const ResourceMap& a, const ResourceMap& b) {
    if (a.size() != b.size()) return false;
    for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j)
      if (i->first != j->first || !(i->second == j->second)) return false;
    return true;
  }

 private:
  // The chunk that holds `key` or would: the last one whose first key is
  // not greater than it; end() when `key` is before every chunk.
  typename Outer::const_iterator chunk_of(const std::string& key) const {
    auto o = outer_.upper_bound(key);
    if (o == outer_.begin()) return outer_.end();
    return std::prev(o);
  }
  typename Outer::iterator chunk_of(const std::string& key) {
    auto o = outer_.upper_bound(key);
    if (o == outer_.begin()) return outer_.end();
    return std::prev(o);
  }

  // The chunk behind `o`, copied first when someone else holds it too. A
  // chunk held by this map alone cannot be reached by another thread: a
  // published map is only read, and copies of it only add holders.
  Chunk& unshare(typename Outer::iterator o) {
    if (o->second.use_count() != 1) o->second = std::make_shared<Chunk>(*o->second);
    std::atomic_thread_fence(std::memory_order_acquire);
    return *o->second;
  }

  Chunk& writable_chunk_for(const std::string& key) {
    auto o = chunk_of(key);
    if (o != outer_.end()) return unshare(o);
    // Before every chunk: the first chunk takes it and is keyed by it.
    if (outer_.empty()) return *outer_.emplace(key, std::make_shared<Chunk>()).first->second;
    auto first = outer_.begin();
    std::shared_ptr<Chunk> chunk = std::move(first->second);
    outer_.erase(first);
    auto placed = outer_.emplace(key, std::move(chunk)).first;
    return unshare(placed);
  }

  T& find_mutable(const std::string& key) {
    auto o = chunk_of(key);
    return o->second->find(key)->second;
  }

  // Halves the (unshared) chunk that holds `key`.
  void split(const std::string& key) {
    auto o = chunk_of(key);
    Chunk& c = *o->second;
    auto middle = c.begin();
    std::advance(middle, static_cast<std::ptrdiff_t>(c.size() / 2));
    auto upper = std::make_shared<Chunk>();
    std::string upper_key = middle->first;
    upper->insert(std::make_move_iterator(middle), std::make_move_iterator(c.end()));
    c.erase(middle, c.end());
    outer_.emplace(std::move(upper_key), std::move(upper));
  }

  static uint64_t next_generation() {
    // Only uniqueness matters, not an order between threads.
    static std::atomic<uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
  }

  Outer outer_;
  size_t size_ = 0;
  uint64_t generation_ = 0;  // 0: empty since construction
};

}  // namespace onramp::ctl
