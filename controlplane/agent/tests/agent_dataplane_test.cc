// onramp-agent (the binary) with a real onramp-dataplane and an in-process
// controller: tables pushed are applied and ACKed, bad ones NACKed; killing
// the agent leaves the dataplane forwarding on its table; a restarted agent
// puts the last good table back with no controller; a restarted dataplane
// gets it back from the running agent; a killed dataplane is noticed at once.
// Needs root (DPDK); skipped without.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "controlplane/agent/dataplane_client.h"
#include "controlplane/agent/tests/fakes.h"
#include "tests/unit/packet_builder.h"

namespace onramp::agent::test {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// A child process with its output appended to a log file.
class Process {
 public:
  Process(const std::vector<std::string>& args, const std::string& log) {
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {  // only async-signal-safe calls until exec
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Process() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // Sends `sig` and waits; the exit status, or 128 + signal.
  int stop(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  bool running() { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

class AgentDataplaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "onramp-dataplane needs root";
    agent_bin = env("ONRAMP_AGENT_BIN");
    dataplane_bin = env("ONRAMP_DATAPLANE_BIN");
    table_file = env("ONRAMP_DEMO_TABLE");
    if (agent_bin.empty() || dataplane_bin.empty() || table_file.empty())
      GTEST_SKIP() << "set ONRAMP_AGENT_BIN, ONRAMP_DATAPLANE_BIN and ONRAMP_DEMO_TABLE";
    socket = dir.path + "/dp.sock";
    idle_pcap = dir.path + "/idle.pcap";
    // A pcap header and no packet: the port stays idle.
    const uint32_t header[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
    std::ofstream(idle_pcap, std::ios::binary)
        .write(reinterpret_cast<const char*>(header), sizeof header);
    client = make_grpc_dataplane_client(socket, {.apply = 10s, .read = 1s});
  }

  // rx: the capture the port replays once (default: none, the port idles);
  // table: the table file (default: the demo's).
  std::unique_ptr<Process> start_dataplane(const std::string& rx = "",
                                           const std::string& table = "") {
    auto p = std::make_unique<Process>(
        std::vector<std::string>{
            dataplane_bin, "--no-pci", "--no-huge", "-m", "512", "--no-shconf", "--no-telemetry",
            "--file-prefix=agent-test-" + std::to_string(getpid()), "-l", "0", "--log-level=error",
            "--vdev=net_pcap0,rx_pcap=" + (rx.empty() ? idle_pcap : rx) + ",tx_pcap=" + dir.path +
                "/tx.pcap",
            "--", "--table", table.empty() ? table_file : table, "--api-socket", socket,
            "--flows-per-lcore", "4096"},
        dir.path + "/dataplane.log");
    // Up when it answers; a running agent may already have replaced its
    // version 1.
    EXPECT_TRUE(wait_answers(30s)) << log("dataplane.log");
    return p;
  }

  // status_ms: its status rounds' interval.
  std::unique_ptr<Process> start_agent(const std::string& controller,
                                       const std::vector<std::string>& more = {},
                                       const std::string& status_ms = "100") {
    std::vector<std::string> args{agent_bin,
                                  "--controller",
                                  controller,
                                  "--plaintext",
                                  "--pop",
                                  "FRA1",
                                  "--city",
                                  "Frankfurt",
                                  "--country",
                                  "DE",
                                  "--lat",
                                  "50.03",
                                  "--lon",
                                  "8.57",
                                  "--tunnel-source-v4",
                                  "192.0.2.1",
                                  "--tunnel-source-v6",
                                  "2001:db8:f1::1",
                                  "--next-hop-mac",
                                  "02:00:00:00:00:fe",
                                  "--dataplane-socket",
                                  socket,
                                  "--state-dir",
                                  dir.path + "/state",
                                  "--status-interval-ms",
                                  status_ms};
    args.insert(args.end(), more.begin(), more.end());
    return std::make_unique<Process>(args, dir.path + "/agent.log");
  }

  // Waits until the dataplane reports table version `v`.
  bool wait_version(uint64_t v, std::chrono::milliseconds timeout = 10s) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      v1::DataplaneHealthResponse h;
      if (client->health(h).ok() && h.table_version() == v) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  bool wait_answers(std::chrono::milliseconds timeout) {
    auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      v1::DataplaneHealthResponse h;
      if (client->health(h).ok()) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  uint64_t version() {
    v1::DataplaneHealthResponse h;
    return client->health(h).ok() ? h.table_version() : 0;
  }

  std::string log(const std::string& name) {
    std::ifstream in(dir.path + "/" + name);
    std::stringstream s;
    s << in.rdbuf();
    return name + ":\n" + s.str();
  }

  // The demo table as the controller sends it: no next hop (the PoP's own).
  v1::ForwardingTable controller_table() {
    std::ifstream in(table_file);
    std::stringstream s;
    s << in.rdbuf();
    v1::ForwardingTable t;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(s.str(), &t));
    t.clear_next_hop_mac();
    t.clear_version();
    return t;
  }

  TempDir dir;
  std::string agent_bin, dataplane_bin, table_file, socket, idle_pcap;
  std::unique_ptr<DataplaneClient> client;
};

TEST_F(AgentDataplaneTest, KeepsTheDataplaneOnTheLastGoodTable) {
  auto dataplane = start_dataplane();
  EXPECT_EQ(version(), 1u);  // the demo table
  auto controller = std::make_unique<ControllerServer>();
  ASSERT_TRUE(controller->ok());
  auto agent = start_agent(controller->address());

  auto hello = controller->controller.wait_for([](auto& m) { return m.has_hello(); }, 10s);
  ASSERT_TRUE(hello) << log("agent.log");
  EXPECT_EQ(hello->hello().pop(), "FRA1");
  EXPECT_EQ(hello->hello().applied_version(), 1u);

  // A table from the controller: applied by the real dataplane, ACKed.
  ASSERT_TRUE(controller->controller.send_update(5, "n5", controller_table()));
  auto ack = controller->controller.wait_for(
      [](auto& m) { return m.has_ack() && m.ack().version() == 5; }, 10s);
  ASSERT_TRUE(ack) << log("agent.log");
  EXPECT_TRUE(ack->ack().ok()) << ack->ack().error();
  EXPECT_EQ(version(), 5u);

  // One the dataplane would refuse: NACKed by the agent, never applied.
  v1::ForwardingTable bad = controller_table();
  bad.set_mtu(100);
  ASSERT_TRUE(controller->controller.send_update(6, "n6", bad));
  auto nack = controller->controller.wait_for(
      [](auto& m) { return m.has_ack() && m.ack().version() == 6; }, 10s);
  ASSERT_TRUE(nack);
  EXPECT_FALSE(nack->ack().ok());
  EXPECT_NE(nack->ack().error().find("table.mtu"), std::string::npos) << nack->ack().error();
  EXPECT_EQ(version(), 5u);

  // Status reaches the controller.
  auto status = controller->controller.wait_for(
      [](auto& m) { return m.has_status() && m.status().stats().table_version() == 5; }, 10s);
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->status().dataplane_healthy());

  // The agent dies: the dataplane keeps its table.
  agent->stop(SIGKILL);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(version(), 5u);
  EXPECT_TRUE(dataplane->running());

  // Controller gone, dataplane restarted on its file (version 1): a new
  // agent puts version 5 back from disk on its own.
  controller->shutdown();
  controller.reset();
  EXPECT_EQ(dataplane->stop(SIGTERM), 0) << log("dataplane.log");
  dataplane = start_dataplane();
  EXPECT_EQ(version(), 1u);
  agent = start_agent("127.0.0.1:1");
  EXPECT_TRUE(wait_version(5)) << log("agent.log");

  // The dataplane restarts under the running agent: it gets version 5 back.
  EXPECT_EQ(dataplane->stop(SIGTERM), 0);
  dataplane = start_dataplane();
  EXPECT_TRUE(wait_version(5)) << log("agent.log");

  EXPECT_EQ(agent->stop(SIGTERM), 0) << log("agent.log");
  EXPECT_EQ(version(), 5u);

  // The agent's lines are logfmt, each naming the program and the PoP.
  std::string text = log("agent.log");
  EXPECT_NE(text.find(" prog=onramp-agent pop=FRA1 msg=\"table applied\" version=5 "),
            std::string::npos)
      << text;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("ts=", 0) != 0) continue;  // not ours (a child's output, say)
    EXPECT_NE(line.find(" prog=onramp-agent pop=FRA1 "), std::string::npos) << line;
  }
}

// A dataplane killed is noticed when its socket closes, not at the agent's
// next status round: with rounds 3 s apart, killed 0.5 s after a round, the
// controller hears that the dataplane is unhealthy (and BIRD would withdraw
// its VIPs) within a second, not 2.5 s later.
TEST_F(AgentDataplaneTest, NoticesADeadDataplaneAtOnce) {
  auto dataplane = start_dataplane();
  auto controller = std::make_unique<ControllerServer>();
  ASSERT_TRUE(controller->ok());
  auto agent = start_agent(controller->address(), {}, "3000");
  // The first round at start may come before the session and not reach the
  // controller; the second does, 3 s later.
  auto healthy = [](const v1::AgentMessage& m) {
    return m.has_status() && m.status().dataplane_healthy();
  };
  ASSERT_TRUE(controller->controller.wait_for(healthy, 10s)) << log("agent.log");
  std::this_thread::sleep_for(500ms);  // past the watch's first look at the connection

  const auto killed = std::chrono::steady_clock::now();
  EXPECT_EQ(dataplane->stop(SIGKILL), 128 + SIGKILL);
  auto unhealthy = controller->controller.wait_for(
      [](const v1::AgentMessage& m) { return m.has_status() && !m.status().dataplane_healthy(); },
      5s);
  ASSERT_TRUE(unhealthy) << log("agent.log");
  EXPECT_LT(std::chrono::steady_clock::now() - killed, 1s) << log("agent.log");
  EXPECT_NE(log("agent.log").find("msg=\"the dataplane does not answer\""), std::string::npos);
}

// /metrics of a real agent over a real dataplane, scraped with curl: the
// dataplane's counters per listener and endpoint, and its start time, which
// moves when the dataplane restarts while the counters stay monotonic.
TEST_F(AgentDataplaneTest, ServesMetricsScrapedWithCurl) {
  auto dataplane = start_dataplane();
  auto controller = std::make_unique<ControllerServer>();
  ASSERT_TRUE(controller->ok());
  // A port nobody holds now: bind 0, read it, close.
  int port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::close(fd);
  }
  auto agent =
      start_agent(controller->address(), {"--metrics-listen", "127.0.0.1:" + std::to_string(port)});
  auto scrape = [&] {
    std::string out;
    std::string cmd = "curl -s --max-time 5 http://127.0.0.1:" + std::to_string(port) + "/metrics";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    pclose(p);
    return out;
  };
  std::string body;
  for (int i = 0; i < 100 && body.find("onramp_dataplane_up{pop=\"FRA1\"} 1") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(100ms);
    body = scrape();
  }
  ASSERT_NE(body.find("onramp_dataplane_up{pop=\"FRA1\"} 1"), std::string::npos)
      << body << log("agent.log");
  EXPECT_NE(body.find("onramp_new_flows_total{pop=\"FRA1\",accelerator=\"\",listener=\"web\","
                      "endpoint_group=\"eu-central\",endpoint=\"198.51.100.11\"} 0"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("onramp_table_version{pop=\"FRA1\"} 1"), std::string::npos) << body;
  EXPECT_NE(body.find("# TYPE onramp_dataplane_dropped_packets_total counter"), std::string::npos);
  auto start_time = [](const std::string& text) {
    const std::string key = "onramp_dataplane_start_time_seconds{pop=\"FRA1\"} ";
    size_t at = text.find(key);
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + key.size()));
  };
  double first = start_time(body);
  EXPECT_GT(first, 1e9) << body;

