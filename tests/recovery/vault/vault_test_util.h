// Shared helpers of the vault and backup tests: temp dirs under /var/tmp, random data, vaults.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/fs.h"
#include "recovery/vault/vault.h"

namespace stratus::recovery::vault::test {

// Small chunks keep the tests fast.
inline constexpr uint32_t kChunk = 64u << 10;

// A directory under /var/tmp, removed with its content at the end of the test.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "vault") {
    std::string tmpl = "/var/tmp/stratus-test-" + prefix + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    if (!path_.empty()) RemoveTree(path_);
  }
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes; `compressible` repeats short runs so zstd has work to do.
inline std::string RandomData(size_t n, uint64_t seed, bool compressible = false) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  if (!compressible) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
      uint64_t v = rng();
      std::memcpy(&s[i], &v, 8);
    }
    for (size_t i = n - n % 8; i < n; ++i) s[i] = static_cast<char>(rng());
  } else {
    const char* words[] = {"stratus ", "vault ", "chunk ", "backup ", "restore ", "\n"};
    size_t i = 0;
    while (i < n) {
      const char* w = words[rng() % 6];
      for (const char* p = w; *p && i < n; ++p) s[i++] = *p;
    }
  }
  return s;
}

inline const uint8_t* Bytes(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// A fresh vault in dir/vault protected by a platform key file dir/platform.key.
struct TestVault {
  std::string dir;
  std::string key_path;
  std::unique_ptr<Vault> vault;

  static TestVault Make(const TempDir& tmp, VaultCreateOptions opts = {}) {
    TestVault t;
    t.dir = tmp.Path("vault");
    t.key_path = tmp.Path("platform.key");
    if (!PathExists(t.key_path)) {
      EXPECT_TRUE(CreatePlatformKeyFile(t.key_path).ok());
    }
    auto v = Vault::CreateLocal(t.dir, KeySource::PlatformKeyFile(t.key_path), opts);
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    if (v.ok()) t.vault = std::move(v).value();
    return t;
  }
  std::unique_ptr<Vault> Reopen() const {
    auto v = Vault::OpenLocal(dir, KeySource::PlatformKeyFile(key_path));
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? std::move(v).value() : nullptr;
  }
  std::string ChunkPath(const ChunkId& id) const { return dir + "/" + Vault::ChunkKey(id); }
};

// Changes the byte at `offset` of a file to a different value (XOR, so never a no-op).
inline void FlipByte(const std::string& path, std::streamoff offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  ASSERT_TRUE(f.is_open()) << path;
  f.seekg(offset);
  char c = 0;
  ASSERT_TRUE(f.read(&c, 1)) << path << " has no byte at " << offset;
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(offset);
  ASSERT_TRUE(f.write(&c, 1)) << path;
}

// Number of chunk files in a local vault.
inline size_t CountChunks(Vault& v) {
  size_t n = 0;
  Status st = v.backend().List("chunks/", [&](std::string_view, uint64_t) {
    ++n;
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return n;
}

}  // namespace stratus::recovery::vault::test
