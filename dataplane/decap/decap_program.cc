#include "dataplane/decap/decap_program.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <linux/pkt_sched.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dataplane/decap/decap.skel.h"

namespace onramp::decap {
namespace {

constexpr const char* kCounterNames[] = {
#define ONRAMP_DECAP_COUNTER_NAME(name, desc) #name,
    ONRAMP_DECAP_COUNTERS(ONRAMP_DECAP_COUNTER_NAME)
#undef ONRAMP_DECAP_COUNTER_NAME
};
static_assert(std::size(kCounterNames) == ONRAMP_DECAP_COUNTER_COUNT);

std::string errno_text(int err) { return std::strerror(err < 0 ? -err : err); }

// Owns a file descriptor the kernel handed out for a BPF object id.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Result<Counters> sum_per_cpu(int map_fd) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return error("cannot count the possible CPUs: " + errno_text(cpus));
  std::vector<uint64_t> values(static_cast<size_t>(cpus));
  Counters out{};
  for (uint32_t key = 0; key < ONRAMP_DECAP_COUNTER_COUNT; ++key) {
    if (bpf_map_lookup_elem(map_fd, &key, values.data()) != 0)
      return error(std::string("reading counter ") + kCounterNames[key] + ": " + errno_text(errno));
    uint64_t sum = 0;
    for (uint64_t v : values) sum += v;
    out[key] = sum;
  }
  return out;
}

Result<std::string> prog_name(uint32_t id) {
  Fd fd(bpf_prog_get_fd_by_id(id));
  if (fd.get() < 0)
    return error("cannot open XDP program id " + std::to_string(id) + ": " + errno_text(errno));
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) != 0)
    return error("cannot read XDP program id " + std::to_string(id) + ": " + errno_text(errno));
  return std::string(info.name);
}

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  // Warnings (a refused program comes with the verifier's log) go to
  // stderr; libbpf's progress messages do not.
  if (level == LIBBPF_DEBUG || level == LIBBPF_INFO) return 0;
  return vfprintf(stderr, format, args);
}

}  // namespace

std::string format_counters(const Counters& c) {
  std::string line;
  for (size_t i = 0; i < c.size(); ++i) {
    if (i) line += ' ';
    line += kCounterNames[i];
    line += '=';
    line += std::to_string(c[i]);
  }
  return line;
}

const char* mode_name(uint32_t mode_flag) {
  switch (mode_flag) {
    case XDP_FLAGS_DRV_MODE:
      return "native";
    case XDP_FLAGS_SKB_MODE:
      return "generic";
    case XDP_FLAGS_HW_MODE:
      return "offload";
    default:
      return "unknown";
  }
}

Result<AttachedProgram> query_attached(int ifindex) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (int err = bpf_xdp_query(ifindex, 0, &q); err != 0)
    return error("cannot query the interface's XDP program: " + errno_text(err));
  AttachedProgram out;
  if (q.drv_prog_id) {
    out.id = q.drv_prog_id;
    out.mode_flag = XDP_FLAGS_DRV_MODE;
  } else if (q.skb_prog_id) {
    out.id = q.skb_prog_id;
    out.mode_flag = XDP_FLAGS_SKB_MODE;
  } else if (q.hw_prog_id) {
    out.id = q.hw_prog_id;
    out.mode_flag = XDP_FLAGS_HW_MODE;
  }
  if (out.id == 0) return out;
  auto name = prog_name(out.id);
  if (!name.ok()) return name.status();
  out.name = std::move(*name);
  return out;
}

