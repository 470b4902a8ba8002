// The command line -> the request that goes on the wire, with a fake
// connection: what each command sends, what update leaves alone, how errors
// become exit codes, where global flags and environment variables land.
#include <gmock/gmock.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/status.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/options.h"
#include "controlplane/cli/onrampctl.h"
#include "onramp/v1/admin.pb.h"
#include "onramp/v1/dataplane.pb.h"

namespace onramp::cli {
namespace {

namespace pb = google::protobuf;
using ::testing::HasSubstr;

struct Call {
  std::string method;
  std::shared_ptr<pb::Message> request;
};

// An in-process gRPC server that takes every method of every service: it
// records each call (decoded as the method's request type) and answers with
// a canned reply (text format) or status. onrampctl reaches it through the
// generated stubs, as it reaches the real servers.
class FakeServer : public grpc::CallbackGenericService {
 public:
  FakeServer() {
    grpc::ServerBuilder builder;
    builder.RegisterCallbackGenericService(this);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    server_ = builder.BuildAndStart();
  }
  ~FakeServer() override { server_->Shutdown(); }

  std::shared_ptr<grpc::Channel> channel() {
    return server_->InProcessChannel(grpc::ChannelArguments());
  }
  // On loopback TCP, as a controller replica is reached: a channel that
  // connects (or not), which an in-process one does not.
  std::shared_ptr<grpc::Channel> tcp_channel() {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                               grpc::InsecureChannelCredentials());
  }

  std::vector<Call> calls;
  std::map<std::string, std::string> replies;
  std::map<std::string, grpc::Status> errors;
  std::vector<Globals> controller_opened;
  std::vector<Globals> dataplane_opened;
  std::string refuse;  // error the connector gives, e.g. a refused --plaintext
  // Controller replicas (FakeConnector): opened, down, served by another fake.
  std::vector<std::string> replicas_opened;
  std::set<std::string> down;
  std::map<std::string, FakeServer*> others;

 private:
  // One unary call: read the request, answer, done.
  class Unary : public grpc::ServerGenericBidiReactor {
   public:
    Unary(FakeServer& server, std::string method) : server_(server), method_(std::move(method)) {
      StartRead(&in_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) return Finish(grpc::Status(grpc::StatusCode::INTERNAL, "no request"));
      grpc::Status s = server_.answer(method_, in_, out_);
      if (!s.ok()) return Finish(s);
      StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
    }
    void OnDone() override { delete this; }

   private:
    FakeServer& server_;
    std::string method_;
    grpc::ByteBuffer in_;
    grpc::ByteBuffer out_;
  };

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Unary(*this, ctx->method());
  }

  // "/onramp.v1.AdminService/GetAccelerator": records the request, fills `out`.
  grpc::Status answer(const std::string& method, grpc::ByteBuffer& in, grpc::ByteBuffer& out) {
    std::string service = method.substr(1, method.rfind('/') - 1);
    std::string name = method.substr(method.rfind('/') + 1);
    const pb::MethodDescriptor* desc =
        pb::DescriptorPool::generated_pool()->FindMethodByName(service + "." + name);
    if (!desc) return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, method);
    auto message_of = [](const pb::Descriptor* type) {
      return std::shared_ptr<pb::Message>(
          pb::MessageFactory::generated_factory()->GetPrototype(type)->New());
    };
    std::shared_ptr<pb::Message> request = message_of(desc->input_type());
    EXPECT_TRUE(grpc::SerializationTraits<pb::Message>::Deserialize(&in, request.get()).ok());
    calls.push_back({method, request});
    if (auto e = errors.find(name); e != errors.end()) return e->second;
    std::shared_ptr<pb::Message> response = message_of(desc->output_type());
    if (auto r = replies.find(name); r != replies.end()) {
      EXPECT_TRUE(pb::TextFormat::ParseFromString(r->second, response.get())) << r->second;
    }
    bool own = false;
    return grpc::SerializationTraits<pb::Message>::Serialize(*response, &out, &own);
  }

  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// Every controller replica is `server`, but those in `others` (by the
// address as given) and those in `down`, which are a closed port.
class FakeConnector : public Connector {
 public:
  explicit FakeConnector(FakeServer& server) : server_(server) {}
  Result<std::shared_ptr<grpc::Channel>> controller(const Globals& g,
                                                    const cp::Replica& replica) override {
    server_.controller_opened.push_back(g);
    server_.replicas_opened.push_back(replica.authority);
    if (!server_.refuse.empty()) return error(server_.refuse);
    if (server_.down.count(replica.authority))
      return grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
    if (auto it = server_.others.find(replica.authority); it != server_.others.end())
      return it->second->tcp_channel();
    return server_.tcp_channel();
  }
  Result<std::unique_ptr<DataplaneStub>> dataplane(const Globals& g) override {
    server_.dataplane_opened.push_back(g);
    return std::unique_ptr<DataplaneStub>(v1::DataplaneService::NewStub(server_.channel()));
  }

 private:
  FakeServer& server_;
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"ONRAMP_CONTROLLER", "ONRAMP_TLS_CA", "ONRAMP_TLS_CERT", "ONRAMP_TLS_KEY",
                          "ONRAMP_TOKEN", "ONRAMP_DATAPLANE_SOCKET"})
      unsetenv(v);
  }

  int run(std::vector<std::string> args) {
    args.insert(args.begin(), "onrampctl");
    out.str("");
    err.str("");
    server.calls.clear();
    FakeConnector connector(server);
    return run_onrampctl(args, connector, out, err);
  }

  // The request of call `i`, as the message type `T`, compared in text form.
  template <typename T>
  void expect_request(size_t i, const std::string& method, const std::string& text) {
    ASSERT_LT(i, server.calls.size());
    EXPECT_EQ(server.calls[i].method, method);
    T expected;
    ASSERT_TRUE(pb::TextFormat::ParseFromString(text, &expected)) << text;
    EXPECT_EQ(server.calls[i].request->ShortDebugString(), expected.ShortDebugString());
  }

  FakeServer server;
  std::ostringstream out;
  std::ostringstream err;
};

constexpr char kAdmin[] = "/onramp.v1.AdminService/";
constexpr char kDataplane[] = "/onramp.v1.DataplaneService/";

std::string m(const char* service, const char* name) { return std::string(service) + name; }

TEST_F(CommandsTest, AcceleratorCreate) {
  server.replies["CreateAccelerator"] = R"(name: "web" enabled: true vips: "203.0.113.10")";
  ASSERT_EQ(run({"accelerator", "create", "web", "--vip", "203.0.113.10", "--vip",
                 "2001:db8:10::10,203.0.113.11"}),
            0)
      << err.str();
  expect_request<v1::Accelerator>(
      0, m(kAdmin, "CreateAccelerator"),
      R"(name: "web" enabled: true vips: "203.0.113.10" vips: "2001:db8:10::10"
         vips: "203.0.113.11")");
  EXPECT_EQ(out.str(),
            "NAME  ENABLED  VIPS          UPDATED\n"
            "web   yes      203.0.113.10  -\n");

  ASSERT_EQ(run({"accelerator", "create", "stage", "--vip", "203.0.113.20", "--disabled"}), 0);
  expect_request<v1::Accelerator>(0, m(kAdmin, "CreateAccelerator"),
                                  R"(name: "stage" vips: "203.0.113.20")");
}

