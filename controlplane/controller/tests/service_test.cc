// The admin and PoP session services in one process, over loopback gRPC in
// plaintext: configure with the admin stubs, connect a fake agent, and watch
// tables go out, ACKs and NACKs come back, and ListPops tell the story.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <future>
#include <vector>

#include "common/log.h"
#include "common/options.h"
#include "controlplane/controller/admin_service.h"
#include "controlplane/controller/controller_server.h"
#include "controlplane/controller/sqlite_store.h"
#include "controlplane/controller/table_check.h"
#include "controlplane/controller/tests/fake_agent.h"
#include "controlplane/controller/tests/fixtures.h"
#include "onramp/v1/admin.grpc.pb.h"

namespace onramp::ctl::test {
namespace {

using namespace std::chrono_literals;
using grpc::StatusCode;

constexpr auto kDebounce = 300ms;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::set_level(log::Level::off);
    auto opened = SqliteStore::open(dir_.file("c.db"), {.init = true});
    ASSERT_TRUE(opened.ok()) << opened.error();
    store_ = std::move(*opened);
    ServerOptions o{.admin_listen = "127.0.0.1:0",
                    .pop_listen = "127.0.0.1:0",
                    .plaintext = true,
                    .debounce = kDebounce,
                    .clock = &clock_};
    auto started = ControllerServer::start(*store_, o);
    ASSERT_TRUE(started.ok()) << started.error();
    server_ = std::move(*started);
    admin_channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->admin_port()),
                                         grpc::InsecureChannelCredentials());
    admin_ = v1::AdminService::NewStub(admin_channel_);
    pop_channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->pop_port()),
                                       grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    server_.reset();
    log::set_level(log::Level::info);
  }

  template <typename Req, typename Resp, typename Call>
  grpc::Status call(Call method, const Req& req, Resp& resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 10s);
    return ((*admin_).*method)(&ctx, req, &resp);
  }
  grpc::Status create(const v1::Accelerator& a) {
    v1::Accelerator out;
    return call(&v1::AdminService::Stub::CreateAccelerator, a, out);
  }
  grpc::Status create(const v1::Listener& l) {
    v1::Listener out;
    return call(&v1::AdminService::Stub::CreateListener, l, out);
  }
  grpc::Status create(const v1::EndpointGroup& g) {
    v1::EndpointGroup out;
    return call(&v1::AdminService::Stub::CreateEndpointGroup, g, out);
  }
  grpc::Status create(const v1::Endpoint& e) {
    v1::Endpoint out;
    return call(&v1::AdminService::Stub::CreateEndpoint, e, out);
  }
  // Update with an update mask (empty: replace the whole resource).
  grpc::Status update(const v1::Accelerator& a, v1::Accelerator& out,
                      std::vector<std::string> paths = {}) {
    v1::UpdateAcceleratorRequest req;
    *req.mutable_accelerator() = a;
    for (auto& p : paths) req.mutable_update_mask()->add_paths(p);
    return call(&v1::AdminService::Stub::UpdateAccelerator, req, out);
  }
  grpc::Status update(const v1::EndpointGroup& g, v1::EndpointGroup& out,
                      std::vector<std::string> paths = {}) {
    v1::UpdateEndpointGroupRequest req;
    *req.mutable_endpoint_group() = g;
    for (auto& p : paths) req.mutable_update_mask()->add_paths(p);
    return call(&v1::AdminService::Stub::UpdateEndpointGroup, req, out);
  }
  grpc::Status update(const v1::Endpoint& e, v1::Endpoint& out,
                      std::vector<std::string> paths = {}) {
    v1::UpdateEndpointRequest req;
    *req.mutable_endpoint() = e;
    for (auto& p : paths) req.mutable_update_mask()->add_paths(p);
    return call(&v1::AdminService::Stub::UpdateEndpoint, req, out);
  }
  v1::ListPopsResponse pops() {
    v1::ListPopsResponse out;
    EXPECT_TRUE(call(&v1::AdminService::Stub::ListPops, v1::ListPopsRequest(), out).ok());
    return out;
  }
  v1::Pop pop(const std::string& id) {
    auto all = pops();
    for (const auto& p : all.pops())
      if (p.id() == id) return p;
    ADD_FAILURE() << id << " not listed";
    return {};
  }
  // web / http (TCP 80) / eu with two endpoints: configuration version 5.
  void configure() {
    ASSERT_TRUE(create(accelerator("web", {"203.0.113.10"})).ok());
    ASSERT_TRUE(create(listener("web", "http", {{80, 0}})).ok());
    ASSERT_TRUE(create(group("web", "http", "eu", "eu-central")).ok());
    ASSERT_TRUE(create(endpoint("web", "http", "eu", "198.51.100.1")).ok());
    ASSERT_TRUE(create(endpoint("web", "http", "eu", "198.51.100.2", 64)).ok());
  }

  // Moves the push scheduler's clock; pushes that fell due go out.
  void advance(std::chrono::milliseconds d) {
    clock_.advance(d);
    server_->clock_advanced();
  }

  TempDir dir_;
  FakeClock clock_;  // the push scheduler's: debounce waits only as long as a test says
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<ControllerServer> server_;
  std::shared_ptr<grpc::Channel> admin_channel_, pop_channel_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
};

