// The agent's session against an in-process controller: Hello, updates in,
// ACK/NACK and status out, reconnection when the controller goes away, and a
// dataplane left alone while it is away.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

#include "controlplane/agent/agent.h"
#include "controlplane/agent/controller_session.h"
#include "controlplane/agent/tests/fakes.h"
#include "controlplane/agent/tests/probe_servers.h"
#include "onramp/v1/admin.grpc.pb.h"

namespace onramp::agent::test {
namespace {

using ::testing::HasSubstr;

class SessionTest : public ::testing::Test {
 protected:
  // Starts an agent and its session towards `controller`.
  void start(const std::string& controller) {
    AgentConfig config = fra1_agent_config(dir.path);
    config.tunnel_source_v6.clear();
    config.status_interval = 50ms;
    config.report_interval = 100ms;
    agent = std::make_unique<Agent>(config, dataplane);
    session = std::make_unique<ControllerSession>(
        SessionConfig{
            .controller = controller,
            .credentials = grpc::InsecureChannelCredentials(),
            .backoff = {.initial = 20ms, .max = 200ms},
            .keepalive_time = 1000ms,
            .keepalive_timeout = 500ms,
        },
        *agent);
    agent->set_sender([this](const v1::AgentMessage& m) { return session->send(m); });
    agent->start();
    session->start();
  }

  void TearDown() override {
    if (session) session->stop();
    if (agent) agent->stop();
  }

  static bool is_hello(const v1::AgentMessage& m) { return m.has_hello(); }
  static auto ack_of(uint64_t version) {
    return [version](const v1::AgentMessage& m) {
      return m.has_ack() && m.ack().version() == version;
    };
  }

  TempDir dir;
  FakeDataplane dataplane;
  std::unique_ptr<Agent> agent;
  std::unique_ptr<ControllerSession> session;
};

TEST_F(SessionTest, HelloCarriesIdentityAndAppliedVersion) {
  ControllerServer server;
  ASSERT_TRUE(server.ok());
  dataplane.set_version(7);
  start(server.address());
  auto hello = server.controller.wait_for(is_hello);
  ASSERT_TRUE(hello);
  const v1::Hello& h = hello->hello();
  EXPECT_EQ(h.pop(), "FRA1");
  EXPECT_EQ(h.iata(), "FRA");
  EXPECT_EQ(h.city(), "Frankfurt");
  EXPECT_EQ(h.country(), "DE");
  EXPECT_DOUBLE_EQ(h.latitude(), 50.03);
  EXPECT_EQ(h.tunnel_source().ipv4(), "192.0.2.1");
  EXPECT_EQ(h.applied_version(), 7u);
  EXPECT_EQ(h.agent_version(), "test");
}

TEST_F(SessionTest, UpdatesAreAppliedPersistedAndAcked) {
  ControllerServer server;
  start(server.address());
  ASSERT_TRUE(server.controller.wait_for(is_hello));
  v1::ForwardingTable table = sample_table(0);
  ASSERT_TRUE(server.controller.send_update(11, "nonce-11", table));
  auto ack = server.controller.wait_for(ack_of(11));
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->ack().ok()) << ack->ack().error();
  EXPECT_EQ(ack->ack().nonce(), "nonce-11");
  ASSERT_EQ(dataplane.applied().size(), 1u);
  EXPECT_EQ(dataplane.applied()[0].version(), 11u);
  EXPECT_EQ(dataplane.applied()[0].next_hop_mac(), "02:00:00:00:00:fe");
  auto stored = TableStore(dir.path).load();
  ASSERT_TRUE(stored.ok() && *stored) << stored.error();
  EXPECT_EQ((*stored)->version(), 11u);

  // An invalid one: NACKed with the field, not applied, the old one kept.
  ASSERT_TRUE(server.controller.send_update(12, "nonce-12", sample_table(0, "not-an-ip")));
  auto nack = server.controller.wait_for(ack_of(12));
  ASSERT_TRUE(nack);
  EXPECT_FALSE(nack->ack().ok());
  EXPECT_EQ(nack->ack().nonce(), "nonce-12");
  EXPECT_THAT(nack->ack().error(), HasSubstr("listeners[0].endpoints[0].address"));
  EXPECT_EQ(dataplane.applied().size(), 1u);
  stored = TableStore(dir.path).load();
  ASSERT_TRUE(stored.ok() && *stored) << stored.error();
  EXPECT_EQ((*stored)->version(), 11u);
}

TEST_F(SessionTest, StatusIsReportedEveryInterval) {
  ControllerServer server;
  start(server.address());
  ASSERT_TRUE(server.controller.wait_for(is_hello));
  size_t from = server.controller.received_count();
  auto first = server.controller.wait_for([](auto& m) { return m.has_status(); }, 2s, from);
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->status().dataplane_healthy());
  EXPECT_EQ(first->status().stats().forwarded(), 42u);
  auto later = server.controller.wait_for(
      [&](auto& m) { return m.has_status() && m.status().time_ms() > first->status().time_ms(); },
      2s, from);
  EXPECT_TRUE(later);
}

