// Bad input against a real stratusd: every rejected request gets the documented status and
// error code, and changes nothing (resources, etags, disk files, domains are the same after).
//
// One daemon per test suite (one per test under ctest, which runs each test in its own
// process). Only the tests about attached disks and concurrent operations create a VM.
#include <sys/statvfs.h>

#include <thread>

#include "harness.h"

namespace stratus::e2e {
namespace {

constexpr const char* kBadRg = "rg-bad";
constexpr const char* kSharedVm = "shared";
constexpr const char* kSharedDisk = "shared-data";

class BadInputTest : public DaemonTest {
 protected:
  static void SetUpTestSuite() { StartSuiteDaemon(DaemonOptions("regionBad").Group(kBadRg)); }
  static void TearDownTestSuite() {
    StopSuiteDaemon();
    shared_vm_ready_ = false;
  }

  // A valid VM body with `data_disks` empty disks <prefix>-data<i>; tests break one thing in it.
  Json VmBody(int data_disks = 0, const std::string& prefix = "vm") {
    TinyVmBody body = TinyVm().ComputerName(prefix);
    for (int i = 0; i < data_disks; ++i) body.DataDisk(i, prefix + "-data" + std::to_string(i));
    return body;
  }

  // Everything a rejected request must leave alone: subscriptions, groups and their resources
  // (ids, etags, states), disk and VM files, libvirt domains.
  std::string Fingerprint() {
    std::string fp;
    auto subs = d().Get("/subscriptions");
    for (auto& s : subs.json.value("value", Json::array()))
      fp += "sub " + s.value("id", "") + " " + s.value("etag", "") + "\n";
    auto groups = d().Get(d().SubPath() + "/resourceGroups?$top=1000");
    EXPECT_EQ(groups.status, 200) << groups.Describe();
    for (auto& g : groups.json.value("value", Json::array())) {
      fp += "group " + g.value("id", "") + " " + g.value("etag", "") + "\n";
      auto res = d().Get(g.value("id", "") + "/resources?$top=1000");
      for (auto& r : res.json.value("value", Json::array()))
        fp += "  " + r.value("id", "") + " " + r.value("etag", "") + " " +
              r["properties"].value("provisioningState", "") + "\n";
    }
    for (auto& f : FilesUnder(d().data_dir() + "/disks")) fp += "file " + f + "\n";
    for (auto& f : FilesUnder(d().data_dir() + "/snapshots")) fp += "file " + f + "\n";
    for (auto& f : FilesUnder(d().data_dir() + "/vms"))
      fp += "vmdir " + f.substr(0, f.rfind('/')) + "\n";
    for (auto& dom : d().OwnedDomains()) fp += "domain " + dom + "\n";
    return fp;
  }

  // Sends a request that must be rejected with `status` / `code` and change nothing.
  HttpResponse ExpectRejected(const std::string& method, const std::string& path,
                              const std::string& body, int status, const std::string& code,
                              httplib::Headers headers = {}, bool auth = true) {
    std::string before = Fingerprint();
    HttpResponse r = d().Request(method, path, body, std::move(headers), auth);
    EXPECT_EQ(r.status, status) << method << " " << path << ": " << r.Describe();
    EXPECT_EQ(r.ErrorCode(), code) << method << " " << path << ": " << r.Describe();
    EXPECT_FALSE(r.ErrorMessage().empty()) << "error without a message: " << r.Describe();
    // Anything the request started would show up within moments.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(Fingerprint(), before) << method << " " << path << " changed something";
    return r;
  }

  // The shared VM (1 data disk), created once per suite; waits for its create operation.
  void EnsureSharedVm() {
    if (shared_vm_ready_) return;
    TestVm vm;
    ASSERT_NO_FATAL_FAILURE(
        CreateVm(kSharedVm, TinyVm().ComputerName(kSharedVm).DataDisk(0, kSharedDisk), &vm));
    shared_vm_ready_ = true;
  }

