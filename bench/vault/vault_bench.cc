// vault_bench: Stratus's backup data path (qemu-nbd + libnbd + vault, the code VM backups use)
// against restic and borg on the same 8 GiB ext4 disk image, in one run:
//   full backup -> rewrite 5% of the disk in 2 MiB blocks at random (seeded) aligned offsets ->
//   incremental backup -> restore of the latest point
// and a Markdown table of times, repository sizes and ratios. Not a test: run bench/vault/run.sh.
//
// Peers get the disk as a raw file (qemu-img convert of the same qcow2, so the same bytes);
// Stratus reads the qcow2 through qemu-nbd with block status and a persistent dirty bitmap.
// Inputs are read once before each timed step so every tool starts with a warm page cache.
// Every restore is checked by SHA-256 against the source disk (outside the timings).
#include <openssl/evp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/json.h"
#include "core/subprocess.h"
#include "recovery/datapath/backup_disk.h"
#include "compute/libvirt_hypervisor.h"
#include "recovery/datapath/image_source.h"
#include "recovery/datapath/qemu_nbd_export.h"
#include "recovery/datapath/restore_disk.h"
#include "recovery/vault/crypto.h"
#include "recovery/vault/parallel.h"
#include "recovery/service/guest_hooks.h"
#include "recovery/service/vm_backup.h"
#include "recovery/vault/vault.h"
#include "storage/qcow2_disk_engine.h"

namespace stratus::bench_vault {
namespace {

namespace fs = std::filesystem;
using namespace stratus::recovery;

// The qcow2 disk engine: bitmaps and sizes of the bench's images, as Stratus does them.
storage::Qcow2DiskEngine& DiskEngine() {
  static storage::Qcow2DiskEngine engine;
  return engine;
}

constexpr uint64_t kMiB = 1ull << 20;

struct Args {
  std::string image;
  std::string work = "/var/tmp/stratus-bench-vault";
  uint64_t seed = 42;
  int threads = 0;
  int restore_threads = 0;
  int zstd_level = 1;
  uint32_t chunk_size = vault::kDefaultChunkSize;
  double rewrite_fraction = 0.05;
  bool peers = true;
  bool keep = false;
  bool direct_reads = true;  // false: every byte over qemu-nbd (the path before direct reads)
  bool vm = true;            // also back up a running VM through libvirt (pull mode)
  std::string guest_dir = "build/guest";  // holds tiny/ (the test guest), for the running VM
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string LoadAvg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

void Die(const Status& st, const std::string& what) {
  std::fprintf(stderr, "vault_bench: %s: %s\n", what.c_str(), st.ToString().c_str());
  std::exit(1);
}
template <typename T>
T Must(Result<T> r, const std::string& what) {
  if (!r.ok()) Die(r.status(), what);
  return std::move(r).value();
}
void Must(const Status& st, const std::string& what) {
  if (!st.ok()) Die(st, what);
}

std::string Cmd(const std::vector<std::string>& argv) {
  std::string s;
  for (auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Runs a command; exits on failure; returns seconds.
double Timed(const std::vector<std::string>& argv) {
  double t0 = Now();
  auto r = RunProcess(argv);
  double t = Now() - t0;
  if (!r.ok()) Die(r.status(), Cmd(argv));
  if (r->exit_code != 0) {
    std::fprintf(stderr, "vault_bench: '%s' exited with %d:\n%s%s\n", Cmd(argv).c_str(),
                 r->exit_code, r->out.c_str(), r->err.c_str());
    std::exit(1);
  }
  return t;
}

// CPU seconds (user + system) this process has used so far.
double CpuSeconds() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double TimedSync() {
  double t0 = Now();
  ::sync();
  return Now() - t0;
}

// Before every timed step: writes back dirty pages and drops the page cache (so no step pays
// for reclaiming what an earlier one left behind), then reads the step's input (a file or a
// tree) so that every tool starts with the same warm input and free memory.
void Warm(const std::string& path) {
  ::sync();
  if (FILE* dc = std::fopen("/proc/sys/vm/drop_caches", "w")) {
    std::fputs("1", dc);
    std::fclose(dc);
  }
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    for (auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file()) files.push_back(e.path().string());
  } else {
    files.push_back(path);
  }
  std::vector<char> buf(8 << 20);
  for (auto& f : files) {
    FILE* fp = std::fopen(f.c_str(), "rb");
    if (!fp) continue;
    while (std::fread(buf.data(), 1, buf.size(), fp) > 0) {
    }
    std::fclose(fp);
  }
}

uint64_t TreeBytes(const std::string& path) {
  uint64_t total = 0;
  for (auto& e : fs::recursive_directory_iterator(path))
    if (e.is_regular_file()) total += e.file_size();
  return total;
}

std::string FileSha256(const std::string& path) {
  FILE* fp = std::fopen(path.c_str(), "rb");
  if (!fp) return "(unreadable " + path + ")";
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(8 << 20);
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), fp)) > 0) EVP_DigestUpdate(ctx, buf.data(), n);
  std::fclose(fp);
  unsigned char md[32];
  unsigned int len = 32;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return vault::ToHex(md, 32);
}