  // The dataplane restarts: the scrape says so by its start time.
  EXPECT_EQ(dataplane->stop(SIGTERM), 0);
  for (int i = 0; i < 50 && body.find("onramp_dataplane_up{pop=\"FRA1\"} 0") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(100ms);
    body = scrape();
  }
  EXPECT_NE(body.find("onramp_dataplane_up{pop=\"FRA1\"} 0"), std::string::npos) << body;
  std::this_thread::sleep_for(1500ms);
  dataplane = start_dataplane();
  double second = -1;
  for (int i = 0; i < 100 && second <= first + 1; ++i) {
    std::this_thread::sleep_for(100ms);
    second = start_time(body = scrape());
  }
  EXPECT_GT(second, first + 1) << body;
  EXPECT_EQ(agent->stop(SIGTERM), 0) << log("agent.log");
}

// A capture of `flows` TCP connections to the demo's web VIP, each a SYN, an
// ACK and a FIN+ACK from its own client port.
void write_flows_pcap(const std::string& path, uint16_t flows) {
  std::ofstream out(path, std::ios::binary);
  const uint32_t header[6] = {0xa1b2c3d4, 0x00040002, 0, 0, 65535, 1};
  out.write(reinterpret_cast<const char*>(header), sizeof header);
  uint32_t usec = 0;
  for (uint16_t f = 0; f < flows; ++f)
    for (uint8_t flags : {uint8_t{0x02}, uint8_t{0x10}, uint8_t{0x11}}) {
      using namespace onramp::test;
      Bytes frame = cat(ether(0x0800), ipv4("100.64.0.7", "203.0.113.10", 6,
                                            tcp(static_cast<uint16_t>(40000 + f), 80, flags)));
      const uint32_t rec[4] = {1, usec++, static_cast<uint32_t>(frame.size()),
                               static_cast<uint32_t>(frame.size())};
      out.write(reinterpret_cast<const char*>(rec), sizeof rec);
      out.write(reinterpret_cast<const char*>(frame.data()),
                static_cast<std::streamsize>(frame.size()));
    }
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST_F(AgentDataplaneTest, FlowLogsReachTheAgentsFilesAndRotate) {
  // The demo table with every flow of its web listener logged.
  std::ifstream in(table_file);
  std::stringstream text;
  text << in.rdbuf();
  std::string table = text.str();
  const std::string web = "name: \"web\"";
  ASSERT_NE(table.find(web), std::string::npos);
  table.replace(table.find(web), web.size(), web + " flow_log_sample_ppm: 1000000");
  const std::string table_path = dir.path + "/logged.textproto";
  std::ofstream(table_path) << table;
  constexpr uint16_t kFlows = 12;
  const std::string pcap = dir.path + "/flows.pcap";
  write_flows_pcap(pcap, kFlows);

  // The port replays the capture at start; the records wait on the ring
  // until the agent takes them (its controller never answers: the
  // dataplane keeps its table).
  auto dataplane = start_dataplane(pcap, table_path);
  const std::string logs = dir.path + "/flows";
  auto agent = start_agent("127.0.0.1:1", {"--flow-log-dir", logs, "--flow-log-max-bytes", "4096",
                                           "--flow-log-files", "3"});
  std::vector<std::string> lines;
  auto end = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < end) {
    lines.clear();
    for (const char* name : {"/flows.log.2", "/flows.log.1", "/flows.log"})
      for (const std::string& l : lines_of(logs + name)) lines.push_back(l);
    if (lines.size() >= 2 * kFlows) break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(lines.size(), 2u * kFlows) << log("agent.log") << log("dataplane.log");
  // Rotated at 4096 bytes: flows.log.1 is full, flows.log has the rest.
  EXPECT_LE(std::filesystem::file_size(logs + "/flows.log.1"), 4096u);
  EXPECT_GT(std::filesystem::file_size(logs + "/flows.log.1") + 400, 4096u);
  int starts = 0, ends = 0;
  for (const std::string& l : lines) {
    EXPECT_NE(l.find(R"("pop":"FRA1","accelerator":"","listener":"web","protocol":"tcp",)"
                     R"("client_ip":"100.64.0.7")"),
              std::string::npos)
        << l;
    EXPECT_NE(l.find(R"("accelerator_ip":"203.0.113.10","accelerator_port":80,"endpoint_ip":")"),
              std::string::npos)
        << l;
    EXPECT_EQ(l.find(R"("endpoint_ip":"",)"), std::string::npos) << l;
    EXPECT_NE(l.find(R"("action":"ACCEPT")"), std::string::npos) << l;
    if (l.find(R"({"event":"start",)") == 0) {
      ++starts;
      EXPECT_NE(l.find(R"("packets":1,"bytes":40,)"), std::string::npos) << l;
    } else if (l.find(R"({"event":"end","end_reason":"fin",)") == 0) {
      ++ends;
      EXPECT_NE(l.find(R"("packets":2,"bytes":80,)"), std::string::npos) << l;
    }
  }
  EXPECT_EQ(starts, kFlows);
  EXPECT_EQ(ends, kFlows);
  v1::DataplaneStats stats;
  ASSERT_TRUE(client->stats(stats).ok());
  EXPECT_EQ(stats.flow_log_records(), 2u * kFlows);
  EXPECT_EQ(stats.flow_log_dropped(), 0u);
  EXPECT_EQ(stats.flow_log_flows(), kFlows);
  std::printf("a flow log line: %s\n", lines.back().c_str());
  // The dataplane stops cleanly with the agent's stream open.
  EXPECT_EQ(dataplane->stop(SIGTERM), 0) << log("dataplane.log");
  EXPECT_TRUE(agent->running());
}

}  // namespace
}  // namespace onramp::agent::test
