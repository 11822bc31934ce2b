// The security flags both daemons take (docs/security.md), and what they
// set up at start-up: the secret the daemon signs and checks requests with.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/signature.hpp"

namespace kalavara {

struct SecurityFlags {
  std::vector<std::string> secret_files;
  unsigned token_ttl = 60;
  bool sign_reads = false;

  // Adds --secret-file, --token-ttl and --sign-reads to `app`, bound to
  // these fields. `app` must not outlive them.
  void add_to(CLI::App& app);
};

// Loads the secret of `flags` and has every request this process sends
// signed with it (http::use_credentials). Returns the signer, which must
// outlive every request; null without --secret-file, after a warning that
// `daemon` is open to anyone who can reach it. Fails with kBadInput and the
// reason when a secret file cannot be used or --sign-reads comes without a
// secret. Call once, before the first request is sent.
Result<std::unique_ptr<const Signer>> start_signing(const SecurityFlags& flags,
                                                    std::string_view daemon);

}  // namespace kalavara
