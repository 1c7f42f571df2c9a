#include "harness.h"

#include "net_harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/base64.h"

extern char** environ;

namespace stratus::e2e {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kLibvirtUri = "qemu:///system";
constexpr const char* kRootPrefix = "/var/tmp/stratus-e2e-";

// ------------------------------------------------------------------------------------------
// Daemons alive in this process, cleaned up by the environment if a test did not.

std::mutex& RegistryMu() {
  static std::mutex mu;
  return mu;
}
std::set<Daemon*>& Registry() {
  static std::set<Daemon*> live;
  return live;
}

// Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), 0 if gone.
unsigned long long ProcessStartTicks(pid_t pid) {
  std::string stat = ReadWholeFile("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  // Fields after the command: state is field 3; start time is field 22.
  for (int i = 3; i <= 22 && in >> field; ++i)
    if (i == 22) return std::strtoull(field.c_str(), nullptr, 10);
  return 0;
}

void KillProcessesMentioning(const std::string& needle) {
  for (pid_t p : ProcessesMentioning(needle)) ::kill(p, SIGKILL);
}

// Leftovers of earlier test processes that died without cleaning up.
void ReapStaleRoots() {
  std::error_code ec;
  for (auto& e : fs::directory_iterator("/var/tmp", ec)) {
    std::string path = e.path().string();
    if (path.rfind(kRootPrefix, 0) != 0 || !e.is_directory()) continue;
    std::string owner = ReadWholeFile(path + "/owner");
    bool stale = false;
    if (owner.empty()) {
      // Being created right now, or a crash before the owner file: only old ones.
      auto age = fs::file_time_type::clock::now() - fs::last_write_time(e.path(), ec);
      stale = !ec && age > std::chrono::minutes(30);
    } else {
      std::istringstream in(owner);
      long pid = 0;
      unsigned long long start = 0;
      in >> pid >> start;
      stale = pid <= 0 || ProcessStartTicks(static_cast<pid_t>(pid)) != start;
    }
    if (!stale) continue;
    std::fprintf(stderr, "[e2e] reaping leftovers of a dead test run: %s\n", path.c_str());
    // Its stratusd first (it might start domains again), if that pid still is it.
    long dpid = std::atol(ReadWholeFile(path + "/daemon.pid").c_str());
    std::string dcmd = dpid > 0 ? ReadWholeFile("/proc/" + std::to_string(dpid) + "/cmdline") : "";
    std::replace(dcmd.begin(), dcmd.end(), '\0', ' ');
    if (dcmd.find(path + "/data") != std::string::npos) ::kill(static_cast<pid_t>(-dpid), SIGKILL);
    RemoveDomainsUnder(path);
    KillProcessesMentioning(path + "/");
    fs::remove_all(path, ec);
  }
}

class CleanupEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { ReapStaleRoots(); }
  void TearDown() override {
    std::vector<Daemon*> live;
    {
      std::lock_guard<std::mutex> lock(RegistryMu());
      live.assign(Registry().begin(), Registry().end());
    }
    for (Daemon* d : live) d->Cleanup();
  }
};

[[maybe_unused]] ::testing::Environment* const kCleanupEnv =
    ::testing::AddGlobalTestEnvironment(new CleanupEnvironment);

// ------------------------------------------------------------------------------------------
// libvirt

void SilentLibvirtErrors(void*, virErrorPtr) {}

struct Conn {
  virConnectPtr c = nullptr;
  Conn() {
    static std::once_flag once;
    std::call_once(once, [] { virSetErrorFunc(nullptr, SilentLibvirtErrors); });
    c = virConnectOpen(kLibvirtUri);
  }
  ~Conn() {
    if (c) virConnectClose(c);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
};

struct Dom {
  virDomainPtr d = nullptr;
  explicit Dom(virDomainPtr p) : d(p) {}
  ~Dom() {
    if (d) virDomainFree(d);
  }
  Dom(const Dom&) = delete;
  Dom& operator=(const Dom&) = delete;
};

std::string XmlOf(virDomainPtr d, unsigned flags) {
  char* x = virDomainGetXMLDesc(d, flags);
  if (!x) return {};
  std::string s = x;
  std::free(x);
  return s;
}

std::string LastLibvirtError() {
  virErrorPtr e = virGetLastError();
  return e && e->message ? e->message : "unknown libvirt error";
}

// Calls `fn` for every libvirt domain (any state) whose live or persistent XML mentions `needle`.
void ForEachDomainMentioning(const std::string& needle,
                             const std::function<void(virDomainPtr, const std::string&)>& fn) {
  Conn conn;
  if (!conn.c) return;
  virDomainPtr* doms = nullptr;
  int n = virConnectListAllDomains(conn.c, &doms, 0);
  for (int i = 0; i < n; ++i) {
    Dom d(doms[i]);
    const char* name = virDomainGetName(d.d);
    if (!name) continue;
    std::string xml = XmlOf(d.d, 0) + XmlOf(d.d, VIR_DOMAIN_XML_INACTIVE);
    if (xml.find(needle) != std::string::npos) fn(d.d, name);
  }
  std::free(doms);
}

// One guest-agent command; the "return" member, or an error in *error.
Json AgentCommand(virDomainPtr d, const Json& cmd, int timeout_s, std::string* error) {
  char* r = virDomainQemuAgentCommand(d, cmd.dump().c_str(), timeout_s, 0);
  if (!r) {
    *error = "guest agent: " + LastLibvirtError();
    return nullptr;
  }
  Json j = Json::parse(r, nullptr, false);
  std::free(r);
  if (!j.is_object() || !j.contains("return")) {
    *error = "guest agent: unexpected reply " + j.dump();
    return nullptr;
  }
  return j["return"];
}

// Value of attribute `attr` of the first element `<tag ` in `xml`.
std::string Attr(const std::string& xml, const std::string& tag, const std::string& attr) {
  auto t = xml.find("<" + tag + " ");
  if (t == std::string::npos) return {};
  auto end = xml.find('>', t);
  std::string el = xml.substr(t, end == std::string::npos ? std::string::npos : end - t);
  for (char q : {'\'', '"'}) {
    std::string key = " " + attr + "=" + q;
    auto a = el.find(key);
    if (a == std::string::npos) continue;
    a += key.size();
    auto b = el.find(q, a);
    if (b != std::string::npos) return el.substr(a, b - a);
  }
  return {};
}

std::string ElementText(const std::string& xml, const std::string& tag) {
  auto a = xml.find("<" + tag + ">");
  if (a == std::string::npos) return {};
  a += tag.size() + 2;
  auto b = xml.find("</" + tag + ">", a);
  return b == std::string::npos ? std::string() : xml.substr(a, b - a);
}

std::string Trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// error.<key> of an API error body, "" when there is none.
std::string ErrorField(const Json& body, const char* key) {
  if (body.is_object() && body.contains("error") && body["error"].is_object())
    return body["error"].value(key, "");
  return {};
}

std::string PathOfUrl(const std::string& url) {
  auto p = url.find("/subscriptions/");
  return p == std::string::npos ? url : url.substr(p);
}

}  // namespace

// ------------------------------------------------------------------------------------------
// Free functions

std::string GuestDir() {
  if (const char* env = std::getenv("STRATUS_GUEST_DIR"); env && *env) return env;
  return std::string(STRATUS_SOURCE_DIR) + "/build/guest";
}

std::string SkipReason() {
  if (::geteuid() != 0) return "e2e tests need root (qemu:///system, /var/tmp data dirs)";
  if (::access(STRATUSD_PATH, X_OK) != 0)
    return std::string("stratusd is not built at ") + STRATUSD_PATH;
  std::string tiny = GuestDir() + "/tiny";
  for (auto f : {"image.json", "vmlinuz", "initrd.img", "rootfs.qcow2"})
    if (::access((tiny + "/" + f).c_str(), R_OK) != 0)
      return "guest image missing: " + tiny + "/" + f +
             " (build it with `bash guest/build-tiny-image.sh " + GuestDir() +
             "` or set STRATUS_GUEST_DIR)";
  if (RunCommand({"virsh", "-c", kLibvirtUri, "version"}) != 0 &&
      RunCommand({"bash", std::string(STRATUS_SOURCE_DIR) + "/scripts/ensure-libvirtd.sh"}) != 0)
    return "libvirtd does not answer at qemu:///system (scripts/ensure-libvirtd.sh failed)";
  return {};
}

std::string RandomHex(int bytes) {
  static std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < bytes * 2; ++i) s.push_back(kHex[rng() % 16]);
  return s;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int RunCommand(const std::vector<std::string>& argv, std::string* output) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  std::string out;
  if (rc == 0) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  if (output) *output = out;
  if (rc != 0) return -1;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_directory()) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<pid_t> ProcessesMentioning(const std::string& needle) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  pid_t self = ::getpid();
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self) continue;
    std::string cmd = ReadWholeFile("/proc/" + std::string(e->d_name) + "/cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find(needle) != std::string::npos) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

std::vector<DomainDisk> ParseDomainDisks(const std::string& xml) {
  std::vector<DomainDisk> out;
  size_t pos = 0;
  for (;;) {
    auto a = xml.find("<disk ", pos);
    if (a == std::string::npos) break;
    auto b = xml.find("</disk>", a);
    if (b == std::string::npos) break;
    std::string block = xml.substr(a, b - a);
    pos = b;
    DomainDisk d;
    d.target = Attr(block, "target", "dev");
    d.source = Attr(block, "source", "file");
    d.serial = ElementText(block, "serial");
    d.total_iops_sec = std::strtoull(ElementText(block, "total_iops_sec").c_str(), nullptr, 10);
    d.total_bytes_sec = std::strtoull(ElementText(block, "total_bytes_sec").c_str(), nullptr, 10);
    d.read_only = block.find("<readonly/>") != std::string::npos;
    out.push_back(d);
  }
  return out;
}

const DomainDisk* FindBySerial(const std::vector<DomainDisk>& disks, const std::string& serial) {
  for (auto& d : disks)
    if (d.serial == serial) return &d;
  return nullptr;
}

std::vector<std::string> RemoveDomainsUnder(const std::string& dir) {
  std::vector<std::string> removed;
  if (dir.empty()) return removed;
  ForEachDomainMentioning(dir + "/", [&](virDomainPtr d, const std::string& name) {
    if (name.rfind("stratus-", 0) != 0) return;
    if (virDomainIsActive(d) == 1) virDomainDestroy(d);
    unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                     VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;
    if (virDomainUndefineFlags(d, flags) < 0) virDomainUndefine(d);
    removed.push_back(name);
  });
  return removed;
}

// ------------------------------------------------------------------------------------------
// HttpResponse, GuestExec

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string HttpResponse::ErrorCode() const { return ErrorField(json, "code"); }

std::string HttpResponse::ErrorMessage() const { return ErrorField(json, "message"); }

std::string HttpResponse::Describe() const {
  if (status == 0) return "transport error: " + transport_error;
  std::string b = body.size() > 2000 ? body.substr(0, 2000) + "..." : body;
  return "HTTP " + std::to_string(status) + " " + b;
}

std::string GuestExec::Describe() const {
  if (!ok) return "guest exec failed: " + error;
  return "exit " + std::to_string(exit_code) + "; stdout: [" + out + "] stderr: [" + err + "]";
}

// ------------------------------------------------------------------------------------------
// Daemon

Daemon::Daemon(std::string region) : region_(std::move(region)) {}

Daemon::~Daemon() { Cleanup(); }

::testing::AssertionResult Daemon::Start(Seconds timeout) {
  if (pid_ > 0) return ::testing::AssertionFailure() << "stratusd is already running";
  if (root_.empty()) {
    root_ = kRootPrefix + RandomHex(6);
    data_dir_ = root_ + "/data";
    log_path_ = root_ + "/stratusd.log";
    std::error_code ec;
    fs::create_directories(data_dir_, ec);
    if (ec) return ::testing::AssertionFailure() << "mkdir " << data_dir_ << ": " << ec.message();
    // QEMU runs as an unprivileged user and must traverse every folder above the disks.
    ::chmod(root_.c_str(), 0755);
    ::chmod(data_dir_.c_str(), 0755);
    std::ofstream(root_ + "/owner") << ::getpid() << " " << ProcessStartTicks(::getpid()) << "\n";
    cleaned_ = false;
    std::lock_guard<std::mutex> lock(RegistryMu());
    Registry().insert(this);
  }
  return Spawn(timeout);
}

::testing::AssertionResult Daemon::Spawn(Seconds timeout) {
  int fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ::testing::AssertionFailure() << "cannot open " << log_path_;
  off_t offset = ::lseek(fd, 0, SEEK_END);
  std::string marker = "\n[e2e] ---- starting stratusd ----\n";
  (void)!::write(fd, marker.data(), marker.size());
  offset += static_cast<off_t>(marker.size());

  std::vector<std::string> argv = {STRATUSD_PATH,
                                   "--region",
                                   region_,
                                   "--data-dir",
                                   data_dir_,
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port_),
                                   "--platform-images",
                                   GuestDir(),
                                   "--cli-config",
                                   cli_config_path()};
  // The peer link keeps its port across restarts too (paired regions recorded it).
  if (peer_port_ != 0) {
    argv.push_back("--peer-listen");
    argv.push_back("127.0.0.1:" + std::to_string(peer_port_));
  }
  for (auto& a : extra_args_) argv.push_back(a);

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fd, 1);
  posix_spawn_file_actions_adddup2(&fa, fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);  // own process group: Kill9 takes its helpers too
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, STRATUSD_PATH, &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(fd);
  if (rc != 0)
    return ::testing::AssertionFailure()
           << "posix_spawn " << STRATUSD_PATH << ": " << std::strerror(rc);
  pid_ = pid;
  std::ofstream(root_ + "/daemon.pid") << pid << "\n";

  static const std::regex kReady(
      R"(stratusd ready region=(\S+) port=(\d+) subscription=(\S+) token=(\S+) peer_port=(\d+))");
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    std::string log = ReadWholeFile(log_path_);
    std::string fresh = log.size() > static_cast<size_t>(offset) ? log.substr(offset) : "";
    std::smatch m;
    if (std::regex_search(fresh, m, kReady)) {
      int port = std::atoi(m[2].str().c_str());
      if (port_ != 0 && port != port_)
        return ::testing::AssertionFailure()
               << "stratusd came back on port " << port << ", not " << port_;
      port_ = port;
      peer_port_ = std::atoi(m[5].str().c_str());
      subscription_ = m[3].str();
      token_ = Trim(ReadWholeFile(m[4].str()));
      if (m[1].str() != region_)
        return ::testing::AssertionFailure() << "ready line names region " << m[1].str();
      if (token_.empty())
        return ::testing::AssertionFailure() << "admin token file " << m[4].str() << " is empty";
      return ::testing::AssertionSuccess();
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return ::testing::AssertionFailure()
             << "stratusd exited before it was ready (status " << status << "); log:\n"
             << LogTail(40);
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return ::testing::AssertionFailure()
         << "stratusd printed no ready line within " << timeout.count() << " s; log:\n"
         << LogTail(40);
}

