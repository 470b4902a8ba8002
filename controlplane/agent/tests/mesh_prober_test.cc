// The PoP mesh: the path tracker's RTT, jitter and loss, the echo's refusal
// to answer anything but a well-formed request (and never with more bytes),
// and two mesh probers on loopback addresses measuring each other.
#include "controlplane/agent/mesh_prober.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "common/log.h"

namespace onramp::agent {
namespace {

TEST(PathTracker, SmoothsTheRttAndCountsJitterAndLossOverTheWindow) {
  PathTracker t(/*window=*/4, /*rtt_alpha=*/0.5);
  EXPECT_LT(t.smoothed_rtt_ms(), 0);
  EXPECT_EQ(t.loss_percent(), 0);
  t.record_reply(10);
  EXPECT_DOUBLE_EQ(t.smoothed_rtt_ms(), 10);
  EXPECT_DOUBLE_EQ(t.jitter_ms(), 0);
  t.record_reply(26);
  EXPECT_DOUBLE_EQ(t.smoothed_rtt_ms(), 18);
  EXPECT_DOUBLE_EQ(t.jitter_ms(), 1);  // (16 - 0) / 16
  t.record_loss();
  t.record_loss();
  EXPECT_DOUBLE_EQ(t.loss_percent(), 50);
  EXPECT_EQ(t.decided(), 4u);
  // The window slides: the two replies leave it.
  t.record_loss();
  t.record_loss();
  EXPECT_DOUBLE_EQ(t.loss_percent(), 100);
  t.record_reply(18);
  EXPECT_DOUBLE_EQ(t.loss_percent(), 75);
  EXPECT_DOUBLE_EQ(t.last_rtt_ms(), 18);
  t.record_reply(-1);  // not a measurement
  EXPECT_EQ(t.decided(), 4u);
}

// Miss detection: down only after down_after probes in a row are late,
// up at the next reply; a single lost probe never takes the path down.
TEST(PathLiveness, DownAfterConsecutiveMissesNeverOnASingleLoss) {
  using std::chrono::milliseconds;
  const Clock::time_point t0{std::chrono::hours(1)};
  const milliseconds late(100);
  PathLiveness l(/*down_after=*/3);
  uint64_t seq = 0;
  auto at = [&](int ms) { return t0 + milliseconds(ms); };
  // Probes every 200 ms; every other one lost, the rest answered in 40 ms:
  // 50 % loss, but never down (the loss window judges that path).
  for (int i = 0; i < 20; ++i) {
    l.sent(++seq, at(200 * i));
    if (i % 2) {
      EXPECT_FALSE(l.replied(seq));
    }
    EXPECT_FALSE(l.check(at(200 * i + 150), late));
    EXPECT_FALSE(l.down()) << "probe " << i;
  }
  // The path stops answering at 4000 ms: the probes of 4000 and 4200 ms are
  // misses at 4100 and 4300 ms, still up; the third, at 4500 ms, is down.
  l.sent(++seq, at(4000));
  EXPECT_FALSE(l.check(at(4100), late));
  l.sent(++seq, at(4200));
  EXPECT_FALSE(l.check(at(4300), late));
  l.sent(++seq, at(4400));
  EXPECT_EQ(l.next_miss(late), at(4500));
  EXPECT_FALSE(l.check(at(4499), late));
  EXPECT_TRUE(l.check(at(4500), late));
  EXPECT_TRUE(l.down());
  EXPECT_FALSE(l.check(at(4600), late));  // no change: stays down
  // A reply, even a late one to an old probe, is the path answering.
  l.sent(++seq, at(4600));
  EXPECT_TRUE(l.replied(seq - 1));
  EXPECT_FALSE(l.down());
  // The probe after the answered one is not missed yet.
  EXPECT_FALSE(l.check(at(4650), late));
  EXPECT_FALSE(l.down());
  // 0: never down.
  PathLiveness never(0);
  for (int i = 0; i < 10; ++i) never.sent(100 + i, at(200 * i));
  EXPECT_FALSE(never.check(at(10000), late));
  EXPECT_FALSE(never.down());
}

TEST(MeshEcho, AnswersOnlyAWellFormedRequestWithTheSameBytes) {
  std::string req = mesh_echo_message(MeshEchoType::kRequest, 0x1122334455667788ull, 42);
  ASSERT_EQ(req.size(), kMeshEchoBytes);
  std::string reply = mesh_echo_reply(req);
  ASSERT_EQ(reply.size(), req.size());
  EXPECT_EQ(reply, mesh_echo_message(MeshEchoType::kReply, 0x1122334455667788ull, 42));
  // Never a reply to a reply: two echoes cannot ping-pong.
  EXPECT_EQ(mesh_echo_reply(reply), "");
  EXPECT_EQ(mesh_echo_reply(req + "x"), "");  // longer: no amplification either way
  EXPECT_EQ(mesh_echo_reply(req.substr(0, 31)), "");
  EXPECT_EQ(mesh_echo_reply(""), "");
  for (size_t i : {0u, 4u, 6u, 7u, 24u, 31u}) {
    std::string bad = req;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    EXPECT_EQ(mesh_echo_reply(bad), "") << "byte " << i;
  }
}

// A UDP port free on both loopback addresses now.
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

google::protobuf::RepeatedPtrField<v1::PeerTarget> peers(
    std::vector<std::pair<std::string, std::string>> list) {
  google::protobuf::RepeatedPtrField<v1::PeerTarget> out;
  for (auto& [pop, address] : list) {
    v1::PeerTarget* t = out.Add();
    t->set_pop(pop);
    t->set_address(address);
  }
  return out;
}

class MeshProberTest : public ::testing::Test {
 protected:
  void SetUp() override { log::set_level(log::Level::off); }
  void TearDown() override { log::set_level(log::Level::info); }
};

TEST_F(MeshProberTest, TwoPopsMeasureEachOtherAndALostPeerCountsAsLoss) {
  uint16_t port = free_port();
  MeshOptions o{.port = port,
                .interval = std::chrono::milliseconds(20),
                .timeout = std::chrono::milliseconds(1000),
                .seed = 7};
  MeshProber fra(o, "127.0.0.1", "");
  MeshProber sin(o, "127.0.0.2", "");
  ASSERT_TRUE(fra.open().ok());
  ASSERT_TRUE(sin.open().ok());
  fra.set_peers(peers({{"SIN1", "127.0.0.2"}}));
  sin.set_peers(peers({{"FRA1", "127.0.0.1"}}));
  fra.start();
  sin.start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline &&
         (fra.snapshot()[0].sent() < 5 || sin.snapshot()[0].sent() < 5))
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  v1::PeerResult r = fra.snapshot()[0];
  EXPECT_EQ(r.pop(), "SIN1");
  EXPECT_EQ(r.address(), "127.0.0.2");
  EXPECT_GE(r.sent(), 5u);
  EXPECT_GE(r.rtt_ms(), 0);
  EXPECT_LT(r.rtt_ms(), 1000);
  EXPECT_EQ(r.loss_percent(), 0);
  EXPECT_GE(sin.echoes_answered(), 5u);
  EXPECT_GE(sin.snapshot()[0].rtt_ms(), 0);

