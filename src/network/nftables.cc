#include "network/nftables.h"

#include <fcntl.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace stratus::network {

Result<std::unique_ptr<Nftables>> Nftables::Open() {
  nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) return Unavailable("nftables: cannot create a libnftables context");
  if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0) {
    nft_ctx_free(ctx);
    return Unavailable("nftables: cannot buffer libnftables output");
  }
  return std::unique_ptr<Nftables>(new Nftables(ctx));
}

Nftables::~Nftables() { nft_ctx_free(ctx_); }

Result<std::string> Nftables::Run(const std::string& cmd) {
  int rc = nft_run_cmd_from_buffer(ctx_, cmd.c_str());
  std::string out = nft_ctx_get_output_buffer(ctx_);
  std::string err = nft_ctx_get_error_buffer(ctx_);
  if (rc != 0) {
    while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
    if (err.size() > 2000) err = err.substr(0, 2000) + "...";
    return Internal("nftables: " + (err.empty() ? std::string("the command failed") : err));
  }
  return out;
}

Status Nftables::Apply(const Json& doc) {
  if (!doc.contains("nftables") || doc["nftables"].empty()) return Status::Ok();
  // libnftables 1.0 parses its input as JSON only while its output is JSON.
  unsigned flags = nft_ctx_output_get_flags(ctx_);
  nft_ctx_output_set_flags(ctx_, flags | NFT_CTX_OUTPUT_JSON);
  Status st = Run(doc.dump()).status();
  nft_ctx_output_set_flags(ctx_, flags);
  return st;
}

Status Nftables::ApplyInNamespace(const std::string& netns, const Json& doc) {
  Status result = Status::Ok();
  std::thread t([&] {
    std::string path = "/run/netns/" + netns;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      result = Internal("nftables: cannot open namespace " + path + ": " + std::strerror(errno));
      return;
    }
    int rc = ::setns(fd, CLONE_NEWNET);
    int err = errno;
    ::close(fd);
    if (rc != 0) {
      result = Internal("nftables: cannot enter namespace " + netns + ": " + std::strerror(err));
      return;
    }
    auto nft = Open();
    result = nft.ok() ? (*nft)->Apply(doc) : nft.status();
  });
  t.join();
  return result;
}

Result<Json> Nftables::List(const std::string& what, unsigned extra_flags) {
  unsigned flags = nft_ctx_output_get_flags(ctx_);
  nft_ctx_output_set_flags(ctx_, flags | NFT_CTX_OUTPUT_JSON | extra_flags);
  auto out = Run("list " + what);
  nft_ctx_output_set_flags(ctx_, flags);
  if (!out.ok()) {
    if (out.status().message().find("No such file or directory") != std::string::npos)
      return NotFound("nftables: no " + what);
    return out.status();
  }
  return ParseJson(*out);
}

Result<Json> Nftables::ListTable(const std::string& family, const std::string& name) {
  // Terse: without set elements (the timed state sets hold one per flow: listing them would
  // cost more than the change).
  return List("table " + family + " " + name, NFT_CTX_OUTPUT_TERSE);
}

Result<Json> Nftables::ListSet(const std::string& family, const std::string& table,
                               const std::string& name) {
  return List("set " + family + " " + table + " " + name, NFT_CTX_OUTPUT_NUMERIC_ALL);
}

}  // namespace stratus::network