::testing::AssertionResult Daemon::Reap(Seconds timeout, bool* exited) {
  *exited = false;
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      *exited = true;
      pid_ = -1;
      return ::testing::AssertionSuccess();
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  return ::testing::AssertionFailure()
         << "stratusd (pid " << pid_ << ") did not exit within " << timeout.count() << " s";
}

::testing::AssertionResult Daemon::Stop() {
  if (pid_ <= 0) return ::testing::AssertionSuccess();
  ::kill(pid_, SIGTERM);
  bool exited = false;
  auto r = Reap(Seconds(60), &exited);
  if (!exited) {
    ::kill(-pid_, SIGKILL);
    Reap(Seconds(10), &exited);
    return r << " after SIGTERM; killed it";
  }
  return r;
}

::testing::AssertionResult Daemon::Restart() {
  auto s = Stop();
  if (!s) return s;
  return Start();
}

::testing::AssertionResult Daemon::Kill9() {
  if (pid_ <= 0) return ::testing::AssertionFailure() << "stratusd is not running";
  ::kill(-pid_, SIGKILL);
  bool exited = false;
  return Reap(Seconds(30), &exited);
}

void Daemon::Cleanup() {
  if (cleaned_ || root_.empty()) return;
  cleaned_ = true;
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    bool exited = false;
    Reap(Seconds(10), &exited);
  }
  // The daemon is dead: nothing restarts the domains we remove now.
  RemoveDomainsUnder(root_);
  KillProcessesMentioning(root_ + "/");
  // Its networks' namespaces, links and dnsmasq outlive it by design (running VMs keep their
  // traffic); the test's region goes entirely.
  RemoveRegionNetwork(RegionNetworkId(region_, data_dir_));
  auto* unit = ::testing::UnitTest::GetInstance();
  bool failed = unit->current_test_info() != nullptr ? ::testing::Test::HasFailure()
                                                     : unit->failed_test_count() > 0;
  if (failed) {
    std::fprintf(stderr, "[e2e] stratusd log (%s), last lines:\n%s\n", log_path_.c_str(),
                 LogTail(120).c_str());
  }
  const char* keep = std::getenv("STRATUS_E2E_KEEP");
  if (keep && std::string(keep) == "1") {
    std::fprintf(stderr, "[e2e] STRATUS_E2E_KEEP=1: kept %s\n", root_.c_str());
  } else {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  std::lock_guard<std::mutex> lock(RegistryMu());
  Registry().erase(this);
}

