// The measurement exchange on etcd, for controller replicas: the snapshot
// of each PoP whose session this replica holds is written under
// PREFIX/measurements/POP on a lease this replica keeps alive, so a dead
// replica's PoPs vanish after the lease's TTL and the PoP's new replica
// writes it again. Writes are bounded: at most one per PoP per
// `min_interval`, and only when the snapshot moved a route could
// (moves_routes); a withdrawal deletes the key only while it is still this
// replica's write. Every replica watches the prefix (docs/controller.md
// "Shared measurements").
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "controlplane/controller/etcd_client.h"
#include "controlplane/controller/measurement_exchange.h"

namespace onramp::ctl {

class EtcdMeasurements final : public MeasurementExchange {
 public:
  struct Options {
    std::string prefix;   // the store's prefix; keys go under PREFIX/measurements/
    std::string replica;  // written into each snapshot, for operators
    std::chrono::seconds ttl{5};
    std::chrono::milliseconds min_interval{500};
    RoutePolicy policy;  // whose margins decide which changes are written
  };
  EtcdMeasurements(const EtcdUrl& url, EtcdClient::Options client, Options options);
  ~EtcdMeasurements() override;

  // Takes the lease and reads what is stored; the writer and the watch
  // start. Writes wait for the lease when etcd cannot be reached now.
  void start();

  bool publish(const std::string& pop, SharedSnapshot snapshot) override;
  SharedSnapshot get(const std::string& pop) const override;
  std::map<std::string, SharedSnapshot> all() const override;
  void follow(std::function<void(const std::string& pop)> on_change) override;
  std::string replica() const override { return options_.replica; }

  // Writes (puts and deletes) that reached etcd since the start.
  uint64_t writes() const;

 private:
  struct Own {
    SharedSnapshot wanted;   // what the session says now; null: withdrawn
    SharedSnapshot written;  // what this replica last wrote; null: none
    int64_t written_revision = 0;
    std::chrono::steady_clock::time_point last_write{};
    bool due = false;  // `wanted` not yet decided on
  };
  struct Stored {
    SharedSnapshot snapshot;
    std::string bytes;
    int64_t mod_revision = 0;
    int64_t lease = 0;
  };

  void write_loop();
  void watch_loop();
  // Reads the whole prefix again and takes what changed; calls on_change.
  void reload();
  // One due write of `pop`, without mu_ held; true when etcd took it.
  bool write(const std::string& pop, const SharedSnapshot& snapshot, int64_t lease,
             int64_t* revision);
  // The stored entry of `pop` is now `s`; returns whether it changed. mu_ held.
  bool store_locked(const std::string& pop, Stored s);
  void notify(const std::vector<std::string>& pops);

  const Options options_;
  const std::string key_prefix_;  // PREFIX/measurements/
  mutable EtcdClient client_;

  mutable std::mutex mu_;  // guards everything below but the callback
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  int64_t lease_ = 0;
  std::chrono::steady_clock::time_point renewed_{};
  std::map<std::string, Own> own_;
  std::map<std::string, Stored> stored_;
  uint64_t writes_ = 0;
  grpc::ClientContext* watch_ctx_ = nullptr;

  std::mutex callback_mu_;  // guards on_change_; held while it runs
  std::function<void(const std::string&)> on_change_;

  std::thread writer_;
  std::thread watcher_;
};

}  // namespace onramp::ctl
