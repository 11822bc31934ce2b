#include "common/signature.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace kalavara {
namespace {

namespace fs = std::filesystem;

const std::string kSecret(40, 's');
const std::string kOther(40, 'o');

Signer signer_at(std::uint64_t* now, std::vector<std::string> secrets = {kSecret}) {
  return Signer(Secrets::of(std::move(secrets)).value(), std::chrono::seconds(60),
                [now] { return *now; });
}

TEST(Signer, ASignedTargetVerifiesForItsMethodUntilItExpires) {
  std::uint64_t now = 1'000'000;
  const auto signer = signer_at(&now);
  const auto target = signer.sign("PUT", "/store/k?master=http%3A%2F%2Fm%3A1&version=5");
  EXPECT_TRUE(target.starts_with("/store/k?master=http%3A%2F%2Fm%3A1&version=5&exp=1000060&sig="))
      << target;
  EXPECT_TRUE(signer.verify("PUT", target).ok());
  now += 60;
  EXPECT_TRUE(signer.verify("PUT", target).ok()) << "valid through its expiry second";
  now += 1;
  const auto expired = signer.verify("PUT", target);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, Errc::kForbidden);
  EXPECT_NE(expired.error().message.find("expired"), std::string::npos);
}

// The signature is HMAC-SHA256 as docs/security.md specifies it, checked
// against OpenSSL's own one-shot HMAC(), for secrets shorter than, as long
// as and longer than SHA-256's 64-byte block (a longer key is hashed first).
TEST(Signer, TheSignatureIsTheHmacOfTheDocumentedMessage) {
  std::mt19937 random(11);
  for (const std::size_t length : {32U, 63U, 64U, 65U, 200U}) {
    std::string secret(length, '\0');
    for (auto& byte : secret) byte = static_cast<char>('!' + random() % 90);
    std::uint64_t now = 1'700'000'000;
    const auto signer = signer_at(&now, {secret});
    for (const std::string method : {"PUT", "DELETE", "HEAD"}) {
      const auto target = signer.sign(method, "/store/a%20b?version=7");
      const auto at = target.find("&sig=");
      ASSERT_NE(at, std::string::npos) << target;
      const std::string message = "kalavara-1\n" +
                                  (method == "HEAD" ? std::string("GET") : method) + "\n" +
                                  target.substr(0, at);
      unsigned char digest[EVP_MAX_MD_SIZE];
      unsigned int size = 0;
      ASSERT_NE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                     reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest,
                     &size),
                nullptr);
      std::string expected;
      for (unsigned int i = 0; i < size; ++i) {
        static constexpr char kHex[] = "0123456789abcdef";
        expected += kHex[digest[i] >> 4];
        expected += kHex[digest[i] & 15];
      }
      EXPECT_EQ(target.substr(at + 5), expected) << length << "-byte secret, " << method;
    }
  }
}

TEST(Signer, ATargetWithoutAQueryIsSignedToo) {
  std::uint64_t now = 5;
  const auto signer = signer_at(&now);
  const auto target = signer.sign("GET", "/stats");
  EXPECT_TRUE(target.starts_with("/stats?exp=65&sig=")) << target;
  EXPECT_TRUE(signer.verify("GET", target).ok());
}

TEST(Signer, AHeadIsCheckedAsAGetButNotAsAnythingElse) {
  std::uint64_t now = 5;
  const auto signer = signer_at(&now);
  const auto for_get = signer.sign("GET", "/store/k?version=3");
  EXPECT_TRUE(signer.verify("HEAD", for_get).ok());
  const auto for_head = signer.sign("HEAD", "/store/k?version=3");
  EXPECT_TRUE(signer.verify("GET", for_head).ok());
  EXPECT_FALSE(signer.verify("PUT", for_get).ok());
  EXPECT_FALSE(signer.verify("DELETE", for_head).ok());
}

TEST(Signer, AnyChangeToTheRequestBreaksTheSignature) {
  std::uint64_t now = 1'000;
  const auto signer = signer_at(&now);
  const auto target = signer.sign("PUT", "/store/key?version=5&replicas=http%3A%2F%2Fb%3A1");
  const auto sig_at = target.rfind("sig=");
  std::vector<std::pair<std::string, std::string>> forgeries = {
      {"DELETE", target},                         // another method
      {"PUT", "/store/kez" + target.substr(10)},  // another key
      {"PUT", std::string(target).replace(target.find("version=5"), 9, "version=6")},
      {"PUT", std::string(target).replace(target.find("%3A1"), 4, "%3A2")},  // another replica
      {"PUT", std::string(target).replace(target.find("exp=1060"), 8, "exp=9060")},
      {"PUT", target.substr(0, sig_at) + std::string(64, '0')},     // forged signature
      {"PUT", target.substr(0, sig_at) + "abc"},                    // malformed
      {"PUT", "/store/key?version=5&replicas=http%3A%2F%2Fb%3A1"},  // unsigned
      // A parameter smuggled after the signature, or an expiry after it.
      {"PUT", target + "&master=http%3A%2F%2Fevil%3A1"},
      {"PUT", target.substr(0, sig_at - 1) + "&exp=9999999&" + target.substr(sig_at)},
      // The signature joined by '?' instead of '&': the same signed bytes,
      // but not a target sign() makes (found by tests/fuzz/signature).
      {"PUT", target.substr(0, sig_at - 1) + "?" + target.substr(sig_at)},
  };
  for (const auto& [method, forged] : forgeries) {
    const auto verdict = signer.verify(method, forged);
    EXPECT_FALSE(verdict.ok()) << method << " " << forged;
    if (!verdict.ok()) {
      EXPECT_EQ(verdict.error().code, Errc::kForbidden);
      EXPECT_EQ(verdict.error().message.find(kSecret), std::string::npos);
    }
  }
}

