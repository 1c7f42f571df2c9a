// End-to-end test harness: a real stratusd on a real libvirt/QEMU, driven over HTTP.
//
// `Daemon` starts stratusd (posix_spawn, own process group) on a fresh test root
// /var/tmp/stratus-e2e-<random>/ (mode 0755, QEMU must traverse it) holding
//   data/          the daemon's --data-dir
//   cli/cli.json   the daemon's --cli-config (set_cli_config() moves it, e.g. into data/)
//   stratusd.log   stdout + stderr of every daemon run (shown when a test fails)
//   owner          "<pid> <start time>" of the test process, so a later run can reap leftovers
// and talks to it with the admin bearer token. Cleanup (destructor, Cleanup(), and a gtest
// Environment for daemons still alive at the end) kills the daemon, destroys and undefines every
// libvirt domain whose XML points into the test root, and removes the root. Domains that do not
// reference the test root are never touched. Leftovers of test processes that died without
// cleaning up (SIGKILL, ctest timeout) are reaped at the start of the next run, under the same
// rule. STRATUS_E2E_KEEP=1 keeps the test root (domains are still removed).
//
// Guest image: $STRATUS_GUEST_DIR (the folder holding tiny/), default <source>/build/guest.
// DaemonTest's SetUp (below) skips a test when SkipReason() is not empty.
//
// `DaemonTest` is the fixture of every e2e test: it starts and cleans up the test's (or the
// suite's) daemon and holds what the tests share: ASSERT_SUCCEEDED, waiting for operations and
// backup jobs, running commands in the guest, and the tiny-VM request body (`TinyVmBody`).
//
// Not thread-safe: one test thread drives a Daemon (HTTP calls may come from several threads).
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/types.h>

#include <chrono>
#include <ios>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/raw_connection.h"

namespace stratus::e2e {

using Json = nlohmann::json;
using Seconds = std::chrono::seconds;

// Folder of platform images (contains tiny/).
std::string GuestDir();
// Why e2e tests cannot run here ("" when they can): no guest image, no stratusd, not root.
std::string SkipReason();

std::string RandomHex(int bytes);
// Runs a program (no shell), returns exit code and stdout+stderr.
int RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr);
std::string ReadWholeFile(const std::string& path);
// Regular files below `dir` (recursive), absolute paths; empty if `dir` does not exist.
std::vector<std::string> FilesUnder(const std::string& dir);
// Pids of processes (other than this one) whose command line mentions `needle`.
std::vector<pid_t> ProcessesMentioning(const std::string& needle);
// "stratus-<vmId>"
inline std::string DomainName(const std::string& vm_id) { return "stratus-" + vm_id; }
// Lower-cased copy.
std::string Lower(std::string s);

struct HttpResponse {
  int status = 0;  // 0: transport error, see `transport_error`
  std::string body;
  Json json;  // parsed body; null when empty or not JSON
  httplib::Headers headers;
  std::string transport_error;

  std::string Header(const std::string& name) const;
  std::string ErrorCode() const;     // error.code or ""
  std::string ErrorMessage() const;  // error.message or ""
  // "HTTP 409 <body>" for assertion messages.
  std::string Describe() const;
};

// Result of a command run in a guest through the QEMU guest agent.
struct GuestExec {
  bool ok = false;  // the agent ran it and it exited (exit code below)
  int exit_code = -1;
  std::string out;
  std::string err;
  std::string error;  // why it did not run / did not finish
  std::string Describe() const;
};

// A disk of a domain's XML (only what the tests check).
struct DomainDisk {
  std::string target;  // vda
  std::string source;  // file path
  std::string serial;
  uint64_t total_iops_sec = 0;
  uint64_t total_bytes_sec = 0;
  bool read_only = false;
};
std::vector<DomainDisk> ParseDomainDisks(const std::string& xml);
// The disk of `disks` with this serial, or nullptr.
const DomainDisk* FindBySerial(const std::vector<DomainDisk>& disks, const std::string& serial);