Result<Counters> read_attached_counters(int ifindex) {
  auto attached = query_attached(ifindex);
  if (!attached.ok()) return attached.status();
  if (attached->id == 0) return error("no XDP program is attached: is onramp-decap running there?");
  if (attached->name != ONRAMP_DECAP_PROG_NAME)
    return error("the attached XDP program is \"" + attached->name + "\", not onramp-decap's");
  Fd prog(bpf_prog_get_fd_by_id(attached->id));
  if (prog.get() < 0) return error("cannot open the attached program: " + errno_text(errno));
  bpf_prog_info info{};
  uint32_t len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0)
    return error("cannot read the attached program: " + errno_text(errno));
  std::vector<uint32_t> map_ids(info.nr_map_ids);
  info = {};
  info.nr_map_ids = static_cast<uint32_t>(map_ids.size());
  info.map_ids = reinterpret_cast<uintptr_t>(map_ids.data());
  len = sizeof info;
  if (bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0)
    return error("cannot list the attached program's maps: " + errno_text(errno));
  for (uint32_t id : map_ids) {
    Fd map(bpf_map_get_fd_by_id(id));
    if (map.get() < 0) continue;
    bpf_map_info map_info{};
    uint32_t map_len = sizeof map_info;
    if (bpf_obj_get_info_by_fd(map.get(), &map_info, &map_len) != 0) continue;
    if (std::strcmp(map_info.name, ONRAMP_DECAP_STATS_MAP) == 0) return sum_per_cpu(map.get());
  }
  return error("the attached program has no " ONRAMP_DECAP_STATS_MAP " map");
}

Result<std::unique_ptr<DecapProgram>> DecapProgram::load() {
  libbpf_set_print(libbpf_print);
  std::unique_ptr<DecapProgram> p(new DecapProgram());
  p->skel_ = decap_bpf__open();
  if (!p->skel_) {
    const int err = errno;
    return error("cannot open the embedded BPF object: " + errno_text(err));
  }
  if (int err = decap_bpf__load(p->skel_); err != 0) {
    std::string why = "the kernel refused the decapsulation program: " + errno_text(err);
    // The verifier answers EACCES for a program it refuses, and for pointer
    // arithmetic without CAP_PERFMON: only the latter is about privileges.
    if (err == -EPERM || (err == -EACCES && geteuid() != 0))
      why += " (run as root, or with CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN)";
    return error(why);
  }
  return p;
}

DecapProgram::~DecapProgram() { decap_bpf__destroy(skel_); }

Status DecapProgram::configure(const std::vector<Prefix>& allow,
                               const std::vector<uint16_t>& gue_ports) {
  if (allow.size() > ONRAMP_DECAP_MAX_PREFIXES)
    return error("at most " + std::to_string(ONRAMP_DECAP_MAX_PREFIXES) + " --allow prefixes");
  if (gue_ports.size() > ONRAMP_DECAP_MAX_GUE_PORTS)
    return error("at most " + std::to_string(ONRAMP_DECAP_MAX_GUE_PORTS) + " --gue-port values");
  const uint8_t yes = 1;
  for (const Prefix& p : allow) {
    int err;
    if (p.family == 4) {
      onramp_decap_lpm_v4 key{.prefixlen = p.length, .addr = {}};
      std::memcpy(key.addr, p.addr.data(), sizeof key.addr);
      err = bpf_map__update_elem(skel_->maps.allow_v4, &key, sizeof key, &yes, sizeof yes, BPF_ANY);
    } else {
      onramp_decap_lpm_v6 key{.prefixlen = p.length, .addr = {}};
      std::memcpy(key.addr, p.addr.data(), sizeof key.addr);
      err = bpf_map__update_elem(skel_->maps.allow_v6, &key, sizeof key, &yes, sizeof yes, BPF_ANY);
    }
    if (err != 0) return error("cannot add --allow " + to_string(p) + ": " + errno_text(err));
  }
  for (uint16_t port : gue_ports) {
    const uint16_t key = htons(port);
    if (int err = bpf_map__update_elem(skel_->maps.gue_ports, &key, sizeof key, &yes, sizeof yes,
                                       BPF_ANY);
        err != 0)
      return error("cannot add --gue-port " + std::to_string(port) + ": " + errno_text(err));
  }
  return ok_status();
}