TEST_F(ServiceTest, GetVersionAnswersTheControllersBuild) {
  v1::GetVersionResponse v;
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetVersion, v1::GetVersionRequest(), v).ok());
  EXPECT_EQ(v.version(), opts::version());
  EXPECT_FALSE(v.version().empty());
}

TEST_F(ServiceTest, CrudRoundTrip) {
  configure();
  v1::Accelerator a;
  v1::AcceleratorKey key;
  key.set_name("web");
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetAccelerator, key, a).ok());
  EXPECT_EQ(a.vips(0), "203.0.113.10");
  EXPECT_GT(a.create_time_ms(), 0);
  EXPECT_EQ(a.create_time_ms(), a.update_time_ms());

  v1::Endpoint e;
  v1::EndpointKey ek;
  ek.set_accelerator("web");
  ek.set_listener("http");
  ek.set_endpoint_group("eu");
  ek.set_address("198.51.100.1");
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetEndpoint, ek, e).ok());
  EXPECT_EQ(e.weight(), 128u);  // default

  v1::EndpointGroup g;
  v1::EndpointGroupKey gk;
  gk.set_accelerator("web");
  gk.set_listener("http");
  gk.set_name("eu");
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetEndpointGroup, gk, g).ok());
  EXPECT_EQ(g.traffic_dial_percent(), 100u);
  EXPECT_EQ(g.health_check().interval_ms(), 10000u);

  // Update keeps the creation time.
  std::this_thread::sleep_for(5ms);
  auto changed = accelerator("web", {"203.0.113.10", "2001:db8::10"});
  v1::Accelerator updated;
  ASSERT_TRUE(update(changed, updated).ok());
  EXPECT_EQ(updated.create_time_ms(), a.create_time_ms());
  EXPECT_GT(updated.update_time_ms(), a.update_time_ms());

  v1::ListRequest filter;
  filter.set_accelerator("web");
  v1::ListEndpointsResponse eps;
  ASSERT_TRUE(call(&v1::AdminService::Stub::ListEndpoints, filter, eps).ok());
  EXPECT_EQ(eps.endpoints_size(), 2);
  filter.set_accelerator("other");
  ASSERT_TRUE(call(&v1::AdminService::Stub::ListEndpoints, filter, eps = {}).ok());
  EXPECT_EQ(eps.endpoints_size(), 0);

  // A parent with children stays, and says which children.
  v1::DeleteResponse del;
  auto s = call(&v1::AdminService::Stub::DeleteAccelerator, key, del);
  EXPECT_EQ(s.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("\"http\""), std::string::npos) << s.error_message();

  // Delete bottom-up works.
  ASSERT_TRUE(call(&v1::AdminService::Stub::DeleteEndpoint, ek, del).ok());
  EXPECT_EQ(call(&v1::AdminService::Stub::DeleteEndpoint, ek, del).error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_EQ(call(&v1::AdminService::Stub::GetEndpoint, ek, e).error_code(), StatusCode::NOT_FOUND);
}