class Daemon {
 public:
  explicit Daemon(std::string region = "e2eRegion");
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Extra command-line arguments for every start (e.g. {"--operation-workers", "2"}).
  void set_extra_args(std::vector<std::string> args) { extra_args_ = std::move(args); }
  // Where --cli-config points, relative to the test root (default "cli/cli.json").
  void set_cli_config(std::string relative) { cli_config_rel_ = std::move(relative); }

  // Starts stratusd and waits (up to `timeout`) for its "stratusd ready" line. The first start
  // creates the test root and listens on a free port; later starts reuse both.
  ::testing::AssertionResult Start(Seconds timeout = Seconds(60));
  // SIGTERM and wait for the exit (SIGKILL after 60 s, reported as a failure).
  ::testing::AssertionResult Stop();
  // Stop() then Start(): same data dir, same port.
  ::testing::AssertionResult Restart();
  // SIGKILL to the daemon's process group (it and its helpers), then reap it.
  ::testing::AssertionResult Kill9();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Kills the daemon, removes the test's domains and the test root. Idempotent.
  void Cleanup();

  int port() const { return port_; }
  int peer_port() const { return peer_port_; }  // the peer link's (site recovery)
  const std::string& region() const { return region_; }
  const std::string& subscription() const { return subscription_; }
  const std::string& token() const { return token_; }
  const std::string& root() const { return root_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string cli_config_path() const { return root_ + "/" + cli_config_rel_; }
  std::string LogTail(size_t max_lines = 80) const;

  // API paths.
  std::string SubPath() const { return "/subscriptions/" + subscription_; }
  std::string GroupPath(const std::string& rg) const { return SubPath() + "/resourceGroups/" + rg; }
  std::string ResourcePath(const std::string& rg, const std::string& ns, const std::string& type,
                           const std::string& name) const {
    return GroupPath(rg) + "/providers/" + ns + "/" + type + "/" + name;
  }
  std::string VmPath(const std::string& rg, const std::string& name) const {
    return ResourcePath(rg, "Stratus.Compute", "virtualMachines", name);
  }
  std::string DiskPath(const std::string& rg, const std::string& name) const {
    return ResourcePath(rg, "Stratus.Storage", "disks", name);
  }
  std::string SnapshotPath(const std::string& rg, const std::string& name) const {
    return ResourcePath(rg, "Stratus.Storage", "snapshots", name);
  }
  std::string VaultPath(const std::string& rg, const std::string& name) const {
    return ResourcePath(rg, "Stratus.RecoveryServices", "vaults", name);
  }
  std::string OperationPath(const std::string& op_id) const {
    return SubPath() + "/providers/Stratus.Resources/operations/" + op_id;
  }
  std::string ActivityLogPath(int top = 1000) const {
    return SubPath() + "/providers/Stratus.Insights/activityLogs?$top=" + std::to_string(top);
  }

  // HTTP. `auth` adds "Authorization: Bearer <admin token>" unless `headers` has one.
  HttpResponse Request(const std::string& method, const std::string& path,
                       const std::string& raw_body = "", httplib::Headers headers = {},
                       bool auth = true) const;
  HttpResponse Get(const std::string& path, httplib::Headers headers = {}) const {
    return Request("GET", path, "", std::move(headers));
  }
  HttpResponse Put(const std::string& path, const Json& body, httplib::Headers headers = {}) const {
    return Request("PUT", path, body.dump(), std::move(headers));
  }
  HttpResponse Patch(const std::string& path, const Json& body,
                     httplib::Headers headers = {}) const {
    return Request("PATCH", path, body.dump(), std::move(headers));
  }
  // POST always sends a body ("{}" by default): cpp-httplib rejects a POST without one.
  HttpResponse Post(const std::string& path, const Json& body = Json::object(),
                    httplib::Headers headers = {}) const {
    return Request("POST", path, body.dump(), std::move(headers));
  }
  HttpResponse Delete(const std::string& path, httplib::Headers headers = {}) const {
    return Request("DELETE", path, "", std::move(headers));
  }

  // A write that follows a finished operation on the same resource. The daemon must accept it;
  // a 409 naming an operation that already reports an end status is a daemon bug (the
  // operation's locks outlive its published end): reported with ADD_FAILURE, then retried
  // (up to 10 s) so the rest of the test still runs.
  HttpResponse Act(const std::string& method, const std::string& path,
                   const Json& body = Json::object()) const;

  // Polls an operation (absolute URL from Azure-AsyncOperation, or a path) until its status is
  // not InProgress; returns the last operation body. ADD_FAILUREs on timeout.
  Json WaitOperation(const std::string& url, Seconds timeout = Seconds(300)) const;
  // The operation URL of a 201/202 response, waited for. ADD_FAILUREs when there is none.
  Json WaitFor(const HttpResponse& accepted, Seconds timeout = Seconds(300)) const;

  Json InstanceView(const std::string& vm_path) const;
  // Polls POST <vm>/retrieveConsoleLog until `marker` occurs at least `min_count` times.
  // Returns whether it did; `content` gets the last console text (for messages).
  bool WaitForConsole(const std::string& vm_path, const std::string& marker, Seconds timeout,
                      int min_count = 1, std::string* content = nullptr) const;

  // Runs `sh -c <cmd>` in the guest through the guest agent (guest-exec + guest-exec-status).
  static GuestExec AgentExec(const std::string& domain, const std::string& cmd,
                             Seconds timeout = Seconds(60));
  // AgentExec retried until the agent answers (it may not be up yet).
  static GuestExec AgentExecWhenReady(const std::string& domain, const std::string& cmd,
                                      Seconds timeout = Seconds(90));

  // Guest block devices by serial ("lun0" -> "vdb"), read from /sys/block/vd*/serial.
  static std::map<std::string, std::string> GuestDisksBySerial(const std::string& domain,
                                                               std::string* error = nullptr);
  // Polls GuestDisksBySerial until `serial` is present (or absent when `present` is false).
  static bool WaitGuestDisk(const std::string& domain, const std::string& serial, bool present,
                            Seconds timeout, std::string* device = nullptr);

  // libvirt views.
  // "running", "shut off", "paused (starting up)", ... or "" if the domain does not exist.
  static std::string DomainState(const std::string& domain);
  // Live XML when running, else the persistent definition; "" if absent.
  static std::string DomainXml(const std::string& domain);
  // Names of domains (any state) whose XML points into this test's root.
  std::vector<std::string> OwnedDomains() const;

 private:
  ::testing::AssertionResult Spawn(Seconds timeout);
  ::testing::AssertionResult Reap(Seconds timeout, bool* exited);

  std::string region_;
  std::vector<std::string> extra_args_;
  std::string cli_config_rel_ = "cli/cli.json";
  std::string root_;
  std::string data_dir_;
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
  int peer_port_ = 0;
  std::string subscription_;
  std::string token_;
  bool cleaned_ = false;
};

using test::RawConnection;

// Resident memory of a process in bytes (VmRSS), 0 if unknown.
uint64_t ResidentBytes(pid_t pid);

// Removes the libvirt domains whose XML mentions `dir` + "/" (destroy + undefine) and returns
// their names. Never touches any other domain.
std::vector<std::string> RemoveDomainsUnder(const std::string& dir);

// Chunk objects of every vault of the daemon with data directory `data_dir`
// (<data_dir>/vaults/<vault>/chunks/...), sorted; empty when there are none.
std::vector<std::string> VaultChunkFiles(const std::string& data_dir);
// The largest of `files` ("" when empty).
std::string LargestFile(const std::vector<std::string>& files);
// XORs the byte at `offset` of `path` with 0x5a: a corruption that always changes it (writing a
// constant would not when the byte already holds it). False when the file cannot be changed.
bool FlipByte(const std::string& path, std::streamoff offset);

// ------------------------------------------------------------------------------------------
// Request bodies

// The PUT body of a VM of the tiny platform image. It starts as the smallest valid one:
//   {"location": <location>, "properties": {"hardwareProfile": {"vmSize": "Standard_S1"},
//    "storageProfile": {"imageReference": {"id": "tiny"}}}}
// and each call adds or replaces one part. Converts to the Json it holds (tests that break one
// thing in a body copy it into a Json and edit that).
class TinyVmBody {
 public:
  explicit TinyVmBody(const std::string& location);