  // SIN1's echo stops: FRA1's probes time out and count as loss, the
  // measurements so far kept (same PoP, same address).
  sin.stop();
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline && fra.snapshot()[0].loss_percent() == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GT(fra.snapshot()[0].loss_percent(), 0);
  EXPECT_GE(fra.snapshot()[0].rtt_ms(), 0);
  fra.set_peers(peers({}));
  EXPECT_TRUE(fra.snapshot().empty());
  fra.stop();
}

// A peer that stops answering is marked down after down_after late probes,
// well before the loss timeout counts any of them, and the change is
// signalled at once (the agent then reports); answering again, it is up.
// Late here is at least 200 ms, so a busy machine does not fake a miss.
TEST_F(MeshProberTest, APeerThatStopsAnsweringIsDownFastAndUpAgainAtItsReply) {
  uint16_t port = free_port();
  MeshOptions o{.port = port,
                .interval = std::chrono::milliseconds(20),
                .timeout = std::chrono::milliseconds(5000),
                .down_after = 3,
                .min_late = std::chrono::milliseconds(200),
                .seed = 11};
  MeshProber fra(o, "127.0.0.1", "");
  auto sin = std::make_unique<MeshProber>(o, "127.0.0.2", "");
  ASSERT_TRUE(fra.open().ok());
  ASSERT_TRUE(sin->open().ok());
  std::atomic<int> changes{0};
  fra.set_on_change([&] { changes.fetch_add(1); });
  fra.set_peers(peers({{"SIN1", "127.0.0.2"}}));
  fra.start();
  sin->start();
  auto wait = [](auto done, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return done();
  };
  ASSERT_TRUE(wait([&] { return fra.snapshot()[0].sent() >= 5; }, std::chrono::seconds(10)));
  EXPECT_FALSE(fra.snapshot()[0].down());
  EXPECT_EQ(changes.load(), 0);

  sin->stop();
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(wait([&] { return fra.snapshot()[0].down(); }, std::chrono::seconds(5)));
  auto took = std::chrono::steady_clock::now() - t0;
  // Three probes 20 ms apart, the third late 200 ms after it left: long
  // before the 5 s timeout after which the loss window counts the first.
  EXPECT_LT(took, std::chrono::seconds(2));
  EXPECT_EQ(fra.snapshot()[0].loss_percent(), 0);
  EXPECT_EQ(changes.load(), 1);

  sin->start();
  ASSERT_TRUE(wait([&] { return !fra.snapshot()[0].down(); }, std::chrono::seconds(5)));
  EXPECT_EQ(changes.load(), 2);
  fra.stop();
  sin->stop();
}

TEST_F(MeshProberTest, TheEchoRefusesWhatIsNotARequest) {
  uint16_t port = free_port();
  MeshProber echo(MeshOptions{.port = port, .seed = 3}, "127.0.0.1", "");
  ASSERT_TRUE(echo.open().ok());
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto send = [&](const std::string& m) {
    ASSERT_EQ(::sendto(fd, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(m.size()));
  };
  std::string req = mesh_echo_message(MeshEchoType::kRequest, 9, 1);
  send(std::string(1400, 'x'));  // a large datagram: never answered
  send(req + req);
  send(mesh_echo_message(MeshEchoType::kReply, 9, 1));  // a reply to no probe of its own
  send(req);
  for (int i = 0; i < 20 && echo.datagrams_refused() + echo.echoes_answered() < 4; ++i)
    echo.poll_io(std::chrono::milliseconds(50));
  EXPECT_EQ(echo.datagrams_refused(), 3u);
  EXPECT_EQ(echo.echoes_answered(), 1u);
  pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1);
  char buf[2048];
  ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))),
            mesh_echo_message(MeshEchoType::kReply, 9, 1));
  EXPECT_EQ(::recv(fd, buf, sizeof buf, 0), -1);  // only the one reply
  ::close(fd);
}

TEST_F(MeshProberTest, AnAddressThatCannotBeBoundIsNamed) {
  MeshProber m(MeshOptions{.port = 1}, "not-an-address", "");
  Status s = m.open();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not-an-address"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace onramp::agent