TEST_F(ServiceTest, ABadRequestChangesNothing) {
  configure();
  uint64_t before = pops().config_version();
  EXPECT_EQ(before, 5u);
  auto s = create(endpoint("web", "http", "eu", "1.2.3.400"));
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "endpoint.address: \"1.2.3.400\" is not an IPv4 or IPv6 address");
  s = create(listener("web", "tls", {{443, 0}, {70, 90}}));
  EXPECT_EQ(s.error_message(),
            "listener.port_ranges[1]: 70..90 overlaps listener \"http\".port_ranges[0]");
  s = create(accelerator("Web", {"192.0.2.1"}));
  EXPECT_EQ(s.error_message(), "accelerator.name: \"Web\" must match [a-z][a-z0-9-]{0,62}");
  EXPECT_EQ(create(accelerator("api", {"203.0.113.10"})).error_code(), StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(create(listener("nope", "http", {{80, 0}})).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(pops().config_version(), before);
  v1::ListAcceleratorsResponse accs;
  ASSERT_TRUE(call(&v1::AdminService::Stub::ListAccelerators, v1::ListRequest(), accs).ok());
  EXPECT_EQ(accs.accelerators_size(), 1);
}

TEST_F(ServiceTest, AnUpdateFromAStaleResourceVersionIsAConflict) {
  configure();
  v1::EndpointGroupKey key;
  key.set_accelerator("web");
  key.set_listener("http");
  key.set_name("eu");
  v1::EndpointGroup read;
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetEndpointGroup, key, read).ok());
  EXPECT_EQ(read.resource_version(), 3u);  // the third commit created it

  // Someone else changes it: its version moves on, and the answer says so.
  v1::EndpointGroup theirs = read, written;
  theirs.set_traffic_dial_percent(50);
  ASSERT_TRUE(update(theirs, written).ok());
  EXPECT_EQ(written.resource_version(), 6u);

  // An update based on what was read before is refused, whole.
  v1::EndpointGroup mine = read;
  mine.mutable_health_check()->set_interval_ms(5000);
  auto s = update(mine, written);
  EXPECT_EQ(s.error_code(), StatusCode::ABORTED);
  EXPECT_EQ(s.error_message(),
            "endpoint group \"eu\" of listener \"web/http\" changed since it was read: "
            "resource_version 3 given, 6 stored; read it again and retry");
  v1::EndpointGroup now;
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetEndpointGroup, key, now).ok());
  EXPECT_EQ(now.traffic_dial_percent(), 50u);
  EXPECT_EQ(now.resource_version(), 6u);

  // Based on the current version it goes through; 0 is unconditional.
  mine.set_resource_version(6);
  ASSERT_TRUE(update(mine, written).ok());
  EXPECT_EQ(written.resource_version(), 7u);
  mine.set_resource_version(0);
  ASSERT_TRUE(update(mine, written).ok());
  EXPECT_EQ(written.resource_version(), 8u);
}

TEST_F(ServiceTest, AnUpdateMaskChangesOnlyTheFieldsItNames) {
  configure();
  v1::EndpointGroupKey key;
  key.set_accelerator("web");
  key.set_listener("http");
  key.set_name("eu");
  // Only the key and the named fields: the rest of the request is ignored,
  // the rest of the stored group stays.
  v1::EndpointGroup patch = group("web", "http", "eu", "ignored", 40);
  patch.mutable_health_check()->set_interval_ms(5000);
  patch.mutable_health_check()->set_path("/ignored");
  v1::EndpointGroup out;
  ASSERT_TRUE(update(patch, out, {"traffic_dial_percent", "health_check.interval_ms"}).ok());
  EXPECT_EQ(out.region(), "eu-central");
  EXPECT_EQ(out.traffic_dial_percent(), 40u);
  EXPECT_EQ(out.health_check().interval_ms(), 5000u);
  EXPECT_EQ(out.health_check().protocol(), v1::HEALTH_CHECK_TCP);
  v1::EndpointGroup stored;
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetEndpointGroup, key, stored).ok());
  EXPECT_EQ(stored.SerializeAsString(), out.SerializeAsString());

  // A named optional field left unset goes back to its default.
  ASSERT_TRUE(update(group("web", "http", "eu"), out, {"traffic_dial_percent"}).ok());
  EXPECT_EQ(out.traffic_dial_percent(), 100u);
  EXPECT_EQ(out.health_check().interval_ms(), 5000u);

  // The drain too: set to 0 (kept: it means "at once"), then back to 30.
  v1::EndpointGroup drain = group("web", "http", "eu");
  drain.set_unhealthy_drain_s(0);
  ASSERT_TRUE(update(drain, out, {"unhealthy_drain_s"}).ok());
  EXPECT_TRUE(out.has_unhealthy_drain_s());
  EXPECT_EQ(out.unhealthy_drain_s(), 0u);
  EXPECT_EQ(out.traffic_dial_percent(), 100u);
  ASSERT_TRUE(update(group("web", "http", "eu"), out, {"unhealthy_drain_s"}).ok());
  EXPECT_EQ(out.unhealthy_drain_s(), 30u);

  // A repeated field named is replaced whole.
  v1::Accelerator a = accelerator("web", {"203.0.113.11", "2001:db8::11"}, /*enabled=*/false);
  v1::Accelerator aout;
  ASSERT_TRUE(update(a, aout, {"vips"}).ok());
  EXPECT_EQ(aout.vips_size(), 2);
  EXPECT_TRUE(aout.enabled());

  // Masks that cannot be: a field that is not there, a key, a controller field.
  uint64_t before = pops().config_version();
  auto s = update(patch, out, {"traffic_dial"});
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "update_mask: \"traffic_dial\" is not a field of EndpointGroup");
  s = update(patch, out, {"name"});
  EXPECT_EQ(s.error_message(),
            "update_mask: \"name\" identifies the EndpointGroup and cannot change");
  s = update(patch, out, {"resource_version"});
  EXPECT_EQ(s.error_message(), "update_mask: \"resource_version\" is set by the controller");
  s = update(patch, out, {"health_check.nope"});
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  // The merged group is validated as a whole.
  patch.mutable_health_check()->set_timeout_ms(9000);
  s = update(patch, out, {"health_check.timeout_ms"});
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_EQ(pops().config_version(), before);
  // NOT_FOUND for a group that is not there, mask or not.
  EXPECT_EQ(update(group("web", "http", "us"), out, {"region"}).error_code(),
            StatusCode::NOT_FOUND);
}

