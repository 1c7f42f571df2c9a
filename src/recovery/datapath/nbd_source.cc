#include "recovery/datapath/nbd_source.h"

#include <libnbd.h>

#include <algorithm>

namespace stratus::recovery::datapath {

uint64_t TotalBytes(const std::vector<Extent>& extents) {
  uint64_t n = 0;
  for (auto& e : extents) n += e.length;
  return n;
}

std::vector<Extent> MergeExtents(std::vector<Extent> extents) {
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  std::vector<Extent> out;
  for (auto& e : extents) {
    if (e.length == 0) continue;
    if (!out.empty() && e.offset <= out.back().offset + out.back().length) {
      out.back().length =
          std::max(out.back().offset + out.back().length, e.offset + e.length) - out.back().offset;
    } else {
      out.push_back(e);
    }
  }
  return out;
}

namespace {

std::string NbdError() {
  const char* e = nbd_get_error();
  return e ? e : "unknown libnbd error";
}

Status NbdFailed(const std::string& what, const std::string& address) {
  return Status(StatusCode::kUnavailable, "NbdError",
                what + " on NBD export '" + address + "' failed: " + NbdError(), address);
}

bool IsUri(const std::string& a) { return a.rfind("nbd", 0) == 0 && a.find("://") != std::string::npos; }

struct ExtentCollector {
  const std::string* context;
  uint64_t start;
  uint64_t limit;
  std::vector<Extent>* out;
  uint64_t covered = 0;  // bytes reported for our context in this call
};

int OnExtents(void* user, const char* metacontext, uint64_t offset, uint32_t* entries,
              size_t nr_entries, int* /*error*/) {
  auto* c = static_cast<ExtentCollector*>(user);
  if (*c->context != metacontext) return 0;
  uint64_t pos = offset;
  for (size_t i = 0; i + 1 < nr_entries; i += 2) {  // (length, flags) pairs
    uint64_t len = entries[i];
    uint32_t flags = entries[i + 1];
    if (pos >= c->limit) break;
    len = std::min<uint64_t>(len, c->limit - pos);
    if (len == 0) break;
    auto* out = c->out;
    if (!out->empty() && out->back().flags == flags &&
        out->back().offset + out->back().length == pos) {
      out->back().length += len;
    } else {
      out->push_back({pos, len, flags});
    }
    pos += len;
  }
  c->covered = std::max(c->covered, pos - c->start);
  return 0;
}

}  // namespace

std::string DirtyBitmapContext(const std::string& bitmap) { return "qemu:dirty-bitmap:" + bitmap; }

NbdConnection::~NbdConnection() {
  if (h_ != nullptr) {
    nbd_shutdown(h_, 0);
    nbd_close(h_);
  }
}

Result<std::unique_ptr<NbdSource>> NbdSource::Connect(const Options& o) {
  if (o.address.empty()) return InvalidArgument("NBD address is empty");
  if (o.connections < 1 || o.connections > 64)
    return InvalidArgument("NBD connections must be 1..64, got " + std::to_string(o.connections));
  std::unique_ptr<NbdSource> src(new NbdSource());
  src->address_ = o.address;
  for (int i = 0; i < o.connections; ++i) {
    nbd_handle* h = nbd_create();
    if (h == nullptr) return NbdFailed("creating a handle", o.address);
    auto conn = std::make_unique<NbdConnection>(h);
    // Buffers are always fully overwritten by a successful read; skip libnbd's memset.
    nbd_set_pread_initialize(h, false);
    if (i == 0) {
      for (const auto& ctx : o.meta_contexts)
        if (nbd_add_meta_context(h, ctx.c_str()) != 0)
          return NbdFailed("requesting meta context " + ctx, o.address);
    }
    int rc;
    if (IsUri(o.address)) {
      rc = nbd_connect_uri(h, o.address.c_str());
    } else {
      if (nbd_set_export_name(h, o.export_name.c_str()) != 0)
        return NbdFailed("setting the export name", o.address);
      rc = nbd_connect_unix(h, o.address.c_str());
    }
    if (rc != 0) {
      return Status(StatusCode::kUnavailable, "NbdConnectFailed",
                    "cannot connect to NBD export '" + o.address + "' (connection " +
                        std::to_string(i + 1) + " of " + std::to_string(o.connections) +
                        "): " + NbdError(),
                    o.address);
    }
    if (i == 0) {
      int64_t size = nbd_get_size(h);
      if (size < 0) return NbdFailed("reading the size", o.address);
      src->size_ = static_cast<uint64_t>(size);
      src->read_only_ = nbd_is_read_only(h) == 1;
      for (const auto& ctx : o.meta_contexts)
        if (nbd_can_meta_context(h, ctx.c_str()) == 1) src->granted_.push_back(ctx);
      if (o.need_writable && src->read_only_)
        return InvalidArgument("NBD export '" + o.address + "' is read-only", o.address);
    }
    src->conns_.push_back(std::move(conn));
  }
  return src;
}

NbdSource::~NbdSource() = default;

bool NbdSource::HasMetaContext(const std::string& context) const {
  return std::find(granted_.begin(), granted_.end(), context) != granted_.end();
}

Result<std::vector<Extent>> NbdSource::Extents(const std::string& context) {
  if (!HasMetaContext(context)) {
    return InvalidArgument("NBD export '" + address_ + "' does not offer meta context '" +
                               context + "'",
                           context, "NbdContextUnavailable");
  }
  std::vector<Extent> out;
  nbd_handle* h = conns_[0]->get();
  uint64_t pos = 0;
  // The NBD protocol limits a request to 32 bits; servers answer at least one extent.
  constexpr uint64_t kMaxRequest = 1ull << 30;
  while (pos < size_) {
    uint64_t len = std::min(kMaxRequest, size_ - pos);
    ExtentCollector c{&context, pos, pos + len, &out};
    nbd_extent_callback cb{OnExtents, &c, nullptr};
    if (nbd_block_status(h, len, pos, cb, 0) != 0)
      return NbdFailed("block status (" + context + ") at offset " + std::to_string(pos), address_);
    if (c.covered == 0)
      return Status(StatusCode::kInternal, "NbdError",
                    "NBD export '" + address_ + "' answered block status at offset " +
                        std::to_string(pos) + " with no extent for " + context,
                    address_);
    pos += c.covered;
  }
  return out;
}

void NbdSource::AttachDirectReader(std::unique_ptr<Qcow2DirectReader> reader) {
  direct_ = std::move(reader);
}

Status NbdSource::Read(int connection, uint64_t offset, void* buf, size_t len) {
  if (connection < 0 || connection >= connections()) return InvalidArgument("bad connection index");
  if (direct_ != nullptr) {
    ASSIGN_OR_RETURN(bool done, direct_->Read(offset, buf, len));
    if (done) return Status::Ok();
  }
  if (nbd_pread(conns_[connection]->get(), buf, len, offset, 0) != 0)
    return NbdFailed("reading " + std::to_string(len) + " bytes at offset " + std::to_string(offset),
                     address_);
  return Status::Ok();
}

Status NbdSource::Write(int connection, uint64_t offset, const void* buf, size_t len) {
  if (connection < 0 || connection >= connections()) return InvalidArgument("bad connection index");
  if (nbd_pwrite(conns_[connection]->get(), buf, len, offset, 0) != 0)
    return NbdFailed("writing " + std::to_string(len) + " bytes at offset " + std::to_string(offset),
                     address_);
  return Status::Ok();
}

Status NbdSource::Zero(int connection, uint64_t offset, uint64_t len) {
  if (connection < 0 || connection >= connections()) return InvalidArgument("bad connection index");
  if (nbd_zero(conns_[connection]->get(), len, offset, 0) != 0)
    return NbdFailed("zeroing " + std::to_string(len) + " bytes at offset " + std::to_string(offset),
                     address_);
  return Status::Ok();
}

Status NbdSource::Flush() {
  for (auto& c : conns_)
    if (nbd_flush(c->get(), 0) != 0) return NbdFailed("flush", address_);
  return Status::Ok();
}

}  // namespace stratus::recovery::datapath
