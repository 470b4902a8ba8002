// PopSessionService: one bidirectional stream per PoP (docs/design.md "Control protocol"). The
// first message must be a Hello; the PoP id is the client certificate's
// (mutual TLS) and Hello.pop must match it. After that the stream carries
// ACK/NACKs, probe reports and status from the agent, and table updates from
// the controller, which PopRegistry decides.
#pragma once

#include "controlplane/controller/pop_registry.h"
#include "onramp/v1/pop_session.grpc.pb.h"

namespace onramp::ctl {

class PopSessionService final : public v1::PopSessionService::CallbackService {
 public:
  // plaintext: no certificates, Hello.pop names the PoP.
  PopSessionService(PopRegistry& registry, bool plaintext);

  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  PopRegistry& registry_;
  bool plaintext_;
};

}  // namespace onramp::ctl