  TinyVmBody& Size(const std::string& vm_size);  // hardwareProfile.vmSize
  TinyVmBody& Image(const Json& id);             // imageReference.id: platform name or image id
  // osProfile.computerName (without it the body has no osProfile).
  TinyVmBody& ComputerName(const std::string& name);
  // osProfile.customData (the guest runs it as a script).
  TinyVmBody& CustomData(const std::string& script);
  // storageProfile.osDisk named `name`; size_gb 0 leaves the image's size, sku "" the default tier.
  TinyVmBody& OsDisk(const std::string& name, int size_gb = 0, const std::string& sku = "");
  // Appends an empty data disk (createOption Empty) at `lun` to storageProfile.dataDisks.
  TinyVmBody& DataDisk(int lun, const std::string& name, int size_gb = 1,
                       const std::string& sku = "");

  operator const Json&() const { return body_; }  // NOLINT(google-explicit-constructor)

 private:
  Json body_;
};

// A daily (02:00) backup policy keeping `daily_count` daily points; `consistency` "" leaves the
// policy's default.
Json DailyPolicyBody(int daily_count = 7, const std::string& consistency = "");
// A protected item: the VM `vm_id` (resource id) backed up by the policy `policy_id`.
Json ProtectedItemBody(const std::string& vm_id, const std::string& policy_id);

// ------------------------------------------------------------------------------------------
// The fixture

// Whether an operation body (Daemon::WaitFor) ended "Succeeded"; the failure gives its status
// and the whole body. Each macro evaluates `op` once.
::testing::AssertionResult OperationSucceeded(const Json& op);
#define ASSERT_SUCCEEDED(op) ASSERT_TRUE(::stratus::e2e::OperationSucceeded(op))
#define EXPECT_SUCCEEDED(op) EXPECT_TRUE(::stratus::e2e::OperationSucceeded(op))

// How a DaemonTest starts its stratusd, e.g. DaemonOptions("regionBk").Group("rg-backup").
class DaemonOptions {
 public:
  explicit DaemonOptions(std::string region) : region_(std::move(region)) {}
  // The resource group PUT before each test (default: none).
  DaemonOptions& Group(std::string rg) {
    group_ = std::move(rg);
    return *this;
  }
  // More stratusd flags, e.g. {"--import-dir", dir}.
  DaemonOptions& Flags(std::vector<std::string> flags) {
    flags_ = std::move(flags);
    return *this;
  }
  // --cli-config, relative to the test root (default: Daemon's, cli/cli.json).
  DaemonOptions& CliConfig(std::string relative) {
    cli_config_ = std::move(relative);
    return *this;
  }