TEST_F(SessionTest, ControllerDownTheDataplaneKeepsItsTableAndTheAgentRetries) {
  int port = 0;
  {
    ControllerServer probe;  // find a free port, then leave it closed
    port = probe.port();
  }
  dataplane.set_version(4);
  start("127.0.0.1:" + std::to_string(port));
  // Eight status rounds (50 ms each) without a controller.
  ASSERT_TRUE(dataplane.wait_health_calls(8));
  EXPECT_FALSE(session->connected());
  EXPECT_TRUE(dataplane.applied().empty());  // left as it is
  EXPECT_EQ(dataplane.version(), 4u);

  ControllerServer server(port);  // the controller comes (back) up
  ASSERT_TRUE(server.ok());
  auto hello = server.controller.wait_for(is_hello, 5s);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->hello().applied_version(), 4u);
}

TEST_F(SessionTest, AgentReconnectsAfterTheControllerRestarts) {
  auto server = std::make_unique<ControllerServer>();
  int port = server->port();
  start(server->address());
  ASSERT_TRUE(server->controller.wait_for(is_hello));
  ASSERT_TRUE(server->controller.send_update(3, "n3", sample_table(0)));
  ASSERT_TRUE(server->controller.wait_for(ack_of(3)));

  server->shutdown();
  server.reset();
  server = std::make_unique<ControllerServer>(port);
  ASSERT_TRUE(server->ok());
  auto hello = server->controller.wait_for(is_hello, 5s);
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->hello().applied_version(), 3u);
  // The session counts itself before it sends anything but its Hello: a
  // status on the new stream comes after the count.
  size_t from = server->controller.received_count();
  ASSERT_TRUE(server->controller.wait_for([](auto& m) { return m.has_status(); }, 5s, from));
  EXPECT_GE(session->sessions(), 2u);
  // Nothing was re-applied meanwhile: the dataplane still ran version 3.
  EXPECT_EQ(dataplane.applied().size(), 1u);
}

// Issue 13 item 3: with several replicas, the session moves to the next one
// when its controller goes, at once, keeping the table it runs.
TEST_F(SessionTest, TheSessionMovesToTheNextReplicaWhenItsControllerGoes) {
  auto a = std::make_unique<ControllerServer>();
  ControllerServer b;
  ASSERT_TRUE(a->ok() && b.ok());
  start(a->address() + "," + b.address());
  ASSERT_TRUE(a->controller.wait_for(is_hello));
  EXPECT_EQ(session->controller(), a->address());
  ASSERT_TRUE(a->controller.send_update(3, "n3", sample_table(0)));
  ASSERT_TRUE(a->controller.wait_for(ack_of(3)));
  EXPECT_EQ(b.controller.received_count(), 0u);

  auto gone = std::chrono::steady_clock::now();
  a->shutdown();
  auto hello = b.controller.wait_for(is_hello, 2s);
  ASSERT_TRUE(hello) << "no session to the second replica within 2 s";
  EXPECT_LT(std::chrono::steady_clock::now() - gone, 2s);
  EXPECT_EQ(hello->hello().applied_version(), 3u);
  EXPECT_EQ(session->controller(), b.address());
  EXPECT_EQ(dataplane.applied().size(), 1u);  // the table it ran, left alone
  EXPECT_EQ(dataplane.version(), 3u);

  // And back to the first when the second goes in turn.
  int port = a->port();
  a.reset();
  ControllerServer again(port);
  ASSERT_TRUE(again.ok());
  b.shutdown();
  ASSERT_TRUE(again.controller.wait_for(is_hello, 2s));
}

