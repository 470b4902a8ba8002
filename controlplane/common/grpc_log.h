// gRPC's own messages (e.g. "Failed accept4: Too many open files") in the
// program's log format, instead of gRPC's lines on stderr.
#pragma once

namespace onramp::cp {

// From now on, every gRPC log message becomes one logfmt line: msg="grpc",
// its text in `grpc`, where it came from in `source`. gRPC's own verbosity
// (GRPC_VERBOSITY, default ERROR) still decides what is logged.
void route_grpc_logs();

}  // namespace onramp::cp
