// The last good table on disk: the one the dataplane last accepted, kept so a
// restarted agent (or a restarted dataplane) gets it back before the
// controller answers. Protobuf text format, so `onramp-dataplane --table` and
// `onrampctl dataplane apply` read the file as it is.
#pragma once

#include <string>

#include "onramp/v1/forwarding.pb.h"
#include "onramp/v1/pop_session.pb.h"

namespace onramp::agent {

// Replaces `path` atomically: a temporary file beside it is written and
// fsynced, renamed over it, and the folder fsynced, so a crash leaves the old
// content or the new one, never a mix. "" or the error.
std::string write_file_atomically(const std::string& path, const std::string& text, unsigned mode);

class TableStore {
 public:
  // `dir` is created (0700) on the first save if missing.
  explicit TableStore(std::string dir);

  // Replaces the stored table atomically: a temporary file is written and
  // fsynced, renamed over the old one, and the folder fsynced, so a crash
  // leaves the old table or the new one, never a mix. "" or the error.
  std::string save(const v1::ForwardingTable& table) const;

  // True with `table` filled when a table is stored and passes validation.
  // False with `error` "" when there is none, or the reason it is unusable.
  bool load(v1::ForwardingTable& table, std::string& error) const;

  // The probe plan of the last update, kept beside the table: a restarted
  // agent whose dataplane already runs the controller's version gets no new
  // update, so it probes from this one. Same contract as save/load.
  std::string save_plan(const v1::ProbePlan& plan) const;
  bool load_plan(v1::ProbePlan& plan, std::string& error) const;

  const std::string& path() const { return path_; }

 private:
  std::string make_dir() const;

  std::string dir_;
  std::string path_;
  std::string plan_path_;
};

}  // namespace onramp::agent
