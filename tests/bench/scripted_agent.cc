// A PoP agent whose measurements are given on the command line, for tests of
// what the controller computes from them (controller_ha_relay_test.py): it
// says Hello to the first controller of its list, reports a healthy
// dataplane with BGP announced and the given probe results every 200 ms,
// ACKs every table and prints each one as a JSON line (its version and each
// endpoint's relay). When its session ends it says Hello to the next
// controller 200 ms later, with the version and content digest it runs, as
// onramp-agent does.
//
//   scripted-agent --controller ADDR[,ADDR...] --pop FRA1 --tunnel 192.0.2.11
//                  [--result ACC/LISTENER/GROUP/ADDRESS=RTT]... [--peer POP=RTT]...
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/routing/route_inputs.h"
#include "onramp/v1/pop_session.grpc.pb.h"

namespace {

namespace v1 = onramp::v1;
using namespace std::chrono_literals;

std::vector<std::string> split(const std::string& s, char by) {
  std::vector<std::string> out;
  size_t at = 0;
  for (size_t next; (next = s.find(by, at)) != std::string::npos; at = next + 1)
    out.push_back(s.substr(at, next - at));
  out.push_back(s.substr(at));
  return out;
}

// A non-negative number of milliseconds, the whole of `text`.
bool milliseconds(const std::string& text, double& out) {
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  return !text.empty() && *end == 0 && out >= 0;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> controllers, results, peers;
  std::string pop, tunnel;
  CLI::App app("A PoP agent whose probe results are given on the command line.", "scripted-agent");
  app.add_option("--controller", controllers, "the controllers' PoP APIs, tried in turn")
      ->required()
      ->delimiter(',');
  app.add_option("--pop", pop, "the PoP it is")->required();
  app.add_option("--tunnel", tunnel, "its tunnel source")->required();
  app.add_option("--result", results, "a healthy endpoint's RTT: ACC/LISTENER/GROUP/ADDRESS=MS");
  app.add_option("--peer", peers, "a peer PoP's RTT: POP=MS");
  CLI11_PARSE(app, argc, argv);

  v1::ProbeReport report;
  for (const std::string& arg : results) {
    const auto eq = arg.find('=');
    const auto key = split(arg.substr(0, eq), '/');
    double rtt;
    if (eq == std::string::npos || key.size() != 4 || !milliseconds(arg.substr(eq + 1), rtt)) {
      std::fprintf(stderr, "scripted-agent: --result %s: not ACC/LISTENER/GROUP/ADDRESS=MS\n",
                   arg.c_str());
      return 2;
    }
    v1::ProbeResult* r = report.add_results();
    r->set_accelerator(key[0]);
    r->set_listener(key[1]);
    r->set_endpoint_group(key[2]);
    r->set_address(key[3]);
    r->set_rtt_ms(rtt);
    r->set_healthy(true);
    r->set_known(true);
    r->set_consecutive(3);
  }
  for (const std::string& arg : peers) {
    const auto eq = arg.find('=');
    double rtt;
    if (eq == std::string::npos || !milliseconds(arg.substr(eq + 1), rtt)) {
      std::fprintf(stderr, "scripted-agent: --peer %s: not POP=MS\n", arg.c_str());
      return 2;
    }
    v1::PeerResult* p = report.add_peers();
    p->set_pop(arg.substr(0, eq));
    p->set_rtt_ms(rtt);
    p->set_sent(10);
  }

  uint64_t applied = 0, inputs = 0;
  std::string digest;
  for (size_t turn = 0;; ++turn) {
    const std::string& target = controllers[turn % controllers.size()];
    auto stub = v1::PopSessionService::NewStub(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    auto stream = stub->Connect(&ctx);
    std::mutex write_mu;  // a stream takes one Write at a time
    v1::AgentMessage hello;
    v1::Hello* h = hello.mutable_hello();
    h->set_pop(pop);
    h->set_iata(pop.substr(0, 3));
    h->set_city(pop);
    h->set_country("DE");
    h->mutable_tunnel_source()->set_ipv4(tunnel);
    h->set_agent_version("scripted-agent");
    h->set_applied_version(applied);
    h->set_applied_digest(digest);
    h->set_route_inputs_version(inputs);
    *h->mutable_probes() = report;
    std::atomic<bool> open{stream->Write(hello)};
    if (open) std::printf("{\"event\": \"session\", \"controller\": \"%s\"}\n", target.c_str());
    std::fflush(stdout);
    std::thread reporter([&] {
      while (open) {
        v1::AgentMessage status;
        status.mutable_status()->set_dataplane_healthy(true);
        status.mutable_status()->set_bgp_announced(true);
        v1::AgentMessage probes;
        *probes.mutable_probes() = report;
        {
          std::lock_guard lock(write_mu);
          if (!stream->Write(status) || !stream->Write(probes)) break;
        }
        std::this_thread::sleep_for(200ms);
      }
    });
    v1::ControllerMessage m;
    while (open && stream->Read(&m)) {
      const v1::TableUpdate& u = m.update();
      std::string relays;
      for (const auto& l : u.table().listeners())
        for (const auto& e : l.endpoints())
          relays += std::string(relays.empty() ? "" : ", ") + "\"" + e.address() + "\": \"" +
                    e.relay() + "\"";
      std::printf("{\"event\": \"table\", \"version\": %llu, \"at_ms\": %lld, \"relay\": {%s}}\n",
                  static_cast<unsigned long long>(u.version()), static_cast<long long>(now_ms()),
                  relays.c_str());
      std::fflush(stdout);
      applied = u.version();
      digest = onramp::ctl::content_digest(u.table(), u.probe_plan());
      inputs = u.route_inputs().config_version();
      v1::AgentMessage ack;
      ack.mutable_ack()->set_version(u.version());
      ack.mutable_ack()->set_nonce(u.nonce());
      ack.mutable_ack()->set_ok(true);
      std::lock_guard lock(write_mu);
      if (!stream->Write(ack)) break;
    }
    open = false;
    ctx.TryCancel();
    reporter.join();
    (void)stream->Finish();
    std::printf("{\"event\": \"ended\", \"controller\": \"%s\"}\n", target.c_str());
    std::fflush(stdout);
    std::this_thread::sleep_for(200ms);
  }
}
