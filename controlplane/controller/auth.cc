#include "controlplane/controller/auth.h"

#include <fstream>

#include "common/log.h"
#include "controlplane/common/server_tls.h"
#include "controlplane/controller/validation.h"

namespace onramp::ctl {
namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Compares in time independent of where the strings first differ.
bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  return diff == 0;
}

}  // namespace

AdminAuth::AdminAuth(bool plaintext, std::vector<std::string> tokens) : plaintext_(plaintext) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    size_t space = t.find_first_of(" \t");
    if (space == std::string::npos)
      tokens_.push_back({.name = "line-" + std::to_string(i + 1), .secret = t});
    else
      tokens_.push_back({.name = t.substr(0, space), .secret = trim(t.substr(space + 1))});
  }
}

Result<std::vector<std::string>> AdminAuth::load_tokens(const std::string& path) {
  std::ifstream in(path);
  if (!in) return error("--admin-token-file: " + path + ": cannot open");
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    tokens.push_back(line);
  }
  if (tokens.empty()) return error("--admin-token-file: " + path + ": no token in it");
  return tokens;
}

const AdminAuth::Token* AdminAuth::token_matching(const std::string& presented) const {
  const Token* match = nullptr;
  for (const auto& t : tokens_)
    if (constant_time_equal(t.secret, presented)) match = &t;
  return match;
}

std::optional<std::string> AdminAuth::bearer_name(const std::string& header) const {
  static const std::string kBearer = "Bearer ";
  if (header.rfind(kBearer, 0) != 0) return std::nullopt;
  const Token* t = token_matching(trim(header.substr(kBearer.size())));
  if (t == nullptr) return std::nullopt;
  return t->name;
}

std::string AdminAuth::caller(const grpc::CallbackServerContext& ctx) const {
  if (!plaintext_) {
    std::string name = cp::peer_certificate_name(*ctx.auth_context());
    if (!name.empty()) return "cert:" + name;
  }
  const auto& md = ctx.client_metadata();
  if (auto it = md.find("authorization"); it != md.end())
    if (auto name = bearer_name(std::string(it->second.data(), it->second.size())))
      return "token:" + *name;
  return "anonymous";
}

grpc::Status AdminAuth::check(const grpc::CallbackServerContext& ctx) const {
  if (!plaintext_) {
    std::string name = cp::peer_certificate_name(*ctx.auth_context());
    if (!name.empty()) {
      if (!is_pop_id(name)) return grpc::Status::OK;
      log::warn("admin call refused: a PoP's certificate is not an operator's",
                {{"peer", ctx.peer()}, {"pop", name}});
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "the client certificate names PoP " + name +
                              "; PoP certificates cannot call the admin API");
    }
  } else if (tokens_.empty()) {
    return grpc::Status::OK;
  }
  const auto& md = ctx.client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    log::warn("admin call refused: no credentials", {{"peer", ctx.peer()}});
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "give a client certificate signed by the controller's client CA, or "
                        "\"authorization: Bearer <token>\"");
  }
  if (bearer_name(std::string(it->second.data(), it->second.size()))) return grpc::Status::OK;
  log::warn("admin call refused: bad bearer token", {{"peer", ctx.peer()}});
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                      "authorization: the bearer token is not valid");
}

std::string pop_session_identity(const grpc::CallbackServerContext& ctx) {
  return cp::peer_certificate_name(*ctx.auth_context());
}

}  // namespace onramp::ctl