std::string Fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string Gb(uint64_t bytes) { return Fmt("%.2f GB", bytes / 1e9); }

// ---------------------------------------------------------------------------------------------
// Stratus

struct StratusRun {
  std::unique_ptr<vault::Vault> vault;
  vault::RecoveryPoint full, incr;
  datapath::BackupDiskStats full_stats, incr_stats;
};

// One backup of the qcow2: exactly what a stopped-VM backup does (bitmap rotation included).
double StratusBackup(StratusRun& run, const Args& a, const std::string& qcow2, int generation,
                     datapath::BackupDiskStats* stats, vault::RecoveryPoint* out) {
  double t0 = Now();
  std::string cur = "stratus-" + std::to_string(generation - 1);
  std::string next = "stratus-" + std::to_string(generation);
  bool incremental = generation > 0;
  Must(DiskEngine().AddBitmap(qcow2, next), "add bitmap");
  int threads = a.threads > 0 ? a.threads : vault::DefaultThreads() + 1;
  datapath::ImageSourceOptions io;
  io.image = qcow2;
  io.socket_dir = a.work;
  io.connections = threads;
  io.direct_reads = a.direct_reads;
  if (incremental) io.bitmap = cur;
  auto img = Must(datapath::OpenImageSource(io), "open image");
  if (!img.direct_unavailable.empty())
    std::printf("  (reading over NBD only: %s)\n", img.direct_unavailable.c_str());
  auto& src = img.source;
  auto session = Must(run.vault->BeginBackup(), "begin backup");
  datapath::BackupDiskOptions bo;
  bo.disk_name = "osdisk";
  bo.threads = threads;
  if (incremental) {
    bo.previous = run.full.FindDisk("osdisk");
    bo.changed_context = datapath::DirtyBitmapContext(cur);
  }
  double t_setup = Now();
  std::printf("  (reading generation %d)\n", generation);
  std::fflush(stdout);
  double cpu0 = CpuSeconds();
  auto r = Must(datapath::BackupDisk(*session, *src, bo), "backup");
  double t_read = Now();
  double cpu_read = CpuSeconds() - cpu0;
  vault::PointSpec spec;
  spec.parent_point_id = incremental ? run.full.point_id : "";
  spec.disks.push_back(r.index);
  spec.vm_config = {{"bench", "vault_bench"}};
  *out = Must(session->Commit(spec), "commit");
  double t_commit = Now();
  Must(img.Close(), "stop qemu-nbd");
  if (incremental) Must(DiskEngine().RemoveBitmap(qcow2, cur), "remove bitmap");
  *stats = r.stats;
  double t_end = Now();
  std::printf("  (bitmap + export + connect %.2f s, read/hash/compress/store %.2f s [%.1f CPU-s "
              "in this process], sync + manifest %.2f s, stop + bitmap %.2f s)\n",
              t_setup - t0, t_read - t_setup, cpu_read, t_commit - t_read, t_end - t_commit);
  return t_end - t0;
}

// ---------------------------------------------------------------------------------------------
// The 5% rewrite

struct Rewrite {
  uint64_t blocks = 0;
  uint64_t bytes = 0;
};

