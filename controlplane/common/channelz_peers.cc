#include "controlplane/common/channelz_peers.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <grpc/grpc.h>
#include <grpc/support/alloc.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace onramp::cp {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// A channelz answer (JSON, gpr-allocated) as a Struct; empty when there is
// none or it does not parse.
Struct query(char* json) {
  Struct out;
  if (!json) return out;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(json, &out, opts).ok()) out.Clear();
  gpr_free(json);
  return out;
}

const Value* field(const Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? nullptr : &it->second;
}

const Struct* object(const Struct& s, const std::string& key) {
  const Value* v = field(s, key);
  return v && v->has_struct_value() ? &v->struct_value() : nullptr;
}

std::string text(const Struct& s, const std::string& key) {
  const Value* v = field(s, key);
  return v && v->kind_case() == Value::kStringValue ? v->string_value() : "";
}

// Channelz writes 64-bit ids as JSON strings.
intptr_t id(const Struct& s, const std::string& key) {
  std::string t = text(s, key);
  intptr_t v = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  return ec == std::errc() && end == t.data() + t.size() ? v : 0;
}

// (id, name) of every socketRef / listenSocket entry of a list.
template <typename Fn>
void each_ref(const Struct& s, const std::string& list, Fn fn) {
  const Value* v = field(s, list);
  if (!v || !v->has_list_value()) return;
  for (const Value& e : v->list_value().values())
    if (e.has_struct_value()) fn(e.struct_value());
}

std::string base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

// What one server socket showed when first looked at; a socket's peer and
// certificate never change, so each is asked for once.
struct Seen {
  std::string peer;
  size_t certificate = 0;  // hash of its remote_certificate field
};

std::mutex cache_mu;
std::map<intptr_t, Seen> cache;  // GUARDED_BY(cache_mu), by socket id

}  // namespace

std::string address_of_socket_name(std::string_view name) {
  if (size_t space = name.rfind(' '); space != std::string_view::npos)
    name.remove_prefix(space + 1);
  for (std::string_view scheme : {"ipv4:", "ipv6:"})
    if (name.substr(0, scheme.size()) == scheme) name.remove_prefix(scheme.size());
  return std::string(name);
}

size_t certificate_hash(std::string_view pem) { return std::hash<std::string>{}(base64(pem)); }

std::vector<std::string> peers_presenting(std::string_view pem, size_t max) {
  std::vector<std::string> peers = peers_presenting_any({certificate_hash(pem)});
  if (peers.size() > max) peers.resize(max);
  return peers;
}

std::vector<std::string> peers_presenting_any(const std::vector<size_t>& wanted) {
  std::vector<std::string> peers;
  std::map<intptr_t, Seen> alive;
  std::lock_guard<std::mutex> lock(cache_mu);
  intptr_t next_server = 0;
  for (bool more = true; more;) {
    const intptr_t start = next_server;
    Struct servers = query(grpc_channelz_get_servers(start));
    each_ref(servers, "server", [&](const Struct& server) {
      const Struct* ref = object(server, "ref");
      intptr_t server_id = ref ? id(*ref, "serverId") : 0;
      if (server_id <= 0) return;
      next_server = std::max(next_server, server_id + 1);
      intptr_t next_socket = 0;
      for (bool more_sockets = true; more_sockets;) {
        const intptr_t first = next_socket;
        Struct sockets = query(grpc_channelz_get_server_sockets(server_id, first, 0));
        each_ref(sockets, "socketRef", [&](const Struct& socket_ref) {
          intptr_t socket_id = id(socket_ref, "socketId");
          if (socket_id <= 0) return;
          next_socket = std::max(next_socket, socket_id + 1);
          auto it = cache.find(socket_id);
          Seen seen;
          if (it != cache.end()) {
            seen = it->second;
          } else {
            Struct socket = query(grpc_channelz_get_socket(socket_id));
            const Struct* body = object(socket, "socket");
            const Struct* security = body ? object(*body, "security") : nullptr;
            const Struct* tls = security ? object(*security, "tls") : nullptr;
            seen.peer = address_of_socket_name(text(socket_ref, "name"));
            seen.certificate =
                std::hash<std::string>{}(tls ? text(*tls, "remote_certificate") : "");
          }
          if (std::find(wanted.begin(), wanted.end(), seen.certificate) != wanted.end())
            peers.push_back(seen.peer);
          alive[socket_id] = std::move(seen);
        });
        const Value* end = field(sockets, "end");
        more_sockets = !(end && end->bool_value()) && next_socket > first;
      }
    });
    // Another page only when this one was not the last and moved on.
    const Value* end = field(servers, "end");
    more = !(end && end->bool_value()) && next_server > start;
  }
  // Sockets closed since the last call are forgotten.
  cache = std::move(alive);
  return peers;
}

}  // namespace onramp::cp
