#!/bin/bash
# Build the Stratus "tiny" guest image from Debian packages only.
#
#   guest/build-tiny-image.sh OUTDIR
#
# Produces OUTDIR/tiny/{vmlinuz,initrd.img,rootfs.qcow2,image.json}; the kernel .deb is cached in
# OUTDIR/cache. Nothing is installed on the host, nothing is loop-mounted, no root mount is needed
# (running as root only keeps file ownership in the image at 0:0 and lets apt-get download work).
# Idempotent: does nothing when OUTDIR/tiny/image.json is newer than this script and its inputs.
#
# Environment:
#   STRATUS_GUEST_KERNEL_PKG  use exactly this kernel package (linux-image-*-cloud-amd64-unsigned).
#   STRATUS_GUEST_KERNEL=newest  prefer the newest cloud kernel apt knows over the release's own
#                             (default: the one linux-image-cloud-amd64 depends on).
#   STRATUS_GUEST_FORCE=1     rebuild even when the image is up to date.
# See guest/README.md.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR" >&2; exit 2; }
[ $# -eq 1 ] || usage
OUTDIR=$(realpath -m -- "$1")
HERE=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename -- "${BASH_SOURCE[0]}")"
TINY="$OUTDIR/tiny"
CACHE="$OUTDIR/cache"
ROOTFS_SIZE=256M
export LC_ALL=C

log() { echo "build-tiny-image: $*" >&2; }
die() { echo "build-tiny-image: error: $*" >&2; exit 1; }

# Host programs and files copied into the image (all from Debian packages).
BUSYBOX=/bin/busybox                  # busybox-static
QEMU_GA=/usr/sbin/qemu-ga             # qemu-guest-agent
E2FS_PROGS="mke2fs e2fsck resize2fs tune2fs dumpe2fs"   # e2fsprogs
INPUTS=("$SELF" "$HERE/initramfs" "$HERE/rootfs" "$BUSYBOX" "$QEMU_GA" /etc/mke2fs.conf)
for p in $E2FS_PROGS; do INPUTS+=("/sbin/$p"); done

# ---------------------------------------------------------------- up to date?
mkdir -p "$OUTDIR"
exec 9>"$OUTDIR/.build-tiny-image.lock"
flock 9   # concurrent builds into one OUTDIR wait for each other (then find the image up to date)
if [ "${STRATUS_GUEST_FORCE:-0}" != 1 ] && [ -f "$TINY/image.json" ] &&
   [ -f "$TINY/vmlinuz" ] && [ -f "$TINY/initrd.img" ] && [ -f "$TINY/rootfs.qcow2" ]; then
  if [ -z "$(find -L "${INPUTS[@]}" -newer "$TINY/image.json" -print -quit 2>/dev/null)" ]; then
    log "up to date: $TINY"
    exit 0
  fi
fi

for t in apt-get apt-cache dpkg-deb cpio gzip xz mke2fs qemu-img ldd realpath; do
  command -v "$t" >/dev/null || die "missing host tool '$t' (see guest/README.md for packages)"
done
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install busybox-static"
file_is_static() { ! ldd "$1" >/dev/null 2>&1; }
file_is_static "$BUSYBOX" || die "$BUSYBOX is not static: install busybox-static, not busybox"
[ -x "$QEMU_GA" ] || die "$QEMU_GA missing: apt-get install qemu-guest-agent"