std::string Daemon::LogTail(size_t max_lines) const {
  std::string log = ReadWholeFile(log_path_);
  size_t pos = log.size();
  for (size_t n = 0; n <= max_lines && pos > 0; ++n) {
    pos = log.rfind('\n', pos - 1);
    if (pos == std::string::npos) {
      pos = 0;
      break;
    }
  }
  return log.substr(pos);
}

HttpResponse Daemon::Request(const std::string& method, const std::string& path,
                             const std::string& raw_body, httplib::Headers headers,
                             bool auth) const {
  HttpResponse out;
  httplib::Client cli("127.0.0.1", port_);
  cli.set_connection_timeout(5, 0);
  cli.set_read_timeout(120, 0);
  cli.set_write_timeout(60, 0);
  cli.set_keep_alive(false);
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.headers = std::move(headers);
  if (auth && req.headers.find("Authorization") == req.headers.end())
    req.headers.emplace("Authorization", "Bearer " + token_);
  if (!raw_body.empty()) {
    req.body = raw_body;
    if (req.headers.find("Content-Type") == req.headers.end())
      req.headers.emplace("Content-Type", "application/json");
  }
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  if (!cli.send(req, res, err)) {
    out.transport_error = httplib::to_string(err);
    return out;
  }
  out.status = res.status;
  out.body = res.body;
  out.headers = res.headers;
  if (!res.body.empty()) out.json = Json::parse(res.body, nullptr, false);
  if (out.json.is_discarded()) out.json = nullptr;
  return out;
}