// Hardening review, finding 10: an HTTP group could not become TCP, because
// the path and statuses stored for HTTP were refused under TCP and no update
// could clear them.
TEST_F(ServiceTest, AProtocolChangeDropsWhatOnlyTheOldProtocolHad) {
  configure();
  v1::EndpointGroup http = group("web", "http", "eu");
  http.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_HTTPS);
  http.mutable_health_check()->set_path("/health");
  http.mutable_health_check()->set_tls_server_name("eu.example.com");
  http.mutable_health_check()->set_interval_ms(5000);
  v1::EndpointGroup out;
  ASSERT_TRUE(update(http, out, {"health_check"}).ok());
  EXPECT_EQ(out.health_check().expected_status_max(), 399u);

  // HTTPS to HTTP keeps the path and statuses, drops the TLS name.
  v1::EndpointGroup patch = group("web", "http", "eu");
  patch.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_HTTP);
  grpc::Status s = update(patch, out, {"health_check.protocol"});
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.health_check().path(), "/health");
  EXPECT_EQ(out.health_check().tls_server_name(), "");

  // HTTP to TCP drops the path and statuses, keeps the interval.
  patch.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_TCP);
  s = update(patch, out, {"health_check.protocol"});
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(out.health_check().protocol(), v1::HEALTH_CHECK_TCP);
  EXPECT_EQ(out.health_check().path(), "");
  EXPECT_EQ(out.health_check().expected_status_min(), 0u);
  EXPECT_EQ(out.health_check().interval_ms(), 5000u);

  // A field the update names is kept, and refused if the new protocol has no
  // use for it.
  patch.mutable_health_check()->set_protocol(v1::HEALTH_CHECK_UDP);
  patch.mutable_health_check()->set_path("/x");
  s = update(patch, out, {"health_check.protocol", "health_check.path"});
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "endpoint_group.health_check.path: only HTTP health checks have a path");
}

// Hardening review, finding 5: a PoP's tunnel source was accepted as an
// endpoint (the PoP would encapsulate to itself) and the controller's own
// address as a VIP.
TEST_F(ServiceTest, TunnelSourcesAndTheControllersAddressAreNotVipsOrEndpoints) {
  configure();
  FakeAgent agent(pop_channel_);
  ASSERT_TRUE(agent.hello("FRA1"));  // tunnel sources 192.0.2.1, 2001:db8::1
  ASSERT_TRUE(agent.next(5s));
  uint64_t before = pops().config_version();
  auto s = create(endpoint("web", "http", "eu", "2001:DB8::1"));
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "endpoint.address: 2001:db8::1 is the tunnel source of PoP FRA1; traffic to it would "
            "loop through the PoP");
  s = create(accelerator("api", {"192.0.2.1"}));
  EXPECT_EQ(s.error_message(), "accelerator.vips[0]: 192.0.2.1 is the tunnel source of PoP FRA1");
  EXPECT_EQ(pops().config_version(), before);

  // A second server of FRA1 sends from its own address: reserved as well
  // while it is connected.
  FakeAgent second(pop_channel_);
  second.set_host("fra1-b");
  second.set_tunnel_source("192.0.2.11", "2001:db8::11");
  ASSERT_TRUE(second.hello("FRA1"));
  ASSERT_TRUE(second.next(5s));
  s = create(endpoint("web", "http", "eu", "192.0.2.11"));
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(),
            "endpoint.address: 192.0.2.11 is a tunnel source of PoP FRA1's hosts; traffic to it "
            "would loop through the PoP");
  EXPECT_EQ(pops().config_version(), before);
}