 private:
  friend class DaemonTest;
  std::string region_;
  std::string group_;
  std::vector<std::string> flags_;
  std::string cli_config_;
};

// A VM a test made or found: what the tests address it by.
struct TestVm {
  std::string path;    // API path
  std::string id;      // resource id
  std::string domain;  // libvirt domain, DomainName(vmId)
};

// The fixture of every e2e test. Where a test's daemon comes from:
//  - its own, one per test: the fixture passes DaemonOptions to the constructor; SetUp starts the
//    daemon and PUTs the group (201), TearDown cleans it up (Daemon::Cleanup: the daemon and its
//    helpers, the test's domains, the test root), also when the test failed;
//  - the suite's, one per suite (what it boots is shared by the suite's tests): the fixture's
//    SetUpTestSuite calls StartSuiteDaemon(options), its TearDownTestSuite StopSuiteDaemon();
//    SetUp checks that it runs and PUTs the group (200 or 201: an earlier test made it);
//  - the test body's: StartDaemon(options) (tests of stratusd's start-up flags).
// SetUp first skips the test (GTEST_SKIP) when SkipReason() is not empty. A fixture that
// overrides SetUp calls DaemonTest::SetUp() first and returns when IsSkipped() or
// HasFatalFailure(). Daemons left running are also cleaned up at the end of the test program.
//
// One suite daemon at a time (gtest runs suites one after the other). Helpers that can fail the
// test in more than one step are void and assert: call them with ASSERT_NO_FATAL_FAILURE.
class DaemonTest : public ::testing::Test {
 protected:
  DaemonTest() = default;
  explicit DaemonTest(DaemonOptions per_test) : per_test_(std::move(per_test)) {}