HttpResponse Daemon::Act(const std::string& method, const std::string& path,
                         const Json& body) const {
  static const std::regex kHolder(R"(Another operation \('([0-9a-fA-F-]{36})'\))");
  std::string raw = method == "GET" || method == "DELETE" ? "" : body.dump();
  HttpResponse r = Request(method, path, raw);
  bool reported = false;
  auto deadline = Clock::now() + Seconds(10);
  std::smatch m;
  std::string msg;
  while (r.status == 409 && Clock::now() < deadline &&
         std::regex_search(msg = r.ErrorMessage(), m, kHolder)) {
    HttpResponse op = Get(OperationPath(m[1].str()));
    std::string status = op.json.is_object() ? op.json.value("status", "") : "";
    if (status.empty() || status == "InProgress") break;  // a real conflict: not ours to judge
    if (!reported) {
      ADD_FAILURE() << method << " " << path << " got 409 although the operation it names ("
                    << m[1].str() << ") already reports '" << status
                    << "': the operation still holds its resource lock after publishing its "
                       "end (api/operations.cc, OperationManager::Worker releases the keys only "
                       "after Run() stored the final record and ran on_finish). Retrying.";
      reported = true;
    }
    std::this_thread::sleep_for(milliseconds(100));
    r = Request(method, path, raw);
  }
  return r;
}