TEST(OwnAddresses, SpecificListenAddressesAreReservedWildcardsAndNamesAreNot) {
  auto own = own_listen_addresses({"198.51.100.5:7443", "[2001:DB8::7]:7444"});
  EXPECT_EQ(own,
            (std::map<std::string, std::string>{{"198.51.100.5", "this controller's admin address"},
                                                {"2001:db8::7", "this controller's PoP address"}}));
  EXPECT_TRUE(own_listen_addresses({"0.0.0.0:7443", "[::]:7444"}).empty());
  EXPECT_TRUE(own_listen_addresses({"localhost:7443"}).empty());
}

TEST_F(ServiceTest, PushAckNackAndCoalescing) {
  configure();
  FakeAgent agent(pop_channel_);
  ASSERT_TRUE(agent.hello("FRA1"));
  auto first = agent.next(5s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->version(), 5u);
  EXPECT_EQ(first->table().pop(), "FRA1");
  EXPECT_EQ(first->table().next_hop_mac(), "");
  ASSERT_EQ(first->table().listeners_size(), 1);
  EXPECT_EQ(first->table().listeners(0).endpoints_size(), 2);
  EXPECT_EQ(check_table(first->table()).error(), "");

  v1::Pop p = pop("FRA1");
  EXPECT_EQ(p.state(), v1::POP_CONNECTED);
  EXPECT_EQ(p.sent_version(), 5u);
  EXPECT_EQ(p.applied_version(), 0u);
  EXPECT_EQ(p.city(), "Test");
  EXPECT_EQ(p.agent_version(), "fake-agent");

  ASSERT_TRUE(agent.ack(*first));
  for (int i = 0; i < 100 && pop("FRA1").applied_version() != 5; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(pop("FRA1").applied_version(), 5u);

  // Three mutations in a row: at most two updates (after a quiet spell the
  // first change goes at once; the rest wait for the debounce and go
  // together), the last one computed after the last mutation. The clock
  // stands still during the burst, as a fast machine's would.
  advance(10 * kDebounce);
  ASSERT_TRUE(create(endpoint("web", "http", "eu", "198.51.100.3")).ok());
  ASSERT_TRUE(create(endpoint("web", "http", "eu", "198.51.100.4")).ok());
  ASSERT_TRUE(create(endpoint("web", "http", "eu", "198.51.100.5")).ok());
  std::vector<v1::TableUpdate> got;
  while (got.empty() || got.back().version() != 8u) {
    auto u = agent.next(kDebounce);
    if (!u) {  // held for the debounce: let it pass
      advance(kDebounce);
      u = agent.next(5s);
    }
    ASSERT_TRUE(u) << got.size() << " updates, none of version 8";
    got.push_back(*u);
  }
  const v1::TableUpdate& coalesced = got.back();
  EXPECT_EQ(coalesced.table().listeners(0).endpoints_size(), 5);
  EXPECT_NE(coalesced.nonce(), first->nonce());
  EXPECT_LE(got.size(), 2u);
  advance(10 * kDebounce);
  EXPECT_FALSE(agent.next(kDebounce)) << "an update after the burst's";

  // NACK: the PoP stays on 5 and ListPops says why.
  ASSERT_TRUE(agent.ack(coalesced, false, "table.listeners[0]: no room"));
  for (int i = 0; i < 100 && pop("FRA1").nacked_version() != 8; ++i)
    std::this_thread::sleep_for(20ms);
  p = pop("FRA1");
  EXPECT_EQ(p.applied_version(), 5u);
  EXPECT_EQ(p.nacked_version(), 8u);
  EXPECT_EQ(p.nack_error(), "table.listeners[0]: no room");
  EXPECT_EQ(p.sent_version(), 8u);
  EXPECT_EQ(pops().config_version(), 8u);
  // Not resent: only a change brings a new table.
  EXPECT_FALSE(agent.next(3 * kDebounce));

  // An isolated change after a quiet spell is pushed at once, not after the
  // debounce: it arrives while the clock stands still.
  advance(10 * kDebounce);
  v1::Endpoint drain = endpoint("web", "http", "eu", "198.51.100.5", 0);
  v1::Endpoint out;
  ASSERT_TRUE(update(drain, out).ok());
  auto next = agent.next(5s);
  ASSERT_TRUE(next) << "the isolated change waited for the debounce";
  EXPECT_EQ(next->version(), 9u);
  ASSERT_TRUE(agent.ack(*next));
  for (int i = 0; i < 100 && pop("FRA1").applied_version() != 9; ++i)
    std::this_thread::sleep_for(20ms);
  p = pop("FRA1");
  EXPECT_EQ(p.applied_version(), 9u);
  EXPECT_EQ(p.nacked_version(), 0u);
  EXPECT_EQ(p.nack_error(), "");

  // A reconnecting agent that runs the current version, says which
  // content, and keeps the current route inputs, gets nothing.
  FakeAgent again(pop_channel_);
  ASSERT_TRUE(again.hello("FRA1", 9, ctl::content_digest(next->table(), next->probe_plan()),
                          next->route_inputs().config_version()));
  EXPECT_FALSE(again.next(500ms));
  // The first session was replaced.
  EXPECT_EQ(agent.finish(5s).error_code(), StatusCode::ABORTED);
}

// A PoP of several servers (docs/routing.md "A PoP of several servers"):
// each host's agent holds its own session and gets the same table; a new
// session of one host replaces that host's only.
TEST_F(ServiceTest, HostsOfOnePopGetTheSameTableAndSupersedeOnlyThemselves) {
  configure();
  FakeAgent a(pop_channel_), b(pop_channel_);
  a.set_host("fra1-a");
  b.set_host("fra1-b");
  ASSERT_TRUE(a.hello("FRA1"));
  auto ua = a.next(5s);
  ASSERT_TRUE(ua);
  ASSERT_TRUE(b.hello("FRA1"));
  auto ub = b.next(5s);
  ASSERT_TRUE(ub);
  EXPECT_EQ(ua->version(), ub->version());
  EXPECT_EQ(ua->table().SerializeAsString(), ub->table().SerializeAsString());
  EXPECT_EQ(ua->probe_plan().SerializeAsString(), ub->probe_plan().SerializeAsString());
  EXPECT_NE(ua->nonce(), ub->nonce());
  EXPECT_FALSE(a.ended());

  // Applied at the PoP once both hosts ACKed.
  ASSERT_TRUE(a.ack(*ua));
  for (int i = 0; i < 100 && pop("FRA1").hosts_size() == 2 &&
                  pop("FRA1").hosts(0).applied_version() != ua->version();
       ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(pop("FRA1").applied_version(), 0u);
  ASSERT_TRUE(b.ack(*ub));
  for (int i = 0; i < 100 && pop("FRA1").applied_version() != ub->version(); ++i)
    std::this_thread::sleep_for(20ms);
  v1::Pop p = pop("FRA1");
  EXPECT_EQ(p.applied_version(), ub->version());
  ASSERT_EQ(p.hosts_size(), 2);
  EXPECT_EQ(p.hosts(0).name(), "fra1-a");
  EXPECT_EQ(p.hosts(1).name(), "fra1-b");

  // fra1-a again: its old session ends, fra1-b's goes on.
  FakeAgent a2(pop_channel_);
  a2.set_host("fra1-a");
  ASSERT_TRUE(a2.hello("FRA1"));
  EXPECT_EQ(a.finish(5s).error_code(), StatusCode::ABORTED);
  EXPECT_TRUE(a2.next(5s)) << "a host that runs nothing is sent the table";
  EXPECT_FALSE(b.ended());
  EXPECT_FALSE(b.next(300ms)) << "the other host is sent nothing";
  EXPECT_EQ(pop("FRA1").hosts_size(), 2);
}

TEST_F(ServiceTest, RoutesTraceAndStats) {
  configure();
  FakeAgent agent(pop_channel_);
  ASSERT_TRUE(agent.hello("FRA1"));
  auto u = agent.next(5s);
  ASSERT_TRUE(u);
  ASSERT_TRUE(agent.ack(*u));

  v1::GetRoutesRequest rq;
  rq.set_pop("FRA1");
  v1::GetRoutesResponse routes;
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetRoutes, rq, routes).ok());
  EXPECT_EQ(routes.table().version(), 5u);
  ASSERT_EQ(routes.listeners_size(), 1);
  EXPECT_EQ(routes.listeners(0).accelerator(), "web");
  ASSERT_EQ(routes.listeners(0).groups_size(), 1);
  EXPECT_DOUBLE_EQ(routes.listeners(0).groups(0).share_percent(), 100.0);
  EXPECT_EQ(routes.listeners(0).groups(0).healthy_endpoints(), 2u);
  EXPECT_FALSE(routes.listeners(0).groups(0).reason().empty());
  EXPECT_EQ(routes.listeners(0).endpoints(0).weight(), 255u);
  EXPECT_EQ(routes.listeners(0).endpoints(1).weight(), 128u);
  rq.set_pop("SIN1");
  EXPECT_EQ(call(&v1::AdminService::Stub::GetRoutes, rq, routes).error_code(),
            StatusCode::NOT_FOUND);

  v1::TraceFlowRequest tq;
  tq.set_client_address("198.18.0.7");
  tq.set_client_port(40000);
  tq.set_vip("203.0.113.10");
  tq.set_port(80);
  tq.set_protocol(v1::TCP);
  tq.set_pop("FRA1");
  v1::TraceFlowResponse trace;
  ASSERT_TRUE(call(&v1::AdminService::Stub::TraceFlow, tq, trace).ok());
  EXPECT_EQ(trace.accelerator(), "web");
  EXPECT_EQ(trace.listener(), "http");
  EXPECT_EQ(trace.endpoint_group(), "eu");
  EXPECT_EQ(trace.region(), "eu-central");
  EXPECT_TRUE(trace.endpoint() == "198.51.100.1" || trace.endpoint() == "198.51.100.2");
  EXPECT_EQ(trace.table_version(), 5u);
  bool matched = false;
  for (const auto& line : trace.explanation())
    matched |= line.find("listener web/http matches") != std::string::npos;
  EXPECT_TRUE(matched);
  tq.set_port(81);
  ASSERT_TRUE(call(&v1::AdminService::Stub::TraceFlow, tq, trace = {}).ok());
  EXPECT_EQ(trace.endpoint(), "");
  tq.set_vip("nope");
  EXPECT_EQ(call(&v1::AdminService::Stub::TraceFlow, tq, trace).error_code(),
            StatusCode::INVALID_ARGUMENT);

  v1::AgentMessage status;
  status.mutable_status()->set_dataplane_healthy(true);
  status.mutable_status()->mutable_stats()->set_rx_packets(99);
  ASSERT_TRUE(agent.send(status));
  v1::GetStatsResponse stats;
  for (int i = 0; i < 100 && stats.pops_size() == 0; ++i) {
    std::this_thread::sleep_for(20ms);
    stats.Clear();
    ASSERT_TRUE(call(&v1::AdminService::Stub::GetStats, v1::GetStatsRequest(), stats).ok());
  }
  ASSERT_EQ(stats.pops_size(), 1);
  EXPECT_EQ(stats.pops(0).pop(), "FRA1");
  EXPECT_EQ(stats.pops(0).stats().rx_packets(), 99u);
}