[ "$(id -u)" = 0 ] || log "warning: not root: files in the image will belong to uid $(id -u), not root"
mkdir -p "$TINY" "$CACHE"
WORK=$(mktemp -d "$OUTDIR/.build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- kernel
# Candidates, preferred first. Default: the kernel that Debian's metapackage linux-image-cloud-amd64
# currently points to (the release's own cloud kernel, always its newest ABI), then every other
# linux-image-*-cloud-amd64-unsigned, newest first. STRATUS_GUEST_KERNEL=newest puts the newest
# version apt knows first instead (e.g. a 6.12 from bookworm-security; it boots ~2 s slower under
# TCG: zstd-compressed image, slower init). A cached .deb lets us rebuild offline.
kernel_candidates() {
  if [ -n "${STRATUS_GUEST_KERNEL_PKG:-}" ]; then echo "$STRATUS_GUEST_KERNEL_PKG"; return; fi
  local meta=""
  if [ "${STRATUS_GUEST_KERNEL:-default}" != newest ]; then
    meta=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1-unsigned/p' | head -n1)
    [ -n "$meta" ] && echo "$meta"
  fi
  apt-cache search --names-only '^linux-image-[0-9].*-cloud-amd64-unsigned$' 2>/dev/null |
    awk '{print $1}' | sort -V -r | grep -vxF "${meta:-//}" || true
}
find_cached_deb() { # PKG -> path of cached .deb (newest version) or nothing
  ls -1 "$CACHE/$1"_*_amd64.deb 2>/dev/null | sort -V | tail -n1
}

mapfile -t CANDS < <(kernel_candidates)
if [ ${#CANDS[@]} -eq 0 ] && [ "$(id -u)" = 0 ] && [ -z "$(ls "$CACHE"/linux-image-*.deb 2>/dev/null)" ]; then
  log "apt knows no cloud kernel; running apt-get update"
  apt-get update -qq >&2 || true
  mapfile -t CANDS < <(kernel_candidates)
fi
if [ ${#CANDS[@]} -eq 0 ]; then  # offline: take the newest cached one
  mapfile -t CANDS < <(ls -1 "$CACHE"/linux-image-*-cloud-amd64-unsigned_*.deb 2>/dev/null |
                       xargs -r -n1 basename | sed 's/_.*//' | sort -V -r -u)
fi
[ ${#CANDS[@]} -gt 0 ] || die "no linux-image-*-cloud-amd64-unsigned package known to apt (run apt-get update)"

DEB=""
for pkg in "${CANDS[@]}"; do
  ver=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -n "$ver" ] && [ "$ver" != "(none)" ]; then
    want="$CACHE/${pkg}_${ver//:/%3a}_amd64.deb"
    if [ -s "$want" ]; then DEB=$want; break; fi
    log "downloading $pkg $ver"
    dl=$(mktemp -d "$CACHE/.dl.XXXXXX"); chmod 755 "$dl"
    if (cd "$dl" && apt-get download -q "$pkg=$ver" >&2 2>"$dl/err"); then
      f=$(ls -1 "$dl"/*.deb | head -n1); mv -f "$f" "$CACHE/"; rm -rf "$dl"
      DEB="$CACHE/$(basename "$f")"; break
    fi
    log "download of $pkg failed: $(tail -n1 "$dl/err" 2>/dev/null)"; rm -rf "$dl"
  fi
  c=$(find_cached_deb "$pkg"); if [ -n "$c" ]; then DEB=$c; break; fi
done
[ -n "$DEB" ] || die "could not obtain any cloud kernel package (tried: ${CANDS[*]})"
log "kernel package: $(basename "$DEB")"

dpkg-deb -x "$DEB" "$WORK/k"
VMLINUZ=$(ls -1 "$WORK"/k/boot/vmlinuz-* | head -n1)
KVER=${VMLINUZ##*/vmlinuz-}
MODDIR="$WORK/k/lib/modules/$KVER"
CONFIG="$WORK/k/boot/config-$KVER"
[ -d "$MODDIR" ] || die "no modules for $KVER in $DEB"
log "kernel version: $KVER"

# ---------------------------------------------------------------- modules
# What the guest needs: "NAME CONDITION REQUIRED". Each is either built in (nothing to do) or a
# module, copied with its dependencies and decompressed (busybox insmod cannot read .ko.xz/.zst).
# CONDITION is checked by the initramfs before loading: always | virtio:ID (a virtio device of
# that type exists, IDs from the virtio spec) | cpu:FLAG (in /proc/cpuinfo). Drivers for the
# devices Stratus always gives a VM (disk, NIC, agent channel, power button) load always, so hot
# plugged disks and NICs work; the SCSI stack, balloon, RNG and CRC32C accelerator only if useful.
WANTED="virtio_pci always 1
virtio_blk always 1
ext4 always 1
virtio_console always 1
virtio_net always 1
button always 1
evdev always 1
virtio_scsi virtio:8 0
sd_mod virtio:8 0
virtio_rng virtio:4 0
virtio_balloon virtio:5 0
crc32c_intel cpu:sse4_2 0"
norm() { local n=${1##*/}; n=${n%%.ko*}; echo "${n//-/_}"; }

declare -A MODFILE=() BUILTIN=() MODSTATE=()
while IFS= read -r f; do MODFILE[$(norm "$f")]=$f; done < <(find "$MODDIR/kernel" -name '*.ko*' -type f)
while IFS= read -r f; do [ -n "$f" ] && BUILTIN[$(norm "$f")]=1; done < "$MODDIR/modules.builtin"

mkdir -p "$WORK/modules"
decompress_to() { # SRC DST
  case "$1" in
    *.ko.xz)  xz -dc -- "$1" > "$2" ;;
    *.ko.zst) command -v zstd >/dev/null || die "zstd needed for $1"; zstd -qdc -- "$1" > "$2" ;;
    *.ko.gz)  gzip -dc -- "$1" > "$2" ;;
    *.ko)     cp -- "$1" "$2" ;;
    *) die "unknown module format: $1" ;;
  esac
}
GROUP=()   # modules (deps first) that the current wanted module needs loaded
add_module() { # NAME REQUIRED(0/1)
  local m; m=$(norm "$1")
  if [ -n "${BUILTIN[$m]:-}" ]; then MODSTATE[$m]=builtin; return 0; fi
  if [ -z "${MODSTATE[$m]:-}" ]; then
    local f=${MODFILE[$m]:-}
    if [ -z "$f" ]; then
      [ "$2" = 1 ] && die "kernel $KVER has $m neither built in nor as a module"
      log "optional module $m not in kernel $KVER, skipped"; MODSTATE[$m]=absent; return 1
    fi
    decompress_to "$f" "$WORK/modules/$m.ko"
    MODSTATE[$m]=module
  fi
  [ "${MODSTATE[$m]}" = absent ] && return 1
  local deps d
  deps=$(tr '\0' '\n' < "$WORK/modules/$m.ko" | sed -n 's/^depends=//p' | head -n1)
  for d in ${deps//,/ }; do add_module "$d" 1; done
  case " ${GROUP[*]:-} " in *" $m "*) ;; *) GROUP+=("$m") ;; esac
}
: > "$WORK/modules.load"
BUILTINS=() MODS=()
while read -r m cond req; do
  GROUP=()
  add_module "$m" "$req" || continue
  if [ "${MODSTATE[$(norm "$m")]}" = builtin ]; then BUILTINS+=("$m"); continue; fi
  echo "$cond ${GROUP[*]}" >> "$WORK/modules.load"
  MODS+=("${GROUP[@]}")
done <<< "$WANTED"
log "built in: ${BUILTINS[*]:-none}"
log "modules:  $(printf '%s\n' "${MODS[@]}" | awk '!seen[$0]++' | tr '\n' ' ')"
grep -q '^CONFIG_DEVTMPFS=y' "$CONFIG" || die "kernel lacks CONFIG_DEVTMPFS"
grep -q '^CONFIG_RD_GZIP=y' "$CONFIG" || die "kernel lacks gzip initramfs support"

# ---------------------------------------------------------------- initramfs
I="$WORK/initramfs"
mkdir -p "$I"/{bin,dev,proc,sys,newroot,etc,lib/modules}
cp "$BUSYBOX" "$I/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -s busybox "$I/bin/$a"; done
ln -s bin "$I/sbin"
install -m 0755 "$HERE/initramfs/init" "$I/init"
cp "$WORK"/modules/*.ko "$I/lib/modules/"
cp "$WORK/modules.load" "$I/etc/modules.load"
echo "$KVER" > "$I/etc/kernel-version"
(cd "$I" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0 --reproducible) |
  gzip -9n > "$WORK/initrd.img"

# ---------------------------------------------------------------- root filesystem
R="$WORK/rootfs"
mkdir -p "$R"/usr/{bin,sbin,lib,lib64} "$R"/usr/lib/x86_64-linux-gnu
for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done
mkdir -p "$R"/{dev,proc,sys,run,tmp,root,home,mnt,srv/www,etc,var/log,var/tmp,var/lib}
chmod 1777 "$R/tmp" "$R/var/tmp"; chmod 0700 "$R/root"
ln -s /run "$R/var/run"

copy_with_libs() { # BINARY [DEST]
  local src=$1 dst=${2:-$1} lib
  install -D -m 0755 "$src" "$R$dst"
  ldd "$src" 2>/dev/null | awk '/=>/ {print $3} /^[[:space:]]*\// {print $1}' | while read -r lib; do
    [ -e "$lib" ] || continue
    [ -e "$R$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$R$lib"
  done
}
copy_with_libs "$QEMU_GA"
for p in $E2FS_PROGS; do copy_with_libs "/sbin/$p"; done
for t in ext2 ext3 ext4; do ln -sf mke2fs "$R/usr/sbin/mkfs.$t"; ln -sf e2fsck "$R/usr/sbin/fsck.$t"; done
ln -sf tune2fs "$R/usr/sbin/e2label"
install -m 0644 /etc/mke2fs.conf "$R/etc/mke2fs.conf"

# our init scripts and configuration (before the applet links, so cp never writes through one)
cp -a "$HERE/rootfs/." "$R/"
chmod 0640 "$R/etc/shadow"
chmod 0755 "$R"/etc/init.d/* "$R"/etc/acpi/PWRF/* "$R"/etc/qemu/fsfreeze-hook \
           "$R"/usr/share/udhcpc/default.script "$R"/usr/lib/stratus/* "$R"/usr/sbin/shutdown
# busybox + applet links, never shadowing a real program copied above
install -m 0755 "$BUSYBOX" "$R/usr/bin/busybox"
"$BUSYBOX" --list-full | while read -r a; do
  a=${a#/}; name=${a##*/}
  case "${a%/*}" in sbin|usr/sbin) dir=usr/sbin ;; *) dir=usr/bin ;; esac
  [ "$name" = busybox ] && continue
  [ -e "$R/usr/sbin/$name" ] || [ -e "$R/usr/bin/$name" ] || [ -L "$R/$dir/$name" ] ||
    ln -s /usr/bin/busybox "$R/$dir/$name"