Json Daemon::WaitOperation(const std::string& url, Seconds timeout) const {
  std::string path = PathOfUrl(url);
  auto deadline = Clock::now() + timeout;
  Json last;
  std::string last_http;
  while (Clock::now() < deadline) {
    HttpResponse r = Get(path);
    if (r.status == 200 && r.json.is_object()) {
      last = r.json;
      if (last.value("status", "") != "InProgress") return last;
    } else {
      last_http = r.Describe();
    }
    std::this_thread::sleep_for(milliseconds(250));
  }
  ADD_FAILURE() << "operation " << path << " still not finished after " << timeout.count()
                << " s: " << last.dump() << " " << last_http;
  return last;
}

Json Daemon::WaitFor(const HttpResponse& accepted, Seconds timeout) const {
  std::string url = accepted.Header("Azure-AsyncOperation");
  if (url.empty()) {
    ADD_FAILURE() << "no Azure-AsyncOperation header in " << accepted.Describe();
    return Json::object();
  }
  return WaitOperation(url, timeout);
}

Json Daemon::InstanceView(const std::string& vm_path) const {
  HttpResponse r = Get(vm_path + "/instanceView");
  if (r.status != 200) {
    ADD_FAILURE() << "GET instanceView of " << vm_path << ": " << r.Describe();
    return Json::object();
  }
  return r.json;
}

bool Daemon::WaitForConsole(const std::string& vm_path, const std::string& marker, Seconds timeout,
                            int min_count, std::string* content) const {
  auto deadline = Clock::now() + timeout;
  std::string text;
  for (;;) {
    HttpResponse r = Post(vm_path + "/retrieveConsoleLog?tail=1048576");
    if (r.status == 200 && r.json.is_object()) {
      text = r.json.value("content", "");
      int count = 0;
      for (size_t p = text.find(marker); p != std::string::npos; p = text.find(marker, p + 1))
        ++count;
      if (count >= min_count) break;
    }
    if (Clock::now() >= deadline) {
      if (content) *content = text;
      return false;
    }
    std::this_thread::sleep_for(milliseconds(500));
  }
  if (content) *content = text;
  return true;
}

GuestExec Daemon::AgentExec(const std::string& domain, const std::string& cmd, Seconds timeout) {
  GuestExec out;
  Conn conn;
  if (!conn.c) {
    out.error = "cannot connect to libvirt: " + LastLibvirtError();
    return out;
  }
  Dom d(virDomainLookupByName(conn.c, domain.c_str()));
  if (!d.d) {
    out.error = "no domain " + domain;
    return out;
  }
  Json start = {
      {"execute", "guest-exec"},
      {"arguments", {{"path", "/bin/sh"}, {"arg", {"-c", cmd}}, {"capture-output", true}}}};
  Json r = AgentCommand(d.d, start, 10, &out.error);
  if (r.is_null()) return out;
  int64_t pid = r.value("pid", int64_t{-1});
  auto deadline = Clock::now() + timeout;
  for (;;) {
    Json st = AgentCommand(d.d, {{"execute", "guest-exec-status"}, {"arguments", {{"pid", pid}}}},
                           10, &out.error);
    if (st.is_null()) return out;
    if (st.value("exited", false)) {
      auto out_data = Base64Decode(st.value("out-data", ""));
      auto err_data = Base64Decode(st.value("err-data", ""));
      if (!out_data.ok() || !err_data.ok()) {
        out.error = "guest-exec-status of '" + cmd +
                    "': " + (out_data.ok() ? err_data : out_data).status().message();
        return out;
      }
      out.ok = true;
      out.error.clear();
      out.exit_code = st.value("exitcode", -1);
      if (st.contains("signal")) out.exit_code = 128 + st.value("signal", 0);
      out.out = std::move(out_data).value();
      out.err = std::move(err_data).value();
      return out;
    }
    if (Clock::now() >= deadline) {
      out.error = "command still running after " + std::to_string(timeout.count()) + " s: " + cmd;
      return out;
    }
    std::this_thread::sleep_for(milliseconds(100));
  }
}