TEST_F(ServiceTest, ProbeReportsMoveRoutesAndShowInHealth) {
  configure();
  ASSERT_TRUE(create(group("web", "http", "us", "us-east")).ok());
  ASSERT_TRUE(create(endpoint("web", "http", "us", "198.51.100.3")).ok());
  FakeAgent agent(pop_channel_);
  ASSERT_TRUE(agent.hello("FRA1"));
  auto u = agent.next(5s);
  ASSERT_TRUE(u);
  ASSERT_TRUE(agent.ack(*u));

  // FRA1 finds us-east nearer, and one eu endpoint down.
  v1::AgentMessage m;
  auto result = [&](const std::string& group, const std::string& address, double rtt,
                    bool healthy) {
    auto* r = m.mutable_probes()->add_results();
    r->set_accelerator("web");
    r->set_listener("http");
    r->set_endpoint_group(group);
    r->set_address(address);
    r->set_rtt_ms(rtt);
    r->set_healthy(healthy);
    r->set_known(true);
    r->set_consecutive(2);
    r->set_last_change_ms(1714557600000);
    r->set_tls_handshake_ms(healthy ? 6.5 : -1);
    if (!healthy) r->set_last_error("connect: connection refused");
  };
  result("eu", "198.51.100.1", 4.2, true);
  result("eu", "198.51.100.2", 4.4, false);
  result("us", "198.51.100.3", 92, true);
  m.mutable_probes()->set_time_ms(1714557600000);
  ASSERT_TRUE(agent.send(m));
  auto pushed = agent.next(5s);
  ASSERT_TRUE(pushed) << "a verdict changed: FRA1 must get a new table";
  EXPECT_GT(pushed->version(), u->version());
  ASSERT_TRUE(agent.ack(*pushed));

  v1::GetRoutesRequest rq;
  rq.set_pop("FRA1");
  v1::GetRoutesResponse routes;
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetRoutes, rq, routes).ok());
  EXPECT_EQ(routes.table().version(), pushed->version());
  ASSERT_EQ(routes.listeners(0).groups_size(), 2);
  const v1::GroupRoute& eu = routes.listeners(0).groups(0);
  EXPECT_EQ(eu.endpoint_group(), "eu");
  EXPECT_DOUBLE_EQ(eu.rtt_ms(), 4.2);  // the healthy endpoint's
  EXPECT_EQ(eu.healthy_endpoints(), 1u);
  // 128 of 192 weight healthy x 1.4 = 93.3 %; the rest spills to us-east.
  EXPECT_NEAR(eu.share_percent(), 100 * 1.4 * 128 / 192, 1e-9);
  EXPECT_NEAR(routes.listeners(0).groups(1).share_percent(), 100 - 100 * 1.4 * 128 / 192, 1e-9);
  EXPECT_FALSE(routes.listeners(0).fail_open());

  v1::GetHealthRequest hq;
  v1::GetHealthResponse health;
  ASSERT_TRUE(call(&v1::AdminService::Stub::GetHealth, hq, health).ok());
  ASSERT_EQ(health.endpoints_size(), 3);
  for (const auto& e : health.endpoints()) {
    EXPECT_EQ(e.pop(), "FRA1");
    EXPECT_EQ(e.state(),
              e.address() == "198.51.100.2" ? v1::HEALTH_STATE_UNHEALTHY : v1::HEALTH_STATE_HEALTHY)
        << e.address();
    // The handshake time reaches the operator beside, not inside, the RTT.
    EXPECT_DOUBLE_EQ(e.tls_handshake_ms(), e.address() == "198.51.100.2" ? -1 : 6.5);
  }
  hq.set_pop("SIN1");
  EXPECT_EQ(call(&v1::AdminService::Stub::GetHealth, hq, health).error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(ServiceTest, SessionMustStartWithHello) {
  FakeAgent agent(pop_channel_);
  v1::AgentMessage m;
  m.mutable_ack()->set_version(1);
  ASSERT_TRUE(agent.send(m));
  auto s = agent.finish(5s);
  EXPECT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "the first message must be a hello");
}

