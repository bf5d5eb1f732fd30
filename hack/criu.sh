#!/usr/bin/env bash
# Makes sure `criu` (CheckpointContainer and restore) works on this kernel. Idempotent.
#
# Debian 12's criu 3.17.1 (installed by install.sh) stops at start-up on Linux 6.13 and later
# ("vdso: Unexpected rt vDSO area bounds": the kernel split the vvar mapping in two, which CRIU
# learned in 4.1). Where its `criu check` fails that way, this builds CRIU 4.1.1 from Debian's own
# source package (trixie's, checked against a pinned digest) with bookworm's libraries, into
# $PYCRID_CACHE/criu, and links it as /usr/local/sbin/criu, ahead of /usr/sbin on root's PATH.
# Debian's apt sources on the machine are not touched: the source index goes to a private dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

version=4.1.1
orig=criu_$version.orig.tar.xz
orig_sha256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
dest="$PYCRID_CACHE/criu/$version"
link=/usr/local/sbin/criu

works() { "$1" check >/dev/null 2>&1; }

if works "$(command -v criu || echo /usr/sbin/criu)"; then
  exit 0
fi
if [[ -x $dest/criu ]] && works "$dest/criu"; then
  ln -sfn "$dest/criu" "$link"
  exit 0
fi
checked=$(/usr/sbin/criu check 2>&1 || true)
if [[ $checked != *"vDSO area bounds"* ]]; then
  echo "criu: 'criu check' fails here for another reason than the known vDSO one:" >&2
  echo "$checked" >&2
  exit 1
fi

echo "criu: Debian's $(/usr/sbin/criu --version | head -1) cannot run on Linux $(uname -r); building $version" >&2
build_deps=(make gcc pkgconf libprotobuf-c-dev protobuf-c-compiler libprotobuf-dev protobuf-compiler
            libnl-3-dev libnet1-dev libcap-dev libbsd-dev libgnutls28-dev libnftables-dev uuid-dev xz-utils)
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${build_deps[@]}" >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
echo "deb-src http://deb.debian.org/debian trixie main" >"$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/apt/sources.list" -o Dir::Etc::sourceparts=- -o APT::Sandbox::User=root
          -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache")
apt-get "${apt_opts[@]}" update -qq
# Only the upstream tarball is needed (the Debian packaging is not used to build); apt fetches it
# by the source index's hash, and the pin below holds it to the one this script was written for.
(cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq "criu=$version-1" >/dev/null 2>&1) || true
[[ -f $work/$orig ]] || { echo "criu: could not fetch $orig from Debian's sources" >&2; exit 1; }
echo "$orig_sha256  $work/$orig" | sha256sum -c --quiet
tar -xf "$work/$orig" -C "$work"
make -C "$work/criu-$version" -j"$(nproc)" criu >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
mkdir -p "$dest"
install -m 0755 "$work/criu-$version/criu/criu" "$dest/criu"
works "$dest/criu" || { "$dest/criu" check >&2; exit 1; }
ln -sfn "$dest/criu" "$link"
echo "criu: $("$link" --version | head -1) at $link" >&2