TEST_F(CommandsTest, AcceleratorGetListDelete) {
  ASSERT_EQ(run({"accelerator", "get", "web"}), 0);
  expect_request<v1::AcceleratorKey>(0, m(kAdmin, "GetAccelerator"), R"(name: "web")");
  ASSERT_EQ(run({"accelerator", "list"}), 0);
  expect_request<v1::ListRequest>(0, m(kAdmin, "ListAccelerators"), "");
  ASSERT_EQ(run({"accelerator", "delete", "web"}), 0);
  expect_request<v1::AcceleratorKey>(0, m(kAdmin, "DeleteAccelerator"), R"(name: "web")");
  EXPECT_EQ(out.str(), "deleted accelerator web\n");
  ASSERT_EQ(run({"accelerator", "delete", "web", "-o", "json"}), 0);
  EXPECT_EQ(out.str(), "{}\n");
}

TEST_F(CommandsTest, AcceleratorUpdateSendsOnlyTheFlagsGiven) {
  // One call, no read first: the mask names what changes, the controller
  // applies it to what it has.
  ASSERT_EQ(run({"accelerator", "update", "web", "--disable"}), 0) << err.str();
  ASSERT_EQ(server.calls.size(), 1u);
  expect_request<v1::UpdateAcceleratorRequest>(
      0, m(kAdmin, "UpdateAccelerator"),
      R"(accelerator { name: "web" } update_mask { paths: "enabled" })");

  ASSERT_EQ(run({"accelerator", "update", "web", "--vip", "203.0.113.30", "--enable"}), 0);
  expect_request<v1::UpdateAcceleratorRequest>(0, m(kAdmin, "UpdateAccelerator"), R"(
      accelerator { name: "web" enabled: true vips: "203.0.113.30" }
      update_mask { paths: "vips" paths: "enabled" })");

  ASSERT_EQ(run({"accelerator", "update", "web", "--flow-logs", "on", "--flow-log-sample", "1"}), 0)
      << err.str();
  expect_request<v1::UpdateAcceleratorRequest>(0, m(kAdmin, "UpdateAccelerator"), R"(
      accelerator { name: "web" flow_logs: true flow_log_sample_ppm: 10000 }
      update_mask { paths: "flow_logs" paths: "flow_log_sample_ppm" })");
  ASSERT_EQ(run({"accelerator", "update", "web", "--flow-log-sample", "0.01"}), 0) << err.str();
  expect_request<v1::UpdateAcceleratorRequest>(0, m(kAdmin, "UpdateAccelerator"), R"(
      accelerator { name: "web" flow_log_sample_ppm: 100 }
      update_mask { paths: "flow_log_sample_ppm" })");
  EXPECT_EQ(run({"accelerator", "update", "web", "--flow-logs", "yes"}), 2);
  EXPECT_EQ(run({"accelerator", "update", "web", "--flow-log-sample", "0.001"}), 2);

  ASSERT_EQ(run({"accelerator", "update", "web", "--relay", "off"}), 0);
  expect_request<v1::UpdateAcceleratorRequest>(
      0, m(kAdmin, "UpdateAccelerator"),
      R"(accelerator { name: "web" relay_off: true } update_mask { paths: "relay_off" })");
  ASSERT_EQ(run({"accelerator", "update", "web", "--relay", "on"}), 0);
  expect_request<v1::UpdateAcceleratorRequest>(
      0, m(kAdmin, "UpdateAccelerator"),
      R"(accelerator { name: "web" } update_mask { paths: "relay_off" })");
  EXPECT_EQ(run({"accelerator", "update", "web", "--relay", "sometimes"}), 2);

  ASSERT_EQ(run({"pop", "matrix"}), 0);
  expect_request<v1::GetPopMatrixRequest>(0, m(kAdmin, "GetPopMatrix"), "");

  EXPECT_EQ(run({"accelerator", "update", "web", "--enable", "--disable"}), 2);
  // Nothing given would be a full replacement with nothing: refused.
  EXPECT_EQ(run({"accelerator", "update", "web"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("nothing to change"));
}

TEST_F(CommandsTest, ListenerCreate) {
  ASSERT_EQ(run({"listener", "create", "https", "--accelerator", "web", "--protocol", "tcp",
                 "--ports", "80,443,8000-8099", "--affinity", "source_ip", "--tcp-idle-timeout",
                 "900", "--udp-idle-timeout", "20"}),
            0)
      << err.str();
  expect_request<v1::Listener>(0, m(kAdmin, "CreateListener"), R"(
      name: "https" accelerator: "web" protocol: TCP
      port_ranges { first: 80 } port_ranges { first: 443 }
      port_ranges { first: 8000 last: 8099 }
      affinity: SOURCE_IP tcp_idle_timeout_s: 900 udp_idle_timeout_s: 20)");

  ASSERT_EQ(run({"listener", "create", "dns", "--accelerator", "web", "--protocol", "UDP",
                 "--ports", "53"}),
            0)
      << err.str();
  expect_request<v1::Listener>(0, m(kAdmin, "CreateListener"), R"(
      name: "dns" accelerator: "web" protocol: UDP port_ranges { first: 53 })");
}

TEST_F(CommandsTest, ListenerCreateRejectsBadValuesAsUsage) {
  EXPECT_EQ(run({"listener", "create", "x", "--accelerator", "web", "--protocol", "tcp", "--ports",
                 "90-80"}),
            2);
  EXPECT_THAT(err.str(), HasSubstr("\"90-80\": the first port is above the last"));
  EXPECT_EQ(run({"listener", "create", "x", "--accelerator", "web", "--protocol", "sctp", "--ports",
                 "80"}),
            2);
  EXPECT_THAT(err.str(), HasSubstr("--protocol"));
  EXPECT_EQ(run({"listener", "create", "x", "--accelerator", "web", "--ports", "80"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("--protocol is required"));
  EXPECT_EQ(run({"listener", "create", "x", "--accelerator", "web", "--protocol", "tcp", "--ports",
                 "80", "--tcp-idle-timeout", "0"}),
            2);
  EXPECT_TRUE(server.calls.empty());
}

TEST_F(CommandsTest, ListenerUpdateSendsOnlyWhatIsGiven) {
  ASSERT_EQ(run({"listener", "update", "https", "--accelerator", "web", "--ports", "443,8443",
                 "--tcp-idle-timeout", "900"}),
            0)
      << err.str();
  ASSERT_EQ(server.calls.size(), 1u);
  expect_request<v1::UpdateListenerRequest>(0, m(kAdmin, "UpdateListener"), R"(
      listener { name: "https" accelerator: "web" port_ranges { first: 443 }
                 port_ranges { first: 8443 } tcp_idle_timeout_s: 900 }
      update_mask { paths: "port_ranges" paths: "tcp_idle_timeout_s" })");
}

TEST_F(CommandsTest, ListenerListFilters) {
  ASSERT_EQ(run({"listener", "list", "--accelerator", "web"}), 0);
  expect_request<v1::ListRequest>(0, m(kAdmin, "ListListeners"), R"(accelerator: "web")");
}

TEST_F(CommandsTest, EndpointGroupCreate) {
  ASSERT_EQ(run({"endpoint-group",
                 "create",
                 "sin",
                 "--accelerator",
                 "web",
                 "--listener",
                 "https",
                 "--region",
                 "ap-southeast",
                 "--traffic-dial",
                 "50",
                 "--unhealthy-drain-s",
                 "0",
                 "--health-check",
                 "http",
                 "--health-port",
                 "8080",
                 "--health-path",
                 "/healthz",
                 "--health-status",
                 "200-299",
                 "--health-interval-ms",
                 "1000",
                 "--health-timeout-ms",
                 "500",
                 "--healthy-threshold",
                 "2",
                 "--unhealthy-threshold",
                 "4",
                 "--port-override",
                 "443:8443",
                 "--port-override",
                 "80:8080",
                 "--port-rewrite",
                 "decap"}),
            0)
      << err.str();
  expect_request<v1::EndpointGroup>(0, m(kAdmin, "CreateEndpointGroup"), R"(
      name: "sin" accelerator: "web" listener: "https" region: "ap-southeast"
      traffic_dial_percent: 50 unhealthy_drain_s: 0
      health_check { protocol: HEALTH_CHECK_HTTP port: 8080 path: "/healthz" interval_ms: 1000
                     timeout_ms: 500 healthy_threshold: 2 unhealthy_threshold: 4
                     expected_status_min: 200 expected_status_max: 299 }
      port_overrides { listener_port: 443 endpoint_port: 8443 }
      port_overrides { listener_port: 80 endpoint_port: 8080 }
      port_rewrite: PORT_REWRITE_DECAP)");
}

TEST_F(CommandsTest, EndpointGroupHttpsHealthCheckFlags) {
  ASSERT_EQ(
      run({"endpoint-group", "create", "sin", "--accelerator", "web", "--listener", "https",
           "--region", "ap-southeast", "--health-check", "https", "--health-path", "/healthz",
           "--health-sni", "api.example.com", "--health-ca-file", "/etc/onramp/probe-ca.pem"}),
      0)
      << err.str();
  expect_request<v1::EndpointGroup>(0, m(kAdmin, "CreateEndpointGroup"), R"(
      name: "sin" accelerator: "web" listener: "https" region: "ap-southeast"
      traffic_dial_percent: 100 unhealthy_drain_s: 30
      health_check { protocol: HEALTH_CHECK_HTTPS path: "/healthz"
                     tls_server_name: "api.example.com" tls_ca_file: "/etc/onramp/probe-ca.pem" })");

  ASSERT_EQ(run({"endpoint-group", "update", "sin", "--accelerator", "web", "--listener", "https",
                 "--health-insecure"}),
            0)
      << err.str();
  expect_request<v1::UpdateEndpointGroupRequest>(0, m(kAdmin, "UpdateEndpointGroup"), R"(
      endpoint_group { name: "sin" accelerator: "web" listener: "https"
                       health_check { tls_skip_verify: true } }
      update_mask { paths: "health_check.tls_skip_verify" })");
  ASSERT_EQ(run({"endpoint-group", "update", "sin", "--accelerator", "web", "--listener", "https",
                 "--health-insecure=false"}),
            0)
      << err.str();
  expect_request<v1::UpdateEndpointGroupRequest>(0, m(kAdmin, "UpdateEndpointGroup"), R"(
      endpoint_group { name: "sin" accelerator: "web" listener: "https" health_check {} }
      update_mask { paths: "health_check.tls_skip_verify" })");
}

TEST_F(CommandsTest, EndpointGroupCreateDefaultsTheDialTo100AndTheDrainTo30) {
  ASSERT_EQ(run({"endpoint-group", "create", "fra", "--accelerator", "web", "--listener", "https",
                 "--region", "eu-central"}),
            0)
      << err.str();
  expect_request<v1::EndpointGroup>(0, m(kAdmin, "CreateEndpointGroup"), R"(
      name: "fra" accelerator: "web" listener: "https" region: "eu-central"
      traffic_dial_percent: 100 unhealthy_drain_s: 30
      health_check { protocol: HEALTH_CHECK_TCP })");
}

TEST_F(CommandsTest, EndpointGroupUnhealthyDrainIsUpdatedAloneAndBounded) {
  ASSERT_EQ(run({"endpoint-group", "update", "fra", "--accelerator", "web", "--listener", "https",
                 "--unhealthy-drain-s", "120"}),
            0)
      << err.str();
  ASSERT_EQ(server.calls.size(), 1u);
  expect_request<v1::UpdateEndpointGroupRequest>(0, m(kAdmin, "UpdateEndpointGroup"), R"(
      endpoint_group { name: "fra" accelerator: "web" listener: "https" unhealthy_drain_s: 120 }
      update_mask { paths: "unhealthy_drain_s" })");
  EXPECT_EQ(run({"endpoint-group", "update", "fra", "--accelerator", "web", "--listener", "https",
                 "--unhealthy-drain-s", "3601"}),
            2);
  EXPECT_EQ(run({"endpoint-group", "update", "fra", "--accelerator", "web", "--listener", "https",
                 "--unhealthy-drain-s", "-1"}),
            2);
}

TEST_F(CommandsTest, EndpointGroupUpdateSendsOnlyTheFlagsGiven) {
  ASSERT_EQ(
      run({"endpoint-group", "update", "fra", "--accelerator", "web", "--listener", "https",
           "--traffic-dial", "0", "--health-interval-ms", "2000", "--health-status", "200-204"}),
      0)
      << err.str();
  ASSERT_EQ(server.calls.size(), 1u);
  expect_request<v1::UpdateEndpointGroupRequest>(0, m(kAdmin, "UpdateEndpointGroup"), R"(
      endpoint_group { name: "fra" accelerator: "web" listener: "https" traffic_dial_percent: 0
                       health_check { interval_ms: 2000 expected_status_min: 200
                                      expected_status_max: 204 } }
      update_mask { paths: "traffic_dial_percent" paths: "health_check.expected_status_min"
                    paths: "health_check.expected_status_max" paths: "health_check.interval_ms" })");

  ASSERT_EQ(run({"endpoint-group", "update", "fra", "--accelerator", "web", "--listener", "https",
                 "--no-port-overrides"}),
            0);
  expect_request<v1::UpdateEndpointGroupRequest>(0, m(kAdmin, "UpdateEndpointGroup"), R"(
      endpoint_group { name: "fra" accelerator: "web" listener: "https" }
      update_mask { paths: "port_overrides" })");

  ASSERT_EQ(run({"endpoint-group", "update", "fra", "--accelerator", "web", "--listener", "https",
                 "--no-port-overrides", "--port-rewrite", "none"}),
            0);
  expect_request<v1::UpdateEndpointGroupRequest>(0, m(kAdmin, "UpdateEndpointGroup"), R"(
      endpoint_group { name: "fra" accelerator: "web" listener: "https" }
      update_mask { paths: "port_overrides" paths: "port_rewrite" })");
  ASSERT_EQ(run({"endpoint-group", "update", "fra", "--accelerator", "web", "--listener", "https",
                 "--port-override", "443:8443", "--port-rewrite", "decap"}),
            0);
  expect_request<v1::UpdateEndpointGroupRequest>(0, m(kAdmin, "UpdateEndpointGroup"), R"(
      endpoint_group { name: "fra" accelerator: "web" listener: "https"
                       port_overrides { listener_port: 443 endpoint_port: 8443 }
                       port_rewrite: PORT_REWRITE_DECAP }
      update_mask { paths: "port_overrides" paths: "port_rewrite" })");
}

TEST_F(CommandsTest, EndpointAddUpdateRemove) {
  ASSERT_EQ(run({"endpoint", "add", "198.51.100.11", "--accelerator", "web", "--listener", "https",
                 "--endpoint-group", "fra"}),
            0)
      << err.str();
  expect_request<v1::Endpoint>(0, m(kAdmin, "CreateEndpoint"), R"(
      accelerator: "web" listener: "https" endpoint_group: "fra" address: "198.51.100.11"
      weight: 128 mode: ENCAP_IPIP)");

  ASSERT_EQ(run({"endpoint", "add", "2001:db8::21", "--accelerator", "web", "--listener", "https",
                 "--endpoint-group", "sin", "--weight", "0", "--mode", "gue"}),
            0);
  expect_request<v1::Endpoint>(0, m(kAdmin, "CreateEndpoint"), R"(
      accelerator: "web" listener: "https" endpoint_group: "sin" address: "2001:db8::21"
      weight: 0 mode: ENCAP_GUE)");

  ASSERT_EQ(run({"endpoint", "update", "198.51.100.11", "--accelerator", "web", "--listener",
                 "https", "--endpoint-group", "fra", "--weight", "0"}),
            0);
  expect_request<v1::UpdateEndpointRequest>(0, m(kAdmin, "UpdateEndpoint"), R"(
      endpoint { accelerator: "web" listener: "https" endpoint_group: "fra"
                 address: "198.51.100.11" weight: 0 }
      update_mask { paths: "weight" })");

  ASSERT_EQ(run({"endpoint", "remove", "198.51.100.11", "--accelerator", "web", "--listener",
                 "https", "--endpoint-group", "fra"}),
            0);
  expect_request<v1::EndpointKey>(0, m(kAdmin, "DeleteEndpoint"), R"(
      accelerator: "web" listener: "https" endpoint_group: "fra" address: "198.51.100.11")");

  EXPECT_EQ(run({"endpoint", "add", "198.51.100.11", "--accelerator", "web", "--listener", "https",
                 "--endpoint-group", "fra", "--weight", "256"}),
            2);
}

TEST_F(CommandsTest, PopsRoutesTraceStats) {
  ASSERT_EQ(run({"pop", "list"}), 0);
  expect_request<v1::ListPopsRequest>(0, m(kAdmin, "ListPops"), "");
  // Issue 12 finding 2: the operator's confirmation of a table that takes a
  // PoP backwards.
  server.replies["AdoptPop"] = R"(pop { id: "FRA1" adopt_pending: true })";
  ASSERT_EQ(run({"pop", "adopt", "FRA1"}), 0) << err.str();
  expect_request<v1::AdoptPopRequest>(0, m(kAdmin, "AdoptPop"), R"(pop: "FRA1")");
  EXPECT_THAT(out.str(), HasSubstr("adopt"));
  EXPECT_THAT(out.str(), HasSubstr("the next table is taken, backwards or not"));
  ASSERT_EQ(run({"routes", "--pop", "FRA1"}), 0);
  expect_request<v1::GetRoutesRequest>(0, m(kAdmin, "GetRoutes"), R"(pop: "FRA1")");
  ASSERT_EQ(run({"trace", "--pop", "FRA1", "--client", "[2001:db8::5]:5353", "--vip",
                 "203.0.113.10", "--port", "53", "--protocol", "udp"}),
            0)
      << err.str();
  expect_request<v1::TraceFlowRequest>(0, m(kAdmin, "TraceFlow"), R"(
      client_address: "2001:db8::5" client_port: 5353 vip: "203.0.113.10" port: 53
      protocol: UDP pop: "FRA1")");
  ASSERT_EQ(run({"stats"}), 0);
  expect_request<v1::GetStatsRequest>(0, m(kAdmin, "GetStats"), "");
  ASSERT_EQ(run({"health"}), 0);
  expect_request<v1::GetHealthRequest>(0, m(kAdmin, "GetHealth"), "");
  ASSERT_EQ(run({"health", "--pop", "FRA1", "--accelerator", "web", "--listener", "https"}), 0);
  expect_request<v1::GetHealthRequest>(0, m(kAdmin, "GetHealth"),
                                       R"(pop: "FRA1" accelerator: "web" listener: "https")");
  ASSERT_EQ(run({"stats", "--pop", "SIN1"}), 0);
  expect_request<v1::GetStatsRequest>(0, m(kAdmin, "GetStats"), R"(pop: "SIN1")");

  EXPECT_EQ(run({"trace", "--pop", "FRA1", "--client", "client.example", "--vip", "203.0.113.10",
                 "--port", "53", "--protocol", "udp"}),
            2);
  EXPECT_EQ(err.str(), "onrampctl: --client: \"client.example\" is not an IPv4 or IPv6 address\n");
}

TEST_F(CommandsTest, PopGetFindsOneOrSaysNotFound) {
  server.replies["ListPops"] = R"(pops { id: "FRA1" city: "Frankfurt" } pops { id: "SIN1" })";
  ASSERT_EQ(run({"pop", "get", "FRA1", "-o", "yaml"}), 0);
  EXPECT_THAT(out.str(), HasSubstr("id: FRA1\n"));
  EXPECT_THAT(out.str(), HasSubstr("city: Frankfurt\n"));
  EXPECT_EQ(run({"pop", "get", "IAD1"}), 3);
  EXPECT_EQ(err.str(), "onrampctl: pop: no PoP \"IAD1\"\n");
}

TEST_F(CommandsTest, ServerErrorsBecomeExitCodesAndMessages) {
  server.errors["GetAccelerator"] =
      grpc::Status(grpc::StatusCode::NOT_FOUND, "accelerator: no accelerator \"nope\"");
  EXPECT_EQ(run({"accelerator", "get", "nope"}), 3);
  EXPECT_EQ(err.str(), "onrampctl: accelerator: no accelerator \"nope\"\n");
  EXPECT_EQ(out.str(), "");

  server.errors["CreateAccelerator"] =
      grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "vips[0]: \"1.2.3\" is not an address");
  EXPECT_EQ(run({"accelerator", "create", "web", "--vip", "1.2.3"}), 4);
  EXPECT_EQ(err.str(), "onrampctl: vips[0]: \"1.2.3\" is not an address\n");

  server.errors["CreateAccelerator"] = grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "exists");
  EXPECT_EQ(run({"accelerator", "create", "web", "--vip", "203.0.113.1"}), 6);

  server.errors["DeleteAccelerator"] =
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "accelerator web has listeners");
  EXPECT_EQ(run({"accelerator", "delete", "web"}), 7);

  server.errors["ListPops"] = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
  EXPECT_EQ(run({"pop", "list"}), 8);

  server.errors["ListPops"] = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
  EXPECT_EQ(run({"pop", "list", "--controller", "10.0.0.1:7443"}), 5);
  EXPECT_EQ(err.str(), "onrampctl: controller 10.0.0.1:7443: connection refused\n");

  server.errors["ListPops"] = grpc::Status(grpc::StatusCode::INTERNAL, "");
  EXPECT_EQ(run({"pop", "list"}), 1);
  EXPECT_EQ(err.str(), "onrampctl: failed with gRPC status 13\n");
}

TEST_F(CommandsTest, UpdateRefusalsKeepTheirExitCodes) {
  server.errors["UpdateListener"] = grpc::Status(grpc::StatusCode::NOT_FOUND, "listener: no");
  EXPECT_EQ(run({"listener", "update", "x", "--accelerator", "web", "--ports", "80"}), 3);
  EXPECT_EQ(server.calls.size(), 1u);
  // A conflict (the resource changed since it was read) has its own code.
  server.errors["UpdateEndpoint"] =
      grpc::Status(grpc::StatusCode::ABORTED, "endpoint 192.0.2.1 changed since it was read");
  EXPECT_EQ(run({"endpoint", "update", "192.0.2.1", "--accelerator", "web", "--listener", "x",
                 "--endpoint-group", "g", "--weight", "1"}),
            9);
  EXPECT_EQ(err.str(), "onrampctl: endpoint 192.0.2.1 changed since it was read\n");
}

TEST_F(CommandsTest, ConnectionRefusedByTheConnectorNamesTheFlag) {
  server.refuse = "--plaintext: refused for 10.0.0.1:7443, which is not a loopback address";
  EXPECT_EQ(run({"pop", "list", "--plaintext", "--controller", "10.0.0.1:7443"}), 4);
  EXPECT_EQ(err.str(), "onrampctl: " + server.refuse + "\n");
}

// Issue 13 item 4: several controller replicas. A replica that cannot be
// reached is passed over before anything is sent to it; a read that fails
// once sent goes to the next replica, a write does not.
TEST_F(CommandsTest, AnUnreachableReplicaIsPassedOverForReadsAndWrites) {
  server.down = {"127.0.0.1:1"};
  ASSERT_EQ(run({"--controller", "127.0.0.1:1,127.0.0.1:2", "--plaintext", "accelerator", "list"}),
            0)
      << err.str();
  EXPECT_EQ(server.replicas_opened, (std::vector<std::string>{"127.0.0.1:1", "127.0.0.1:2"}));
  expect_request<v1::ListRequest>(0, m(kAdmin, "ListAccelerators"), "");

  server.replicas_opened.clear();
  server.replies["CreateAccelerator"] = R"(name: "web" enabled: true vips: "203.0.113.10")";
  ASSERT_EQ(run({"--controller", "127.0.0.1:1, [::1]:2", "--plaintext", "accelerator", "create",
                 "web", "--vip", "203.0.113.10"}),
            0)
      << err.str();
  EXPECT_EQ(server.replicas_opened, (std::vector<std::string>{"127.0.0.1:1", "[::1]:2"}));
  ASSERT_EQ(server.calls.size(), 1u);
}

TEST_F(CommandsTest, AReadThatFailsOnOneReplicaIsSentToTheNextAWriteIsNot) {
  FakeServer second;
  server.others["127.0.0.1:2"] = &second;
  server.errors["ListPops"] = grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed");
  server.errors["CreateAccelerator"] = grpc::Status(grpc::StatusCode::UNAVAILABLE, "Socket closed");
  second.replies["ListPops"] = R"(pops { id: "FRA1" })";
  ASSERT_EQ(run({"--controller", "127.0.0.1:1,127.0.0.1:2", "--plaintext", "pop", "list", "-o",
                 "jsonpath={.pops[*].id}"}),
            0)
      << err.str();
  EXPECT_EQ(out.str(), "FRA1\n");
  EXPECT_EQ(server.calls.size(), 1u);
  EXPECT_EQ(second.calls.size(), 1u);

  // A create that may have reached the first replica is not sent again.
  second.calls.clear();
  EXPECT_EQ(run({"--controller", "127.0.0.1:1,127.0.0.1:2", "--plaintext", "accelerator", "create",
                 "web", "--vip", "203.0.113.10"}),
            5);
  EXPECT_EQ(err.str(), "onrampctl: controller 127.0.0.1:1: Socket closed\n");
  EXPECT_EQ(server.calls.size(), 1u);
  EXPECT_TRUE(second.calls.empty());

  // Every replica failing: each is named.
  second.errors["ListPops"] = grpc::Status(grpc::StatusCode::UNAVAILABLE, "Connection refused");
  EXPECT_EQ(run({"--controller", "127.0.0.1:1,127.0.0.1:2", "--plaintext", "pop", "list"}), 5);
  EXPECT_EQ(err.str(),
            "onrampctl: controller 127.0.0.1:1: Socket closed; controller 127.0.0.1:2: "
            "Connection refused\n");
}

TEST_F(CommandsTest, ABadControllerListIsAUsageError) {
  for (const char* list : {"", "a:1,,b:2", "ctl.example.net", "a:1,a:1", "::1:7443"}) {
    EXPECT_EQ(run({"--controller", list, "pop", "list"}), 2) << list;
    EXPECT_THAT(err.str(), HasSubstr("--controller")) << list;
  }
  EXPECT_THAT(err.str(), HasSubstr("takes brackets"));
  EXPECT_TRUE(server.calls.empty());
}

TEST_F(CommandsTest, UsageErrors) {
  EXPECT_EQ(run({}), 2);
  EXPECT_THAT(err.str(), HasSubstr("subcommand is required"));
  EXPECT_EQ(run({"accelerator"}), 2);
  EXPECT_EQ(run({"accelerator", "create", "web"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("--vip is required"));
  EXPECT_EQ(run({"accelerator", "list", "--bogus"}), 2);
  EXPECT_EQ(run({"frobnicate"}), 2);
  EXPECT_EQ(run({"pop", "list", "-o", "xml"}), 2);
  EXPECT_EQ(run({"pop", "list", "--timeout", "0"}), 2);
  EXPECT_TRUE(server.calls.empty());
}

TEST_F(CommandsTest, UnknownCommandsAndFlagsAreNamedWithTheNearestSuggested) {
  EXPECT_EQ(run({"foo"}), 2);
  EXPECT_EQ(err.str(),
            "onrampctl: unknown command \"foo\"; did you mean \"pop\"?\n"
            "Run with --help for usage.\n");
  EXPECT_EQ(run({"acclerator", "list"}), 2);
  EXPECT_THAT(err.str(),
              HasSubstr("unknown command \"acclerator\"; did you mean \"accelerator\"?"));
  EXPECT_EQ(run({"pop", "lst"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("unknown command \"pop lst\"; did you mean \"pop list\"?"));
  EXPECT_EQ(run({"pop", "list", "--outptu", "json"}), 2);
  EXPECT_EQ(err.str(),
            "onrampctl: unknown flag \"--outptu\" for \"pop list\"; did you mean \"--output\"?\n"
            "Run with --help for usage.\n");
  EXPECT_EQ(run({"pop", "list", "--outptu=json"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("unknown flag \"--outptu\" for \"pop list\"; did you mean"));
  // The command's own flags count, and an unknown flag comes before "--vip is required".
  EXPECT_EQ(run({"accelerator", "create", "web", "--vpi", "203.0.113.10"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("unknown flag \"--vpi\" for \"accelerator create\"; did you "
                                   "mean \"--vip\"?"));
  // Nothing close: named, nothing suggested.
  EXPECT_EQ(run({"frobnicate"}), 2);
  EXPECT_EQ(err.str(), "onrampctl: unknown command \"frobnicate\"\nRun with --help for usage.\n");
  EXPECT_EQ(run({"pop", "list", "--zzzzzz"}), 2);
  EXPECT_EQ(err.str(),
            "onrampctl: unknown flag \"--zzzzzz\" for \"pop list\"\nRun with --help for usage.\n");
  // An extra argument to a command that takes none is CLI11's to explain.
  EXPECT_EQ(run({"pop", "list", "extra"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("not expected: extra"));
  EXPECT_EQ(run({"-o", "jsn", "pop", "list"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("\"jsn\" is not an output format (table, wide, json, yaml, "
                                   "jsonpath=EXPR); did you mean \"json\"?"));
  EXPECT_TRUE(server.calls.empty());
}

TEST_F(CommandsTest, OutputWideShowsMoreColumns) {
  server.replies["ListAccelerators"] =
      R"(accelerators { name: "web" enabled: true vips: "203.0.113.10"
                        create_time_ms: 1714471200000 update_time_ms: 1714557600000 })";
  ASSERT_EQ(run({"accelerator", "list", "-o", "wide"}), 0) << err.str();
  EXPECT_EQ(out.str(),
            "NAME  ENABLED  VIPS          UPDATED               CREATED               FLOW LOGS\n"
            "web   yes      203.0.113.10  2024-05-01T10:00:00Z  2024-04-30T10:00:00Z  off\n");
  ASSERT_EQ(run({"accelerator", "list"}), 0);
  EXPECT_EQ(out.str(),
            "NAME  ENABLED  VIPS          UPDATED\n"
            "web   yes      203.0.113.10  2024-05-01T10:00:00Z\n");
  for (std::vector<std::string> list : {std::vector<std::string>{"listener", "list"},
                                        {"endpoint-group", "list"},
                                        {"endpoint", "list"}}) {
    list.insert(list.end(), {"--output", "wide"});
    ASSERT_EQ(run(list), 0) << list[0] << ": " << err.str();
    EXPECT_THAT(out.str(), HasSubstr("  CREATED  UPDATED\n")) << list[0];
  }
  server.replies["ListPops"] = R"(pops { id: "FRA1" iata: "FRA" latitude: 50.0379 })";
  ASSERT_EQ(run({"pop", "list", "-o", "wide"}), 0);
  EXPECT_THAT(out.str(), HasSubstr("IATA  LOCATION   TUNNEL_SOURCE  NACKED  NEXT_HOP  REPLICA\n"));
  EXPECT_THAT(out.str(), HasSubstr("FRA   50.0379,0"));
  // A command with nothing more to show prints its table.
  ASSERT_EQ(run({"health", "-o", "wide"}), 0);
}

TEST_F(CommandsTest, OutputJsonPathPicksFromTheJson) {
  server.replies["ListPops"] =
      R"(pops { id: "FRA1" city: "Frankfurt" tunnel_source { ipv4: "192.0.2.1" } }
         pops { id: "SIN1" city: "Singapore" } config_version: 12)";
  ASSERT_EQ(run({"pop", "list", "-o", "jsonpath={.pops[*].id}"}), 0) << err.str();
  EXPECT_EQ(out.str(), "FRA1 SIN1\n");
  ASSERT_EQ(run({"pop", "list", "-o", "jsonpath={.pops[0].tunnel_source.ipv4} v{.config_version}"}),
            0);
  EXPECT_EQ(out.str(), "192.0.2.1 v12\n");
  ASSERT_EQ(run({"pop", "get", "SIN1", "--output=jsonpath={.city}"}), 0);
  EXPECT_EQ(out.str(), "Singapore\n");

  // A malformed expression is refused before anything is called.
  EXPECT_EQ(run({"pop", "list", "-o", "jsonpath={.pops[0}"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("--output: jsonpath: \"{.pops[0}\" at character 7: a '[' "
                                   "without its ']'"));
  EXPECT_EQ(run({"pop", "list", "-o", "jsonpath"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("jsonpath needs an expression: -o jsonpath='{.name}'"));
  EXPECT_TRUE(server.calls.empty());
  // A field the answer does not have is a usage error too, and prints nothing.
  EXPECT_EQ(run({"pop", "list", "-o", "jsonpath={.pops[*].nmae}"}), 2);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(),
            "onrampctl: --output jsonpath: {.pops[*].nmae}: onramp.v1.Pop has no field \"nmae\"\n");
}

TEST_F(CommandsTest, ApplyUpdatesWhatDiffersConditionalOnTheVersionRead) {
  server.replies["ListAccelerators"] =
      R"(accelerators { name: "web" enabled: true vips: "203.0.113.10" resource_version: 3 })";
  server.replies["ListEndpointGroups"] = R"(
      endpoint_groups { accelerator: "web" listener: "https" name: "fra" region: "eu-central"
                        traffic_dial_percent: 100 health_check { interval_ms: 10000 }
                        resource_version: 7 }
      endpoint_groups { accelerator: "web" listener: "https" name: "sin" resource_version: 8 })";
  std::string path = (std::filesystem::temp_directory_path() /
                      ("onrampctl-apply-" + std::to_string(getpid()) + ".yaml"))
                         .string();
  {
    std::ofstream f(path);
    f << "kind: Accelerator\nname: web\nenabled: true\nvips: [203.0.113.10]\n---\n"
         "kind: EndpointGroup\naccelerator: web\nlistener: https\nname: fra\n"
         "region: eu-central\ntraffic_dial_percent: 40\nhealth_check:\n  interval_ms: 10000\n"
         "  path: /h\n";
  }
  // diff: reads, says, writes nothing; exit 1.
  ASSERT_EQ(run({"diff", "-f", path, "--prune"}), 1) << err.str();
  EXPECT_EQ(out.str(),
            "~ update endpoint group web/https/fra: traffic_dial_percent 100 -> 40; "
            "health_check.path \"\" -> \"/h\"\n"
            "- delete endpoint group web/https/sin\n"
            "0 to create, 1 to update, 1 to delete\n");
  ASSERT_EQ(server.calls.size(), 4u);
  // apply: the fields that differ, on the version read.
  ASSERT_EQ(run({"apply", "-f", path}), 0) << err.str();
  ASSERT_EQ(server.calls.size(), 5u);
  expect_request<v1::UpdateEndpointGroupRequest>(4, m(kAdmin, "UpdateEndpointGroup"), R"(
      endpoint_group { name: "fra" accelerator: "web" listener: "https" region: "eu-central"
                       traffic_dial_percent: 40 health_check { path: "/h" interval_ms: 10000 }
                       resource_version: 7 }
      update_mask { paths: "traffic_dial_percent" paths: "health_check.path" })");
  // Someone changed it meanwhile: a conflict, exit 9.
  server.errors["UpdateEndpointGroup"] =
      grpc::Status(grpc::StatusCode::ABORTED, "endpoint group \"fra\" changed since it was read");
  EXPECT_EQ(run({"apply", "-f", path}), 9);
  EXPECT_EQ(err.str(),
            "onrampctl: endpoint group web/https/fra: endpoint group \"fra\" changed since it "
            "was read\n");
  // A file that does not read calls nothing: exit 4.
  { std::ofstream(path) << "kind: Endpoint\naccelerator: web\n"; }
  EXPECT_EQ(run({"apply", "-f", path}), 4);
  EXPECT_TRUE(server.calls.empty());
  std::filesystem::remove(path);
}

TEST_F(CommandsTest, QueryIsJsonPathForScripts) {
  server.replies["ListPops"] =
      R"(pops { id: "FRA1" city: "Frankfurt" } pops { id: "SIN1" } config_version: 12)";
  ASSERT_EQ(run({"pop", "list", "--query", "{.pops[*].id} v{.config_version}"}), 0) << err.str();
  EXPECT_EQ(out.str(), "FRA1 SIN1 v12\n");
  ASSERT_EQ(run({"--query={.pops[0].city}", "pop", "list"}), 0) << err.str();
  EXPECT_EQ(out.str(), "Frankfurt\n");
  // Checked like -o jsonpath=, and not both at once.
  EXPECT_EQ(run({"pop", "list", "--query", "{.pops[0}"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("--query: jsonpath: \"{.pops[0}\" at character 7"));
  EXPECT_EQ(run({"pop", "list", "--query", "{.config_version}", "-o", "json"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("excludes"));
  EXPECT_EQ(run({"pop", "list", "--query", "{.pops[*].nmae}"}), 2);
  EXPECT_THAT(err.str(), HasSubstr("onramp.v1.Pop has no field \"nmae\""));
}

TEST_F(CommandsTest, VersionShowsTheClientsAndTheControllers) {
  server.replies["GetVersion"] = R"pb(version: "9.8.7 (git abcdef0)")pb";
  ASSERT_EQ(run({"version"}), 0) << err.str();
  expect_request<v1::GetVersionRequest>(0, m(kAdmin, "GetVersion"), "");
  std::string client = opts::version();
  EXPECT_EQ(out.str(), "client:      " + client + "\ncontroller:  9.8.7 (git abcdef0)\n");
  ASSERT_EQ(run({"version", "-o", "json"}), 0);
  EXPECT_THAT(out.str(), HasSubstr("\"client\": \"" + client + "\""));
  EXPECT_THAT(out.str(), HasSubstr("\"controller\": \"9.8.7 (git abcdef0)\""));
  ASSERT_EQ(run({"version", "-o", "jsonpath={.controller}"}), 0);
  EXPECT_EQ(out.str(), "9.8.7 (git abcdef0)\n");

  // No controller: the client's version still, the reason, the unavailable code.
  server.errors["GetVersion"] = grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused");
  EXPECT_EQ(run({"version"}), 5);
  EXPECT_EQ(out.str(), "client:  " + client + "\n");
  EXPECT_EQ(err.str(), "onrampctl: controller 127.0.0.1:7443: connection refused\n");
  // A controller from before GetVersion says so in words.
  server.errors["GetVersion"] = grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "");
  EXPECT_EQ(run({"version"}), 1);
  EXPECT_EQ(err.str(), "onrampctl: controller 127.0.0.1:7443 is too old to say its version\n");
}

TEST_F(CommandsTest, VersionPrintsTheCommonVersionLine) {
  EXPECT_EQ(run({"--version"}), 0);
  EXPECT_EQ(out.str(), opts::version_line("onrampctl") + "\n");
  EXPECT_TRUE(server.calls.empty());
}

TEST_F(CommandsTest, HelpShowsExamples) {
  EXPECT_EQ(run({"--help"}), 0);
  EXPECT_THAT(out.str(), HasSubstr("accelerator"));
  EXPECT_THAT(out.str(), HasSubstr("Exit codes"));
  EXPECT_EQ(run({"listener", "create", "--help"}), 0);
  EXPECT_THAT(out.str(), HasSubstr("Examples:\n  onrampctl listener create https"));
  EXPECT_THAT(out.str(), HasSubstr("--ports"));
}

TEST_F(CommandsTest, GlobalFlagsAndEnvironment) {
  ASSERT_EQ(run({"pop", "list"}), 0);
  ASSERT_EQ(server.controller_opened.size(), 1u);
  EXPECT_EQ(server.controller_opened[0].controller, "127.0.0.1:7443");
  EXPECT_EQ(server.controller_opened[0].timeout_s, 10);
  EXPECT_FALSE(server.controller_opened[0].plaintext);

  setenv("ONRAMP_CONTROLLER", "ctl.example:7443", 1);
  setenv("ONRAMP_TOKEN", "s3cret", 1);
  setenv("ONRAMP_TLS_CA", "/etc/onramp/ca.pem", 1);
  ASSERT_EQ(run({"pop", "list"}), 0);
  const Globals& g = server.controller_opened.back();
  EXPECT_EQ(g.controller, "ctl.example:7443");
  EXPECT_EQ(g.token, "s3cret");
  EXPECT_EQ(g.tls.ca, "/etc/onramp/ca.pem");

  // Flags beat the environment, and may come after the subcommand.
  ASSERT_EQ(run({"pop", "list", "--controller", "[::1]:7000", "--plaintext", "--timeout", "2.5",
                 "--tls-cert", "c.pem", "--tls-key", "k.pem", "-o", "json"}),
            0)
      << err.str();
  const Globals& h = server.controller_opened.back();
  EXPECT_EQ(h.controller, "[::1]:7000");
  EXPECT_TRUE(h.plaintext);
  EXPECT_EQ(h.timeout_s, 2.5);
  EXPECT_EQ(h.tls.cert, "c.pem");
  EXPECT_EQ(h.tls.key, "k.pem");
  EXPECT_EQ(h.format, Format::kJson);
  EXPECT_EQ(out.str(), "{\n \"pops\": [],\n \"config_version\": \"0\"\n}\n");
}

TEST_F(CommandsTest, DataplaneCommandsUseTheSocketNotTheController) {
  ASSERT_EQ(run({"dataplane", "health"}), 0);
  expect_request<v1::DataplaneHealthRequest>(0, m(kDataplane, "Health"), "");
  EXPECT_TRUE(server.controller_opened.empty());
  ASSERT_EQ(server.dataplane_opened.size(), 1u);
  EXPECT_EQ(server.dataplane_opened[0].dataplane_socket, "/run/onramp/dataplane.sock");

  setenv("ONRAMP_DATAPLANE_SOCKET", "/tmp/env.sock", 1);
  ASSERT_EQ(run({"dataplane", "stats"}), 0);
  expect_request<v1::DataplaneStatsRequest>(0, m(kDataplane, "GetStats"), "");
  EXPECT_EQ(server.dataplane_opened.back().dataplane_socket, "/tmp/env.sock");

  ASSERT_EQ(run({"dataplane", "--socket", "/tmp/a.sock", "health"}), 0);
  EXPECT_EQ(server.dataplane_opened.back().dataplane_socket, "/tmp/a.sock");
  ASSERT_EQ(run({"dataplane", "health", "--socket", "/tmp/b.sock"}), 0);
  EXPECT_EQ(server.dataplane_opened.back().dataplane_socket, "/tmp/b.sock");
}

TEST_F(CommandsTest, DataplaneTrace) {
  server.replies["TraceFlow"] = R"(listener: "web" endpoint: "198.51.100.11"
      decided_by: "maglev" explanation: "VIP 203.0.113.10 port 443/tcp: listener web"
      explanation: "maglev slot 7 of 65537: 198.51.100.11" table_version: 3)";
  ASSERT_EQ(run({"dataplane", "trace", "--client", "198.51.100.200:40000", "--vip", "203.0.113.10",
                 "--port", "443", "--protocol", "tcp"}),
            0)
      << err.str();
  expect_request<v1::DataplaneTraceRequest>(0, m(kDataplane, "TraceFlow"), R"(
      client_address: "198.51.100.200" client_port: 40000 vip: "203.0.113.10" port: 443
      protocol: TCP)");
  EXPECT_EQ(out.str(),
            "listener:       web\n"
            "endpoint:       198.51.100.11\n"
            "decided_by:     maglev\n"
            "table_version:  3\n"
            "explanation:\n"
            "  1. VIP 203.0.113.10 port 443/tcp: listener web\n"
            "  2. maglev slot 7 of 65537: 198.51.100.11\n");
  EXPECT_EQ(run({"dataplane", "trace", "--client", "198.51.100.200", "--vip", "203.0.113.10",
                 "--port", "0", "--protocol", "tcp"}),
            2);
}

class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char name[] = "/tmp/onrampctl-test-XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    close(fd);
    path = name;
    std::ofstream(path) << text;
  }
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
};

constexpr char kTable[] = R"(
version: 7
pop: "FRA1"
tunnel_source { ipv4: "192.0.2.1" }
next_hop_mac: "02:00:00:00:00:fe"
listeners {
  name: "web" vips: "203.0.113.10" protocol: TCP port_ranges { first: 80 }
  endpoints { address: "198.51.100.11" weight: 128 }
}
)";

TEST_F(CommandsTest, DataplaneApplySendsTheValidatedTable) {
  TempFile file(kTable);
  server.replies["ApplyTable"] = "version: 7 build_us: 1200 publish_us: 35";
  ASSERT_EQ(run({"dataplane", "apply", file.path}), 0) << err.str();
  v1::ApplyTableRequest expected;
  ASSERT_TRUE(pb::TextFormat::ParseFromString(kTable, expected.mutable_table()));
  ASSERT_EQ(server.calls.size(), 1u);
  EXPECT_EQ(server.calls[0].method, m(kDataplane, "ApplyTable"));
  EXPECT_EQ(server.calls[0].request->ShortDebugString(), expected.ShortDebugString());
  EXPECT_EQ(out.str(),
            "version:     7\n"
            "build_us:    1200\n"
            "publish_us:  35\n");
}

TEST_F(CommandsTest, DataplaneApplyRefusesABadTableBeforeSendingIt) {
  std::string bad = kTable;
  bad.replace(bad.find("198.51.100.11"), 13, "198.51.100.300");
  TempFile file(bad);
  EXPECT_EQ(run({"dataplane", "apply", file.path}), 4);
  EXPECT_THAT(err.str(), HasSubstr("onrampctl: " + file.path + ": listeners[0].endpoints[0]"));
  EXPECT_TRUE(server.calls.empty());

  TempFile syntax("version: 7\nbogus: 1\n");
  EXPECT_EQ(run({"dataplane", "apply", syntax.path}), 4);
  EXPECT_THAT(err.str(), HasSubstr("line 2"));
  EXPECT_TRUE(server.calls.empty());

  // --no-validate leaves the check to the dataplane, whose error is shown.
  server.errors["ApplyTable"] = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                             "table.listeners[0].endpoints[0].address: bad");
  EXPECT_EQ(run({"dataplane", "apply", "--no-validate", file.path}), 4);
  EXPECT_EQ(server.calls.size(), 1u);
  EXPECT_EQ(err.str(), "onrampctl: table.listeners[0].endpoints[0].address: bad\n");

  EXPECT_EQ(run({"dataplane", "apply", "/nonexistent/table"}), 2);
  EXPECT_EQ(err.str(), "onrampctl: /nonexistent/table: No such file or directory\n");
}

// The generated bash script parses, and completes commands, options and
// option values.
TEST_F(CommandsTest, BashCompletionCompletes) {
  ASSERT_EQ(run({"completion", "bash"}), 0);
  std::string script = out.str();
  EXPECT_THAT(script, HasSubstr("complete -F _onrampctl onrampctl"));
  TempFile file(script);
  auto complete = [&](const std::string& words, int cword) {
    std::string cmd = "bash -c 'source " + file.path + "; COMP_WORDS=(" + words +
                      "); COMP_CWORD=" + std::to_string(cword) +
                      "; _onrampctl; echo \"${COMPREPLY[*]}\"'";
    std::string result;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    while (p && fgets(buf, sizeof buf, p)) result += buf;
    if (p) pclose(p);
    return result;
  };
  EXPECT_EQ(complete("onrampctl acc", 1), "accelerator\n");
  EXPECT_EQ(complete("onrampctl accelerator \"\"", 2), "create get list update delete\n");
  EXPECT_EQ(complete("onrampctl listener create x --protocol \"\"", 5), "tcp udp tcp_udp\n");
  EXPECT_EQ(complete("onrampctl listener create x --aff", 4), "--affinity\n");
  EXPECT_EQ(complete("onrampctl pop list --out", 3), "--output\n");
  EXPECT_EQ(complete("onrampctl pop list -o \"\"", 4), "table wide json yaml jsonpath=\n");
  EXPECT_EQ(complete("onrampctl ver", 1), "version\n");
  EXPECT_EQ(complete("onrampctl dataplane health --so", 3), "--socket\n");

  ASSERT_EQ(run({"completion", "zsh"}), 0);
  EXPECT_THAT(out.str(), HasSubstr("bashcompinit"));
  EXPECT_EQ(run({"completion", "fish"}), 2);
}

}  // namespace
}  // namespace onramp::cli