// Hardening finding: "a second Hello mid-session is accepted and resets the
// PoP's tunnel sources".
TEST_F(ServiceTest, ASecondHelloMidSessionEndsTheSession) {
  FakeAgent agent(pop_channel_);
  ASSERT_TRUE(agent.hello("FRA1"));
  v1::AgentMessage again;
  again.mutable_hello()->set_pop("FRA1");
  again.mutable_hello()->mutable_tunnel_source()->set_ipv4("192.0.2.99");
  ASSERT_TRUE(agent.send(again));
  auto s = agent.finish(5s);
  EXPECT_EQ(s.error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "hello: already said on this session; reconnect to say it again");
}

TEST_F(ServiceTest, HealthServiceAnswers) {
  grpc::GenericStub stub(admin_channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 10s);
  grpc::Slice empty("");  // HealthCheckRequest{service: ""} encodes to nothing
  grpc::ByteBuffer request(&empty, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) { done.set_value(s); });
  ASSERT_TRUE(done.get_future().get().ok());
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices) bytes += std::string(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
}

// grpcurl lists services through reflection: ask for the list, as it does.
class ReflectionList : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  explicit ReflectionList(grpc::GenericStub& stub) {
    // ServerReflectionRequest{list_services: ""}: field 7, length 0.
    grpc::Slice request(std::string("\x3a\x00", 2));
    request_ = grpc::ByteBuffer(&request, 1);
    ctx_.set_deadline(std::chrono::system_clock::now() + 10s);
    stub.PrepareBidiStreamingCall(&ctx_,
                                  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                  grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::vector<grpc::Slice> slices;
    if (response_.Dump(&slices).ok())
      for (auto& s : slices)
        text_ += std::string(reinterpret_cast<const char*>(s.begin()), s.size());
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& s) override { done_.set_value(s); }
  std::string wait() {
    done_.get_future().wait();
    return text_;
  }

 private:
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_, response_;
  std::string text_;
  std::promise<grpc::Status> done_;
};

TEST_F(ServiceTest, ReflectionListsTheServices) {
  grpc::GenericStub admin(admin_channel_);
  ReflectionList on_admin(admin);
  EXPECT_NE(on_admin.wait().find("onramp.v1.AdminService"), std::string::npos);
  grpc::GenericStub pop(pop_channel_);
  ReflectionList on_pop(pop);
  EXPECT_NE(on_pop.wait().find("onramp.v1.PopSessionService"), std::string::npos);
}

}  // namespace
}  // namespace onramp::ctl::test