namespace {

// Makes `map` hold exactly `want` (keys of `key_size` bytes, value 1).
Status sync_set(bpf_map* map, size_t key_size, const std::vector<std::array<uint8_t, 16>>& want) {
  const uint8_t yes = 1;
  std::vector<std::array<uint8_t, 16>> stale;
  std::array<uint8_t, 16> key{}, next{};
  bool first = true;
  while (bpf_map__get_next_key(map, first ? nullptr : key.data(), next.data(), key_size) == 0) {
    first = false;
    key = next;
    bool kept = false;
    for (const auto& w : want) kept |= std::memcmp(w.data(), key.data(), key_size) == 0;
    if (!kept) stale.push_back(key);
  }
  for (const auto& k : stale) (void)bpf_map__delete_elem(map, k.data(), key_size, 0);
  for (const auto& w : want)
    if (int err = bpf_map__update_elem(map, w.data(), key_size, &yes, sizeof yes, BPF_ANY); err)
      return error("cannot add a local address: " + errno_text(err));
  return ok_status();
}

}  // namespace

Status DecapProgram::set_local_addresses(const std::vector<IpAddress>& addresses) {
  if (addresses.size() > ONRAMP_DECAP_MAX_LOCAL)
    return error("more than " + std::to_string(ONRAMP_DECAP_MAX_LOCAL) + " local addresses");
  std::vector<std::array<uint8_t, 16>> v4, v6;
  for (const IpAddress& a : addresses) {
    std::array<uint8_t, 16> key{};
    if (a.is_v4()) {
      std::memcpy(key.data(), a.bytes.data() + 12, 4);
      v4.push_back(key);
    } else {
      v6.push_back(a.bytes);
    }
  }
  ONRAMP_RETURN_IF_ERROR(sync_set(skel_->maps.local_v4, 4, v4));
  return sync_set(skel_->maps.local_v6, 16, v6);
}

Result<std::vector<IpAddress>> host_addresses() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return error(std::string("getifaddrs: ") + std::strerror(errno));
  std::vector<IpAddress> out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    if (i->ifa_addr->sa_family == AF_INET)
      out.push_back(IpAddress::from_v4(reinterpret_cast<const uint8_t*>(
          &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr)));
    else if (i->ifa_addr->sa_family == AF_INET6)
      out.push_back(IpAddress::from_v6(reinterpret_cast<const uint8_t*>(
          &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr)));
  }
  ::freeifaddrs(list);
  return out;
}

Status DecapProgram::set_port_overrides(const std::vector<PortOverride>& overrides) {
  ONRAMP_RETURN_IF_ERROR(check_port_overrides(overrides));
  if (overrides.size() > ONRAMP_DECAP_MAX_PORT_OVERRIDES)
    return error("at most " + std::to_string(ONRAMP_DECAP_MAX_PORT_OVERRIDES) +
                 " port overrides (counting /tcp and /udp apart)");
  for (const PortOverride& o : overrides) {
    onramp_decap_port_key in{}, out{};
    std::memcpy(in.addr, o.vip.bytes.data(), sizeof in.addr);
    in.protocol = o.protocol;
    out = in;
    in.port = htons(o.listener_port);
    out.port = htons(o.endpoint_port);
    const uint16_t endpoint_port = htons(o.endpoint_port), listener_port = htons(o.listener_port);
    int err = bpf_map__update_elem(skel_->maps.port_in, &in, sizeof in, &endpoint_port,
                                   sizeof endpoint_port, BPF_ANY);
    if (err == 0)
      err = bpf_map__update_elem(skel_->maps.port_out, &out, sizeof out, &listener_port,
                                 sizeof listener_port, BPF_ANY);
    if (err != 0)
      return error("cannot add --port-override " + to_string(o) + ": " + errno_text(err));
  }
  return ok_status();
}

