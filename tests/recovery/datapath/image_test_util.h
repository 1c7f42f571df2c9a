// Helpers of the backup tests: qcow2 images written with qemu-io, whole-disk SHA-256 through an
// independent path (qemu-img convert to raw, then hashing the file).
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/subprocess.h"
#include "recovery/vault/crypto.h"
#include "storage/qcow2_disk_engine.h"
#include "../vault/vault_test_util.h"

namespace stratus::recovery::datapath::test {

using vault::test::TempDir;

inline constexpr uint64_t kMiB = 1 << 20;

// The qcow2 disk engine's persistent bitmaps, as the backup service keeps them.
inline storage::Qcow2DiskEngine& Qcow2Engine() {
  static storage::Qcow2DiskEngine engine;
  return engine;
}
inline Status AddBitmap(const std::string& qcow2, const std::string& name) {
  return Qcow2Engine().AddBitmap(qcow2, name);
}
inline Status RemoveBitmap(const std::string& qcow2, const std::string& name) {
  return Qcow2Engine().RemoveBitmap(qcow2, name);
}
inline Result<std::vector<storage::DiskBitmap>> ListBitmaps(const std::string& qcow2) {
  return Qcow2Engine().ListBitmaps(qcow2);
}

inline void Run(const std::vector<std::string>& argv) {
  auto r = RunChecked(argv);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
}

inline void CreateQcow2(const std::string& path, uint64_t size) {
  Run({"qemu-img", "create", "-q", "-f", "qcow2", path, std::to_string(size)});
}

// Runs qemu-io commands (e.g. "write -P 0x41 0 1M") on a qcow2 image, in one process.
inline void QemuIo(const std::string& image, const std::vector<std::string>& commands) {
  std::vector<std::string> argv = {"qemu-io", "-f", "qcow2"};
  for (const auto& c : commands) {
    argv.push_back("-c");
    argv.push_back(c);
  }
  argv.push_back(image);
  Run(argv);
}

// Writes `len` bytes of seeded random data at `offset` (via a pattern file in `scratch`).
inline void WriteRandom(const std::string& image, const std::string& scratch, uint64_t offset,
                        uint64_t len, uint64_t seed, bool compressible = false) {
  std::string file = scratch + "/pattern-" + std::to_string(seed);
  ASSERT_TRUE(WriteFileAtomic(file, vault::test::RandomData(len, seed, compressible)).ok());
  QemuIo(image, {"write -q -s " + file + " " + std::to_string(offset) + " " + std::to_string(len)});
  RemoveFile(file);
}

inline std::string FileSha256(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0) << path;
  if (fd < 0) return "";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(4 << 20);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) EVP_DigestUpdate(ctx, buf.data(), n);
  ::close(fd);
  unsigned char md[32];
  unsigned int len = 32;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return vault::ToHex(md, 32);
}

// SHA-256 of the whole virtual disk of `image` (every byte, holes as zeros).
inline std::string DiskSha256(const std::string& image, const std::string& format,
                              const std::string& scratch) {
  if (format == "raw") return FileSha256(image);
  std::string raw = scratch + "/sha.raw";
  auto r = RunChecked({"qemu-img", "convert", "-U", "-f", format, "-O", "raw", image, raw});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::string sha = FileSha256(raw);
  RemoveFile(raw);
  return sha;
}

// Bytes actually allocated on disk for a file (to check sparseness).
inline uint64_t AllocatedBytes(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

}  // namespace stratus::recovery::datapath::test