TEST(Signer, AnotherSecretsSignatureIsRefused) {
  std::uint64_t now = 1'000;
  const auto mine = signer_at(&now, {kSecret});
  const auto theirs = signer_at(&now, {kOther});
  EXPECT_FALSE(mine.verify("GET", theirs.sign("GET", "/store/k?version=1")).ok());
}

TEST(Signer, RotationAcceptsTheSecretBeingRotatedOutAndSignsWithTheFirst) {
  std::uint64_t now = 1'000;
  const auto old_daemon = signer_at(&now, {kOther});
  const auto rotating = signer_at(&now, {kSecret, kOther});
  const auto new_daemon = signer_at(&now, {kSecret});
  EXPECT_TRUE(rotating.verify("PUT", old_daemon.sign("PUT", "/store/k")).ok());
  EXPECT_TRUE(new_daemon.verify("PUT", rotating.sign("PUT", "/store/k")).ok());
  EXPECT_FALSE(old_daemon.verify("PUT", rotating.sign("PUT", "/store/k")).ok());
}

class SecretFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("kalavara-secret-" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& contents, mode_t mode) {
    const auto path = dir_ / name;
    std::ofstream(path) << contents;
    ::chmod(path.c_str(), mode);
    return path.string();
  }
  fs::path dir_;
};

TEST_F(SecretFiles, OneOrTwoLinesOfThirtyTwoBytesOrMoreOwnerOnly) {
  const auto one = write("one", kSecret + "\n", 0600);
  auto loaded = Secrets::load({one});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->signing(), kSecret);
  const auto two = write("two", kSecret + "\n" + kOther + "\n", 0400);
  loaded = Secrets::load({two});
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->all(), (std::vector<std::string>{kSecret, kOther}));
  // Given twice: the first file's secret signs.
  loaded = Secrets::load({one, write("other", kOther, 0600)});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->all(), (std::vector<std::string>{kSecret, kOther}));
}

TEST_F(SecretFiles, AreRefusedWhenShortOpenToOthersEmptyOrTooMany) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {write("short", std::string(31, 'x'), 0600), "shorter than 32"},
      {write("group", kSecret, 0640), "chmod 600"},
      {write("world", kSecret, 0604), "chmod 600"},
      {write("empty", "", 0600), "empty"},
      {write("three", kSecret + "\n" + kOther + "\n" + kSecret + "\n", 0600), "at most 2"},
      {(dir_ / "missing").string(), "No such file"},
  };
  for (const auto& [path, reason] : refused) {
    const auto loaded = Secrets::load({path});
    ASSERT_FALSE(loaded.ok()) << path;
    EXPECT_EQ(loaded.error().code, Errc::kBadInput);
    EXPECT_NE(loaded.error().message.find(reason), std::string::npos) << loaded.error().message;
    EXPECT_EQ(loaded.error().message.find(kSecret), std::string::npos);
  }
}

TEST_F(SecretFiles, ATokenIsOneLineOfSixteenBytesOrMore) {
  const auto token = load_token(write("token", "0123456789abcdef0123\n", 0600));
  ASSERT_TRUE(token.ok()) << token.error().message;
  EXPECT_EQ(*token, "0123456789abcdef0123");
  EXPECT_FALSE(load_token(write("short", "0123456789", 0600)).ok());
  EXPECT_FALSE(load_token(write("open", "0123456789abcdef0123", 0644)).ok());
  EXPECT_TRUE(bearer_matches("Bearer 0123456789abcdef0123", *token));
  EXPECT_TRUE(bearer_matches("bearer 0123456789abcdef0123", *token));
  EXPECT_FALSE(bearer_matches("Bearer 0123456789abcdef0124", *token));
  EXPECT_FALSE(bearer_matches("Basic 0123456789abcdef0123", *token));
  EXPECT_FALSE(bearer_matches("", *token));
}

}  // namespace
}  // namespace kalavara
