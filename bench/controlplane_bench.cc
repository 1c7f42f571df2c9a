// controlplane_bench: throughput and latency of stratusd's synchronous API path, with local peers.
//
// Against a stratusd (started here, or --endpoint/--token): PUT of disk-less resources (resource
// groups with tags: auth, validation, resource lock, durable SQLite write, activity log), GETs
// of them, PATCH of their tags, and GETs while one writer PATCHes. N client threads, each with
// one keep-alive connection. Run twice when the daemon is started here: SQLite synchronous=FULL
// (the default) and --no-fsync-state.
//
// Peers, measured in the same run on the same file system and host:
//  - writes: raw SQLite INSERT+COMMIT (and UPDATE+COMMIT) of a record of the same size, WAL mode,
//    synchronous=FULL / NORMAL, one prepared statement: the floor a durable PUT can reach;
//  - reads: libvirt's own control plane, virDomainLookupByName + virDomainGetInfo of a defined
//    (not running) domain, same number of calls and client threads (one connection each).
//
// Prints Markdown tables on stdout; progress goes to stderr.
#include <arpa/inet.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "bench_util.h"
#include "core/fs.h"

namespace stratus::bench {
namespace {

struct Options {
  std::string stratusd = STRATUSD_PATH;
  std::string platform_images;
  std::string work_dir = "/var/tmp";
  std::string endpoint;
  std::string token;
  std::string subscription;
  std::string libvirt_uri = "qemu:///system";
  int threads = 4;
  int puts = 2000;
  int gets = 20000;
  int patches = 2000;
  int mixed_gets = 5000;
  int slow_clients = 50;      // connections trickling one header byte every 2 s
  int slow_gets = 2000;       // GETs measured while they are connected
  double slow_max_s = 90;     // ... or for at most this long
  int chunks = 10;  // Stratus and peer work alternate in this many slices
  std::string endpoint_sync = "FULL";
  bool keep = false;
};

struct Phase {
  std::string name;
  int ops = 0;
  int errors = 0;
  double wall_s = 0;  // sum over the chunks
  std::vector<double> lat_ms;
  std::string first_error;
  LatencySummary lat;  // filled by Finish()
  double rate() const { return wall_s > 0 ? ops / wall_s : 0; }
  void Merge(Phase&& c) {
    if (name.empty()) name = c.name;
    ops += c.ops;
    errors += c.errors;
    wall_s += c.wall_s;
    lat_ms.insert(lat_ms.end(), c.lat_ms.begin(), c.lat_ms.end());
    if (first_error.empty()) first_error = c.first_error;
  }
  void Finish() { lat = Summarize(lat_ms); }
};

// Items [begin, end) of chunk `c` of `k` over `n` items.
std::pair<int, int> ChunkRange(int n, int c, int k) {
  return {static_cast<int>(int64_t{n} * c / k), static_cast<int>(int64_t{n} * (c + 1) / k)};
}

std::string Group(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "bench-rg-%05d", i);
  return buf;
}

std::string GroupBody(const Endpoint& ep, int i, bool patched) {
  Json tags = {{"bench", "controlplane"},
               {"index", std::to_string(i)},
               {"owner", "team-" + std::to_string(i % 7)},
               {"costCenter", "cc-" + std::to_string(1000 + i % 13)}};
  if (patched) tags["patched"] = "true";
  Json body = {{"tags", tags}};
  if (!ep.region.empty() && !patched) body["location"] = ep.region;  // PATCH takes tags only
  return body.dump();
}

// Runs fn(client, i) for i in [begin, end) spread over `threads` threads (i = begin+t, +T, ...),
// each thread with its own keep-alive connection; a call is an error unless it returns `want`.
Phase HttpChunk(const std::string& name, const Endpoint& ep, int threads, int begin, int end,
                int want, const std::function<HttpResult(ApiClient&, int)>& fn) {
  Phase ph;
  ph.name = name;
  std::vector<std::vector<double>> lat(threads);
  std::vector<int> errors(threads, 0);
  std::mutex err_mu;
  auto t0 = Now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ApiClient c(ep);
      for (int i = begin + t; i < end && !StopRequested(); i += threads) {
        HttpResult r = fn(c, i);
        lat[t].push_back(r.ms);
        if (r.status != want) {
          ++errors[t];
          std::lock_guard<std::mutex> l(err_mu);
          if (ph.first_error.empty())
            ph.first_error = Expect(r, want, name + " #" + std::to_string(i)).ToString();
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  ph.wall_s = MsBetween(t0, Now()) / 1000;
  for (int t = 0; t < threads; ++t) {
    ph.lat_ms.insert(ph.lat_ms.end(), lat[t].begin(), lat[t].end());
    ph.errors += errors[t];
  }
  ph.ops = static_cast<int>(ph.lat_ms.size());
  return ph;
}

// Runs `op(i)` for i in [begin, end) on this thread, timing each.
Result<Phase> LocalChunk(const std::string& name, int begin, int end,
                         const std::function<Status(int)>& op) {
  Phase ph;
  ph.name = name;
  auto t0 = Now();
  for (int i = begin; i < end; ++i) {
    if (StopRequested()) return Interrupted();
    auto a = Now();
    RETURN_IF_ERROR(op(i));
    ph.lat_ms.push_back(MsBetween(a, Now()));
  }
  ph.wall_s = MsBetween(t0, Now()) / 1000;
  ph.ops = end - begin;
  return ph;
}

// ---------------------------------------------------------------------------------------------
// SQLite peer: the floor of a durable write on this file system.

Status SqlExec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    return Internal("sqlite '" + sql + "': " + m);
  }
  return Status::Ok();
}

// A body like the one stratusd stores for a resource group (same size order).
std::string StoredBody(int i, bool patched) {
  Json b = {{"id", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/" + Group(i)},
            {"name", Group(i)},
            {"type", "Stratus.Resources/resourceGroups"},
            {"location", "regionA"},
            {"tags", Json::parse(GroupBody(Endpoint{}, i, patched))["tags"]},
            {"properties", {{"provisioningState", "Succeeded"}}},
            {"systemData",
             {{"createdBy", "admin"},
              {"createdAt", "2026-11-22T10:00:00.000Z"},
              {"lastModifiedBy", "admin"},
              {"lastModifiedAt", "2026-11-22T10:00:00.000Z"}}}};
  return b.dump();
}

// One SQLite database in WAL mode with the given synchronous level and stratusd's schema for
// resources and the activity log; one connection, prepared statements, one thread.
class SqlitePeer {
 public:
  static Result<std::unique_ptr<SqlitePeer>> Open(const std::string& path, const std::string& sync) {
    std::unique_ptr<SqlitePeer> p(new SqlitePeer());
    if (sqlite3_open_v2(path.c_str(), &p->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                        nullptr) != SQLITE_OK)
      return Internal("cannot open sqlite '" + path + "'");
    RETURN_IF_ERROR(SqlExec(p->db_, "PRAGMA journal_mode=WAL"));
    RETURN_IF_ERROR(SqlExec(p->db_, "PRAGMA synchronous=" + sync));
    RETURN_IF_ERROR(SqlExec(
        p->db_,
        "CREATE TABLE resources (key TEXT PRIMARY KEY, type TEXT NOT NULL, body TEXT NOT NULL, "
        "internal TEXT NOT NULL, etag TEXT NOT NULL, version INTEGER NOT NULL);"
        "CREATE TABLE activity (seq INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, "
        "subscription TEXT NOT NULL, body TEXT NOT NULL);"));
    sqlite3_prepare_v2(p->db_,
                       "INSERT INTO resources(key,type,body,internal,etag,version) "
                       "VALUES(?,?,?,?,?,1)",
                       -1, &p->ins_, nullptr);
    sqlite3_prepare_v2(p->db_, "INSERT INTO activity(time_ms,subscription,body) VALUES(?,?,?)",
                       -1, &p->act_, nullptr);
    sqlite3_prepare_v2(p->db_,
                       "UPDATE resources SET body=?, etag=?, version=version+1 WHERE key=?", -1,
                       &p->upd_, nullptr);
    if (!p->ins_ || !p->act_ || !p->upd_)
      return Internal(std::string("sqlite prepare: ") + sqlite3_errmsg(p->db_));
    return p;
  }
  ~SqlitePeer() {
    sqlite3_finalize(ins_);
    sqlite3_finalize(act_);
    sqlite3_finalize(upd_);
    sqlite3_close(db_);
  }

  // BEGIN IMMEDIATE; INSERT; COMMIT — and with `activity`, a second autocommit INSERT into the
  // activity table, which is what stratusd's store does per PUT (two durable commits).
  Status Insert(int i, bool activity) {
    RETURN_IF_ERROR(SqlExec(db_, "BEGIN IMMEDIATE"));
    std::string key = "/subscriptions/x/resourcegroups/" + Group(i) + (activity ? "-a" : "");
    std::string body = StoredBody(i, false);
    sqlite3_bind_text(ins_, 1, key.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_, 2, "resourcegroups", -1, SQLITE_STATIC);
    sqlite3_bind_text(ins_, 3, body.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(ins_, 4, "{}", -1, SQLITE_STATIC);
    sqlite3_bind_text(ins_, 5, "\"0123456789abcdef\"", -1, SQLITE_STATIC);
    int rc = sqlite3_step(ins_);
    sqlite3_reset(ins_);
    if (rc != SQLITE_DONE) {
      SqlExec(db_, "ROLLBACK");
      return Internal(std::string("sqlite insert: ") + sqlite3_errmsg(db_));
    }
    RETURN_IF_ERROR(SqlExec(db_, "COMMIT"));
    if (activity) {
      sqlite3_bind_int64(act_, 1, i);
      sqlite3_bind_text(act_, 2, "x", -1, SQLITE_STATIC);
      sqlite3_bind_text(act_, 3, activity_.c_str(), -1, SQLITE_STATIC);
      rc = sqlite3_step(act_);
      sqlite3_reset(act_);
      if (rc != SQLITE_DONE) return Internal(std::string("sqlite activity: ") + sqlite3_errmsg(db_));
    }
    return Status::Ok();
  }

  // BEGIN IMMEDIATE; UPDATE of an inserted row; COMMIT.
  Status Update(int i) {
    RETURN_IF_ERROR(SqlExec(db_, "BEGIN IMMEDIATE"));
    std::string key = "/subscriptions/x/resourcegroups/" + Group(i);
    std::string body = StoredBody(i, true);
    sqlite3_bind_text(upd_, 1, body.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(upd_, 2, "\"fedcba9876543210\"", -1, SQLITE_STATIC);
    sqlite3_bind_text(upd_, 3, key.c_str(), -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(upd_);
    sqlite3_reset(upd_);
    if (rc != SQLITE_DONE) {
      SqlExec(db_, "ROLLBACK");
      return Internal(std::string("sqlite update: ") + sqlite3_errmsg(db_));
    }
    return SqlExec(db_, "COMMIT");
  }

 private:
  SqlitePeer() = default;
  sqlite3* db_ = nullptr;
  sqlite3_stmt* ins_ = nullptr;
  sqlite3_stmt* act_ = nullptr;
  sqlite3_stmt* upd_ = nullptr;
  std::string activity_ = std::string(380, 'a');  // an activity event is ~380 bytes of JSON
};

// ---------------------------------------------------------------------------------------------
// libvirt peer: libvirtd's own read path.

void SilentLibvirtError(void*, virErrorPtr) {}

std::string LibvirtError(const std::string& what) {
  virErrorPtr e = virGetLastError();
  return what + ": " + (e && e->message ? e->message : "unknown libvirt error");
}

// A defined, never started domain, and one connection per client thread; the domain is
// undefined on destruction.
class LibvirtPeer {
 public:
  static Result<std::unique_ptr<LibvirtPeer>> Open(const std::string& uri, int threads) {
    std::unique_ptr<LibvirtPeer> p(new LibvirtPeer());
    p->name_ = "bench-lookup-" + std::to_string(::getpid());
    for (int t = 0; t < threads; ++t) {
      virConnectPtr c = virConnectOpen(uri.c_str());
      if (!c) return Unavailable(LibvirtError("connect to " + uri));
      p->conns_.push_back(c);
    }
    std::string xml = "<domain type='qemu'><name>" + p->name_ +
                      "</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
                      "<os><type arch='x86_64'>hvm</type></os></domain>";
    p->dom_ = virDomainDefineXML(p->conns_[0], xml.c_str());
    if (!p->dom_) return Internal(LibvirtError("define domain " + p->name_));
    return p;
  }
  ~LibvirtPeer() {
    if (dom_) {
      virDomainUndefine(dom_);
      virDomainFree(dom_);
    }
    for (auto c : conns_) virConnectClose(c);
  }

  // virDomainLookupByName + virDomainGetInfo for i in [begin, end), spread like HttpChunk.
  Result<Phase> Chunk(int begin, int end) {
    int threads = static_cast<int>(conns_.size());
    Phase ph;
    ph.name = "virDomainLookupByName + virDomainGetInfo";
    std::vector<std::vector<double>> lat(threads);
    std::vector<std::string> errs(threads);
    auto t0 = Now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (int i = begin + t; i < end && !StopRequested(); i += threads) {
          auto a = Now();
          virDomainPtr d = virDomainLookupByName(conns_[t], name_.c_str());
          virDomainInfo info;
          bool ok = d && virDomainGetInfo(d, &info) == 0;
          if (d) virDomainFree(d);
          lat[t].push_back(MsBetween(a, Now()));
          if (!ok && errs[t].empty()) errs[t] = LibvirtError("lookup " + name_);
        }
      });
    }
    for (auto& th : pool) th.join();
    ph.wall_s = MsBetween(t0, Now()) / 1000;
    for (auto& e : errs)
      if (!e.empty()) return Internal("libvirt peer: " + e);
    for (auto& v : lat) ph.lat_ms.insert(ph.lat_ms.end(), v.begin(), v.end());
    ph.ops = static_cast<int>(ph.lat_ms.size());
    return ph;
  }

 private:
  LibvirtPeer() = default;
  std::string name_;
  std::vector<virConnectPtr> conns_;
  virDomainPtr dom_ = nullptr;
};

// ---------------------------------------------------------------------------------------------
// Slow clients: what the outside probe did to the API (issue 8). Each connection sends the
// start of a request head and then one more byte every 2 s, never finishing it; a connection the
// daemon closes is opened again at once, so the pressure stays the same all along.

class SlowClients {
 public:
  SlowClients(const Endpoint& ep, int n) : ep_(ep) {
    for (int i = 0; i < n; ++i) fds_.push_back(Open());
    thread_ = std::thread([this] { Loop(); });
  }
  ~SlowClients() {
    stop_ = true;
    thread_.join();
    for (int fd : fds_)
      if (fd >= 0) ::close(fd);
  }
  int reconnects() const { return reconnects_; }

 private:
  int Open() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(ep_.port));
    ::inet_pton(AF_INET, ep_.host.c_str(), &a.sin_addr);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      if (fd >= 0) ::close(fd);
      return -1;
    }
    const char* start = "GET /subscriptions HTTP/1.1\r\nHost: bench\r\nX-Slow: ";
    ::send(fd, start, std::strlen(start), MSG_NOSIGNAL | MSG_DONTWAIT);
    return fd;
  }
  void Loop() {
    while (!stop_) {
      for (int& fd : fds_) {
        if (fd < 0 || ::send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT) != 1) {
          if (fd >= 0) ::close(fd);
          fd = Open();
          ++reconnects_;
        }
      }
      for (int i = 0; i < 20 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  Endpoint ep_;
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::atomic<int> reconnects_{0};
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// One run: a daemon configuration, its workload and its peers, interleaved chunk by chunk so
// that both see the same background load (this host may be shared).

struct Run {
  std::string label;  // "synchronous=FULL (default)"
  std::string sync;   // SQLite level of the matching write peer: "FULL" / "NORMAL"
  Phase put, get, patch, mixed_get, slow_get;
  int mixed_writes = 0;
  int slow_reconnects = 0;  // trickling connections the daemon cut off (and we reopened)
  Phase peer_insert, peer_insert2, peer_update, peer_lookup;
};

Status RunWorkload(Run& run, const Endpoint& ep, const Options& o, const std::string& peer_dir) {
  std::string base = "/subscriptions/" + ep.subscription + "/resourceGroups/";
  const int k = o.chunks;
  ASSIGN_OR_RETURN(auto sql, SqlitePeer::Open(JoinPath(peer_dir, "peer-" + run.sync + ".db"),
                                              run.sync));
  ASSIGN_OR_RETURN(auto lv, LibvirtPeer::Open(o.libvirt_uri, o.threads));

  std::fprintf(stderr, "controlplane: [%s] %d PUTs, interleaved with sqlite3 INSERT+COMMIT ...\n",
               run.label.c_str(), o.puts);
  for (int c = 0; c < k; ++c) {
    auto [b, e] = ChunkRange(o.puts, c, k);
    run.put.Merge(HttpChunk("PUT resource group", ep, o.threads, b, e, 201, [&](ApiClient& cl, int i) {
      return cl.Put(base + Group(i), GroupBody(ep, i, false));
    }));
    if (run.put.errors) return Internal("PUT failed: " + run.put.first_error);
    ASSIGN_OR_RETURN(Phase p1, LocalChunk("INSERT+COMMIT", b, e,
                                          [&](int i) { return sql->Insert(i, false); }));
    run.peer_insert.Merge(std::move(p1));
    ASSIGN_OR_RETURN(Phase p2, LocalChunk("INSERT+COMMIT, then activity INSERT (2 commits)", b, e,
                                          [&](int i) { return sql->Insert(i, true); }));
    run.peer_insert2.Merge(std::move(p2));
  }
  if (StopRequested()) return Interrupted();
  {
    // Sanity: what we wrote is what we read.
    ApiClient cl(ep);
    HttpResult r = cl.Get(base + Group(o.puts - 1));
    RETURN_IF_ERROR(Expect(r, 200, "GET " + Group(o.puts - 1)));
    auto j = Json::parse(r.body, nullptr, false);
    if (!j.is_object() || j["tags"].value("index", "") != std::to_string(o.puts - 1))
      return Internal("GET returned a body without the tags written: " + r.body.substr(0, 400));
  }

  std::fprintf(stderr, "controlplane: [%s] %d GETs, interleaved with libvirt lookups ...\n",
               run.label.c_str(), o.gets);
  for (int c = 0; c < k; ++c) {
    auto [b, e] = ChunkRange(o.gets, c, k);
    run.get.Merge(HttpChunk("GET resource group", ep, o.threads, b, e, 200, [&](ApiClient& cl, int i) {
      return cl.Get(base + Group(i % o.puts));
    }));
    if (run.get.errors) return Internal("GET failed: " + run.get.first_error);
    ASSIGN_OR_RETURN(Phase p, lv->Chunk(b, e));
    run.peer_lookup.Merge(std::move(p));
  }
  if (StopRequested()) return Interrupted();

  std::fprintf(stderr, "controlplane: [%s] %d PATCHes, interleaved with sqlite3 UPDATE+COMMIT ...\n",
               run.label.c_str(), o.patches);
  for (int c = 0; c < k; ++c) {
    auto [b, e] = ChunkRange(o.patches, c, k);
    run.patch.Merge(HttpChunk("PATCH tags", ep, o.threads, b, e, 200, [&](ApiClient& cl, int i) {
      return cl.Patch(base + Group(i % o.puts), GroupBody(ep, i, true));
    }));
    if (run.patch.errors) return Internal("PATCH failed: " + run.patch.first_error);
    ASSIGN_OR_RETURN(Phase p, LocalChunk("UPDATE+COMMIT", b, e,
                                         [&](int i) { return sql->Update(i % o.puts); }));
    run.peer_update.Merge(std::move(p));
  }
  if (StopRequested()) return Interrupted();

  // GETs from threads-1 readers while one writer PATCHes continuously.
  if (o.threads >= 2 && o.mixed_gets > 0) {
    std::fprintf(stderr, "controlplane: [%s] %d GETs with one concurrent writer ...\n",
                 run.label.c_str(), o.mixed_gets);
    std::atomic<bool> readers_done{false};
    std::atomic<int> writes{0};
    std::thread writer([&] {
      ApiClient cl(ep);
      for (int i = 0; !readers_done.load() && !StopRequested(); ++i) {
        HttpResult r = cl.Patch(base + Group(i % o.puts), GroupBody(ep, i, true));
        if (r.status == 200) ++writes;
      }
    });
    run.mixed_get = HttpChunk("GET while 1 writer PATCHes", ep, o.threads - 1, 0, o.mixed_gets,
                              200, [&](ApiClient& cl, int i) {
                                return cl.Get(base + Group(i % o.puts));
                              });
    readers_done = true;
    writer.join();
    run.mixed_writes = writes.load();
    if (run.mixed_get.errors) return Internal("mixed GET failed: " + run.mixed_get.first_error);
  }
  if (StopRequested()) return Interrupted();

  // GETs while slow clients hold connections (default mode only: it is about the HTTP front).
  if (o.slow_clients > 0 && o.slow_gets > 0 && run.sync == "FULL") {
    std::fprintf(stderr, "controlplane: [%s] %d GETs while %d slow clients trickle ...\n",
                 run.label.c_str(), o.slow_gets, o.slow_clients);
    SlowClients slow(ep, o.slow_clients);
    std::this_thread::sleep_for(std::chrono::seconds(3));  // let them occupy what they can
    auto until = Now() + std::chrono::milliseconds(static_cast<int64_t>(o.slow_max_s * 1000));
    run.slow_get = HttpChunk("GET while " + std::to_string(o.slow_clients) + " slow clients trickle",
                             ep, o.threads, 0, o.slow_gets, 200, [&](ApiClient& cl, int i) {
                               if (Now() > until) {
                                 HttpResult skipped;  // past the time limit: not sent
                                 skipped.status = -1;
                                 return skipped;
                               }
                               return cl.Get(base + Group(i % o.puts));
                             });
    // Requests skipped after the time limit are not operations.
    int skipped = 0;
    for (size_t i = 0; i < run.slow_get.lat_ms.size(); ++i)
      if (run.slow_get.lat_ms[i] == 0) ++skipped;
    run.slow_get.lat_ms.erase(std::remove(run.slow_get.lat_ms.begin(), run.slow_get.lat_ms.end(), 0.0),
                              run.slow_get.lat_ms.end());
    run.slow_get.ops = static_cast<int>(run.slow_get.lat_ms.size());
    run.slow_get.errors -= skipped;
    if (run.slow_get.errors == 0) run.slow_get.first_error.clear();
    run.slow_reconnects = slow.reconnects();
  }
  for (Phase* p : {&run.put, &run.get, &run.patch, &run.mixed_get, &run.slow_get,
                   &run.peer_insert, &run.peer_insert2, &run.peer_update, &run.peer_lookup})
    p->Finish();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Report

std::vector<std::string> PhaseRow(const std::string& who, const Phase& p, int threads) {
  return {p.name,
          who,
          std::to_string(threads),
          std::to_string(p.ops),
          std::to_string(p.errors),
          FormatRate(p.rate()),
          FormatMs(p.lat.p50_ms),
          FormatMs(p.lat.p95_ms),
          FormatMs(p.lat.p99_ms),
          FormatMs(p.lat.max_ms)};
}

void Report(const Options& o, const std::vector<Run>& runs, const std::string& host_note) {
  std::printf("## Control plane: resource PUT / GET / PATCH against stratusd\n\n");
  std::printf("%s\n\n", host_note.c_str());
  for (auto& r : runs) {
    std::printf("### stratusd %s\n\n", r.label.c_str());
    Table detail({"operation", "by", "threads", "ops", "errors", "ops/s", "p50", "p95", "p99",
                  "max"});
    detail.Add(PhaseRow("stratusd", r.put, o.threads));
    detail.Add(PhaseRow("peer: sqlite3 WAL synchronous=" + r.sync, r.peer_insert, 1));
    detail.Add(PhaseRow("peer: sqlite3 WAL synchronous=" + r.sync, r.peer_insert2, 1));
    detail.Add(PhaseRow("stratusd", r.get, o.threads));
    detail.Add(PhaseRow("peer: libvirtd", r.peer_lookup, o.threads));
    detail.Add(PhaseRow("stratusd", r.patch, o.threads));
    detail.Add(PhaseRow("peer: sqlite3 WAL synchronous=" + r.sync, r.peer_update, 1));
    if (r.mixed_get.ops) {
      auto row = PhaseRow("stratusd", r.mixed_get, o.threads - 1);
      row[0] += " (" + std::to_string(r.mixed_writes) + " writes meanwhile)";
      detail.Add(row);
    }
    if (r.slow_get.ops || r.slow_get.errors) {
      auto row = PhaseRow("stratusd", r.slow_get, o.threads);
      row[0] += " (" + std::to_string(r.slow_reconnects) + " of them cut off and reopened)";
      detail.Add(row);
    }
    std::printf("%s\n", detail.Render().c_str());
  }

  // ratio = Stratus ÷ peer (throughput: < 1 is slower than the peer; latency: > 1 is slower).
  Table cmp({"operation", "stratusd", "peer", "peer figure", "Stratus", "ratio (Stratus ÷ peer)"});
  for (auto& r : runs) {
    auto rate_row = [&](const std::string& op, const std::string& peer, const Phase& p,
                        const Phase& s) {
      cmp.Add({op + " ops/s", r.label, peer, FormatRate(p.rate()), FormatRate(s.rate()),
               FormatRatio(s.rate() / p.rate())});
    };
    auto lat_row = [&](const std::string& op, const std::string& peer, const char* q, double p,
                       double s) {
      cmp.Add({op + " " + q, r.label, peer, FormatMs(p), FormatMs(s), FormatRatio(s / p)});
    };
    std::string ins = "sqlite3 INSERT+COMMIT (WAL, synchronous=" + r.sync + ", 1 thread)";
    rate_row("PUT", ins, r.peer_insert, r.put);
    lat_row("PUT", ins, "p50", r.peer_insert.lat.p50_ms, r.put.lat.p50_ms);
    lat_row("PUT", ins, "p99", r.peer_insert.lat.p99_ms, r.put.lat.p99_ms);
    std::string lk = "libvirt LookupByName+GetInfo (" + std::to_string(o.threads) + " threads)";
    rate_row("GET", lk, r.peer_lookup, r.get);
    lat_row("GET", lk, "p50", r.peer_lookup.lat.p50_ms, r.get.lat.p50_ms);
    lat_row("GET", lk, "p99", r.peer_lookup.lat.p99_ms, r.get.lat.p99_ms);
    std::string upd = "sqlite3 UPDATE+COMMIT (WAL, synchronous=" + r.sync + ", 1 thread)";
    rate_row("PATCH", upd, r.peer_update, r.patch);
    lat_row("PATCH", upd, "p50", r.peer_update.lat.p50_ms, r.patch.lat.p50_ms);
  }
  std::printf("### Peer comparison\n\n%s\n", cmp.Render().c_str());

  Table tgt({"target (issue)", "stratusd", "measured", "met"});
  for (auto& r : runs) {
    tgt.Add({"GET p99 < 5 ms", r.label, FormatMs(r.get.lat.p99_ms),
             r.get.lat.p99_ms < 5 ? "yes" : "no"});
    if (r.mixed_get.ops)
      tgt.Add({"GET p99 < 5 ms, 1 concurrent writer", r.label, FormatMs(r.mixed_get.lat.p99_ms),
               r.mixed_get.lat.p99_ms < 5 ? "yes" : "no"});
    tgt.Add({"≥ 500 small PUT/s", r.label, FormatRate(r.put.rate()),
             r.put.rate() >= 500 ? "yes" : "no"});
    if (r.slow_get.ops || r.slow_get.errors)
      tgt.Add({"GET p99 < 5 ms with " + std::to_string(o.slow_clients) + " slow clients", r.label,
               FormatMs(r.slow_get.lat.p99_ms) + " (" + std::to_string(r.slow_get.ops) + " GETs, " +
                   std::to_string(r.slow_get.errors) + " failed)",
               r.slow_get.lat.p99_ms < 5 && r.slow_get.errors == 0 ? "yes" : "no"});
  }
  std::printf("### Targets\n\n%s\n", tgt.Render().c_str());
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"controlplane_bench: stratusd resource PUT/GET/PATCH throughput and latency"};
  app.add_option("--stratusd", o.stratusd, "stratusd binary")->capture_default_str();
  app.add_option("--platform-images", o.platform_images, "passed to stratusd");
  app.add_option("--work-dir", o.work_dir, "parent of the temporary data dirs (o+x up to /)")
      ->capture_default_str();
  app.add_option("--endpoint", o.endpoint, "use this stratusd (http://host:port) instead");
  app.add_option("--token", o.token, "bearer token, or @file (with --endpoint)");
  app.add_option("--subscription", o.subscription, "(with --endpoint) default: the first one");
  app.add_option("--sync", o.endpoint_sync,
                 "(with --endpoint) SQLite level of the write peer: FULL or NORMAL")
      ->check(CLI::IsMember({"FULL", "NORMAL"}))
      ->capture_default_str();
  app.add_option("--libvirt-uri", o.libvirt_uri, "libvirt of the read peer")->capture_default_str();
  app.add_option("--threads", o.threads, "client threads")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--puts", o.puts)->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--gets", o.gets)->check(CLI::Range(1, 10000000))->capture_default_str();
  app.add_option("--patches", o.patches)->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--mixed-gets", o.mixed_gets, "GETs while one writer PATCHes (0 = skip)")
      ->capture_default_str();
  app.add_option("--slow-clients", o.slow_clients, "trickling connections (0 = skip that phase)")
      ->capture_default_str();
  app.add_option("--slow-gets", o.slow_gets, "GETs measured while they trickle")->capture_default_str();
  app.add_option("--slow-max-seconds", o.slow_max_s, "time limit of that phase")->capture_default_str();
  app.add_option("--chunks", o.chunks, "slices in which Stratus and peer work alternate")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_flag("--keep", o.keep, "keep the temporary directories");
  CLI11_PARSE(app, argc, argv);
  InstallStopHandlers();
  virSetErrorFunc(nullptr, SilentLibvirtError);

  auto fail = [](const Status& st) {
    std::fprintf(stderr, "controlplane_bench: %s\n", st.ToString().c_str());
    return 1;
  };
  if (auto st = CheckTraversable(o.work_dir); !st.ok()) return fail(st);
  auto work = ScopedDir::Make(o.work_dir, "stratus-controlplane");
  if (!work.ok()) return fail(work.status());
  if (o.keep) (*work)->Keep();
  std::string load_before = LoadAverage();

  std::vector<Run> runs;
  if (!o.endpoint.empty()) {
    auto ep = ParseEndpointUrl(o.endpoint);
    if (!ep.ok()) return fail(ep.status());
    ep->token = o.token;
    ep->subscription = o.subscription;
    if (auto st = CompleteEndpoint(*ep); !st.ok()) return fail(st);
    Run run;
    run.label = "at " + o.endpoint;
    run.sync = o.endpoint_sync;
    if (auto st = RunWorkload(run, *ep, o, (*work)->path()); !st.ok()) return fail(st);
    runs.push_back(std::move(run));
  } else {
    struct Mode {
      std::string label, sync, dir;
      std::vector<std::string> args;
    };
    for (const Mode& m : {Mode{"default (synchronous=FULL)", "FULL", "full", {}},
                          Mode{"--no-fsync-state (synchronous=NORMAL)", "NORMAL", "normal",
                               {"--no-fsync-state"}}}) {
      std::string dir = JoinPath((*work)->path(), m.dir);
      if (auto st = MakeDirs(dir, 0755); !st.ok()) return fail(st);
      auto d = Daemon::Start({o.stratusd, dir, o.platform_images, m.args});
      if (!d.ok()) return fail(d.status());
      Run run;
      run.label = m.label;
      run.sync = m.sync;
      if (auto st = RunWorkload(run, (*d)->endpoint(), o, dir); !st.ok())
        return fail(Status(st.code(), st.arm_code(),
                           st.message() + " (daemon log: " + (*d)->log_path() + ")"));
      runs.push_back(std::move(run));
      if (auto st = (*d)->Stop(); !st.ok()) return fail(st);
    }
  }
  if (StopRequested()) return fail(Interrupted());
  std::string note =
      "Host: " + std::to_string(std::thread::hardware_concurrency()) + " cores, load average " +
      load_before + " before / " + LoadAverage() + " after. " + std::to_string(o.threads) +
      " client threads, one keep-alive HTTP connection each (TCP_NODELAY); " +
      std::to_string(o.puts) + " PUTs, " + std::to_string(o.gets) + " GETs, " +
      std::to_string(o.patches) + " PATCHes of resource groups with 4 tags. Each phase runs in " +
      std::to_string(o.chunks) +
      " slices alternating with its peer (same background load); rates are ops ÷ time spent "
      "in that side's slices. State and peer files under " + o.work_dir + ".";
  Report(o, runs, note);
  return 0;
}

}  // namespace
}  // namespace stratus::bench

int main(int argc, char** argv) { return stratus::bench::Main(argc, argv); }
