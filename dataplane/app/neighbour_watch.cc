#include "dataplane/app/neighbour_watch.h"

#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "common/log.h"

namespace onramp::dp {
namespace {

// Sends one request and hands every reply message to `f` until the dump's
// end (or the reply's error); returns false on a socket error.
bool request(int fd, uint32_t seq, nlmsghdr* req, const std::function<void(const nlmsghdr*)>& f) {
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  req->nlmsg_seq = seq;
  if (sendto(fd, req, req->nlmsg_len, 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0)
    return false;
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) return errno == EINTR ? true : false;
    auto len = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_seq != seq) continue;  // a late reply to an earlier request
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) return true;
      f(h);
      if (!(h->nlmsg_flags & NLM_F_MULTI)) return true;
    }
  }
}

template <class T>
struct Request {
  nlmsghdr h;
  T body;
  char attrs[64];
};

// Calls f(type, data, len) for each attribute after a message's fixed part.
template <class F>
void each_attr(const nlmsghdr* h, size_t fixed, F&& f) {
  int len = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(fixed));
  for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(NLMSG_DATA(h)) +
                                                 NLMSG_ALIGN(fixed));
       RTA_OK(a, len); a = RTA_NEXT(a, len))
    f(a->rta_type, static_cast<const uint8_t*>(RTA_DATA(a)), RTA_PAYLOAD(a));
}

}  // namespace

Result<std::unique_ptr<NeighbourWatch>> NeighbourWatch::open(int ifindex) {
  const int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return error(std::string("cannot open a netlink socket: ") + std::strerror(errno));
  // A dump answers within microseconds; a kernel that does not must not
  // stall the main lcore for long.
  timeval tv{.tv_sec = 0, .tv_usec = 100000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return std::unique_ptr<NeighbourWatch>(new NeighbourWatch(fd, ifindex));
}

NeighbourWatch::~NeighbourWatch() { close(fd_); }

std::optional<IpAddress> NeighbourWatch::default_gateway() {
  // IPv4 first: the table has one next-hop MAC for both families, and the
  // router is the same box either way.
  for (const int family : {AF_INET, AF_INET6}) {
    Request<rtmsg> req{};
    req.h.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg));
    req.h.nlmsg_type = RTM_GETROUTE;
    req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.body.rtm_family = static_cast<uint8_t>(family);
    std::optional<IpAddress> found;
    request(fd_, ++seq_, &req.h, [&](const nlmsghdr* h) {
      if (h->nlmsg_type != RTM_NEWROUTE || found) return;
      const auto* rt = static_cast<const rtmsg*>(NLMSG_DATA(h));
      if (rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST) return;
      uint32_t table = rt->rtm_table;
      int oif = 0;
      std::optional<IpAddress> gw;
      each_attr(h, sizeof(rtmsg), [&](unsigned type, const uint8_t* data, size_t len) {
        if (type == RTA_TABLE && len == 4) std::memcpy(&table, data, 4);
        if (type == RTA_OIF && len == 4) std::memcpy(&oif, data, 4);
        if (type == RTA_GATEWAY && len == 4) gw = IpAddress::from_v4(data);
        if (type == RTA_GATEWAY && len == 16) gw = IpAddress::from_v6(data);
      });
      if (table == RT_TABLE_MAIN && oif == ifindex_ && gw) found = gw;
    });
    if (found) return found;
  }
  return std::nullopt;
}

std::optional<MacAddress> NeighbourWatch::neighbour_mac(const IpAddress& address) {
  Request<ndmsg> req{};
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ndmsg));
  req.h.nlmsg_type = RTM_GETNEIGH;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.body.ndm_family = address.is_v4() ? AF_INET : AF_INET6;
  std::optional<MacAddress> found;
  request(fd_, ++seq_, &req.h, [&](const nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWNEIGH) return;
    const auto* nd = static_cast<const ndmsg*>(NLMSG_DATA(h));
    if (nd->ndm_ifindex != ifindex_) return;
    // Incomplete or failed entries hold no MAC (or a stale one of a router
    // that no longer answers).
    if (!(nd->ndm_state &
          (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)))
      return;
    std::optional<IpAddress> dst;
    std::optional<MacAddress> mac;
    each_attr(h, sizeof(ndmsg), [&](unsigned type, const uint8_t* data, size_t len) {
      if (type == NDA_DST && len == 4) dst = IpAddress::from_v4(data);
      if (type == NDA_DST && len == 16) dst = IpAddress::from_v6(data);
      if (type == NDA_LLADDR && len == 6) {
        mac.emplace();
        std::memcpy(mac->data(), data, 6);
      }
    });
    if (dst && *dst == address && mac) found = mac;
  });
  return found;
}

void NeighbourWatch::nudge(const IpAddress& address) {
  // NTF_USE: the kernel creates the entry if need be and starts resolving
  // it, as if a packet were waiting for it (ARP request / neighbour
  // solicitation out of the exception interface, hence out of the NIC).
  Request<ndmsg> req{};
  req.h.nlmsg_type = RTM_NEWNEIGH;
  req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK;
  req.body.ndm_family = address.is_v4() ? AF_INET : AF_INET6;
  req.body.ndm_ifindex = ifindex_;
  req.body.ndm_state = NUD_NONE;
  req.body.ndm_flags = NTF_USE;
  const size_t alen = address.is_v4() ? 4 : 16;
  auto* a = reinterpret_cast<rtattr*>(req.attrs);
  a->rta_type = NDA_DST;
  a->rta_len = static_cast<unsigned short>(RTA_LENGTH(alen));
  std::memcpy(RTA_DATA(a), address.is_v4() ? address.v4() : address.v6(), alen);
  req.h.nlmsg_len = NLMSG_LENGTH(sizeof(ndmsg)) + RTA_SPACE(alen);
  request(fd_, ++seq_, &req.h, [](const nlmsghdr*) {});
}

void NeighbourWatch::poll(uint64_t now_ms) {
  if (now_ms < next_look_ms_) return;
  next_look_ms_ = now_ms + kPeriodMs;
  const std::optional<IpAddress> gw = default_gateway();
  const std::optional<MacAddress> mac = gw ? neighbour_mac(*gw) : std::nullopt;
  if (gw && !mac && now_ms >= next_nudge_ms_) {
    next_nudge_ms_ = now_ms + kNudgeMs;
    nudge(*gw);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (mac == view_.mac && gw == view_.address) return;
  if (mac && mac != view_.mac) {
    ++view_.changes;
    learned_.set(*mac);
    log::info("next hop learned", {{"address", gw->to_string()}, {"mac", mac_to_string(*mac)}});
  } else if (!mac && view_.mac) {
    learned_.clear();
    log::warn("next hop unresolved", {{"address", gw ? gw->to_string() : std::string("none")}});
  }
  view_.address = gw;
  view_.mac = mac;
}

Status check_next_hop_given(const TableSpec& spec) {
  if (spec.next_hop_mac != MacAddress{}) return ok_status();
  return error(
      "next_hop_mac: required: this dataplane has no exception interface to learn it from "
      "(--exception-vdev)");
}

NeighbourWatch::View NeighbourWatch::view() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

}  // namespace onramp::dp
