// Who is on the other end of a TLS connection, for a caller that sees only
// the connection's certificate: gRPC 1.51 tells an AuthMetadataProcessor the
// peer's certificate but not its address. Channelz, gRPC's registry of this
// process's servers and their sockets (on by default), knows both for every
// socket; this looks the certificate up there.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace onramp::cp {

// The remote addresses ("127.0.0.1:58306", "[::1]:40112") of the server
// connections of this process whose client certificate is `pem` (the
// x509_pem_cert auth property), at most `max`, oldest connection first.
// Empty when channelz knows none (or is turned off). Costs one channelz
// query per server and per connection not seen by an earlier call.
std::vector<std::string> peers_presenting(std::string_view pem, size_t max = 4);

// The same for any of several certificates, each given by
// certificate_hash(pem): every such connection, no bound.
std::vector<std::string> peers_presenting_any(const std::vector<size_t>& certificates);
size_t certificate_hash(std::string_view pem);

// "ipv4:127.0.0.1:58306" and "chttp2 ipv4:127.0.0.1:58306" (a channelz
// socket name) as "127.0.0.1:58306"; "ipv6:[::1]:1" as "[::1]:1".
std::string address_of_socket_name(std::string_view name);

}  // namespace onramp::cp
