#include "common/security_flags.hpp"

#include <spdlog/spdlog.h>

#include "common/http_client.hpp"

namespace kalavara {

void SecurityFlags::add_to(CLI::App& app) {
  app.add_option("--secret-file", secret_files,
                 "file holding the cluster's shared secret (32+ bytes, mode 600); given twice, "
                 "or a file of two lines, while a secret is rotated: the first signs")
      ->check(CLI::ExistingFile);
  app.add_option("--token-ttl", token_ttl, "seconds a signature this daemon makes stays valid")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--sign-reads", sign_reads,
               "reads of values need a signature too (give it to the master and every volume)");
}

Result<std::unique_ptr<const Signer>> start_signing(const SecurityFlags& flags,
                                                    std::string_view daemon) {
  if (flags.secret_files.empty()) {
    if (flags.sign_reads) return Error{Errc::kBadInput, "--sign-reads needs --secret-file"};
    spdlog::warn(
        "{}: no --secret-file: anyone who can reach this port can write, overwrite and delete "
        "values (see docs/security.md)",
        daemon);
    return std::unique_ptr<const Signer>();
  }
  auto secrets = Secrets::load(flags.secret_files);
  if (!secrets) return secrets.error();
  auto signer = std::make_unique<const Signer>(std::move(secrets).value(),
                                               std::chrono::seconds(flags.token_ttl));
  http::use_credentials({signer.get(), {}});
  return std::unique_ptr<const Signer>(std::move(signer));
}

}  // namespace kalavara