  void SetUp() override;
  void TearDown() override;

  static void StartSuiteDaemon(const DaemonOptions& options);
  static void StopSuiteDaemon();
  // Starts a daemon owned by this test (TearDown cleans it up) and PUTs options.group.
  ::testing::AssertionResult StartDaemon(const DaemonOptions& options);

  // The test's daemon (its own or the suite's). Only after SetUp (or StartDaemon) succeeded.
  Daemon& d() const { return *d_; }
  // The path of vault `name` in the options' resource group.
  std::string VaultPath(const std::string& name) const { return d().VaultPath(group_, name); }
  // A tiny-VM body in the daemon's region.
  TinyVmBody TinyVm() const { return TinyVmBody(d().region()); }

  // PUTs `body` as VM `name` of the options' group (201, with an id) and waits (up to
  // `timeout`) for its create to succeed.
  void CreateVm(const std::string& name, const Json& body, TestVm* vm,
                Seconds timeout = Seconds(180));
  // GETs VM `name` of the options' group (200).
  void GetVm(const std::string& name, TestVm* vm);
  // Waits until the console of `vm` shows `ready` `boots` times (120 s), then until the guest
  // sees the disk with serial `serial` (60 s); *device gets its name ("vdb").
  void WaitGuestDisk(const TestVm& vm, const std::string& serial, std::string* device,
                     const std::string& ready = "STRATUS-GUEST-READY", int boots = 1);
  // Runs `sh -c cmd` in the guest of `domain` (waiting for its agent, up to `timeout`); fails
  // the test (non-fatally) unless it exits 0. Returns its stdout.
  static std::string Guest(const std::string& domain, const std::string& cmd,
                           Seconds timeout = Seconds(180));

  // Daemon::Act, which must answer 202 (else ADD_FAILURE and {}), then its operation, waited for.
  Json ActAndWait(const std::string& method, const std::string& path,
                  const Json& body = Json::object(), Seconds timeout = Seconds(300));
  // The backup job a 202 of "backup"/"restore" started, after its operation ended; the operation
  // is in ["operation"]. {} (and a failure) when `accepted` is not a 202.
  Json FinishJob(const HttpResponse& accepted, Seconds timeout = Seconds(300));
  // Polls a backup job until its status is neither Queued nor InProgress; ADD_FAILUREs on timeout.
  Json WaitJobEnd(const std::string& job_path, Seconds timeout);
  // The recovery points of a protected item, newest first (by recoveryPointTime).
  std::vector<Json> RecoveryPoints(const std::string& item_path);

 private:
  static std::unique_ptr<Daemon> MakeDaemon(const DaemonOptions& options);
  ::testing::AssertionResult PutGroup(bool may_exist) const;

  std::optional<DaemonOptions> per_test_;
  std::unique_ptr<Daemon> own_;  // the test's own daemon
  Daemon* d_ = nullptr;          // own_ or the suite's
  std::string group_;

  static std::unique_ptr<Daemon> suite_;
  static std::string suite_group_;
  static ::testing::AssertionResult suite_started_;
  static bool suite_mode_;  // between StartSuiteDaemon and StopSuiteDaemon
};

}  // namespace stratus::e2e
