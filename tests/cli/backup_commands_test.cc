// Tests of `stratus backup ...` (commands_backup.cc) against FakeStratusd: the request each command
// sends (method, path, query, body), the policy convenience flags, argument checks, LRO waiting,
// output and exit codes.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <sstream>

#include "cli/cli_app.h"
#include "cli/fake_stratusd.h"
#include "core/fs.h"
#include "core/uuid.h"

namespace stratus::cli {
namespace {

using testing::CliRun;
using testing::FakeStratusd;
using testing::kRg;
using testing::kSub;
using testing::kVm;
using testing::RecordedRequest;

const std::string kVaults = kRg + "/providers/Stratus.RecoveryServices/vaults";
const std::string kVault = kVaults + "/v1";
const std::string kItem = kVault + "/protectedItems/web1";
const std::string kPoint = kItem + "/recoveryPoints/rp1";
const std::string kPolicy = kVault + "/backupPolicies/daily";
const std::string kJob = kVault + "/backupJobs/job1";
const std::string kOp = "/subscriptions/" + kSub + "/providers/Stratus.Resources/operations/op9";

class BackupCommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("stratus-cli-backup-" + NewUuid())).string();
    ASSERT_TRUE(MakeDirs(dir_).ok());
    std::string token_file = JoinPath(dir_, "admin.token");
    ASSERT_TRUE(WriteFileAtomic(token_file, "file-token\n").ok());
    Json config = {{"default", "regionA"},
                   {"regions",
                    {{"regionA",
                      {{"endpoint", fake_.endpoint()},
                       {"tokenFile", token_file},
                       {"subscription", kSub},
                       {"location", "regionA"}}}}}};
    ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_, "config.json"), config.dump()).ok());
    fake_.server().set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.status == 404)
        FakeStratusd::ReplyError(res, 404, "ResourceNotFound", "No resource at " + req.path);
    });
  }
  void TearDown() override { RemoveTree(dir_); }

  CliRun Stratus(const std::vector<std::string>& args) {
    CliEnvironment env;
    env.config_path = JoinPath(dir_, "config.json");
    env.clock = &clock_;
    env.sleep = [this](int64_t ms) { clock_.AdvanceMs(ms); };
    std::ostringstream out, err;
    int code = RunCli(args, env, out, err);
    return {code, out.str(), err.str()};
  }

  // Every request with the given method and path; the test fails unless there is exactly one.
  RecordedRequest Only(const std::string& method, const std::string& path) {
    auto requests = fake_.RequestsTo(method, path);
    EXPECT_EQ(requests.size(), 1u) << method << " " << path;
    return requests.empty() ? RecordedRequest{} : requests[0];
  }
  Json BodyOf(const std::string& method, const std::string& path) {
    std::string body = Only(method, path).body;
    return body.empty() ? Json() : Json::parse(body);
  }

  // GET kOp reports InProgress once, then `last`.
  void ServeOperation(const Json& last) {
    fake_.server().Get(kOp, [this, last](const httplib::Request&, httplib::Response& res) {
      if (op_polls_++ == 0) {
        FakeStratusd::Reply(res, 200,
                            {{"name", "op9"}, {"status", "InProgress"}, {"percentComplete", 10}});
      } else {
        FakeStratusd::Reply(res, 200, last);
      }
    });
  }
  void AcceptWithOperation(httplib::Response& res, int status, const Json& body) {
    FakeStratusd::Reply(res, status, body);
    res.set_header("Azure-AsyncOperation", fake_.endpoint() + kOp + "?api-version=2026-11-01");
    res.set_header("Location", fake_.endpoint() + kOp);
  }
  // `method path` answers 202 + operation headers with `body`.
  void ServeAction(const std::string& method, const std::string& path, const Json& body = nullptr) {
    auto handler = [this, body](const httplib::Request&, httplib::Response& res) {
      AcceptWithOperation(res, 202, body);
    };
    if (method == "POST") fake_.server().Post(path, handler);
    if (method == "PUT") fake_.server().Put(path, handler);
    if (method == "DELETE") fake_.server().Delete(path, handler);
  }
  void ServeGet(const std::string& path, const Json& body) {
    fake_.server().Get(path, [body](const httplib::Request&, httplib::Response& res) {
      FakeStratusd::Reply(res, 200, body);
    });
  }
  // PUT `path` answers 201 with the request body plus `id`/`name` (a synchronous create).
  void EchoPut(const std::string& path, const std::string& name) {
    fake_.server().Put(path, [path, name](const httplib::Request& req, httplib::Response& res) {
      Json resource = Json::parse(req.body);
      resource["id"] = path;
      resource["name"] = name;
      FakeStratusd::Reply(res, 201, resource);
    });
  }
  std::string WriteTemp(const std::string& name, const std::string& text) {
    std::string path = JoinPath(dir_, name);
    EXPECT_TRUE(WriteFileAtomic(path, text).ok());
    return path;
  }

  static Json VaultBody(const std::string& key_source) {
    return {{"id", kVault},
            {"name", "v1"},
            {"location", "regionA"},
            {"properties",
             {{"provisioningState", "Succeeded"},
              {"encryption", {{"keySource", key_source}}},
              {"redundancy", "Local"},
              {"state", "Unlocked"},
              {"protectedItemCount", 0},
              {"recoveryPointCount", 0}}}};
  }
  static Json JobBody() {
    return {{"id", kJob},
            {"name", "job1"},
            {"properties",
             {{"operation", "Backup"},
              {"status", "Completed"},
              {"entityFriendlyName", "web1"},
              {"protectedItemId", kItem},
              {"recoveryPointId", kPoint},
              {"startTime", "2026-11-02T02:00:00Z"},
              {"endTime", "2026-11-02T02:00:42Z"},
              {"duration", "PT42S"},
              {"bytesRead", 1048576},
              {"bytesAdded", 4096},
              {"backupType", "Incremental"},
              {"consistency", "FileSystemConsistent"}}}};
  }

  FakeStratusd fake_;
  FakeClock clock_{0};
  std::string dir_;
  std::atomic<int> op_polls_{0};
};

// ---- vault ----

TEST_F(BackupCommandsTest, VaultCreateWaitsAndPrintsTheVault) {
  ServeAction("PUT", kVault, {{"id", kVault}, {"properties", {{"provisioningState", "Creating"}}}});
  ServeOperation({{"name", "op9"}, {"status", "Succeeded"}});
  ServeGet(kVault, VaultBody("Platform"));
  CliRun r = Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1", "--webhook",
                      "http://127.0.0.1:9/hook", "--tags", "env=test"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("PUT", kVault), Json::parse(R"({"location":"regionA","tags":{"env":"test"},
                "properties":{"encryption":{"keySource":"Platform"},"redundancy":"Local",
                              "alerts":{"webhooks":["http://127.0.0.1:9/hook"]}}})"));
  EXPECT_EQ(r.out,
            "Name  ResourceGroup  Location  KeySource  State     ProtectedItems  RecoveryPoints  "
            "ProvisioningState\n"
            "----  -------------  --------  ---------  --------  --------------  --------------  "
            "-----------------\n"
            "v1    rg1            regionA   Platform   Unlocked  0               0               "
            "Succeeded\n");
}

