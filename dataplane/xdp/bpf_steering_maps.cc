#include "dataplane/xdp/bpf_steering_maps.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "dataplane/xdp/steer_maps.h"

namespace onramp::dp {
namespace {

// An owned file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Status errno_error(const std::string& what, int err) {
  return error(what + ": " + std::strerror(err < 0 ? -err : err));
}

class BpfSteeringMaps final : public SteeringMaps {
 public:
  BpfSteeringMaps(Fd v4, Fd v6, Fd udp_v4, Fd udp_v6)
      : v4_(std::move(v4)),
        v6_(std::move(v6)),
        udp_v4_(std::move(udp_v4)),
        udp_v6_(std::move(udp_v6)) {}

  Status insert(const SteeredDestination& d) override { return apply(d, true); }
  Status erase(const SteeredDestination& d) override { return apply(d, false); }

 private:
  Status apply(const SteeredDestination& d, bool insert) {
    const uint8_t one = 1;
    int fd;
    // Keys as the program builds them, padding zeroed.
    onramp_steer_v4 k4{};
    onramp_steer_v6 k6{};
    onramp_steer_udp_v4 u4{};
    onramp_steer_udp_v6 u6{};
    const void* key;
    const __be16 port = htons(d.udp_port);
    if (d.address.is_v4() && d.udp_port == 0) {
      std::memcpy(&k4.addr, d.address.v4(), 4);
      fd = v4_.get(), key = &k4;
    } else if (d.address.is_v4()) {
      std::memcpy(&u4.addr, d.address.v4(), 4);
      u4.port = port;
      fd = udp_v4_.get(), key = &u4;
    } else if (d.udp_port == 0) {
      std::memcpy(k6.addr, d.address.v6(), 16);
      fd = v6_.get(), key = &k6;
    } else {
      std::memcpy(u6.addr, d.address.v6(), 16);
      u6.port = port;
      fd = udp_v6_.get(), key = &u6;
    }
    int rc = insert ? bpf_map_update_elem(fd, key, &one, BPF_ANY) : bpf_map_delete_elem(fd, key);
    // Deleting what is not there leaves the map as wanted.
    if (rc != 0 && !(insert == false && errno == ENOENT))
      return errno_error(
          std::string(insert ? "bpf_map_update_elem " : "bpf_map_delete_elem ") + d.to_string(),
          errno);
    return ok_status();
  }

  Fd v4_, v6_, udp_v4_, udp_v6_;
};

}  // namespace

Result<std::unique_ptr<SteeringMaps>> open_steering_maps(unsigned ifindex) {
  char name[IF_NAMESIZE] = "?";
  if_indextoname(ifindex, name);
  const std::string where = std::string("interface ") + name;
  __u32 prog_id = 0;
  if (int rc = bpf_xdp_query_id(static_cast<int>(ifindex), 0, &prog_id); rc != 0)
    return errno_error(where + ": cannot query its XDP program", rc);
  if (prog_id == 0) return error(where + " has no XDP program attached");
  Fd prog(bpf_prog_get_fd_by_id(prog_id));
  if (prog.get() < 0)
    return errno_error(where + ": cannot open XDP program " + std::to_string(prog_id), errno);
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0)
    return errno_error(where + ": cannot read its XDP program", errno);
  std::vector<__u32> map_ids(info.nr_map_ids);
  const std::string prog_name = info.name;
  info = bpf_prog_info{};
  info.nr_map_ids = static_cast<__u32>(map_ids.size());
  info.map_ids = reinterpret_cast<__u64>(map_ids.data());
  len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog.get(), &info, &len) != 0)
    return errno_error(where + ": cannot list its XDP program's maps", errno);
  map_ids.resize(std::min<size_t>(map_ids.size(), info.nr_map_ids));

  const char* const wanted[] = {"vips_v4", "vips_v6", "udp_v4", "udp_v6"};
  Fd found[4];
  for (__u32 id : map_ids) {
    Fd map(bpf_map_get_fd_by_id(id));
    if (map.get() < 0) continue;
    bpf_map_info mi{};
    __u32 mlen = sizeof(mi);
    if (bpf_obj_get_info_by_fd(map.get(), &mi, &mlen) != 0) continue;
    for (int k = 0; k < 4; ++k)
      if (std::strcmp(mi.name, wanted[k]) == 0) found[k] = std::move(map);
  }
  for (int k = 0; k < 4; ++k)
    if (found[k].get() < 0)
      return error(where + ": its XDP program " + prog_name + " has no map " + wanted[k] +
                   " (not onramp's steering program)");
  return std::unique_ptr<SteeringMaps>(std::make_unique<BpfSteeringMaps>(
      std::move(found[0]), std::move(found[1]), std::move(found[2]), std::move(found[3])));
}

}  // namespace onramp::dp