// A replica that accepts the connection and then says nothing (a hung
// process, a proxy in front of a dead one) stalls the session: its
// keepalive goes unanswered, and after keepalive time + timeout (1 + 0.5 s
// here) the agent moves to the next replica.
TEST_F(SessionTest, AStalledReplicaIsLeftForTheNextOne) {
  HttpServer stalled(0);  // accepts, never speaks HTTP/2
  ASSERT_TRUE(stalled.ok);
  ControllerServer b;
  auto begun = std::chrono::steady_clock::now();
  start("127.0.0.1:" + std::to_string(stalled.port) + "," + b.address());
  ASSERT_TRUE(b.controller.wait_for(is_hello, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 2s);
}

// The agent routes on its own exactly while no session is up: the session
// tells it when one opens and ends.
TEST_F(SessionTest, TheAgentRoutesOnItsOwnOnlyWhileTheSessionIsDown) {
  auto server = std::make_unique<ControllerServer>();
  int port = server->port();
  start(server->address());
  ASSERT_TRUE(server->controller.wait_for(is_hello));
  v1::ControllerMessage msg;
  v1::TableUpdate* u = msg.mutable_update();
  u->set_version(3);
  u->set_nonce("n3");
  *u->mutable_table() = sample_table(3);
  u->mutable_route_inputs()->set_pop("FRA1");
  ASSERT_TRUE(server->controller.send(msg));
  ASSERT_TRUE(server->controller.wait_for(ack_of(3)));
  EXPECT_FALSE(agent->routes_on_own());

  server->shutdown();
  server.reset();
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!agent->routes_on_own() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_TRUE(agent->routes_on_own());

  server = std::make_unique<ControllerServer>(port);
  ASSERT_TRUE(server->ok());
  ASSERT_TRUE(server->controller.wait_for(is_hello, 5s));
  deadline = std::chrono::steady_clock::now() + 5s;
  while (agent->routes_on_own() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(agent->routes_on_own());
}

TEST_F(SessionTest, ProbeReportsGoToTheControllerOnTheSession) {
  ControllerServer server;
  ASSERT_TRUE(server.ok());
  TcpListener listener;
  start(server.address());
  ASSERT_TRUE(server.controller.wait_for(is_hello));
  v1::ControllerMessage msg;
  v1::TableUpdate* u = msg.mutable_update();
  u->set_version(21);
  u->set_nonce("n-21");
  *u->mutable_table() = sample_table(0);
  v1::ProbeTarget* t = u->mutable_probe_plan()->add_targets();
  t->set_accelerator("acc");
  t->set_listener("web");
  t->set_endpoint_group("eu");
  t->set_address("127.0.0.1");
  t->set_port(listener.port);
  t->mutable_health_check()->set_interval_ms(100);
  t->mutable_health_check()->set_healthy_threshold(2);
  ASSERT_TRUE(server.controller.send(msg));
  ASSERT_TRUE(server.controller.wait_for(ack_of(21)));
  auto report = server.controller.wait_for([](const v1::AgentMessage& m) {
    return m.has_probes() && m.probes().results_size() == 1 && m.probes().results(0).known();
  });
  ASSERT_TRUE(report);
  const v1::ProbeResult& r = report->probes().results(0);
  EXPECT_TRUE(r.healthy());
  EXPECT_EQ(r.address(), "127.0.0.1");
  EXPECT_EQ(r.endpoint_group(), "eu");
  EXPECT_GE(r.consecutive(), 2u);
  EXPECT_GE(r.rtt_ms(), 0);
}

// Hardening finding: a table over gRPC's default 4 MiB limit never reached
// the PoP ("Received message larger than max", in a loop). A 6 MB table,
// as thousands of endpoints with long labels make, is applied and ACKed.
TEST_F(SessionTest, ATableOverFourMegabytesIsAppliedAndAcked) {
  ControllerServer server;
  start(server.address());
  ASSERT_TRUE(server.controller.wait_for(is_hello));
  v1::ForwardingTable table = sample_table(0);
  v1::ForwardingListener model = table.listeners(0);
  table.clear_listeners();
  for (int l = 0; l < 1300; ++l) {
    v1::ForwardingListener* lis = table.add_listeners();
    *lis = model;
    lis->set_name("listener-" + std::to_string(l));
    lis->mutable_port_ranges(0)->set_first(1000 + static_cast<uint32_t>(l));
    lis->clear_endpoints();
    for (int e = 0; e < 50; ++e) {
      v1::ForwardingEndpoint* ep = lis->add_endpoints();
      ep->set_address("198.51." + std::to_string(100 + e / 250) + "." + std::to_string(e % 250));
      ep->set_weight(128);
      ep->set_label("accelerator-with-a-long-name/listener-" + std::to_string(l) +
                    "/endpoint-group-in-a-region-far-away");
    }
  }
  ASSERT_GT(table.ByteSizeLong(), 6u << 20);  // well past gRPC's default 4 MiB
  ASSERT_TRUE(server.controller.send_update(21, "nonce-21", table));
  auto ack = server.controller.wait_for(ack_of(21));
  ASSERT_TRUE(ack);
  EXPECT_TRUE(ack->ack().ok()) << ack->ack().error();
  ASSERT_EQ(dataplane.applied().size(), 1u);
  EXPECT_EQ(dataplane.applied()[0].listeners_size(), 1300);
}

// The agent's default used to be the admin port, and its only word was
// "ended: status 12": an address without the PoP session service is named as
// probably the admin port.
TEST_F(SessionTest, TheAdminPortIsExplainedNotJustAStatusCode) {
  // What the controller's admin port serves: the admin API, no PoP sessions.
  v1::AdminService::Service admin_api;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&admin_api);
  std::unique_ptr<grpc::Server> admin_like = builder.BuildAndStart();
  ASSERT_TRUE(admin_like && port);
  // stderr into a file the test reads while the session retries.
  std::string path = dir.path + "/stderr";
  fflush(stderr);
  int saved = dup(2);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  dup2(fd, 2);
  ::close(fd);
  start("127.0.0.1:" + std::to_string(port));
  std::string err;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (err.find("admin port?") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    std::ifstream in(path);
    err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  session->stop();
  fflush(stderr);
  dup2(saved, 2);
  ::close(saved);
  EXPECT_THAT(err, HasSubstr("does not serve PoP sessions at this address: is it its admin port?"));
  EXPECT_THAT(err, HasSubstr("7444"));
  admin_like->Shutdown();
}

}  // namespace
}  // namespace onramp::agent::test