GuestExec Daemon::AgentExecWhenReady(const std::string& domain, const std::string& cmd,
                                     Seconds timeout) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    GuestExec r = AgentExec(domain, cmd, timeout);
    if (r.ok || Clock::now() >= deadline) return r;
    std::this_thread::sleep_for(milliseconds(500));
  }
}

std::map<std::string, std::string> Daemon::GuestDisksBySerial(const std::string& domain,
                                                              std::string* error) {
  std::map<std::string, std::string> out;
  GuestExec r = AgentExec(domain,
                          "for d in /sys/block/vd*; do "
                          "echo \"${d##*/} $(cat $d/serial 2>/dev/null)\"; done");
  if (!r.ok || r.exit_code != 0) {
    if (error) *error = r.Describe();
    return out;
  }
  std::istringstream in(r.out);
  std::string dev, serial;
  while (in >> dev) {
    std::getline(in, serial);
    serial = Trim(serial);
    if (!serial.empty()) out[serial] = dev;
  }
  return out;
}

bool Daemon::WaitGuestDisk(const std::string& domain, const std::string& serial, bool present,
                           Seconds timeout, std::string* device) {
  auto deadline = Clock::now() + timeout;
  for (;;) {
    std::string error;
    auto disks = GuestDisksBySerial(domain, &error);
    bool has = disks.count(serial) > 0;
    if (error.empty() && has == present) {
      if (device) *device = has ? disks[serial] : "";
      return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(300));
  }
}

std::string Daemon::DomainState(const std::string& domain) {
  Conn conn;
  if (!conn.c) return {};
  Dom d(virDomainLookupByName(conn.c, domain.c_str()));
  if (!d.d) return {};
  int state = 0, reason = 0;
  if (virDomainGetState(d.d, &state, &reason, 0) < 0) return "unknown";
  switch (state) {
    case VIR_DOMAIN_RUNNING:
      return "running";
    case VIR_DOMAIN_BLOCKED:
      return "blocked";
    case VIR_DOMAIN_PAUSED:
      switch (reason) {
        case VIR_DOMAIN_PAUSED_STARTING_UP:
          return "paused (starting up)";
        case VIR_DOMAIN_PAUSED_USER:
          return "paused (by a user)";
        case VIR_DOMAIN_PAUSED_IOERROR:
          return "paused (I/O error)";
        case VIR_DOMAIN_PAUSED_SNAPSHOT:
          return "paused (snapshot)";
        default:
          return "paused (reason " + std::to_string(reason) + ")";
      }
    case VIR_DOMAIN_SHUTDOWN:
      return "shutting down";
    case VIR_DOMAIN_SHUTOFF:
      return "shut off";
    case VIR_DOMAIN_CRASHED:
      return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
      return "pmsuspended";
    default:
      return "unknown";
  }
}

std::string Daemon::DomainXml(const std::string& domain) {
  Conn conn;
  if (!conn.c) return {};
  Dom d(virDomainLookupByName(conn.c, domain.c_str()));
  if (!d.d) return {};
  return XmlOf(d.d, 0);
}

