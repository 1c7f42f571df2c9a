// libFuzzer target: the API front and every provider's validation.
//
// One input is one request: "METHOD TARGET[ #HEX]\n" followed by the body. It goes through what a
// real request goes through after the HTTP parser: ParseRequestTarget, ParseJson with the request
// limits, then ApiServer::Handle (authentication, routing, body shapes, the provider) on an
// in-process region whose engines are fakes at their interfaces (FakeHypervisor, an in-memory
// disk engine); the store, the operations, the vaults and the policies are the real code.
// The region lives for the whole run, so requests build on each other as on a daemon.
// Byte mutations of JSON text rarely turn an object into a string; the optional "#HEX" suffix
// does it on purpose: each byte b replaces value number (b >> 3) of the parsed body (pre-order)
// with a value of another type (b & 7: null, "x", 0, -1.5, true, [], {}, [[]]), so the fuzzer
// explores wrong types everywhere a provider looks.
//
// Properties checked, besides AddressSanitizer and UndefinedBehaviorSanitizer: no exception
// escapes, no request is answered 500 (a 500 means a provider used a value it had not checked),
// every response serialises.
//
// Built by `make fuzz` with clang (tests/fuzz/CMakeLists.txt); run for a bounded time by ctest
// (tests/fuzz/run.sh) over the corpus checked in beside this file.
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "api/http_server.h"
#include "api/operations.h"
#include "api/server.h"
#include "auth/token_authenticator.h"
#include "compute/fake_hypervisor.h"
#include "compute/images.h"
#include "core/fs.h"
#include "core/json.h"
#include "daemon/control_plane.h"
#include "network/fake_network_engine.h"
#include "storage/disk_engine.h"
#include "storage/disk_service.h"
#include "store/sqlite_store.h"