namespace {

// Where the reply program sits in the clsact egress hook. Priority 1 runs
// it before other filters, which might redirect the packet.
constexpr uint32_t kReplyHandle = 0xdeca;
constexpr uint32_t kReplyPriority = 1;

int quiet_print(enum libbpf_print_level, const char*, va_list) { return 0; }

// Runs a libbpf call without its warnings, for calls whose failure is an
// expected answer ("no such filter", "the qdisc exists"), not a problem.
template <typename Call>
int quietly(Call call) {
  const libbpf_print_fn_t before = libbpf_set_print(quiet_print);
  const int err = call();
  libbpf_set_print(before);
  return err;
}

}  // namespace

Result<Attachment> DecapProgram::attach_reply(int ifindex) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  int err = quietly([&] { return bpf_tc_hook_create(&hook); });
  if (err != 0 && err != -EEXIST)
    return error("cannot add a clsact qdisc for the reply program: " + errno_text(err));
  const bool made = err == 0;
  Attachment done;
  done.mode = "tc egress";
  // A filter at our handle and priority: ours if an earlier onramp-decap
  // left it, else someone else's, which we do not replace.
  LIBBPF_OPTS(bpf_tc_opts, query, .handle = kReplyHandle, .priority = kReplyPriority);
  uint32_t flags = 0;
  if (quietly([&] { return bpf_tc_query(&hook, &query); }) == 0) {
    auto name = prog_name(query.prog_id);
    if (!name.ok()) return name.status();
    if (*name != ONRAMP_DECAP_REPLY_PROG_NAME)
      return error("the interface's TC egress hook already runs \"" + *name +
                   "\" at handle 0xdeca priority 1; onramp-decap does not replace another "
                   "program");
    done.note = "replaced reply program id " + std::to_string(query.prog_id) +
                " left by an earlier onramp-decap";
    flags = BPF_TC_F_REPLACE;
  }
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = reply_prog_fd(), .flags = flags, .handle = kReplyHandle,
              .priority = kReplyPriority);
  if (err = bpf_tc_attach(&hook, &opts); err != 0) {
    if (made) {
      hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
      (void)bpf_tc_hook_destroy(&hook);
    }
    return error("cannot attach the reply program to TC egress: " + errno_text(err));
  }
  reply_ifindex_ = ifindex;
  made_clsact_ = made;
  return done;
}

Status DecapProgram::detach_reply() {
  if (reply_ifindex_ == 0) return ok_status();
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = reply_ifindex_, .attach_point = BPF_TC_EGRESS);
  reply_ifindex_ = 0;
  // Only our own program: the filter at our handle may be someone else's by now.
  LIBBPF_OPTS(bpf_tc_opts, query, .handle = kReplyHandle, .priority = kReplyPriority);
  if (quietly([&] { return bpf_tc_query(&hook, &query); }) == 0) {
    bpf_prog_info info{};
    uint32_t len = sizeof info;
    if (bpf_obj_get_info_by_fd(reply_prog_fd(), &info, &len) != 0)
      return error("cannot read the reply program: " + errno_text(errno));
    if (query.prog_id != info.id)
      return error("TC egress runs another program at our handle now: left it attached");
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kReplyHandle, .priority = kReplyPriority);
    if (int err = bpf_tc_detach(&hook, &opts); err != 0)
      return error("cannot detach the reply program: " + errno_text(err));
  }
  // The qdisc goes only if we made it (it carried nothing before us).
  if (made_clsact_) {
    made_clsact_ = false;
    hook.attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS);
    if (int err = bpf_tc_hook_destroy(&hook); err != 0 && err != -ENOENT && err != -EINVAL)
      return error("cannot remove the clsact qdisc: " + errno_text(err));
  }
  return ok_status();
}

Result<std::string> DecapProgram::remove_leftover_reply(int ifindex) {
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
  LIBBPF_OPTS(bpf_tc_opts, query, .handle = kReplyHandle, .priority = kReplyPriority);
  if (quietly([&] { return bpf_tc_query(&hook, &query); }) != 0) return std::string();
  auto name = prog_name(query.prog_id);
  if (!name.ok()) return name.status();
  if (*name != ONRAMP_DECAP_REPLY_PROG_NAME) return std::string();  // not ours
  LIBBPF_OPTS(bpf_tc_opts, opts, .handle = kReplyHandle, .priority = kReplyPriority);
  if (int err = bpf_tc_detach(&hook, &opts); err != 0)
    return error("cannot remove the reply program id " + std::to_string(query.prog_id) +
                 " left by an earlier onramp-decap: " + errno_text(err));
  return "removed reply program id " + std::to_string(query.prog_id) +
         " left by an earlier onramp-decap (no --port-override now)";
}