  static bool shared_vm_ready_;
};

bool BadInputTest::shared_vm_ready_ = false;

TEST_F(BadInputTest, InvalidVmName) {
  std::string body = VmBody().dump();
  ExpectRejected("PUT", d().VmPath(kBadRg, "bad_name!"), body, 400, "InvalidResourceName");
  ExpectRejected("PUT", d().VmPath(kBadRg, std::string(100, 'a')), body, 400,
                 "InvalidResourceName");
  ExpectRejected("PUT", d().VmPath(kBadRg, "-leading-dash"), body, 400, "InvalidResourceName");
  ExpectRejected("PUT", d().VmPath(kBadRg, "trailing."), body, 400, "InvalidResourceName");
  auto list = d().Get(d().GroupPath(kBadRg) + "/providers/Stratus.Compute/virtualMachines");
  ASSERT_EQ(list.status, 200) << list.Describe();
  EXPECT_TRUE(list.json["value"].empty()) << list.body;
}

TEST_F(BadInputTest, InvalidGroupName) {
  std::string body = Json{{"location", d().region()}}.dump();
  ExpectRejected("PUT", d().GroupPath("bad!group"), body, 400, "InvalidResourceGroupName");
  ExpectRejected("PUT", d().GroupPath("ends-with-dot."), body, 400, "InvalidResourceGroupName");
  ExpectRejected("PUT", d().GroupPath(std::string(91, 'g')), body, 400, "InvalidResourceGroupName");
  // A VM under an invalid group name is rejected for the group, not the VM.
  ExpectRejected("PUT",
                 d().GroupPath("bad!group") + "/providers/Stratus.Compute/virtualMachines/vm1",
                 VmBody().dump(), 400, "InvalidResourceGroupName");
}

TEST_F(BadInputTest, InvalidSubscriptionId) {
  std::string body = Json{{"location", d().region()}}.dump();
  ExpectRejected("PUT", "/subscriptions/not_a_subscription!/resourceGroups/rg1", body, 400,
                 "InvalidSubscriptionId");
  ExpectRejected("PUT", "/subscriptions/" + std::string(65, 'a'), Json{{"displayName", "x"}}.dump(),
                 400, "InvalidSubscriptionId");
  // A well-formed id that does not exist.
  ExpectRejected("PUT", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1",
                 body, 404, "SubscriptionNotFound");
}

TEST_F(BadInputTest, UnknownVmSize) {
  Json body = VmBody(1, "sized");
  body["properties"]["hardwareProfile"]["vmSize"] = "Standard_Nope";
  auto r = ExpectRejected("PUT", d().VmPath(kBadRg, "sized"), body.dump(), 400, "UnknownVmSize");
  EXPECT_NE(r.ErrorMessage().find("Standard_S1"), std::string::npos)
      << "the message should list the available sizes: " << r.ErrorMessage();
  EXPECT_EQ(d().Get(d().VmPath(kBadRg, "sized")).status, 404);
  EXPECT_EQ(d().Get(d().DiskPath(kBadRg, "sized-data0")).status, 404);
}

TEST_F(BadInputTest, UnknownImage) {
  Json body = VmBody(1, "imaged");
  body["properties"]["storageProfile"]["imageReference"]["id"] = "no-such-image";
  ExpectRejected("PUT", d().VmPath(kBadRg, "imaged"), body.dump(), 404, "ImageNotFound");
  body["properties"]["storageProfile"]["imageReference"]["id"] =
      d().GroupPath(kBadRg) + "/providers/Stratus.Compute/images/missing";
  ExpectRejected("PUT", d().VmPath(kBadRg, "imaged"), body.dump(), 404, "ImageNotFound");
  EXPECT_EQ(d().Get(d().VmPath(kBadRg, "imaged")).status, 404);
}

TEST_F(BadInputTest, DiskLargerThanHostAllows) {
  struct statvfs st {};
  ASSERT_EQ(::statvfs(d().data_dir().c_str(), &st), 0);
  const uint64_t free_gib = static_cast<uint64_t>(st.f_bavail) * st.f_frsize >> 30;
  const int64_t size_gb = 32000;
  if (free_gib >= static_cast<uint64_t>(size_gb))
    GTEST_SKIP() << "the host has " << free_gib << " GiB free: a " << size_gb
                 << " GiB disk fits here";
  Json disk = {
      {"location", d().region()},
      {"sku", {{"name", "Standard_LRS"}}},
      {"properties", {{"diskSizeGB", size_gb}, {"creationData", {{"createOption", "Empty"}}}}}};
  auto r = ExpectRejected("PUT", d().DiskPath(kBadRg, "huge"), disk.dump(), 400, "DiskTooLarge");
  EXPECT_NE(r.ErrorMessage().find(std::to_string(size_gb)), std::string::npos) << r.ErrorMessage();
  EXPECT_EQ(d().Get(d().DiskPath(kBadRg, "huge")).status, 404);
  // The same through a VM's data disk.
  Json vm = VmBody(1, "hugevm");
  vm["properties"]["storageProfile"]["dataDisks"][0]["diskSizeGB"] = size_gb;
  ExpectRejected("PUT", d().VmPath(kBadRg, "hugevm"), vm.dump(), 400, "DiskTooLarge");
  EXPECT_EQ(d().Get(d().VmPath(kBadRg, "hugevm")).status, 404);
}

TEST_F(BadInputTest, TooManyDataDisks) {
  Json body = VmBody(3, "many");  // Standard_S1 allows 2
  ExpectRejected("PUT", d().VmPath(kBadRg, "many"), body.dump(), 400, "TooManyDataDisks");
  EXPECT_EQ(d().Get(d().VmPath(kBadRg, "many")).status, 404);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(d().Get(d().DiskPath(kBadRg, "many-data" + std::to_string(i))).status, 404);
}

TEST_F(BadInputTest, DeleteAttachedDisk) {
  ASSERT_NO_FATAL_FAILURE(EnsureSharedVm());
  const std::string disk = d().DiskPath(kBadRg, kSharedDisk);
  auto before = d().Get(disk);
  ASSERT_EQ(before.status, 200) << before.Describe();
  ASSERT_EQ(before.json["properties"].value("diskState", ""), "Attached");
  ExpectRejected("DELETE", disk, "", 409, "DiskAttached");
  auto after = d().Get(disk);
  ASSERT_EQ(after.status, 200) << after.Describe();
  EXPECT_EQ(after.json["properties"].value("diskState", ""), "Attached");
  EXPECT_EQ(after.json.value("etag", ""), before.json.value("etag", ""));
  EXPECT_EQ(Lower(after.json.value("managedBy", "")),
            Lower(d().Get(d().VmPath(kBadRg, kSharedVm)).json.value("id", "")));
}

TEST_F(BadInputTest, ConflictingOperationsOnOneVm) {
  ASSERT_NO_FATAL_FAILURE(EnsureSharedVm());
  const std::string vm = d().VmPath(kBadRg, kSharedVm);
  // A graceful powerOff needs a booted guest (ACPI); it then runs for a few seconds.
  std::string console;
  ASSERT_TRUE(d().WaitForConsole(vm, "STRATUS-GUEST-READY", Seconds(90), 1, &console)) << console;
  auto vm_before = d().Get(vm);
  auto off = d().Post(vm + "/powerOff");
  ASSERT_EQ(off.status, 202) << off.Describe();
  std::string op_id = off.Header("Azure-AsyncOperation");
  op_id = op_id.substr(op_id.rfind('/') + 1);
  auto is_conflict = [&](const HttpResponse& r, const char* what) {
    EXPECT_EQ(r.status, 409) << what << ": " << r.Describe();
    EXPECT_TRUE(r.ErrorCode() == "OperationNotAllowed" || r.ErrorCode() == "Conflict")
        << what << ": " << r.Describe();
    EXPECT_NE(r.ErrorMessage().find(op_id), std::string::npos)
        << what << ": the message should name the running operation " << op_id << ": "
        << r.Describe();
  };
  is_conflict(d().Post(vm + "/start"), "POST start during powerOff");
  is_conflict(d().Put(vm, vm_before.json), "PUT during powerOff");
  is_conflict(d().Post(vm + "/deallocate"), "POST deallocate during powerOff");
  is_conflict(d().Delete(vm), "DELETE during powerOff");

  EXPECT_SUCCEEDED(d().WaitFor(off, Seconds(120)));
  auto vm_after = d().Get(vm);
  ASSERT_EQ(vm_after.status, 200) << vm_after.Describe();
  EXPECT_EQ(vm_after.json["properties"].value("provisioningState", ""), "Succeeded");
  const Json& before_p = vm_before.json["properties"];
  const Json& after_p = vm_after.json["properties"];
  EXPECT_EQ(after_p["hardwareProfile"], before_p["hardwareProfile"]);
  EXPECT_EQ(after_p["storageProfile"], before_p["storageProfile"]);
  EXPECT_EQ(d().InstanceView(vm).value("powerState", ""), "stopped");
  EXPECT_EQ(Daemon::DomainState(DomainName(vm_before.json["properties"].value("vmId", ""))),
            "shut off");
  // Back to running for the tests that follow.
  auto start = d().Act("POST", vm + "/start");
  ASSERT_EQ(start.status, 202) << start.Describe();
  EXPECT_SUCCEEDED(d().WaitFor(start));
  EXPECT_EQ(d().InstanceView(vm).value("powerState", ""), "running");
}

TEST_F(BadInputTest, ConflictWhileCreating) {
  const std::string vm = d().VmPath(kBadRg, "racer");
  Json body = VmBody(1, "racer");
  auto put = d().Put(vm, body);
  ASSERT_EQ(put.status, 201) << put.Describe();
  // The create operation holds the VM and its new disks until it ends.
  auto again = d().Put(vm, body);
  EXPECT_EQ(again.status, 409) << again.Describe();
  auto start = d().Post(vm + "/start");
  EXPECT_EQ(start.status, 409) << start.Describe();
  EXPECT_EQ(start.ErrorCode(), "OperationNotAllowed") << start.Describe();
  auto del = d().Delete(vm);
  EXPECT_EQ(del.status, 409) << del.Describe();
  // Its data disk does not exist yet (the operation makes it): 204, or 409 if it exists already.
  auto del_disk = d().Delete(d().DiskPath(kBadRg, "racer-data0"));
  EXPECT_TRUE(del_disk.status == 204 || del_disk.status == 409) << del_disk.Describe();

  EXPECT_SUCCEEDED(d().WaitFor(put, Seconds(180)));
  auto g = d().Get(vm);
  ASSERT_EQ(g.status, 200) << g.Describe();
  EXPECT_EQ(g.json["properties"].value("provisioningState", ""), "Succeeded");
  EXPECT_EQ(d().InstanceView(vm).value("powerState", ""), "running");
  auto disk = d().Get(d().DiskPath(kBadRg, "racer-data0"));
  EXPECT_EQ(disk.status, 200) << disk.Describe();
  EXPECT_EQ(disk.json["properties"].value("diskState", ""), "Attached");

  auto rm = d().Act("DELETE", vm + "?deleteDisks=true");
  ASSERT_EQ(rm.status, 202) << rm.Describe();
  EXPECT_SUCCEEDED(d().WaitFor(rm));
  EXPECT_EQ(d().Get(d().DiskPath(kBadRg, "racer-data0")).status, 404);
}

TEST_F(BadInputTest, MalformedJson) {
  const std::string body = R"({"location": "regionBad", "tags": {"a": "b",}})";
  size_t byte = 0;
  try {
    Json parsed = Json::parse(body);
    ADD_FAILURE() << "the test body parses: " << parsed.dump();
  } catch (const Json::parse_error& e) {
    byte = e.byte;
  }
  ASSERT_GT(byte, 0u);
  auto r = ExpectRejected("PUT", d().GroupPath("rg-json"), body, 400, "InvalidRequestContent");
  EXPECT_NE(r.ErrorMessage().find("byte " + std::to_string(byte)), std::string::npos)
      << "the message should give the byte position " << byte << ": " << r.ErrorMessage();
  ExpectRejected("PUT", d().GroupPath("rg-json"), "[1, 2", 400, "InvalidRequestContent");
  // Valid JSON that is not an object.
  ExpectRejected("PUT", d().GroupPath("rg-json"), "[1, 2]", 400, "InvalidRequestContent");
  EXPECT_EQ(d().Get(d().GroupPath("rg-json")).status, 404);
}

TEST_F(BadInputTest, OversizedBody) {
  Json body = {{"location", d().region()}, {"tags", {{"big", std::string(2 << 20, 'x')}}}};
  ExpectRejected("PUT", d().GroupPath("rg-big"), body.dump(), 413, "RequestEntityTooLarge");
  EXPECT_EQ(d().Get(d().GroupPath("rg-big")).status, 404);
  // The daemon still serves requests afterwards.
  EXPECT_EQ(d().Get(d().GroupPath(kBadRg)).status, 200);
}

TEST_F(BadInputTest, MissingToken) {
  std::string body = Json{{"location", d().region()}}.dump();
  ExpectRejected("PUT", d().GroupPath("rg-anon"), body, 401, "AuthenticationFailed", {}, false);
  ExpectRejected("GET", d().GroupPath(kBadRg), "", 401, "AuthenticationFailed", {}, false);
  ExpectRejected("DELETE", d().GroupPath(kBadRg), "", 401, "AuthenticationFailed", {}, false);
  EXPECT_EQ(d().Get(d().GroupPath("rg-anon")).status, 404);
  EXPECT_EQ(d().Get(d().GroupPath(kBadRg)).status, 200);
}

TEST_F(BadInputTest, WrongToken) {
  std::string body = Json{{"location", d().region()}}.dump();
  ExpectRejected("PUT", d().GroupPath("rg-wrong"), body, 401, "AuthenticationFailed",
                 {{"Authorization", "Bearer stk_" + std::string(64, '0')}});
  ExpectRejected("PUT", d().GroupPath("rg-wrong"), body, 401, "AuthenticationFailed",
                 {{"Authorization", "Bearer " + d().token() + "x"}});
  ExpectRejected("PUT", d().GroupPath("rg-wrong"), body, 401, "AuthenticationFailed",
                 {{"Authorization", "Basic " + d().token()}});
  EXPECT_EQ(d().Get(d().GroupPath("rg-wrong")).status, 404);
}

TEST_F(BadInputTest, IfMatchMismatch) {
  const std::string rg = d().GroupPath("rg-etag");
  auto created = d().Put(rg, {{"location", d().region()}, {"tags", {{"v", "1"}}}});
  ASSERT_EQ(created.status, 201) << created.Describe();
  const std::string etag = created.json.value("etag", "");
  ASSERT_FALSE(etag.empty());
  EXPECT_EQ(created.Header("ETag"), etag);
  Json change = {{"location", d().region()}, {"tags", {{"v", "2"}}}};
  ExpectRejected("PUT", rg, change.dump(), 412, "PreconditionFailed", {{"If-Match", "\"stale\""}});
  ExpectRejected("PATCH", rg, Json{{"tags", {{"v", "3"}}}}.dump(), 412, "PreconditionFailed",
                 {{"If-Match", "\"stale\""}});
  ExpectRejected("DELETE", rg, "", 412, "PreconditionFailed", {{"If-Match", "\"stale\""}});
  ExpectRejected("PUT", rg, change.dump(), 412, "PreconditionFailed", {{"If-None-Match", "*"}});
  auto g = d().Get(rg);
  ASSERT_EQ(g.status, 200) << g.Describe();
  EXPECT_EQ(g.json.value("etag", ""), etag);
  EXPECT_EQ(g.json["tags"].value("v", ""), "1");
  // The right etag works.
  auto ok = d().Put(rg, change, {{"If-Match", etag}});
  EXPECT_EQ(ok.status, 200) << ok.Describe();
  EXPECT_EQ(d().Get(rg).json["tags"].value("v", ""), "2");
}

TEST_F(BadInputTest, UnknownProperty) {
  ExpectRejected("PUT", d().GroupPath("rg-unknown"),
                 Json{{"location", d().region()}, {"colour", "blue"}}.dump(), 400,
                 "InvalidParameter");
  const std::string vm = d().VmPath(kBadRg, "unknownprop");
  auto try_vm = [&](const std::string& where, Json body) {
    SCOPED_TRACE("unknown property in " + where);
    auto r = ExpectRejected("PUT", vm, body.dump(), 400, "InvalidParameter");
    EXPECT_NE(r.ErrorMessage().find("colour"), std::string::npos) << r.ErrorMessage();
    if (r.status / 100 == 2) {
      // Accepted by mistake: remove what it made so later checks start clean.
      d().WaitFor(r);
      auto del = d().Act("DELETE", vm + "?deleteDisks=true");
      if (del.status == 202) d().WaitFor(del);
    }
  };
  Json b = VmBody();
  b["colour"] = "blue";
  try_vm("the body", b);
  b = VmBody();
  b["properties"]["colour"] = "blue";
  try_vm("properties", b);
  b = VmBody();
  b["properties"]["storageProfile"]["osDisk"] = {{"colour", "blue"}};
  try_vm("properties.storageProfile.osDisk", b);
  b = VmBody();
  b["properties"]["hardwareProfile"]["colour"] = "blue";
  try_vm("properties.hardwareProfile", b);
  b = VmBody();
  b["properties"]["storageProfile"]["imageReference"]["colour"] = "blue";
  try_vm("properties.storageProfile.imageReference", b);

  const std::string disk = d().DiskPath(kBadRg, "unknownprop-disk");
  auto r = ExpectRejected(
      "PUT", disk,
      Json{{"location", d().region()}, {"properties", {{"diskSizeGB", 1}, {"colour", "blue"}}}}
          .dump(),
      400, "InvalidParameter");
  if (r.status / 100 == 2) {
    d().WaitFor(r);
    d().Act("DELETE", disk);
  }
}

TEST_F(BadInputTest, LocationMismatch) {
  ExpectRejected("PUT", d().GroupPath("rg-elsewhere"), Json{{"location", "otherRegion"}}.dump(),
                 400, "LocationNotAvailableForResourceType");
  Json vm = VmBody();
  vm["location"] = "otherRegion";
  ExpectRejected("PUT", d().VmPath(kBadRg, "elsewhere"), vm.dump(), 400,
                 "LocationNotAvailableForResourceType");
  ExpectRejected("PUT", d().DiskPath(kBadRg, "elsewhere"),
                 Json{{"location", "otherRegion"}, {"properties", {{"diskSizeGB", 1}}}}.dump(), 400,
                 "LocationNotAvailableForResourceType");
  EXPECT_EQ(d().Get(d().GroupPath("rg-elsewhere")).status, 404);
  EXPECT_EQ(d().Get(d().VmPath(kBadRg, "elsewhere")).status, 404);
}

TEST_F(BadInputTest, ActivityLogRecordsFailedWrites) {
  const std::string tag = "e2e-" + RandomHex(6);
  struct Case {
    std::string method, path, body;
    int status;
    httplib::Headers headers;
  };
  Json bad_size = VmBody();
  bad_size["properties"]["hardwareProfile"]["vmSize"] = "Standard_Nope";
  std::vector<Case> cases = {
      {"PUT", d().VmPath(kBadRg, "bad_name!"), VmBody().dump(), 400, {}},
      {"PUT", d().VmPath(kBadRg, "logsize"), bad_size.dump(), 400, {}},
      {"PUT",
       d().GroupPath(kBadRg),
       Json{{"location", d().region()}}.dump(),
       412,
       {{"If-Match", "\"stale\""}}},
      {"POST", d().VmPath(kBadRg, "absent") + "/start", "{}", 404, {}},
      {"DELETE", d().GroupPath(kBadRg), "", 412, {{"If-Match", "\"stale\""}}},
      {"PUT", d().GroupPath("rg-json"), R"({"location": )", 400, {}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    auto& c = cases[i];
    c.headers.emplace("x-ms-correlation-request-id", tag + "-" + std::to_string(i));
    auto r = d().Request(c.method, c.path, c.body, c.headers);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << ": " << r.Describe();
  }
  auto log = d().Get(d().ActivityLogPath());
  ASSERT_EQ(log.status, 200) << log.Describe();
  for (size_t i = 0; i < cases.size(); ++i) {
    auto& c = cases[i];
    SCOPED_TRACE(c.method + " " + c.path + " (HTTP " + std::to_string(c.status) + ")");
    const Json* ev = nullptr;
    for (auto& e : log.json["value"])
      if (e.value("correlationId", "") == tag + "-" + std::to_string(i)) ev = &e;
    if (ev == nullptr) {
      ADD_FAILURE() << "the rejected write is not in the activity log";
      continue;
    }
    EXPECT_EQ(ev->value("caller", ""), "admin") << ev->dump();
    EXPECT_EQ(ev->value("status", ""), "Failed") << ev->dump();
    EXPECT_EQ(ev->value("httpStatus", 0), c.status) << ev->dump();
    EXPECT_EQ(ev->value("httpMethod", ""), c.method) << ev->dump();
    EXPECT_FALSE(ev->value("eventTimestamp", "").empty()) << ev->dump();
    EXPECT_FALSE(ev->value("operationName", "").empty()) << ev->dump();
  }
}

}  // namespace
}  // namespace stratus::e2e