namespace stratus {
namespace {

constexpr const char* kSubscription = "00000000-0000-4000-8000-00000000f022";

// Disks as small files holding their size: enough for the controllers, nothing for qemu-img.
class MemoryDiskEngine final : public storage::DiskEngine {
 public:
  Status CreateEmpty(const std::string& path, uint64_t size) override {
    if (PathExists(path)) return Conflict("exists: " + path);
    return WriteFileAtomic(path, std::to_string(size));
  }
  Status CreateFromSource(const std::string& path, const std::string&, uint64_t size,
                          const std::string&) override {
    return WriteFileAtomic(path, std::to_string(size));
  }
  Status Grow(const std::string& path, uint64_t size) override {
    return WriteFileAtomic(path, std::to_string(size));
  }
  Result<storage::DiskUsage> Usage(const std::string& path) override {
    ASSIGN_OR_RETURN(std::string s, ReadFile(path));
    return storage::DiskUsage{std::strtoull(s.c_str(), nullptr, 10), 4096};
  }
  Result<storage::DiskInfo> Inspect(const std::string& path) override {
    ASSIGN_OR_RETURN(storage::DiskUsage u, Usage(path));
    storage::DiskInfo info;
    info.format = "memory";
    info.virtual_bytes = u.virtual_bytes;
    info.allocated_bytes = u.allocated_bytes;
    return info;
  }
  Status Remove(const std::string& path) override { return RemoveFile(path); }
};

// Pre-order walk: the `*n`-th value of `v` (counting down), or nullptr when there are fewer.
Json* NthValue(Json& v, int* n) {
  if ((*n)-- == 0) return &v;
  if (v.is_object() || v.is_array()) {
    for (auto& child : v) {
      if (Json* hit = NthValue(child, n)) return hit;
    }
  }
  return nullptr;
}

void ApplyTypeSwaps(Json& body, const std::string& hex) {
  static const Json kValues[8] = {
      nullptr, "x", 0, -1.5, true, Json::array(), Json::object(), Json::array({Json::array()})};
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    int b = std::stoi(hex.substr(i, 2), nullptr, 16);
    int n = b >> 3;
    if (Json* target = NthValue(body, &n)) *target = kValues[b & 7];
  }
}

struct Region {
  std::string dir;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<api::OperationManager> ops;
  std::unique_ptr<auth::TokenAuthenticator> auth;
  compute::FakeHypervisor hv;
  MemoryDiskEngine engine;
  network::FakeNetworkEngine net;
  std::unique_ptr<daemon::ControlPlane> control;
  api::ApiServer* server = nullptr;
  std::string token;
};

Region* Boot() {
  auto* r = new Region();  // lives for the process: the fuzzer never returns from its loop
  const char* parent = std::getenv("STRATUS_FUZZ_DIR");  // run.sh removes it afterwards
  std::string tmpl = std::string(parent ? parent : "/tmp") + "/stratus-fuzz-XXXXXX";
  if (!::mkdtemp(tmpl.data())) abort();
  r->dir = tmpl;
  std::string images = r->dir + "/platform/tiny";
  std::filesystem::create_directories(images);
  WriteFileAtomic(
      images + "/image.json",
      R"({"name":"tiny","kernel":"vmlinuz","initrd":"initrd.img","disk":"disk.qcow2"})");
  auto s = store::SqliteStore::Open(r->dir + "/state.db", store::SqliteStore::Durability::kNormal);
  if (!s.ok()) abort();
  r->store = std::move(s).value();
  r->ops = std::make_unique<api::OperationManager>(r->store.get(), SystemClock::Default(), 2);
  auto a = auth::TokenAuthenticator::Init(r->store.get(), r->dir);
  if (!a.ok()) abort();
  r->auth = std::move(a).value();
  r->token = *ReadFile(r->dir + "/admin.token");
  while (!r->token.empty() && r->token.back() == '\n') r->token.pop_back();
  api::RegionContext ctx{r->store.get(), r->ops.get(), SystemClock::Default(), "regionF", r->dir};
  daemon::ControlPlaneOptions cp;
  cp.platform_images_dir = r->dir + "/platform";
  cp.image_import.import_dirs = {r->dir + "/import"};
  std::filesystem::create_directories(cp.image_import.import_dirs[0]);
  auto control = daemon::ControlPlane::Build(ctx, r->auth.get(), &r->hv, &r->engine, &r->net, cp);
  if (!control.ok()) abort();
  r->control = std::move(control).value();
  r->server = r->control->server();
  if (!r->server->EnsureSubscription(kSubscription, "fuzz").ok()) abort();
  if (!r->control->Start().ok()) abort();
  // A group to work in, so that inputs reach the providers.
  api::ApiRequest g;
  g.method = "PUT";
  g.path = std::string("/subscriptions/") + kSubscription + "/resourceGroups/rg";
  g.headers["authorization"] = "Bearer " + r->token;
  g.body = {{"location", "regionF"}};
  if (r->server->Handle(g).status >= 300) abort();
  return r;
}

}  // namespace
}  // namespace stratus

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace stratus;
  static Region* region = Boot();
  std::string input(reinterpret_cast<const char*>(data), size);
  size_t nl = input.find('\n');
  std::string line = input.substr(0, nl);
  std::string body = nl == std::string::npos ? std::string() : input.substr(nl + 1);
  size_t sp = line.find(' ');
  if (sp == std::string::npos) return 0;
  api::ApiRequest req;
  req.method = line.substr(0, sp);
  std::string target = line.substr(sp + 1);
  std::string swaps;
  size_t hash = target.find(" #");
  if (hash != std::string::npos) {
    swaps = target.substr(hash + 2);
    target.resize(hash);
    for (char c : swaps)
      if (!std::isxdigit(static_cast<unsigned char>(c))) return 0;
  }
  std::map<std::string, std::string> query;
  if (!api::ParseRequestTarget(target, &req.path, &query).ok()) return 0;
  for (auto& [k, v] : query) req.query[ToLower(k)] = v;
  req.headers["authorization"] = "Bearer " + region->token;
  if (!body.empty()) {
    auto parsed = ParseJson(body, JsonLimits::Request());
    if (!parsed.ok()) {
      // The message must not quote the input (it may hold a secret).
      if (body.size() >= 16 && parsed.status().message().find(body) != std::string::npos) abort();
      return 0;
    }
    req.body = std::move(parsed).value();
    ApplyTypeSwaps(req.body, swaps);
  }
  api::ApiResponse resp = region->server->Handle(std::move(req));
  std::string out = DumpJson(resp.body);
  if (resp.status == 500) {
    std::fprintf(stderr, "HTTP 500 for %s: %s\n", line.c_str(), out.c_str());
    abort();
  }
  return 0;
}