Result<Attachment> DecapProgram::attach(int ifindex, AttachMode mode) {
  auto attached = query_attached(ifindex);
  if (!attached.ok()) return attached.status();
  const AttachedProgram& current = *attached;
  if (current.id != 0 && current.name != ONRAMP_DECAP_PROG_NAME)
    return error("the interface already runs XDP program \"" + current.name + "\" (id " +
                 std::to_string(current.id) + ", " + mode_name(current.mode_flag) +
                 " mode); onramp-decap does not replace another program");
  Attachment done;

  std::vector<uint32_t> modes;
  if (mode != AttachMode::generic) modes.push_back(XDP_FLAGS_DRV_MODE);
  if (mode != AttachMode::native) modes.push_back(XDP_FLAGS_SKB_MODE);
  const int fd = bpf_program__fd(skel_->progs.onramp_decap);

  if (current.id != 0) {
    // An earlier onramp-decap died without detaching (a live one holds the
    // instance lock). Swap it atomically where the mode allows, so tunnel
    // traffic never meets an interface without a decapsulator.
    done.note =
        "replaced program id " + std::to_string(current.id) + " left by an earlier onramp-decap";
    bool same_mode = false;
    for (uint32_t m : modes) same_mode |= m == current.mode_flag;
    if (same_mode) {
      Fd old(bpf_prog_get_fd_by_id(current.id));
      LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = old.get());
      if (old.get() >= 0 && bpf_xdp_attach(ifindex, fd, current.mode_flag, &opts) == 0) {
        done.note += ", in one step";
        ifindex_ = ifindex;
        mode_flag_ = current.mode_flag;
        done.mode = mode_name(mode_flag_);
        return done;
      }
    }
    if (int err = bpf_xdp_detach(ifindex, current.mode_flag, nullptr); err != 0)
      return error("cannot detach the leftover program id " + std::to_string(current.id) + ": " +
                   errno_text(err));
    done.note +=
        std::string(", detached first (it ran in ") + mode_name(current.mode_flag) + " mode)";
  }

  std::string errors;
  for (uint32_t m : modes) {
    // UPDATE_IF_NOEXIST: never clobber a program someone attached meanwhile.
    int err = bpf_xdp_attach(ifindex, fd, m | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
    if (err == 0) {
      ifindex_ = ifindex;
      mode_flag_ = m;
      done.mode = mode_name(m);
      return done;
    }
    if (!errors.empty()) errors += "; ";
    errors += std::string(mode_name(m)) + " mode: " + errno_text(err);
  }
  return error("cannot attach the XDP program (" + errors + ")");
}

Status DecapProgram::detach() {
  if (ifindex_ == 0) return ok_status();
  // Detach only our own program: old_prog_fd makes the kernel refuse when
  // the interface runs something else by now.
  LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = prog_fd());
  const int err = bpf_xdp_detach(ifindex_, mode_flag_, &opts);
  ifindex_ = 0;
  if (err == -EEXIST) return error("the interface runs another XDP program now: left it attached");
  if (err != 0) return error("cannot detach: " + errno_text(err));
  return ok_status();
}

int DecapProgram::prog_fd() const { return bpf_program__fd(skel_->progs.onramp_decap); }

int DecapProgram::reply_prog_fd() const { return bpf_program__fd(skel_->progs.onramp_reply); }

Result<Counters> DecapProgram::read_counters() const {
  return sum_per_cpu(bpf_map__fd(skel_->maps.decap_stats));
}

}  // namespace onramp::decap