// Picks distinct 2 MiB-aligned blocks that hold allocated data and rewrites them with random
// (incompressible, all different) data through qemu-io, so the qcow2's dirty bitmap records it.
Rewrite RewriteBlocks(const Args& a, const std::string& qcow2, uint64_t disk_size) {
  constexpr uint64_t kBlock = 2 * kMiB;
  std::string map = Must(RunChecked({"qemu-img", "map", "--output=json", "-f", "qcow2", qcow2}),
                         "qemu-img map");
  Json extents = Must(ParseJson(map), "parse map");
  std::set<uint64_t> allocated;  // 2 MiB block numbers holding data
  for (const auto& e : extents) {
    if (!e.value("data", false)) continue;
    uint64_t start = e["start"].get<uint64_t>(), len = e["length"].get<uint64_t>();
    for (uint64_t b = start / kBlock; b * kBlock < start + len; ++b) allocated.insert(b);
  }
  std::vector<uint64_t> candidates(allocated.begin(), allocated.end());
  uint64_t want = static_cast<uint64_t>(a.rewrite_fraction * disk_size) / kBlock;
  if (want > candidates.size()) want = candidates.size();
  std::mt19937_64 rng(a.seed);
  std::shuffle(candidates.begin(), candidates.end(), rng);
  candidates.resize(want);
  std::sort(candidates.begin(), candidates.end());
  std::string pat_dir = a.work + "/patterns";
  Must(MakeDirs(pat_dir), "mkdir");
  std::vector<std::string> argv = {"qemu-io", "-f", "qcow2"};
  std::vector<std::string> files;
  auto flush = [&] {
    if (files.empty()) return;
    argv.push_back(qcow2);
    Must(RunChecked(argv).status(), "qemu-io");
    for (auto& f : files) RemoveFile(f);
    files.clear();
    argv = {"qemu-io", "-f", "qcow2"};
  };
  std::string data(kBlock, '\0');
  for (size_t i = 0; i < candidates.size(); ++i) {
    for (size_t k = 0; k + 8 <= data.size(); k += 8) {
      uint64_t v = rng();
      std::memcpy(&data[k], &v, 8);
    }
    std::string f = pat_dir + "/p" + std::to_string(i);
    Must(WriteFileAtomic(f, data), "pattern");
    files.push_back(f);
    argv.push_back("-c");
    argv.push_back("write -q -s " + f + " " + std::to_string(candidates[i] * kBlock) + " " +
                   std::to_string(kBlock));
    if (files.size() == 64) flush();
  }
  flush();
  RemoveTree(pat_dir);
  return {want, want * kBlock};
}