done

mkdir -p "$R/etc/qemu/fsfreeze-hook.d"
ln -sf /proc/self/mounts "$R/etc/mtab"
: > "$R/etc/resolv.conf"
echo "Stratus tiny guest (placeholder; replaced at boot)" > "$R/srv/www/index.html"
cat > "$R/etc/stratus-image" <<EOF
name=tiny
kernel=$KVER
kernel_package=$(basename "$DEB")
busybox=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown)
qemu_guest_agent=$(dpkg-query -W -f='${Version}' qemu-guest-agent 2>/dev/null || echo unknown)
e2fsprogs=$(dpkg-query -W -f='${Version}' e2fsprogs 2>/dev/null || echo unknown)
EOF

# Every inode table is written now (lazy_itable_init=0) so the guest's kernel does not start the
# ext4lazyinit thread at every first boot; zeroed areas stay sparse in the qcow2.
rm -f "$WORK/rootfs.raw"
mke2fs -q -F -t ext4 -T default -L stratus-root -d "$R" -E root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0 \
  "$WORK/rootfs.raw" "$ROOTFS_SIZE" >/dev/null
qemu-img convert -q -f raw -O qcow2 "$WORK/rootfs.raw" "$WORK/rootfs.qcow2"

# ---------------------------------------------------------------- publish
cp "$VMLINUZ" "$WORK/vmlinuz"
CMDLINE="console=ttyS0 root=/dev/vda rw quiet mitigations=off cryptomgr.notests tsc=reliable no_timer_check 8250.nr_uarts=1 i8042.noaux"
cat > "$WORK/image.json" <<EOF
{
  "name": "tiny",
  "osType": "Linux",
  "kernel": "vmlinuz",
  "initrd": "initrd.img",
  "cmdline": "$CMDLINE",
  "disk": "rootfs.qcow2",
  "diskSizeGiB": 1,
  "kernelVersion": "$KVER",
  "kernelPackage": "$(basename "$DEB" .deb)",
  "readyMarker": "STRATUS-GUEST-READY hostname=",
  "configDriveSerial": "stratus-config",
  "guestAgentChannel": "org.qemu.guest_agent.0"
}
EOF
for f in vmlinuz initrd.img rootfs.qcow2; do mv -f "$WORK/$f" "$TINY/$f"; done
mv -f "$WORK/image.json" "$TINY/image.json"   # last: it marks the image complete
for f in "$CACHE"/linux-image-*.deb; do [ "$f" = "$DEB" ] || rm -f "$f"; done  # keep one kernel
log "done: $TINY ($(du -sh "$TINY" | cut -f1); initrd $(stat -c %s "$TINY/initrd.img") bytes)"
