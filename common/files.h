// Reading and writing the files onramp keeps (tables, plans, certificates,
// configuration): bounded reads that refuse what is not a regular file, and
// writes that are atomic and durable.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace onramp {

// Larger files are refused before they are read.
inline constexpr size_t kMaxFileBytes = size_t{256} << 20;

// The whole file, or an error that names the path. Refuses what is not a
// regular file (a device, a FIFO) and files over `max_bytes`.
Result<std::string> read_file(const std::string& path, size_t max_bytes = kMaxFileBytes);

// Writes `text` to path.tmp, fsyncs it, renames it over `path` and fsyncs
// the folder: after a crash the file holds the old text or the new, whole.
Status write_file_atomically(const std::string& path, const std::string& text,
                             unsigned mode = 0600);

}  // namespace onramp