std::vector<std::string> Daemon::OwnedDomains() const {
  std::vector<std::string> out;
  if (root_.empty()) return out;
  ForEachDomainMentioning(root_ + "/",
                          [&](virDomainPtr, const std::string& name) { out.push_back(name); });
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t ResidentBytes(pid_t pid) {
  std::string status = ReadWholeFile("/proc/" + std::to_string(pid) + "/status");
  size_t at = status.find("VmRSS:");
  if (at == std::string::npos) return 0;
  return std::strtoull(status.c_str() + at + 6, nullptr, 10) * 1024;
}

std::vector<std::string> VaultChunkFiles(const std::string& data_dir) {
  std::vector<std::string> out;
  for (auto& f : FilesUnder(data_dir + "/vaults"))
    if (f.find("/chunks/") != std::string::npos) out.push_back(f);
  return out;
}

std::string LargestFile(const std::vector<std::string>& files) {
  std::string largest;
  uintmax_t size = 0;
  for (const auto& f : files) {
    std::error_code ec;
    uintmax_t n = fs::file_size(f, ec);
    if (!ec && (largest.empty() || n > size)) {
      largest = f;
      size = n;
    }
  }
  return largest;
}

bool FlipByte(const std::string& path, std::streamoff offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  char c = 0;
  if (!f.seekg(offset) || !f.read(&c, 1)) return false;
  c = static_cast<char>(c ^ 0x5a);
  return static_cast<bool>(f.seekp(offset) && f.write(&c, 1) && f.flush());
}

// ------------------------------------------------------------------------------------------
// Request bodies

TinyVmBody::TinyVmBody(const std::string& location)
    : body_({{"location", location},
             {"properties",
              {{"hardwareProfile", {{"vmSize", "Standard_S1"}}},
               {"storageProfile", {{"imageReference", {{"id", "tiny"}}}}}}}}) {}

TinyVmBody& TinyVmBody::Size(const std::string& vm_size) {
  body_["properties"]["hardwareProfile"]["vmSize"] = vm_size;
  return *this;
}

TinyVmBody& TinyVmBody::Image(const Json& id) {
  body_["properties"]["storageProfile"]["imageReference"]["id"] = id;
  return *this;
}

TinyVmBody& TinyVmBody::ComputerName(const std::string& name) {
  body_["properties"]["osProfile"]["computerName"] = name;
  return *this;
}

TinyVmBody& TinyVmBody::CustomData(const std::string& script) {
  body_["properties"]["osProfile"]["customData"] = script;
  return *this;
}

TinyVmBody& TinyVmBody::OsDisk(const std::string& name, int size_gb, const std::string& sku) {
  Json disk = {{"name", name}};
  if (size_gb > 0) disk["diskSizeGB"] = size_gb;
  if (!sku.empty()) disk["sku"] = sku;
  body_["properties"]["storageProfile"]["osDisk"] = disk;
  return *this;
}

TinyVmBody& TinyVmBody::DataDisk(int lun, const std::string& name, int size_gb,
                                 const std::string& sku) {
  Json disk = {{"lun", lun}, {"name", name}, {"createOption", "Empty"}, {"diskSizeGB", size_gb}};
  if (!sku.empty()) disk["sku"] = sku;
  body_["properties"]["storageProfile"]["dataDisks"].push_back(disk);
  return *this;
}

Json DailyPolicyBody(int daily_count, const std::string& consistency) {
  Json props = {{"schedule", {{"frequency", "Daily"}, {"times", {"02:00"}}}},
                {"retention", {{"daily", {{"count", daily_count}}}}}};
  if (!consistency.empty()) props["consistency"] = consistency;
  return {{"properties", props}};
}

Json ProtectedItemBody(const std::string& vm_id, const std::string& policy_id) {
  return {{"properties", {{"sourceResourceId", vm_id}, {"policyId", policy_id}}}};
}

// ------------------------------------------------------------------------------------------
// DaemonTest

::testing::AssertionResult OperationSucceeded(const Json& op) {
  std::string status = op.is_object() ? op.value("status", "") : "";
  if (status == "Succeeded") return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "operation status '" << status << "', not 'Succeeded'; operation: " << op.dump();
}

std::unique_ptr<Daemon> DaemonTest::suite_;
std::string DaemonTest::suite_group_;
::testing::AssertionResult DaemonTest::suite_started_ = ::testing::AssertionFailure()
                                                        << "StartSuiteDaemon was not called";
bool DaemonTest::suite_mode_ = false;

std::unique_ptr<Daemon> DaemonTest::MakeDaemon(const DaemonOptions& options) {
  auto d = std::make_unique<Daemon>(options.region_);
  d->set_extra_args(options.flags_);
  if (!options.cli_config_.empty()) d->set_cli_config(options.cli_config_);
  return d;
}

void DaemonTest::StartSuiteDaemon(const DaemonOptions& options) {
  suite_mode_ = true;
  suite_group_ = options.group_;
  if (!SkipReason().empty()) return;  // SetUp skips every test
  suite_ = MakeDaemon(options);
  suite_started_ = suite_->Start();
  if (!suite_started_) std::fprintf(stderr, "%s\n", suite_started_.message());
}

void DaemonTest::StopSuiteDaemon() {
  suite_.reset();  // ~Daemon cleans up
  suite_group_.clear();
  suite_started_ = ::testing::AssertionFailure() << "StartSuiteDaemon was not called";
  suite_mode_ = false;
}

::testing::AssertionResult DaemonTest::StartDaemon(const DaemonOptions& options) {
  own_ = MakeDaemon(options);
  d_ = own_.get();
  group_ = options.group_;
  auto started = own_->Start();
  if (!started) return started;
  return PutGroup(/*may_exist=*/false);
}

::testing::AssertionResult DaemonTest::PutGroup(bool may_exist) const {
  if (group_.empty()) return ::testing::AssertionSuccess();
  HttpResponse r = d().Put(d().GroupPath(group_), {{"location", d().region()}});
  if (r.status == 201 || (may_exist && r.status == 200)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "PUT resource group " << group_ << ": " << r.Describe();
}

void DaemonTest::SetUp() {
  std::string why = SkipReason();
  if (!why.empty()) GTEST_SKIP() << why;
  if (per_test_) {
    ASSERT_TRUE(StartDaemon(*per_test_));
  } else if (suite_mode_) {
    ASSERT_TRUE(suite_ && suite_->running())
        << "stratusd did not start: " << suite_started_.message();
    d_ = suite_.get();
    group_ = suite_group_;
    ASSERT_TRUE(PutGroup(/*may_exist=*/true));
  }
}

void DaemonTest::TearDown() {
  if (own_) own_->Cleanup();
}

void DaemonTest::CreateVm(const std::string& name, const Json& body, TestVm* vm, Seconds timeout) {
  vm->path = d().VmPath(group_, name);
  HttpResponse put = d().Put(vm->path, body);
  ASSERT_EQ(put.status, 201) << put.Describe();
  vm->id = put.json.value("id", "");
  vm->domain = DomainName(put.json["properties"].value("vmId", ""));
  ASSERT_FALSE(vm->id.empty()) << put.Describe();
  ASSERT_SUCCEEDED(d().WaitFor(put, timeout));
}

void DaemonTest::GetVm(const std::string& name, TestVm* vm) {
  vm->path = d().VmPath(group_, name);
  HttpResponse g = d().Get(vm->path);
  ASSERT_EQ(g.status, 200) << g.Describe();
  vm->id = g.json.value("id", "");
  vm->domain = DomainName(g.json["properties"].value("vmId", ""));
}

void DaemonTest::WaitGuestDisk(const TestVm& vm, const std::string& serial, std::string* device,
                               const std::string& ready, int boots) {
  ASSERT_TRUE(d().WaitForConsole(vm.path, ready, Seconds(120), boots));
  ASSERT_TRUE(Daemon::WaitGuestDisk(vm.domain, serial, true, Seconds(60), device));
}

std::string DaemonTest::Guest(const std::string& domain, const std::string& cmd, Seconds timeout) {
  GuestExec r = Daemon::AgentExecWhenReady(domain, cmd, timeout);
  EXPECT_TRUE(r.ok && r.exit_code == 0) << cmd << ": " << r.Describe();
  return r.out;
}

Json DaemonTest::ActAndWait(const std::string& method, const std::string& path, const Json& body,
                            Seconds timeout) {
  HttpResponse r = d().Act(method, path, body);
  if (r.status != 202) {
    ADD_FAILURE() << method << " " << path << " did not answer 202: " << r.Describe();
    return Json::object();
  }
  return d().WaitFor(r, timeout);
}

Json DaemonTest::FinishJob(const HttpResponse& accepted, Seconds timeout) {
  EXPECT_EQ(accepted.status, 202) << accepted.Describe();
  if (accepted.status != 202) return Json::object();
  Json op = d().WaitFor(accepted, timeout);
  HttpResponse j = d().Get(accepted.json.value("id", ""));
  EXPECT_EQ(j.status, 200) << j.Describe();
  Json out = j.json.is_object() ? j.json : Json::object();
  out["operation"] = op;
  return out;
}

Json DaemonTest::WaitJobEnd(const std::string& job_path, Seconds timeout) {
  auto deadline = Clock::now() + timeout;
  Json last;
  while (Clock::now() < deadline) {
    HttpResponse r = d().Get(job_path);
    if (r.status == 200 && r.json.is_object()) {
      last = r.json;
      std::string s = last["properties"].value("status", "");
      if (s != "Queued" && s != "InProgress") return last;
    }
    std::this_thread::sleep_for(milliseconds(250));
  }
  ADD_FAILURE() << "job " << job_path << " still running after " << timeout.count()
                << " s: " << last.dump();
  return last;
}

std::vector<Json> DaemonTest::RecoveryPoints(const std::string& item_path) {
  HttpResponse pts = d().Get(item_path + "/recoveryPoints");
  EXPECT_EQ(pts.status, 200) << pts.Describe();
  std::vector<Json> out;
  if (pts.json.is_object())
    for (auto& p : pts.json["value"]) out.push_back(p);
  std::sort(out.begin(), out.end(), [](const Json& a, const Json& b) {
    return a["properties"].value("recoveryPointTime", "") >
           b["properties"].value("recoveryPointTime", "");
  });
  return out;
}

}  // namespace stratus::e2e
