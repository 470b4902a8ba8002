#include "controlplane/agent/table_store.h"

#include <google/protobuf/text_format.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <charconv>
#include <filesystem>
#include <map>
#include <sstream>

#include "common/files.h"
#include "common/textproto.h"
#include "dataplane/config/table_loader.h"

namespace onramp::agent {
namespace {

// `header` and `msg` in text format, written atomically with mode 0600.
Status save_text(const std::string& path, const std::string& header,
                 const google::protobuf::Message& msg) {
  std::string body;
  if (!google::protobuf::TextFormat::PrintToString(msg, &body))
    return error("cannot print the " + msg.GetDescriptor()->name());
  return write_file_atomically(path, header + body, 0600);
}

// True when something (a file, a link, even a dangling one) is at `path`.
bool present(const std::string& path) {
  std::error_code ec;
  return std::filesystem::symlink_status(path, ec).type() != std::filesystem::file_type::not_found;
}

constexpr std::string_view kTableHeader =
    "# The last table this PoP's dataplane accepted, written by onramp-agent.\n";
// The line after kTableHeader: what the rest of the file must be, and where
// the table came from.
constexpr std::string_view kMetaPrefix = "# onramp-last-good:";

std::string sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

// "size=N sha256=HEX store=ID epoch=E content=HEX": the values by key.
std::map<std::string, std::string> meta_fields(std::string_view line) {
  std::map<std::string, std::string> out;
  std::istringstream in{std::string(line)};
  std::string word;
  while (in >> word) {
    size_t eq = word.find('=');
    if (eq != std::string::npos) out[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return out;
}

bool parse_u64(const std::string& s, uint64_t& v) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

// Only what a store id or digest can hold: the header stays one line of
// words whatever the controller sent.
std::string word(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 64))
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) out += c;
  return out;
}

}  // namespace

TableStore::TableStore(std::string dir, size_t max_bytes)
    : dir_(std::move(dir)),
      max_bytes_(max_bytes),
      path_(dir_ + "/last_good_table.textproto"),
      plan_path_(dir_ + "/probe_plan.textproto"),
      routing_path_(dir_ + "/route_state.textproto") {}

Status TableStore::make_dir() const {
  std::error_code ec;
  if (!std::filesystem::exists(dir_, ec)) {
    std::filesystem::create_directories(dir_, ec);
    if (ec) return error(dir_ + ": " + ec.message());
    ::chmod(dir_.c_str(), 0700);
  }
  return ok_status();
}

Status TableStore::save(const v1::ForwardingTable& table, const TableMeta& meta) const {
  ONRAMP_RETURN_IF_ERROR(make_dir());
  std::string body;
  if (!google::protobuf::TextFormat::PrintToString(table, &body))
    return error("cannot print the ForwardingTable");
  std::string text(kTableHeader);
  text += std::string(kMetaPrefix) + " size=" + std::to_string(body.size()) +
          " sha256=" + sha256_hex(body) + " version=" + std::to_string(table.version()) +
          " store=" + word(meta.store_id) + " epoch=" + std::to_string(meta.epoch) +
          " content=" + word(meta.content_digest) + "\n";
  // One write: the header and the table it describes land together.
  return write_file_atomically(path_, text + body, 0600);
}

Status TableStore::save_plan(const v1::ProbePlan& plan) const {
  ONRAMP_RETURN_IF_ERROR(make_dir());
  return save_text(plan_path_,
                   "# The last probe plan from the controller, written by onramp-agent.\n", plan);
}

Result<std::optional<v1::ProbePlan>> TableStore::load_plan() const {
  if (!present(plan_path_)) return std::optional<v1::ProbePlan>();
  v1::ProbePlan plan;
  ONRAMP_RETURN_IF_ERROR(load_text_proto_file(plan_path_, plan));
  return std::optional<v1::ProbePlan>(std::move(plan));
}

Status TableStore::save_routing(const v1::AgentRouteState& state) const {
  ONRAMP_RETURN_IF_ERROR(make_dir());
  return save_text(routing_path_,
                   "# What onramp-agent routes on its own from while the controller is away.\n",
                   state);
}

Result<std::optional<v1::AgentRouteState>> TableStore::load_routing() const {
  if (!present(routing_path_)) return std::optional<v1::AgentRouteState>();
  v1::AgentRouteState state;
  ONRAMP_RETURN_IF_ERROR(load_text_proto_file(routing_path_, state));
  return std::optional<v1::AgentRouteState>(std::move(state));
}

Result<std::optional<LastGood>> TableStore::load_last_good() const {
  if (!present(path_)) return std::optional<LastGood>();  // nothing stored yet
  // Bounded, and only a regular file: a link to /dev/zero is refused, not
  // read until memory runs out.
  Result<std::string> text = read_file(path_, max_bytes_);
  if (!text.ok()) return text.status();
  LastGood out;
  std::string_view body = *text;
  if (body.starts_with(kTableHeader) && body.substr(kTableHeader.size()).starts_with(kMetaPrefix)) {
    body.remove_prefix(kTableHeader.size());
    size_t eol = body.find('\n');
    if (eol == std::string_view::npos)
      return error(path_ + ": cut short in its header; not applied");
    auto fields = meta_fields(body.substr(kMetaPrefix.size(), eol - kMetaPrefix.size()));
    body.remove_prefix(eol + 1);
    uint64_t size = 0;
    if (!parse_u64(fields["size"], size) || fields["sha256"].size() != 64)
      return error(path_ + ": its header has no valid size and sha256; not applied");
    if (size != body.size())
      return error(path_ + ": " + std::to_string(body.size()) +
                   " bytes of table where its header says " + std::to_string(size) +
                   " (cut short or changed); not applied");
    if (sha256_hex(body) != fields["sha256"])
      return error(path_ +
                   ": the table does not match the sha256 of its header (changed); not applied");
    out.meta.store_id = fields["store"];
    out.meta.content_digest = fields["content"];
    if (!parse_u64(fields["epoch"], out.meta.epoch)) out.meta.epoch = 0;
    out.verified = true;
  }
  ONRAMP_RETURN_IF_ERROR(parse_text_proto(body, out.table).prefixed(path_));
  if (auto spec = dp::table_spec_from_proto(out.table); !spec.ok())
    return spec.status().prefixed(path_);
  return std::optional<LastGood>(std::move(out));
}

Result<std::optional<TableOrigin>> TableStore::load_origin() const {
  if (!present(path_)) return std::optional<TableOrigin>();
  Result<std::string> text = read_file(path_, max_bytes_);
  if (!text.ok()) return text.status();
  std::string_view rest = *text;
  if (!rest.starts_with(kTableHeader)) return std::optional<TableOrigin>();
  rest.remove_prefix(kTableHeader.size());
  if (!rest.starts_with(kMetaPrefix)) return std::optional<TableOrigin>();
  auto fields = meta_fields(rest.substr(kMetaPrefix.size(), rest.find('\n') - kMetaPrefix.size()));
  TableOrigin origin{.store_id = fields["store"]};
  if (origin.store_id.empty() || !parse_u64(fields["epoch"], origin.epoch) ||
      !parse_u64(fields["version"], origin.version))
    return std::optional<TableOrigin>();
  return std::optional<TableOrigin>(std::move(origin));
}

Result<std::optional<v1::ForwardingTable>> TableStore::load() const {
  Result<std::optional<LastGood>> got = load_last_good();
  if (!got.ok()) return got.status();
  if (!*got) return std::optional<v1::ForwardingTable>();
  return std::optional<v1::ForwardingTable>(std::move((*got)->table));
}

}  // namespace onramp::agent
