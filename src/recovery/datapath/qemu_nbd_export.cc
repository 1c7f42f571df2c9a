#include "recovery/datapath/qemu_nbd_export.h"

#include <fcntl.h>
#include <libnbd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/fs.h"
#include "core/uuid.h"

namespace stratus::recovery::datapath {
namespace {

// Full path of `prog` from PATH (resolved before fork: execv after fork must not allocate).
std::string FindInPath(const std::string& prog) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string cand = p.substr(start, end - start) + "/" + prog;
    if (::access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return "";
}

// Ready means a full NBD handshake succeeds: qemu-nbd listens before it has opened the image
// and the bitmap, and exits if that fails.
bool HandshakeSucceeds(const std::string& socket_path) {
  if (!PathExists(socket_path)) return false;
  nbd_handle* h = nbd_create();
  if (h == nullptr) return false;
  bool ok = nbd_connect_unix(h, socket_path.c_str()) == 0;
  if (ok) nbd_shutdown(h, 0);
  nbd_close(h);
  return ok;
}

std::string Tail(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return "";
  std::string s = *text;
  if (s.size() > 2000) s = s.substr(s.size() - 2000);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result<std::unique_ptr<QemuNbdExport>> QemuNbdExport::Start(const QemuNbdOptions& o) {
  if (o.image.empty()) return InvalidArgument("qemu-nbd: no image given");
  if (!PathExists(o.image))
    return NotFound("disk image '" + o.image + "' does not exist", o.image, "DiskImageNotFound");
  if (o.format != "qcow2" && o.format != "raw")
    return InvalidArgument("image format '" + o.format + "' must be qcow2 or raw");
  std::string binary = FindInPath("qemu-nbd");
  if (binary.empty()) return Unavailable("qemu-nbd is not installed (package qemu-utils)");

  std::unique_ptr<QemuNbdExport> e(new QemuNbdExport());
  std::string dir = o.socket_dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/stratus-nbd-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      return Internal(std::string("mkdtemp for the NBD socket failed: ") + std::strerror(errno));
    dir = tmpl;
    e->made_dir_ = dir;
  }
  std::string tag = RandomHex(4);  // several exports may share a socket dir
  e->socket_ = dir + "/nbd-" + tag + ".sock";
  e->log_ = dir + "/qemu-nbd-" + tag + ".log";
  if (e->socket_.size() >= sizeof(sockaddr_un::sun_path))
    return InvalidArgument("NBD socket path '" + e->socket_ + "' is too long");
  ::unlink(e->socket_.c_str());

  const bool unlocked = o.read_only && o.force_share;
  std::vector<std::string> args = {binary, "--socket=" + e->socket_, "--persistent",
                                   // +1: the readiness probe holds a slot for a moment
                                   "--shared=" + std::to_string(o.shared + 1)};
  // qemu-nbd has no --force-share: the image's options say "no locks" instead (and then carry
  // the format themselves).
  if (!unlocked) args.push_back("--format=" + o.format);
  if (unlocked) args.push_back("--image-opts");
  if (o.read_only) args.push_back("--read-only");
  if (!o.bitmap.empty()) args.push_back("--bitmap=" + o.bitmap);
  if (!o.cache.empty()) args.push_back("--cache=" + o.cache);
  if (!o.aio.empty()) args.push_back("--aio=" + o.aio);
  if (unlocked) {
    if (o.image.find(',') != std::string::npos)
      return InvalidArgument("image path '" + o.image + "' has a comma; cannot read it unlocked");
    args.push_back("driver=" + o.format + ",file.driver=file,file.filename=" + o.image +
                   ",file.locking=off");
  } else {
    args.push_back(o.image);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int log_fd = ::open(e->log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (log_fd < 0) return Internal("cannot create '" + e->log_ + "': " + std::strerror(errno));
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return Internal(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    // The signal mask survives exec: a daemon that blocks SIGTERM for sigwait() would hand
    // qemu-nbd a blocked SIGTERM, and Stop() would have to wait out its 10 s and SIGKILL it.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::setpgid(0, 0);  // keep terminal signals (Ctrl-C) to the owner, who stops it in order
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(log_fd);
  e->pid_ = pid;

  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.start_timeout_ms);
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      e->pid_ = -1;
      std::string why = Tail(e->log_);
      return Status(StatusCode::kInternal, "QemuNbdFailed",
                    "qemu-nbd for '" + o.image + "' exited" +
                        (WIFEXITED(status) ? " with " + std::to_string(WEXITSTATUS(status)) : "") +
                        ": " + why,
                    o.image);
    }
    if (HandshakeSucceeds(e->socket_)) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Status(StatusCode::kUnavailable, "QemuNbdFailed",
                    "qemu-nbd for '" + o.image + "' did not listen on '" + e->socket_ +
                        "' within " + std::to_string(o.start_timeout_ms) + " ms: " + Tail(e->log_),
                    o.image);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return e;
}

QemuNbdExport::~QemuNbdExport() { Stop(); }

Status QemuNbdExport::Stop() {
  Status st;
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) break;
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        st = Internal("qemu-nbd (pid " + std::to_string(pid_) + ") ignored SIGTERM; killed");
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    pid_ = -1;
  }
  if (!socket_.empty()) ::unlink(socket_.c_str());
  if (!log_.empty()) ::unlink(log_.c_str());
  if (!made_dir_.empty()) {
    RemoveTree(made_dir_);
    made_dir_.clear();
  }
  return st;
}

}  // namespace stratus::recovery::datapath
