#include "recovery/datapath/image_source.h"

namespace stratus::recovery::datapath {

Status ImageSource::Close() {
  source.reset();
  if (!exp) return Status::Ok();
  Status st = exp->Stop();
  exp.reset();
  return st;
}

Result<ImageSource> OpenImageSource(const ImageSourceOptions& o) {
  ImageSource s;
  QemuNbdOptions qo;
  qo.image = o.image;
  qo.bitmap = o.bitmap;
  qo.socket_dir = o.socket_dir;
  qo.force_share = o.force_share;
  ASSIGN_OR_RETURN(s.exp, QemuNbdExport::Start(qo));
  NbdSource::Options so;
  so.address = s.exp->uri();
  so.connections = o.connections;
  if (!o.bitmap.empty()) so.meta_contexts.push_back(DirtyBitmapContext(o.bitmap));
  ASSIGN_OR_RETURN(s.source, NbdSource::Connect(so));
  if (o.direct_reads) {
    auto reader = Qcow2DirectReader::Open(o.image, qo.format);
    if (reader.ok() && (*reader)->size() == s.source->size()) {
      s.source->AttachDirectReader(std::move(reader).value());
    } else {
      s.direct_unavailable = reader.ok() ? "map size differs from the export's"
                                         : reader.status().message();
    }
  } else {
    s.direct_unavailable = "turned off";
  }
  return s;
}

}  // namespace stratus::recovery::datapath