void ExportRaw(const std::string& qcow2, const std::string& raw) {
  std::string tmp = raw + ".new";
  RemoveFile(tmp);
  Must(RunChecked({"qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, tmp}).status(),
       "export raw");
  if (std::rename(tmp.c_str(), raw.c_str()) != 0) Die(Internal("rename"), raw);
}


// ---------------------------------------------------------------------------------------------
// A running VM through the libvirt path: the disk attached to a (firmware-only, TCG) domain,
// then service::BackupVm, the code a running VM's backup uses: checkpoint + pull-mode backup over
// NBD from QEMU, full then incremental after 5% is rewritten through the running QEMU (HMP
// qemu-io, so QEMU's dirty bitmap sees it).

struct VmRun {
  bool ran = false;
  std::string skipped;
  double full = 0, incr = 0;
  uint64_t full_read = 0, incr_read = 0, incr_added = 0;
  std::string incr_type;
  bool restore_ok = false;
};

// Runs `script` in the guest through the agent and waits for it (up to timeout_s).
Status GuestRun(compute::Hypervisor* hv, const std::string& dom, const std::string& script,
                int timeout_s) {
  ASSIGN_OR_RETURN(auto r, recovery::service::RunGuestShell(
                               recovery::service::AgentOf(hv, dom), script, timeout_s));
  if (r.exit_code != 0) return Internal("guest script exited with " + std::to_string(r.exit_code));
  return Status::Ok();
}

VmRun RunningVmBench(const Args& a, const std::string& qcow2) {
  VmRun out;
  const std::string dom = "stratus-bench-vault-vm";
  std::string guest = std::filesystem::absolute(a.guest_dir).string() + "/tiny";
  Json image;
  {
    auto text = ReadFile(guest + "/image.json");
    if (!text.ok()) {
      out.skipped = "no tiny guest at " + guest + " (make guest; or --guest DIR)";
      return out;
    }
    image = Must(ParseJson(*text), "image.json");
  }
  auto hv_r = compute::LibvirtHypervisor::Open("qemu:///system", "qemu", &DiskEngine());
  if (!hv_r.ok()) {
    out.skipped = "libvirt unavailable: " + hv_r.status().message();
    return out;
  }
  auto hv = std::move(hv_r).value();
  (void)hv->PowerOff(dom);
  (void)hv->Undefine(dom);
  // Bitmaps left by the offline rotation would confuse libvirt's checkpoints.
  for (auto& b : Must(DiskEngine().ListBitmaps(qcow2), "bitmaps"))
    Must(DiskEngine().RemoveBitmap(qcow2, b.name), "remove bitmap");
  std::string root = a.work + "/vm-root.qcow2";
  Must(RunChecked({"qemu-img", "create", "-q", "-f", "qcow2", "-b",
                   guest + "/" + image.value("disk", ""), "-F", "qcow2", root})
           .status(),
       "root overlay");
  compute::DomainSpec spec;
  spec.name = dom;
  spec.uuid = "5a7a0000-0000-4000-8000-00000000bec4";
  spec.memory_mib = 256;
  spec.kernel = guest + "/" + image.value("kernel", "");
  spec.initrd = guest + "/" + image.value("initrd", "");
  spec.cmdline = image.value("cmdline", "");
  for (auto [dev, path] : {std::pair<std::string, std::string>{"vda", root}, {"vdb", qcow2}}) {
    compute::DiskAttachment d;
    d.target_dev = dev;
    d.path = path;
    spec.disks.push_back(d);
  }
  spec.console_log_path = a.work + "/vm-console.log";
  Must(hv->Define(spec), "define bench domain");
  struct Cleanup {
    compute::Hypervisor* hv;
    std::string dom;
    ~Cleanup() {
      (void)hv->PowerOff(dom);
      (void)hv->Undefine(dom);
    }
  } cleanup{hv.get(), dom};
  Must(hv->Start(dom), "start bench domain");
  {
    double t0 = Now();
    while (!hv->AgentCommand(dom, Json{{"execute", "guest-ping"}}, 1).ok()) {
      if (Now() - t0 > 180) Die(Internal("the bench VM's guest agent never answered"), dom);
      ::usleep(500 * 1000);
    }
  }

  Must(vault::CreatePlatformKeyFile(a.work + "/vm.key"), "vm vault key");
  auto v = Must(vault::Vault::CreateLocal(a.work + "/vm-vault",
                                          vault::KeySource::PlatformKeyFile(a.work + "/vm.key")),
                "create vm vault");
  recovery::service::VmBackupRequest req;
  req.domain = dom;
  req.running = true;
  recovery::service::VmDisk vd;
  vd.name = "lun0";
  vd.lun = 0;
  vd.path = qcow2;
  vd.target_dev = "vdb";
  req.disks.push_back(vd);
  req.wanted = Consistency::kFileSystem;  // guest agent freeze/thaw around the instant
  req.scratch_dir = a.work + "/vm-scratch";
  req.threads = a.threads;
  Warm(qcow2);
  double t0 = Now();
  auto full = Must(recovery::service::BackupVm(*v, hv.get(), &DiskEngine(), req), "running-VM full backup");
  out.full = Now() - t0;
  out.full_read = full.bytes_read;
  std::printf("Stratus running VM (libvirt pull backup) full: %.2f s (%s, %s, read %s)\n",
              out.full, full.backup_type.c_str(), full.consistency.c_str(),
              Gb(full.bytes_read).c_str());
  std::fflush(stdout);

  // 5% rewritten by the guest itself (2 MiB blocks of /dev/urandom at seeded random offsets).
  constexpr uint64_t kBlock = 2 * kMiB;
  uint64_t disk = Must(DiskEngine().Usage(qcow2), "size").virtual_bytes;
  uint64_t blocks = static_cast<uint64_t>(a.rewrite_fraction * disk) / kBlock;
  std::mt19937_64 rng(a.seed + 1);
  std::set<uint64_t> chosen;
  while (chosen.size() < blocks) chosen.insert(rng() % (disk / kBlock));
  std::string offsets;
  for (uint64_t b : chosen) offsets += " " + std::to_string(b);
  double tw = Now();
  Must(GuestRun(hv.get(), dom,
                "for o in" + offsets +
                    "; do dd if=/dev/urandom of=/dev/vdb bs=2M seek=$o count=1 conv=notrunc "
                    "2>/dev/null || exit 1; done; sync",
                900),
       "guest rewrite");
  std::printf("  (the guest rewrote %zu blocks of 2 MiB in %.1f s)\n", chosen.size(), Now() - tw);
  req.previous = &full.point;
  t0 = Now();
  auto incr = Must(recovery::service::BackupVm(*v, hv.get(), &DiskEngine(), req), "running-VM incremental");
  out.incr = Now() - t0;
  out.incr_read = incr.bytes_read;
  out.incr_added = incr.bytes_added;
  out.incr_type = incr.backup_type;
  std::printf("Stratus running VM incremental: %.2f s (%s, read %s, added %s)\n", out.incr,
              incr.backup_type.c_str(), Gb(incr.bytes_read).c_str(), Gb(incr.bytes_added).c_str());
  std::fflush(stdout);
  // The point holds the disk as the guest left it (nothing wrote after the sync).
  (void)hv->PowerOff(dom);
  std::string dest = a.work + "/vm-restore.raw";
  datapath::RestoreOptions ro;
  ro.format = datapath::DiskFormat::kRaw;
  Must(datapath::RestoreDisk(*v, incr.point, "lun0", dest, ro).status(), "restore vm point");
  std::string check = a.work + "/vm-check.raw";
  ExportRaw(qcow2, check);
  out.restore_ok = FileSha256(dest) == FileSha256(check);
  RemoveFile(dest);
  RemoveFile(check);
  out.ran = true;
  return out;
}

// ---------------------------------------------------------------------------------------------

struct Row {
  std::string tool;
  double full = 0, incr = 0;
  uint64_t repo = 0;
  double restore = 0, restore_sync = 0;  // restore_sync: extra `sync` after a peer's restore
  bool restore_ok = false;
};

int Main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string s = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", s.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (s == "--image") a.image = val();
    else if (s == "--work") a.work = val();
    else if (s == "--seed") a.seed = std::stoull(val());
    else if (s == "--threads") a.threads = std::stoi(val());
    else if (s == "--restore-threads") a.restore_threads = std::stoi(val());
    else if (s == "--zstd-level") a.zstd_level = std::stoi(val());
    else if (s == "--chunk-size") a.chunk_size = static_cast<uint32_t>(std::stoul(val()));
    else if (s == "--rewrite") a.rewrite_fraction = std::stod(val());
    else if (s == "--no-peers") a.peers = false;
    else if (s == "--keep") a.keep = true;
    else if (s == "--nbd-only") a.direct_reads = false;
    else if (s == "--no-vm") a.vm = false;
    else if (s == "--guest") a.guest_dir = val();
    else {
      std::fprintf(stderr,
                   "usage: vault_bench --image BASE.qcow2 [--work DIR] [--seed N] [--threads N]\n"
                   "       [--restore-threads N] [--zstd-level N] [--chunk-size BYTES]\n"
                   "       [--rewrite FRACTION] [--no-peers] [--keep] [--nbd-only] [--no-vm]\n"
                   "       [--guest DIR (holding tiny/)]\n");
      return 2;
    }
  }
  if (a.image.empty() || !PathExists(a.image)) {
    std::fprintf(stderr, "vault_bench: --image must name the cached base qcow2\n");
    return 2;
  }
  RemoveTree(a.work);
  Must(MakeDirs(a.work), "work dir");
  const std::string qcow2 = a.work + "/disk.qcow2", raw = a.work + "/disk.raw";
  ::setenv("RESTIC_PASSWORD", "stratus-bench", 1);
  ::setenv("RESTIC_CACHE_DIR", (a.work + "/restic-cache").c_str(), 1);
  ::setenv("BORG_PASSPHRASE", "stratus-bench", 1);
  ::setenv("BORG_BASE_DIR", (a.work + "/borg-home").c_str(), 1);
  ::setenv("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes", 1);

  std::printf("## vault_bench\n\nload average at start: %s; %d hardware threads\n",
              LoadAvg().c_str(), vault::DefaultThreads());
  std::fflush(stdout);
  Must(RunChecked({"cp", "--sparse=always", a.image, qcow2}).status(), "copy image");
  uint64_t disk_size = Must(DiskEngine().Usage(qcow2), "image size").virtual_bytes;
  ExportRaw(qcow2, raw);
  uint64_t data_bytes = 0;
  {
    Json map = Must(ParseJson(Must(RunChecked({"qemu-img", "map", "--output=json", qcow2}), "map")),
                    "map");
    for (auto& e : map)
      if (e.value("data", false)) data_bytes += e["length"].get<uint64_t>();
  }
  std::printf("disk: %s virtual, %s allocated (qcow2); seed %" PRIu64 "\n\n", Gb(disk_size).c_str(),
              Gb(data_bytes).c_str(), a.seed);

  Row st{"Stratus"}, rs{"restic 0.14 (zstd auto)"}, bg{"borg 1.2 (zstd,1, repokey)"};
  StratusRun run;
  std::string platform_key = a.work + "/platform.key";
  Must(vault::CreatePlatformKeyFile(platform_key), "platform key");
  vault::VaultCreateOptions vco;
  vco.chunk_size = a.chunk_size;
  vco.zstd_level = a.zstd_level;
  run.vault = Must(vault::Vault::CreateLocal(a.work + "/stratus-vault",
                                             vault::KeySource::PlatformKeyFile(platform_key), vco),
                   "create vault");
  const std::string restic_repo = a.work + "/restic-repo", borg_repo = a.work + "/borg-repo";
  std::vector<std::string> loads;

  // Full backups.
  Warm(qcow2);
  st.full = StratusBackup(run, a, qcow2, 0, &run.full_stats, &run.full);
  loads.push_back("after Stratus full: " + LoadAvg());
  std::printf("Stratus full: %.2f s (read %s, stored %s)\n", st.full,
              Gb(run.full_stats.bytes_read).c_str(), Gb(run.full_stats.bytes_stored).c_str());
  std::fflush(stdout);
  if (a.peers) {
    Timed({"restic", "-r", restic_repo, "init", "-q"});
    Warm(raw);
    rs.full = Timed({"restic", "-r", restic_repo, "backup", "-q", raw});
    loads.push_back("after restic full: " + LoadAvg());
    std::printf("restic full: %.2f s\n", rs.full);
    std::fflush(stdout);
    Timed({"borg", "init", "--encryption=repokey", borg_repo});
    Warm(raw);
    bg.full = Timed({"borg", "create", "--compression", "zstd,1", borg_repo + "::full", raw});
    loads.push_back("after borg full: " + LoadAvg());
    std::printf("borg full: %.2f s\n", bg.full);
    std::fflush(stdout);
  }

  // Rewrite 5% of the disk, then incrementals.
  Rewrite rw = RewriteBlocks(a, qcow2, disk_size);
  ExportRaw(qcow2, raw);
  std::printf("rewrote %" PRIu64 " blocks of 2 MiB (%s, %.1f%% of the disk)\n", rw.blocks,
              Gb(rw.bytes).c_str(), 100.0 * rw.bytes / disk_size);
  Warm(qcow2);
  st.incr = StratusBackup(run, a, qcow2, 1, &run.incr_stats, &run.incr);
  loads.push_back("after Stratus incremental: " + LoadAvg());
  std::printf("Stratus incremental: %.2f s (mode %s, read %s, new %s, stored %s)\n", st.incr,
              run.incr_stats.mode.c_str(), Gb(run.incr_stats.bytes_read).c_str(),
              Gb(run.incr_stats.bytes_new).c_str(), Gb(run.incr_stats.bytes_stored).c_str());
  std::fflush(stdout);
  if (a.peers) {
    Warm(raw);
    rs.incr = Timed({"restic", "-r", restic_repo, "backup", "-q", raw});
    loads.push_back("after restic incremental: " + LoadAvg());
    Warm(raw);
    bg.incr = Timed({"borg", "create", "--compression", "zstd,1", borg_repo + "::incr", raw});
    loads.push_back("after borg incremental: " + LoadAvg());
    std::printf("restic incremental: %.2f s, borg incremental: %.2f s\n", rs.incr, bg.incr);
    std::fflush(stdout);
  }
  st.repo = TreeBytes(a.work + "/stratus-vault");
  if (a.peers) {
    rs.repo = TreeBytes(restic_repo);
    bg.repo = TreeBytes(borg_repo);
  }

  // Restores of the latest point, each checked against the source disk.
  std::string want = FileSha256(raw);
  {
    std::string dest = a.work + "/restore-stratus.raw";
    Warm(a.work + "/stratus-vault");
    datapath::RestoreOptions ro;
    ro.format = datapath::DiskFormat::kRaw;
    ro.threads = a.restore_threads;
    double t0 = Now();
    Must(datapath::RestoreDisk(*run.vault, run.incr, "osdisk", dest, ro).status(), "restore");
    st.restore = Now() - t0;  // includes fsync of the file and its directory
    loads.push_back("after Stratus restore: " + LoadAvg());
    st.restore_ok = FileSha256(dest) == want;
    RemoveFile(dest);
    std::printf("Stratus restore (raw): %.2f s, %s\n", st.restore, st.restore_ok ? "bit-exact" : "MISMATCH");
    std::fflush(stdout);
  }
  double rehash_restore = 0;
  bool rehash_ok = false;
  {
    std::string dest = a.work + "/restore-stratus-rehash.raw";
    Warm(a.work + "/stratus-vault");
    datapath::RestoreOptions ro;
    ro.format = datapath::DiskFormat::kRaw;
    ro.threads = a.restore_threads;
    ro.id_check = vault::IdCheck::kRehash;
    double t0 = Now();
    Must(datapath::RestoreDisk(*run.vault, run.incr, "osdisk", dest, ro).status(), "restore");
    rehash_restore = Now() - t0;
    rehash_ok = FileSha256(dest) == want;
    RemoveFile(dest);
  }
  double qcow2_restore = 0;
  bool qcow2_ok = false;
  {
    std::string dest = a.work + "/restore-stratus.qcow2";
    Warm(a.work + "/stratus-vault");
    datapath::RestoreOptions ro;
    ro.format = datapath::DiskFormat::kQcow2;
    ro.threads = a.restore_threads;
    double t0 = Now();
    Must(datapath::RestoreDisk(*run.vault, run.incr, "osdisk", dest, ro).status(), "restore qcow2");
    qcow2_restore = Now() - t0;
    std::string check = a.work + "/restore-check.raw";
    ExportRaw(dest, check);
    qcow2_ok = FileSha256(check) == want;
    RemoveFile(check);
    RemoveFile(dest);
  }
  double verify_s = 0;
  bool verify_ok = false;
  {
    double t0 = Now();
    auto rep = Must(run.vault->VerifyAll(), "verify");
    verify_s = Now() - t0;
    verify_ok = rep.ok();
  }
  if (a.peers) {
    std::string out = a.work + "/restic-out";
    Warm(restic_repo);
    rs.restore = Timed({"restic", "-r", restic_repo, "restore", "latest", "--target", out});
    rs.restore_sync = TimedSync();
    loads.push_back("after restic restore: " + LoadAvg());
    rs.restore_ok = FileSha256(out + raw) == want;
    RemoveTree(out);
    std::string bout = a.work + "/borg-out";
    Must(MakeDirs(bout), "borg out");
    Warm(borg_repo);
    char cwd[4096];
    if (!::getcwd(cwd, sizeof cwd)) cwd[0] = '\0';
    if (::chdir(bout.c_str()) != 0) Die(Internal("chdir"), bout);
    bg.restore = Timed({"borg", "extract", "--sparse", borg_repo + "::incr"});
    bg.restore_sync = TimedSync();
    if (::chdir(cwd) != 0) Die(Internal("chdir"), cwd);
    loads.push_back("after borg restore: " + LoadAvg());
    bg.restore_ok = FileSha256(bout + raw) == want;
    RemoveTree(bout);
  }

  VmRun vm;
  if (a.vm) vm = RunningVmBench(a, qcow2);

  // Table.
  std::printf("\n| tool | full backup s | incremental s | repo size after both | restore s (GB/s of disk) | restore ok |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | --- |\n");
  auto row = [&](const Row& r, const std::string& note) {
    std::printf("| %s | %.2f | %.2f | %s | %.2f%s (%.2f GB/s) | %s |\n", r.tool.c_str(), r.full,
                r.incr, Gb(r.repo).c_str(), r.restore + r.restore_sync, note.c_str(),
                disk_size / 1e9 / (r.restore + r.restore_sync), r.restore_ok ? "bit-exact" : "MISMATCH");
  };
  row(st, " (incl. fsync)");
  if (a.peers) {
    row(rs, Fmt(" (%.2f + sync)", rs.restore).c_str());
    row(bg, Fmt(" (%.2f + sync)", bg.restore).c_str());
    const Row& fast_full = rs.full < bg.full ? rs : bg;
    const Row& fast_incr = rs.incr < bg.incr ? rs : bg;
    const Row& small = rs.repo < bg.repo ? rs : bg;
    const Row& fast_rest = (rs.restore + rs.restore_sync) < (bg.restore + bg.restore_sync) ? rs : bg;
    double r_full = fast_full.full / st.full, r_incr = fast_incr.incr / st.incr;
    double r_repo = static_cast<double>(st.repo) / small.repo;
    double r_rest = (fast_rest.restore + fast_rest.restore_sync) / st.restore;
    double gbs = disk_size / 1e9 / st.restore;
    std::printf("\n| ratio (Stratus vs best peer) | value | target | met |\n| --- | ---: | ---: | --- |\n");
    std::printf("| full backup: %s time / Stratus time | %.1fx faster | >= 3x | %s |\n",
                fast_full.tool.c_str(), r_full, r_full >= 3 ? "yes" : "NO");
    std::printf("| incremental: %s time / Stratus time | %.1fx faster | >= 20x | %s |\n",
                fast_incr.tool.c_str(), r_incr, r_incr >= 20 ? "yes" : "NO");
    std::printf("| repository: Stratus size / %s size | %.2f | <= 1.00 | %s |\n",
                small.tool.c_str(), r_repo, r_repo <= 1.0 ? "yes" : "NO");
    std::printf("| restore: %s time / Stratus time | %.1fx faster | (>= 1 GB/s: %.2f GB/s) | %s |\n",
                fast_rest.tool.c_str(), r_rest, gbs, gbs >= 1.0 ? "yes" : "NO");
  }
  std::printf("\nStratus details: full read %s of %s (block status skips unallocated space), "
              "%" PRIu64 " chunks new; incremental mode %s read %s, reused %" PRIu64
              " chunks; restore of %s of data = %.2f GB/s of data; restore with the SHA-256 "
              "re-hash of every chunk as verify does (IdCheck::kRehash) %.2f s = %.2f GB/s of disk (%s); qcow2 restore "
              "%.2f s (%s); verify of all points %.2f s (%s)\n",
              Gb(run.full_stats.bytes_read).c_str(), Gb(disk_size).c_str(), run.full_stats.chunks_new,
              run.incr_stats.mode.c_str(), Gb(run.incr_stats.bytes_read).c_str(),
              run.incr_stats.chunks_reused, Gb(run.incr.disks[0].allocated_slots() * a.chunk_size).c_str(),
              run.incr.disks[0].allocated_slots() * a.chunk_size / 1e9 / st.restore, rehash_restore,
              disk_size / 1e9 / rehash_restore, rehash_ok ? "bit-exact" : "MISMATCH", qcow2_restore,
              qcow2_ok ? "bit-exact" : "MISMATCH", verify_s, verify_ok ? "clean" : "PROBLEMS");
  if (vm.ran) {
    std::printf("\nRunning VM through libvirt (checkpoint + pull-mode backup over NBD from QEMU, "
                "TCG domain, same disk): full %.2f s (read %s), incremental %.2f s (%s, read %s, "
                "added %s) = %.1fx faster than the faster peer's incremental; restore of the "
                "incremental point %s\n",
                vm.full, Gb(vm.full_read).c_str(), vm.incr, vm.incr_type.c_str(),
                Gb(vm.incr_read).c_str(), Gb(vm.incr_added).c_str(),
                a.peers ? std::min(rs.incr, bg.incr) / vm.incr : 0.0,
                vm.restore_ok ? "bit-exact" : "MISMATCH");
  } else if (a.vm) {
    std::printf("\nRunning VM: skipped (%s)\n", vm.skipped.c_str());
  }
  std::printf("\nload averages:\n");
  for (auto& l : loads) std::printf("- %s\n", l.c_str());
  std::fflush(stdout);

  if (!a.keep) {
    run.vault.reset();
    RemoveTree(a.work);
  }
  return st.restore_ok && (!a.peers || (rs.restore_ok && bg.restore_ok)) &&
                 (!vm.ran || vm.restore_ok)
             ? 0
             : 1;
}

}  // namespace
}  // namespace stratus::bench_vault

int main(int argc, char** argv) { return stratus::bench_vault::Main(argc, argv); }