TEST_F(BackupCommandsTest, VaultCreateCustomerKeySendsThePassphraseButNeverLogsIt) {
  ServeAction("PUT", kVault);
  ServeOperation({{"name", "op9"}, {"status", "Succeeded"}});
  ServeGet(kVault, VaultBody("Customer"));
  std::string file = WriteTemp("pass.txt", "correct horse battery\n");
  CliRun r = Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1", "--key-source",
                      "customer", "--passphrase-file", file, "--verbose", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json body = BodyOf("PUT", kVault);
  EXPECT_EQ(body["properties"]["encryption"],
            (Json{{"keySource", "Customer"}, {"passphrase", "correct horse battery"}}));
  EXPECT_EQ(r.err.find("correct horse"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("<redacted>"), std::string::npos) << r.err;
  EXPECT_EQ(Json::parse(r.out)["properties"]["encryption"]["keySource"], "Customer");
}

TEST_F(BackupCommandsTest, VaultRedundancyCopyOnCreateAndUpdate) {
  ServeAction("PUT", kVault);
  ServeOperation({{"name", "op9"}, {"status", "Succeeded"}});
  Json current = VaultBody("Platform");
  current["tags"] = {{"env", "test"}};
  current["properties"]["alerts"] = {{"webhooks", {"http://127.0.0.1:9/hook"}}};
  ServeGet(kVault, current);
  auto last_put = [&] { return Json::parse(fake_.RequestsTo("PUT", kVault).back().body); };
  CliRun r = Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1", "--redundancy",
                      "copy", "--copy-location", "/mnt/disk2/v1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_put()["properties"],
            Json::parse(R"({"encryption":{"keySource":"Platform"},"redundancy":"Copy",
                            "copyLocation":"/mnt/disk2/v1"})"));
  // update: the current vault with only the redundancy changed (--copy-location implies Copy).
  r = Stratus({"backup", "vault", "update", "-g", "rg1", "-n", "v1", "--copy-location",
               "/mnt/disk3/v1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_put(), Json::parse(R"({"location":"regionA","tags":{"env":"test"},
                "properties":{"encryption":{"keySource":"Platform"},"redundancy":"Copy",
                              "copyLocation":"/mnt/disk3/v1",
                              "alerts":{"webhooks":["http://127.0.0.1:9/hook"]}}})"));
  r = Stratus({"backup", "vault", "update", "-g", "rg1", "-n", "v1", "--redundancy", "Local"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(last_put()["properties"]["redundancy"], "Local");
  EXPECT_FALSE(last_put()["properties"].contains("copyLocation"));
  EXPECT_EQ(Stratus({"backup", "vault", "update", "-g", "rg1", "-n", "v1", "--redundancy",
                     "Local", "--copy-location", "/mnt/x"})
                .exit_code,
            2);
  EXPECT_EQ(Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1", "--redundancy",
                     "Geo"})
                .exit_code,
            2);
}

TEST_F(BackupCommandsTest, PassphraseFileAloneMeansCustomerKey) {
  ServeAction("PUT", kVault);
  ServeOperation({{"name", "op9"}, {"status", "Succeeded"}});
  ServeGet(kVault, VaultBody("Customer"));
  std::string file = WriteTemp("pass.txt", "s3cret");
  ASSERT_EQ(
      Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1", "--passphrase-file", file})
          .exit_code,
      0);
  EXPECT_EQ(BodyOf("PUT", kVault)["properties"]["encryption"],
            (Json{{"keySource", "Customer"}, {"passphrase", "s3cret"}}));
}

TEST_F(BackupCommandsTest, VaultCreateKeySourceErrors) {
  std::string file = WriteTemp("pass.txt", "s3cret\n");
  std::string empty = WriteTemp("empty.txt", "\n");
  EXPECT_EQ(
      Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1", "--key-source", "Customer"})
          .exit_code,
      2);
  EXPECT_EQ(Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1", "--key-source",
                     "Platform", "--passphrase-file", file})
                .exit_code,
            2);
  EXPECT_EQ(Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1", "--key-source", "HSM"})
                .exit_code,
            2);
  EXPECT_EQ(
      Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1", "--passphrase-file", empty})
          .exit_code,
      2);
  CliRun missing = Stratus({"backup", "vault", "create", "-g", "rg1", "-n", "v1",
                            "--passphrase-file", JoinPath(dir_, "nope")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("ERROR: (FileNotFound)"), std::string::npos) << missing.err;
  EXPECT_TRUE(fake_.requests().empty());
}

TEST_F(BackupCommandsTest, VaultShowListDelete) {
  ServeGet(kVault, VaultBody("Platform"));
  ServeGet(kVaults, {{"value", {VaultBody("Platform")}}});
  fake_.server().Delete(kVault, [](const httplib::Request&, httplib::Response& res) {
    FakeStratusd::ReplyError(res, 409, "VaultNotEmpty", "Vault v1 has 1 protected item.");
  });

  CliRun show = Stratus({"backup", "vault", "show", "-g", "rg1", "-n", "v1", "-o", "json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(Json::parse(show.out), VaultBody("Platform"));

  CliRun list = Stratus({"backup", "vault", "list", "-g", "rg1"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("v1    rg1"), std::string::npos) << list.out;

  CliRun del = Stratus({"backup", "vault", "delete", "-g", "rg1", "--vault", "v1", "--yes"});
  EXPECT_EQ(del.exit_code, 5);
  EXPECT_EQ(del.err, "ERROR: (VaultNotEmpty) Vault v1 has 1 protected item.\n");
  Only("DELETE", kVault);
}

TEST_F(BackupCommandsTest, VaultUnlockPostsThePassphraseAndShowsTheVault) {
  fake_.server().Post(kVault + "/unlock",
                      [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  ServeGet(kVault, VaultBody("Customer"));
  std::string file = WriteTemp("pass.txt", "s3cret\r\n");
  CliRun r =
      Stratus({"backup", "vault", "unlock", "-g", "rg1", "-n", "v1", "--passphrase-file", file});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("POST", kVault + "/unlock"), (Json{{"passphrase", "s3cret"}}));
  EXPECT_NE(r.out.find("Customer"), std::string::npos) << r.out;
  // --passphrase-file is required.
  EXPECT_EQ(Stratus({"backup", "vault", "unlock", "-g", "rg1", "-n", "v1"}).exit_code, 2);
}

TEST_F(BackupCommandsTest, VaultVerifyWithoutProblemsExits0) {
  ServeAction("POST", kVault + "/verify");
  ServeOperation(
      {{"name", "op9"},
       {"status", "Succeeded"},
       {"properties",
        {{"chunksChecked", 120}, {"bytesChecked", 7864320}, {"problems", Json::array()}}}});
  CliRun r = Stratus({"backup", "vault", "verify", "-g", "rg1", "-n", "v1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Checked 120 chunks (7864320 bytes): no problems.\n");
  EXPECT_EQ(BodyOf("POST", kVault + "/verify"), Json::object());
}

TEST_F(BackupCommandsTest, VaultVerifyPrintsEveryProblemAndExitsNonZero) {
  ServeAction("POST", kVault + "/verify");
  Json problems = Json::parse(R"([
    {"kind":"ChunkCorrupt","recoveryPointId":"rp1","disk":"osdisk","offset":65536,
     "chunkId":"ab12","message":"authentication tag mismatch"},
    {"kind":"ChunkMissing","recoveryPointId":"rp1","disk":"lun0","offset":0,
     "chunkId":"cd34","message":"no such chunk"}])");
  ServeOperation(
      {{"name", "op9"},
       {"status", "Failed"},
       {"error", {{"code", "VaultCorrupt"}, {"message", "2 problems found."}}},
       {"properties", {{"chunksChecked", 10}, {"bytesChecked", 655360}, {"problems", problems}}}});
  CliRun r =
      Stratus({"backup", "vault", "verify", "-g", "rg1", "-n", "v1", "--recovery-point", "rp1"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(BodyOf("POST", kVault + "/verify"), (Json{{"recoveryPointId", "rp1"}}));
  EXPECT_EQ(r.out,
            "Checked 10 chunks (655360 bytes): 2 problems.\n"
            "Kind          RecoveryPoint  Disk    Offset  Chunk  Message\n"
            "------------  -------------  ------  ------  -----  ---------------------------\n"
            "ChunkCorrupt  rp1            osdisk  65536   ab12   authentication tag mismatch\n"
            "ChunkMissing  rp1            lun0    0       cd34   no such chunk\n");
  EXPECT_NE(r.err.find("ERROR: (VaultCorrupt) 2 problems found.\n"), std::string::npos) << r.err;

  // -o json prints the operation's properties, and still fails.
  op_polls_ = 0;
  CliRun json = Stratus({"backup", "vault", "verify", "-g", "rg1", "-n", "v1", "-o", "json"});
  EXPECT_EQ(json.exit_code, 7);
  EXPECT_EQ(Json::parse(json.out)["problems"], problems);
}

TEST_F(BackupCommandsTest, VaultVerifyProblemsInASucceededOperationStillFail) {
  ServeAction("POST", kVault + "/verify");
  ServeOperation({{"name", "op9"},
                  {"status", "Succeeded"},
                  {"properties",
                   {{"chunksChecked", 1},
                    {"bytesChecked", 1},
                    {"problems", {{{"kind", "ManifestInvalid"}, {"message", "bad signature"}}}}}}});
  CliRun r = Stratus({"backup", "vault", "verify", "-g", "rg1", "-n", "v1"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_NE(r.err.find("ERROR: (VaultCorrupt)"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("bad signature"), std::string::npos) << r.out;
}

TEST_F(BackupCommandsTest, VaultVerifyOtherFailureIsAPlainOperationFailure) {
  ServeAction("POST", kVault + "/verify");
  ServeOperation({{"name", "op9"},
                  {"status", "Failed"},
                  {"error", {{"code", "VaultLocked"}, {"message", "Vault v1 is locked."}}}});
  CliRun r = Stratus({"backup", "vault", "verify", "-g", "rg1", "-n", "v1"});
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.substr(r.err.find("ERROR")), "ERROR: (VaultLocked) Vault v1 is locked.\n");
}

TEST_F(BackupCommandsTest, VaultVerifyNoWaitPrintsTheOperation) {
  ServeAction("POST", kVault + "/verify");
  CliRun r = Stratus({"backup", "vault", "verify", "-g", "rg1", "-n", "v1", "--no-wait"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("op9"), std::string::npos) << r.out;
  EXPECT_EQ(op_polls_.load(), 0);
}

TEST_F(BackupCommandsTest, VaultGcPrintsWhatWasFreed) {
  ServeAction("POST", kVault + "/gc");
  ServeOperation(
      {{"name", "op9"},
       {"status", "Succeeded"},
       {"properties", {{"chunksDeleted", 3}, {"bytesFreed", 196608}, {"chunksReferenced", 40}}}});
  CliRun r = Stratus({"backup", "vault", "gc", "-g", "rg1", "-n", "v1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "ChunksDeleted  BytesFreed  ChunksReferenced\n"
            "-------------  ----------  ----------------\n"
            "3              196608      40\n");
  EXPECT_EQ(BodyOf("POST", kVault + "/gc"), Json::object());
}

// ---- policy ----

TEST_F(BackupCommandsTest, PolicyCreateDailyFlags) {
  EchoPut(kPolicy, "daily");
  CliRun r = Stratus({"backup", "policy",           "create",      "-g",
                      "rg1",    "--vault",          "v1",          "-n",
                      "daily",  "--daily",          "02:00,14:00", "--keep-daily",
                      "7",      "--keep-weekly",    "4",           "--keep-monthly",
                      "12",     "--keep-yearly",    "5",           "--time-zone",
                      "+02:00", "--on-demand-days", "10"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("PUT", kPolicy), Json::parse(R"({"properties":{
      "schedule":{"frequency":"Daily","times":["02:00","14:00"]},
      "timeZone":"+02:00","onDemandRetentionDays":10,
      "retention":{"daily":{"count":7},
                   "weekly":{"count":4,"daysOfWeek":["Sunday"]},
                   "monthly":{"count":12,"daysOfMonth":[1]},
                   "yearly":{"count":5,"monthsOfYear":["January"],"daysOfMonth":[1]}}}})"));
  EXPECT_NE(r.out.find("daily  Daily 02:00,14:00  +02:00    daily 7, weekly 4, monthly 12, "
                       "yearly 5  10\n"),
            std::string::npos)
      << r.out;
}

TEST_F(BackupCommandsTest, PolicyCreateHourlyAndWeeklyFlags) {
  EchoPut(kPolicy, "daily");
  ASSERT_EQ(Stratus({"backup",
                     "policy",
                     "create",
                     "-g",
                     "rg1",
                     "--vault",
                     "v1",
                     "-n",
                     "daily",
                     "--hourly",
                     "4",
                     "--window-start",
                     "08:00",
                     "--window-hours",
                     "12",
                     "--keep-hourly",
                     "12",
                     "--keep-daily",
                     "7",
                     "--consistency",
                     "crashconsistent"})
                .exit_code,
            0);
  EXPECT_EQ(BodyOf("PUT", kPolicy), Json::parse(R"({"properties":{
      "schedule":{"frequency":"Hourly","intervalHours":4,"windowStartTime":"08:00",
                  "windowDurationHours":12},
      "consistency":"CrashConsistent",
      "retention":{"hourly":{"count":12},"daily":{"count":7}}}})"));

  // Weekly: weekly/monthly/yearly retention default to the schedule's first day.
  const std::string weekly = kVault + "/backupPolicies/weekly";
  EchoPut(weekly, "weekly");
  CliRun r = Stratus({"backup", "policy", "create", "-g", "rg1", "--vault", "v1", "-n", "weekly",
                      "--weekly", "Wednesday,Sunday", "--at", "02:00", "--keep-weekly", "8",
                      "--keep-monthly", "6", "--keep-yearly", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("PUT", weekly), Json::parse(R"({"properties":{
      "schedule":{"frequency":"Weekly","days":["Wednesday","Sunday"],"times":["02:00"]},
      "retention":{"weekly":{"count":8,"daysOfWeek":["Wednesday"]},
                   "monthly":{"count":6,"daysOfMonth":["First Wednesday"]},
                   "yearly":{"count":2,"monthsOfYear":["January"],
                             "daysOfMonth":["First Wednesday"]}}}})"));
  EXPECT_NE(r.out.find("Weekly Wednesday,Sunday 02:00"), std::string::npos) << r.out;
}

TEST_F(BackupCommandsTest, PolicyCreateFromJsonFileOrInlineWithFlagsOnTop) {
  EchoPut(kPolicy, "daily");
  std::string file =
      WriteTemp("policy.json", R"({"schedule":{"frequency":"Daily","times":["02:00"]},
      "timeZone":"UTC","retention":{"daily":{"count":7},
      "weekly":{"count":4,"daysOfWeek":["Saturday"]}}})");
  ASSERT_EQ(Stratus({"backup", "policy", "create", "-g", "rg1", "--vault", "v1", "-n", "daily",
                     "--policy", "@" + file, "--keep-weekly", "10"})
                .exit_code,
            0);
  // The flag changes the count and keeps the file's days.
  EXPECT_EQ(BodyOf("PUT", kPolicy)["properties"],
            Json::parse(R"({"schedule":{"frequency":"Daily","times":["02:00"]},"timeZone":"UTC",
                "retention":{"daily":{"count":7},"weekly":{"count":10,"daysOfWeek":["Saturday"]}}})"));

  // Inline JSON; a whole resource as printed by `policy show -o json` is accepted too.
  const std::string other = kVault + "/backupPolicies/other";
  EchoPut(other, "other");
  ASSERT_EQ(Stratus({"backup", "policy", "create", "-g", "rg1", "--vault", "v1", "-n", "other",
                     "--policy",
                     R"({"id":"x","properties":{"schedule":{"frequency":"Daily","times":["01:00"]},
                         "retention":{"daily":{"count":3}}}})"})
                .exit_code,
            0);
  EXPECT_EQ(BodyOf("PUT", other),
            Json::parse(R"({"properties":{"schedule":{"frequency":"Daily","times":["01:00"]},
                "retention":{"daily":{"count":3}}}})"));
}

TEST_F(BackupCommandsTest, PolicyUpdateEditsTheCurrentPolicy) {
  Json current = Json::parse(R"({"id":"x","name":"daily","properties":{
      "schedule":{"frequency":"Daily","times":["02:00"]},"timeZone":"UTC",
      "retention":{"daily":{"count":7}},"onDemandRetentionDays":30,
      "consistency":"ApplicationConsistent","provisioningState":"Succeeded",
      "protectedItemsCount":2}})");
  current["id"] = kPolicy;
  ServeGet(kPolicy, current);
  EchoPut(kPolicy, "daily");
  CliRun r = Stratus({"backup", "policy", "update", "-g", "rg1", "--vault", "v1", "-n", "daily",
                      "--keep-daily", "14", "--keep-weekly", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("PUT", kPolicy), Json::parse(R"({"properties":{
      "schedule":{"frequency":"Daily","times":["02:00"]},"timeZone":"UTC",
      "retention":{"daily":{"count":14},"weekly":{"count":4,"daysOfWeek":["Sunday"]}},
      "onDemandRetentionDays":30,"consistency":"ApplicationConsistent"}})"));

  // --policy replaces the policy without reading it.
  CliRun replace = Stratus({"backup", "policy", "update", "-g", "rg1", "--vault", "v1", "-n",
                            "daily", "--policy",
                            R"({"schedule":{"frequency":"Daily","times":["03:00"]},
                                "retention":{"daily":{"count":1}}})"});
  ASSERT_EQ(replace.exit_code, 0) << replace.err;
  EXPECT_EQ(fake_.RequestsTo("GET", kPolicy).size(), 1u);
}

TEST_F(BackupCommandsTest, PolicyFlagErrorsAreUsageErrors) {
  std::vector<std::string> base = {"backup",  "policy", "create", "-g", "rg1",
                                   "--vault", "v1",     "-n",     "p"};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return Stratus(args);
  };
  // Two schedules.
  EXPECT_EQ(run({"--daily", "02:00", "--hourly", "4", "--keep-daily", "7"}).exit_code, 2);
  // --at without --weekly, --weekly without --at, window without --hourly.
  EXPECT_EQ(run({"--daily", "02:00", "--at", "03:00", "--keep-daily", "7"}).exit_code, 2);
  EXPECT_EQ(run({"--weekly", "Sunday", "--keep-weekly", "7"}).exit_code, 2);
  EXPECT_EQ(run({"--daily", "02:00", "--window-hours", "6", "--keep-daily", "7"}).exit_code, 2);
  // No schedule, no retention, a count of 0, bad JSON.
  EXPECT_EQ(run({"--keep-daily", "7"}).exit_code, 2);
  EXPECT_EQ(run({"--daily", "02:00"}).exit_code, 2);
  EXPECT_EQ(run({"--daily", "02:00", "--keep-daily", "0"}).exit_code, 2);
  CliRun bad = run({"--policy", "{not json"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err.rfind("ERROR: (UsageError) --policy is not valid JSON", 0), 0u) << bad.err;
  EXPECT_EQ(run({"--policy", "[1]"}).exit_code, 2);
  EXPECT_EQ(run({"--policy", "@" + JoinPath(dir_, "missing.json")}).exit_code, 1);
  // update with nothing to change.
  EXPECT_EQ(
      Stratus({"backup", "policy", "update", "-g", "rg1", "--vault", "v1", "-n", "p"}).exit_code,
      2);
  // Missing --vault.
  EXPECT_EQ(Stratus({"backup", "policy", "create", "-g", "rg1", "-n", "p", "--daily", "02:00",
                     "--keep-daily", "7"})
                .exit_code,
            2);
  EXPECT_TRUE(fake_.requests().empty());
}

TEST_F(BackupCommandsTest, PolicyShowListDelete) {
  Json policy = Json::parse(R"({"name":"daily","properties":{
      "schedule":{"frequency":"Hourly","intervalHours":6},"timeZone":"UTC",
      "retention":{"hourly":{"count":4}},"onDemandRetentionDays":30,"protectedItemsCount":1}})");
  policy["id"] = kPolicy;
  ServeGet(kPolicy, policy);
  ServeGet(kVault + "/backupPolicies", {{"value", {policy}}});
  fake_.server().Delete(kPolicy,
                        [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  CliRun show = Stratus({"backup", "policy", "show", "-g", "rg1", "--vault", "v1", "-n", "daily"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(show.out,
            "Name   Schedule         TimeZone  Retention  OnDemandDays  ProtectedItems\n"
            "-----  ---------------  --------  ---------  ------------  --------------\n"
            "daily  Hourly every 6h  UTC       hourly 4   30            1\n");
  CliRun list = Stratus({"backup", "policy", "list", "-g", "rg1", "--vault", "v1", "-o", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(Json::parse(list.out), Json::array({policy}));
  ASSERT_EQ(Stratus({"backup", "policy", "delete", "-g", "rg1", "--vault", "v1", "-n", "daily"})
                .exit_code,
            0);
  Only("DELETE", kPolicy);
}

// ---- protection ----

TEST_F(BackupCommandsTest, ProtectionEnableResolvesVmAndPolicy) {
  EchoPut(kItem, "web1");
  CliRun r = Stratus({"backup", "protection", "enable", "-g", "rg1", "--vault", "v1", "--vm",
                      "web1", "--policy", "daily"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("PUT", kItem),
            (Json{{"properties", {{"sourceResourceId", kVm}, {"policyId", kPolicy}}}}));
  EXPECT_NE(r.out.find("web1  web1  daily"), std::string::npos) << r.out;

  // A VM id from another group, a policy id and an explicit item name.
  const std::string other_vm =
      "/subscriptions/" + kSub + "/resourceGroups/rg2/providers/Stratus.Compute/virtualMachines/db";
  const std::string item = kVault + "/protectedItems/db-item";
  EchoPut(item, "db-item");
  ASSERT_EQ(Stratus({"backup", "protection", "enable", "-g", "rg1", "--vault", "v1", "--vm",
                     other_vm, "--policy", kPolicy, "-n", "db-item"})
                .exit_code,
            0);
  EXPECT_EQ(BodyOf("PUT", item),
            (Json{{"properties", {{"sourceResourceId", other_vm}, {"policyId", kPolicy}}}}));

  // Ids of the wrong type and missing flags are usage errors.
  size_t before = fake_.requests().size();
  EXPECT_EQ(Stratus({"backup", "protection", "enable", "-g", "rg1", "--vault", "v1", "--vm", "web1",
                     "--policy", kVm})
                .exit_code,
            2);
  EXPECT_EQ(Stratus({"backup", "protection", "enable", "-g", "rg1", "--vault", "v1", "--vm",
                     kPolicy, "--policy", "daily"})
                .exit_code,
            2);
  EXPECT_EQ(
      Stratus({"backup", "protection", "enable", "-g", "rg1", "--vault", "v1", "--vm", "web1"})
          .exit_code,
      2);
  EXPECT_EQ(fake_.requests().size(), before);
}

TEST_F(BackupCommandsTest, ProtectionDisableShowList) {
  fake_.server().Delete(kItem,
                        [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  Json item = {{"id", kItem},
               {"name", "web1"},
               {"properties",
                {{"sourceResourceId", kVm},
                 {"policyId", kPolicy},
                 {"protectionState", "Protected"},
                 {"lastBackupTime", "2026-11-02T02:00:42Z"},
                 {"lastBackupStatus", "Completed"},
                 {"recoveryPointCount", 3},
                 {"nextScheduledBackupTime", "2026-11-03T02:00:00Z"}}}};
  ServeGet(kItem, item);
  ServeGet(kVault + "/protectedItems", {{"value", {item}}});

  ASSERT_EQ(Stratus({"backup", "protection", "disable", "-g", "rg1", "--vault", "v1", "--item",
                     "web1", "--delete-backup-data"})
                .exit_code,
            0);
  ASSERT_EQ(
      Stratus({"backup", "protection", "disable", "-g", "rg1", "--vault", "v1", "--vm", "web1"})
          .exit_code,
      0);
  auto deletes = fake_.RequestsTo("DELETE", kItem);
  ASSERT_EQ(deletes.size(), 2u);
  EXPECT_EQ(deletes[0].query, "api-version=2026-11-01&deleteBackupData=true");
  EXPECT_EQ(deletes[1].query, "api-version=2026-11-01");
  EXPECT_EQ(Stratus({"backup", "protection", "disable", "-g", "rg1", "--vault", "v1"}).exit_code,
            2);

  CliRun show =
      Stratus({"backup", "protection", "show", "-g", "rg1", "--vault", "v1", "-n", "web1"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  CliRun list = Stratus({"backup", "protection", "list", "-g", "rg1", "--vault", "v1"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(show.out, list.out);
  EXPECT_EQ(list.out,
            "Name  Vm    Policy  State      LastBackup            LastStatus  RecoveryPoints  "
            "NextBackup\n"
            "----  ----  ------  ---------  --------------------  ----------  --------------  "
            "--------------------\n"
            "web1  web1  daily   Protected  2026-11-02T02:00:42Z  Completed   3               "
            "2026-11-03T02:00:00Z\n");
}

// ---- backup now, jobs ----

TEST_F(BackupCommandsTest, BackupNowWaitsForTheJobAndPrintsItsSummary) {
  ServeAction("POST", kItem + "/backup",
              {{"id", kJob}, {"name", "job1"}, {"properties", {{"status", "Queued"}}}});
  ServeOperation({{"name", "op9"}, {"status", "Succeeded"}});
  ServeGet(kJob, JobBody());
  CliRun r = Stratus({"backup", "now", "-g", "rg1", "--vault", "v1", "--item", "web1",
                      "--retain-until", "2027-01-01T00:00:00Z"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("POST", kItem + "/backup"), (Json{{"retainUntil", "2027-01-01T00:00:00Z"}}));
  EXPECT_EQ(r.out,
            "Id    Operation  Item  Status     Type         BytesRead  BytesAdded  Duration  "
            "Consistency           RecoveryPoint\n"
            "----  ---------  ----  ---------  -----------  ---------  ----------  --------  "
            "--------------------  -------------\n"
            "job1  Backup     web1  Completed  Incremental  1048576    4096        PT42S     "
            "FileSystemConsistent  rp1\n");
}

TEST_F(BackupCommandsTest, BackupNowFindsTheJobThroughTheOperation) {
  // No body on the 202: the operation names the job.
  ServeAction("POST", kItem + "/backup");
  ServeOperation({{"name", "op9"}, {"status", "Succeeded"}, {"properties", {{"jobId", "job1"}}}});
  ServeGet(kJob, JobBody());
  CliRun r =
      Stratus({"backup", "now", "-g", "rg1", "--vault", "v1", "--item", "web1", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("POST", kItem + "/backup"), Json::object());
  EXPECT_EQ(Json::parse(r.out), JobBody());
}

TEST_F(BackupCommandsTest, BackupNowFailureAndNoWait) {
  ServeAction("POST", kItem + "/backup");
  ServeOperation({{"name", "op9"},
                  {"status", "Failed"},
                  {"error", {{"code", "VaultLocked"}, {"message", "Vault v1 is locked."}}}});
  CliRun failed = Stratus({"backup", "now", "-g", "rg1", "--vault", "v1", "--item", "web1"});
  EXPECT_EQ(failed.exit_code, 7);
  EXPECT_NE(failed.err.find("ERROR: (VaultLocked) Vault v1 is locked.\n"), std::string::npos);

  int polls = op_polls_.load();
  CliRun pending =
      Stratus({"backup", "now", "-g", "rg1", "--vault", "v1", "--item", "web1", "--no-wait"});
  ASSERT_EQ(pending.exit_code, 0) << pending.err;
  EXPECT_NE(pending.out.find("op9"), std::string::npos);
  EXPECT_EQ(op_polls_.load(), polls);
  EXPECT_EQ(Stratus({"backup", "now", "-g", "rg1", "--vault", "v1"}).exit_code, 2);
}

TEST_F(BackupCommandsTest, JobListPrintsATable) {
  Json restore = {{"id", kVault + "/backupJobs/job2"},
                  {"name", "job2"},
                  {"properties",
                   {{"operation", "Restore"},
                    {"status", "InProgress"},
                    {"protectedItemId", kItem},
                    {"startTime", "2026-11-02T03:00:00Z"}}}};
  ServeGet(kVault + "/backupJobs", {{"value", {restore, JobBody()}}});
  CliRun r = Stratus({"backup", "job", "list", "-g", "rg1", "--vault", "v1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "Id    Operation  Item  Status      Start                 Duration  BytesAdded\n"
            "----  ---------  ----  ----------  --------------------  --------  ----------\n"
            "job2  Restore    web1  InProgress  2026-11-02T03:00:00Z\n"
            "job1  Backup     web1  Completed   2026-11-02T02:00:00Z  PT42S     4096\n");
  CliRun json = Stratus({"backup", "job", "list", "-g", "rg1", "--vault", "v1", "-o", "json"});
  EXPECT_EQ(Json::parse(json.out), Json::array({restore, JobBody()}));

  ServeGet(kJob, JobBody());
  CliRun show = Stratus({"backup", "job", "show", "-g", "rg1", "--vault", "v1", "--id", "job1"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("job1  Backup     web1  Completed  Incremental"), std::string::npos)
      << show.out;
}

// ---- recovery points, restore, files ----

TEST_F(BackupCommandsTest, RecoveryPointListAndShow) {
  Json point = {{"id", kPoint},
                {"name", "rp1"},
                {"properties",
                 {{"recoveryPointTime", "2026-11-02T02:00:00Z"},
                  {"recoveryPointType", "Full"},
                  {"consistency", "CrashConsistent"},
                  {"disks", {{{"name", "osdisk"}, {"lun", nullptr}, {"sizeBytes", 1073741824}}}}}}};
  ServeGet(kItem + "/recoveryPoints", {{"value", {point}}});
  ServeGet(kPoint, point);
  CliRun list =
      Stratus({"backup", "recoverypoint", "list", "-g", "rg1", "--vault", "v1", "--item", "web1"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.out,
            "Id   Time                  Type  Consistency\n"
            "---  --------------------  ----  ---------------\n"
            "rp1  2026-11-02T02:00:00Z  Full  CrashConsistent\n");
  CliRun show = Stratus({"backup", "recoverypoint", "show", "-g", "rg1", "--vault", "v1", "--item",
                         "web1", "--recovery-point", "rp1", "-o", "json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(Json::parse(show.out), point);
  EXPECT_EQ(Stratus({"backup", "recoverypoint", "list", "-g", "rg1", "--vault", "v1"}).exit_code,
            2);
}

TEST_F(BackupCommandsTest, RestoreBodiesForTheThreeModes) {
  ServeAction("POST", kPoint + "/restore", {{"id", kJob}});
  ServeOperation({{"name", "op9"}, {"status", "Succeeded"}});
  Json job = JobBody();
  job["properties"]["operation"] = "Restore";
  ServeGet(kJob, job);
  std::vector<std::string> base = {"backup",           "restore", "-g",     "rg1",
                                   "--vault",          "v1",      "--item", "web1",
                                   "--recovery-point", "rp1"};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    op_polls_ = 0;
    return Stratus(args);
  };
  CliRun vm = run({"--as-new-vm", "web1-restored", "--size", "Standard_S2", "--target-group", "rg2",
                   "--disks", "osdisk,lun0"});
  ASSERT_EQ(vm.exit_code, 0) << vm.err;
  EXPECT_NE(vm.out.find("job1  Restore"), std::string::npos) << vm.out;
  ASSERT_EQ(run({"--as-disks", "rescue-"}).exit_code, 0);
  ASSERT_EQ(run({"--original"}).exit_code, 0);
  ASSERT_EQ(run({"--as-new-vm", "web1-now", "--instant"}).exit_code, 0);
  auto posts = fake_.RequestsTo("POST", kPoint + "/restore");
  ASSERT_EQ(posts.size(), 4u);
  EXPECT_EQ(Json::parse(posts[3].body),
            Json::parse(R"({"restoreType":"AlternateLocation","vmName":"web1-now","instant":true})"));
  EXPECT_EQ(Json::parse(posts[0].body), Json::parse(R"({"restoreType":"AlternateLocation",
      "vmName":"web1-restored","vmSize":"Standard_S2","targetResourceGroup":"rg2",
      "disks":["osdisk","lun0"]})"));
  EXPECT_EQ(Json::parse(posts[1].body),
            Json::parse(R"({"restoreType":"RestoreDisks","diskNamePrefix":"rescue-"})"));
  EXPECT_EQ(Json::parse(posts[2].body), Json::parse(R"({"restoreType":"OriginalLocation"})"));
}

TEST_F(BackupCommandsTest, RestoreAsANewVmTakesItsNics) {
  ServeAction("POST", kPoint + "/restore", {{"id", kJob}});
  ServeOperation({{"name", "op9"}, {"status", "Succeeded"}});
  Json job = JobBody();
  job["properties"]["operation"] = "Restore";
  ServeGet(kJob, job);
  const std::string net = kRg + "/providers/Stratus.Network/";
  ServeGet(net + "publicIPAddresses/kept", {{"id", net + "publicIPAddresses/kept"}});
  std::vector<std::string> base = {"backup", "restore", "-g", "rg1", "--vault", "v1", "--item",
                                   "web1", "--recovery-point", "rp1", "--as-new-vm", "r1"};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    op_polls_ = 0;
    return Stratus(args);
  };
  ASSERT_EQ(run({"--nics", "a,b"}).exit_code, 0);
  ASSERT_EQ(run({"--vnet", "v", "--subnet", "front", "--private-ip-address", "10.0.1.9",
                 "--public-ip-address", "fresh", "--nsg", "web", "--nics", "a"})
                .exit_code,
            0);
  ASSERT_EQ(run({"--vnet", "v", "--subnet", "front", "--public-ip-address", "kept"}).exit_code, 0);
  ASSERT_EQ(run({"--no-nics"}).exit_code, 0);
  ASSERT_EQ(run({}).exit_code, 0);
  auto posts = fake_.RequestsTo("POST", kPoint + "/restore");
  ASSERT_EQ(posts.size(), 5u);
  const std::string subnet = net + "virtualNetworks/v/subnets/front";
  EXPECT_EQ(Json::parse(posts[0].body)["networkProfile"],
            Json({{"networkInterfaces",
                   {{{"id", net + "networkInterfaces/a"}, {"properties", {{"primary", true}}}},
                    {{"id", net + "networkInterfaces/b"}, {"properties", {{"primary", false}}}}}}}));
  Json fresh = Json::parse(posts[1].body)["networkProfile"];
  EXPECT_EQ(fresh["networkInterfaces"][0]["properties"]["primary"], false);
  Json nic = fresh["networkInterfaceConfigurations"][0];
  EXPECT_EQ(nic["name"], "r1-nic0");
  EXPECT_EQ(nic["properties"]["primary"], true);
  EXPECT_EQ(nic["properties"]["networkSecurityGroup"]["id"], net + "networkSecurityGroups/web");
  Json ipc = nic["properties"]["ipConfigurations"][0]["properties"];
  EXPECT_EQ(ipc["subnet"]["id"], subnet);
  EXPECT_EQ(ipc["privateIPAddress"], "10.0.1.9");
  EXPECT_EQ(ipc["publicIPAddressConfiguration"]["name"], "fresh") << ipc.dump();
  Json kept = Json::parse(posts[2].body)["networkProfile"]["networkInterfaceConfigurations"][0];
  EXPECT_EQ(kept["properties"]["ipConfigurations"][0]["properties"]["publicIPAddress"]["id"],
            net + "publicIPAddresses/kept");
  EXPECT_EQ(Json::parse(posts[3].body)["networkProfile"], Json::object());
  EXPECT_FALSE(Json::parse(posts[4].body).contains("networkProfile"));
  // Misuse is refused before anything is sent.
  size_t sent = fake_.requests().size();
  EXPECT_EQ(run({"--private-ip-address", "10.0.1.9"}).exit_code, 2);
  EXPECT_EQ(run({"--vnet", "v"}).exit_code, 2);
  EXPECT_EQ(run({"--no-nics", "--nics", "a"}).exit_code, 2);
  base = {"backup", "restore", "-g", "rg1", "--vault", "v1", "--item", "web1",
          "--recovery-point", "rp1", "--as-disks", "d"};
  EXPECT_EQ(run({"--vnet", "v", "--subnet", "front"}).exit_code, 2);
  EXPECT_EQ(fake_.requests().size(), sent);
}

TEST_F(BackupCommandsTest, RestoreModesAreMutuallyExclusive) {
  std::vector<std::string> base = {"backup",           "restore", "-g",     "rg1",
                                   "--vault",          "v1",      "--item", "web1",
                                   "--recovery-point", "rp1"};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return Stratus(args);
  };
  CliRun none = run({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("exactly one of --as-new-vm NAME, --as-disks PREFIX, --original"),
            std::string::npos)
      << none.err;
  EXPECT_EQ(run({"--as-new-vm", "a", "--as-disks", "b"}).exit_code, 2);
  EXPECT_EQ(run({"--as-new-vm", "a", "--original"}).exit_code, 2);
  EXPECT_EQ(run({"--as-disks", "b", "--original"}).exit_code, 2);
  EXPECT_EQ(run({"--as-disks", "b", "--size", "Standard_S2"}).exit_code, 2);
  EXPECT_EQ(run({"--original", "--target-group", "rg2"}).exit_code, 2);
  EXPECT_EQ(run({"--as-disks", "b", "--instant"}).exit_code, 2);
  EXPECT_EQ(run({"--original", "--instant"}).exit_code, 2);
  EXPECT_EQ(
      Stratus({"backup", "restore", "-g", "rg1", "--vault", "v1", "--item", "web1", "--original"})
          .exit_code,
      2);  // no --recovery-point
  EXPECT_TRUE(fake_.requests().empty());
}

TEST_F(BackupCommandsTest, FilesListPostsDiskAndPath) {
  fake_.server().Post(kPoint + "/listFiles", [](const httplib::Request&, httplib::Response& res) {
    FakeStratusd::Reply(res, 200, Json::parse(R"({"entries":[
        {"name":"hostname","type":"File","size":5},{"name":"ssh","type":"Directory","size":4096}]})"));
  });
  CliRun r = Stratus({"backup", "files", "list", "-g", "rg1", "--vault", "v1", "--item", "web1",
                      "--recovery-point", "rp1", "--disk", "lun0", "--path", "/etc"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("POST", kPoint + "/listFiles"), (Json{{"disk", "lun0"}, {"path", "/etc"}}));
  EXPECT_EQ(r.out,
            "Name      Type       Size\n"
            "--------  ---------  ----\n"
            "hostname  File       5\n"
            "ssh       Directory  4096\n");
  EXPECT_EQ(Stratus({"backup", "files", "list", "-g", "rg1", "--vault", "v1", "--item", "web1",
                     "--recovery-point", "rp1"})
                .exit_code,
            2);  // no --disk
}

TEST_F(BackupCommandsTest, FilesExtractWritesUnderTheTargetDirectory) {
  fake_.server().Post(kPoint + "/extractFiles",
                      [](const httplib::Request&, httplib::Response& res) {
                        FakeStratusd::Reply(res, 200, Json::parse(R"({"files":[
        {"path":"/etc/hostname","size":5,"contentBase64":"d2ViMQo="},
        {"path":"/var/lib/app/data.bin","size":3,"contentBase64":"AP8A"}]})"));
                      });
  std::string to = JoinPath(dir_, "out");
  CliRun r =
      Stratus({"backup",        "files",  "extract",          "-g",   "rg1",    "--vault", "v1",
               "--item",        "web1",   "--recovery-point", "rp1",  "--disk", "osdisk",  "--path",
               "/etc/hostname", "--path", "/var/lib/app",     "--to", to,       "-o",      "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(BodyOf("POST", kPoint + "/extractFiles"),
            Json::parse(R"({"disk":"osdisk","paths":["/etc/hostname","/var/lib/app"]})"));
  EXPECT_EQ(*ReadFile(JoinPath(to, "etc/hostname")), "web1\n");
  EXPECT_EQ(*ReadFile(JoinPath(to, "var/lib/app/data.bin")), std::string("\0\xff\0", 3));
  Json printed = Json::parse(r.out);
  ASSERT_EQ(printed.size(), 2u);
  EXPECT_EQ(printed[0]["localPath"], JoinPath(to, "etc/hostname"));
  EXPECT_EQ(printed[1]["size"], 3);
}

TEST_F(BackupCommandsTest, FilesExtractRefusesPathsLeavingTheTarget) {
  fake_.server().Post(kPoint + "/extractFiles",
                      [](const httplib::Request&, httplib::Response& res) {
                        FakeStratusd::Reply(res, 200, Json::parse(R"({"files":[
        {"path":"/../../escape","size":1,"contentBase64":"eA=="}]})"));
                      });
  std::string to = JoinPath(dir_, "out");
  CliRun r = Stratus({"backup", "files", "extract", "-g", "rg1", "--vault", "v1", "--item", "web1",
                      "--recovery-point", "rp1", "--disk", "osdisk", "--path", "/x", "--to", to});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_NE(r.err.find("outside --to"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(JoinPath(dir_, "escape")));
}

TEST_F(BackupCommandsTest, MissingRequiredFlagsAreUsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"backup"},
           {"backup", "vault"},
           {"backup", "vault", "create", "-n", "v1"},
           {"backup", "vault", "create", "-g", "rg1"},
           {"backup", "vault", "show", "-g", "rg1"},
           {"backup", "policy", "show", "-g", "rg1", "--vault", "v1"},
           {"backup", "protection", "list", "-g", "rg1"},
           {"backup", "files", "extract", "-g", "rg1", "--vault", "v1", "--item", "web1",
            "--recovery-point", "rp1", "--disk", "osdisk", "--path", "/x"},
           {"backup", "job", "show", "-g", "rg1", "--vault", "v1"},
       }) {
    CliRun r = Stratus(args);
    EXPECT_EQ(r.exit_code, 2) << args.back();
  }
  EXPECT_TRUE(fake_.requests().empty());
}

// Site recovery's network commands (commands_recovery_network.cc) share this fixture: a vault's
// network mappings and an item's per-NIC choices.
TEST_F(BackupCommandsTest, NetworkMappingCreateNamesTheNetworksById) {
  const std::string mapping = kVault + "/replicationNetworkMappings/a-to-b";
  EchoPut(mapping, "a-to-b");
  const std::string source =
      "/subscriptions/99999999-0000-0000-0000-000000000000/resourceGroups/app/providers/"
      "Stratus.Network/virtualNetworks/vnet-a";
  CliRun r = Stratus({"recovery", "network-mapping", "create", "-g", "rg1", "--vault", "v1", "-n",
                      "a-to-b", "--source-network", source, "--target-network", "vnet-b",
                      "--test-network", "vnet-t", "--network-group", "net"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Json body = BodyOf("PUT", mapping);
  const std::string nets = "/subscriptions/" + kSub + "/resourceGroups/net/providers/"
                           "Stratus.Network/virtualNetworks/";
  EXPECT_EQ(body["properties"]["primaryNetworkId"], source);
  EXPECT_EQ(body["properties"]["recoveryNetworkId"], nets + "vnet-b");
  EXPECT_EQ(body["properties"]["testNetworkId"], nets + "vnet-t");
  // A source network by bare name needs its group (it is in the other region).
  CliRun bad = Stratus({"recovery", "network-mapping", "create", "-g", "rg1", "--vault", "v1",
                        "-n", "x", "--source-network", "vnet-a", "--target-network", "vnet-b"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
}

TEST_F(BackupCommandsTest, NicSetChangesOneNicOfTheItemAndKeepsTheRest) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  const std::string nic1 = "/subscriptions/x/resourceGroups/app/providers/Stratus.Network/"
                           "networkInterfaces/db1-nic";
  const std::string nic2 = "/subscriptions/x/resourceGroups/app/providers/Stratus.Network/"
                           "networkInterfaces/db1-nic2";
  Json policy = {{"crashConsistentFrequencyInSeconds", 5}};
  ServeGet(item, {{"id", item},
                  {"name", "db1"},
                  {"properties",
                   {{"sourceRegion", "regionB"},
                    {"sourceVmId", kVm},
                    {"policy", policy},
                    {"multiVmGroupName", "app"},
                    {"protectionState", "Protected"},
                    {"vmNics", {{{"nicId", nic1}, {"tfoIPAddress", "10.0.0.9"}},
                                {{"nicId", nic2}, {"recoveryVMSubnetName", "back"}}}}}}});
  EchoPut(item, "db1");
  CliRun r = Stratus({"recovery", "replication", "nic-set", "-g", "rg1", "--vault", "v1", "-n",
                      "db1", "--nic", nic1, "--recovery-ip", "10.1.1.77", "--target-network",
                      "vnet-b"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Json body = BodyOf("PUT", item);
  const Json& p = body["properties"];
  EXPECT_EQ(p["sourceVmId"], kVm);
  EXPECT_EQ(p["policy"], policy);
  EXPECT_EQ(p["multiVmGroupName"], "app");
  ASSERT_EQ(p["vmNics"].size(), 2u) << body.dump();
  EXPECT_EQ(p["vmNics"][0], (Json{{"nicId", nic2}, {"recoveryVMSubnetName", "back"}}));
  EXPECT_EQ(p["vmNics"][1]["replicaNicStaticIPAddress"], "10.1.1.77");
  EXPECT_EQ(p["vmNics"][1]["recoveryVMNetworkId"],
            kRg + "/providers/Stratus.Network/virtualNetworks/vnet-b");
  EXPECT_FALSE(p["vmNics"][1].contains("tfoIPAddress")) << "the NIC's choice is replaced whole";
  // Nothing to set: a usage error, nothing sent.
  const size_t gets = fake_.RequestsTo("GET", item).size();
  CliRun none = Stratus({"recovery", "replication", "nic-set", "-g", "rg1", "--vault", "v1", "-n",
                         "db1", "--nic", nic1});
  EXPECT_EQ(none.exit_code, 2) << none.out << none.err;
  EXPECT_EQ(fake_.RequestsTo("PUT", item).size(), 1u);
  EXPECT_EQ(fake_.RequestsTo("GET", item).size(), gets) << "checked before asking";
}

// --planned: a plan's and a group's failover post plannedFailover with no point (the points are
// the source's last cycles); a point with --planned is a usage error, nothing sent.
TEST_F(BackupCommandsTest, PlannedFailoverOfAPlanOrAGroupPostsPlannedFailover) {
  const std::string plan = kVault + "/replicationRecoveryPlans/app";
  const std::string group = kVault + "/replicationConsistencyGroups/web";
  ServeAction("POST", plan + "/plannedFailover");
  ServeAction("POST", group + "/plannedFailover");
  ServeOperation({{"name", "op9"},
                  {"status", "Succeeded"},
                  {"properties",
                   {{"steps",
                     {{{"name", "group 1: shut down in the source: db1"},
                       {"state", "Succeeded"},
                       {"durationMs", 900}}}},
                    {"failoverType", "Planned"},
                    {"vms", {"vm1"}},
                    {"rtoMs", 5000},
                    {"stratusTimeMs", 1000},
                    {"guestBootWaitMs", 4000},
                    {"manualWaitMs", 0}}}});
  CliRun bad = Stratus({"recovery", "plan", "failover", "-g", "rg1", "--vault", "v1", "-n", "app",
                        "--planned", "--recovery-point-type", "Latest"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_TRUE(fake_.requests().empty());
  CliRun r = Stratus(
      {"recovery", "plan", "failover", "-g", "rg1", "--vault", "v1", "-n", "app", "--planned"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(BodyOf("POST", plan + "/plannedFailover"), Json::object());
  EXPECT_NE(r.out.find("group 1: shut down in the source: db1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("RTO 5000 ms = Stratus 1000 ms"), std::string::npos) << r.out;
  op_polls_ = 0;
  CliRun g = Stratus(
      {"recovery", "group", "failover", "-g", "rg1", "--vault", "v1", "-n", "web", "--planned"});
  ASSERT_EQ(g.exit_code, 0) << g.out << g.err;
  EXPECT_EQ(BodyOf("POST", group + "/plannedFailover"), Json::object());
  EXPECT_NE(g.out.find("Planned"), std::string::npos) << g.out;
}

// --policy: the item names a replication policy of the vault instead of settings of its own;
// with one of those settings too it is a usage error, nothing sent.
TEST_F(BackupCommandsTest, ReplicationEnableWithAPolicyNamesItInsteadOfItsOwnSettings) {
  const std::string item = kVault + "/replicationProtectedItems/db1";
  EchoPut(item, "db1");
  ServeGet(item, {{"id", item}, {"name", "db1"}, {"properties", {{"policyId", "fast"}}}});
  CliRun bad = Stratus({"recovery", "replication", "enable", "-g", "rg1", "--vault", "v1", "-n",
                        "db1", "--source-region", "regionA", "--source-vm", kVm, "--policy", "fast",
                        "--frequency", "10"});
  EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
  EXPECT_TRUE(fake_.requests().empty());
  CliRun r = Stratus({"recovery", "replication", "enable", "-g", "rg1", "--vault", "v1", "-n",
                      "db1", "--source-region", "regionA", "--source-vm", kVm, "--policy", "fast"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  Json p = BodyOf("PUT", item)["properties"];
  EXPECT_EQ(p.value("policyId", ""), "fast");
  EXPECT_FALSE(p.contains("policy")) << p.dump();
}

}  // namespace
}  // namespace stratus::cli
