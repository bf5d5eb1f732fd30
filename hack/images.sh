#!/usr/bin/env bash
# The images the CRI conformance suite (critest) pulls, built without docker
# from Debian's busybox plus small stand-ins (hack/images/), and pushed to a
# local registry under the same repository path and tag as upstream; and the
# add-ons of hack/cluster (CoreDNS, metrics-server), each its binary built by
# hack/kube/build.sh on an empty base, as upstream's distroless images are.
#
#   hack/images.sh build                                  build into $PYCRID_CACHE/images/oci
#   hack/images.sh push [--creds USER:PASS] HOST:PORT [REF...]   push the CRI test images (or the
#                                                         given refs, add-ons included)
#   hack/images.sh list                                   the CRI test images' refs, one per line
#
# Needs: umoci, skopeo, gcc + libc6-dev (static), dpkg-dev tools (dpkg-deb),
# apt-get (to download busybox.deb once), GNU tar, ldd.
set -euo pipefail

HACK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/env.sh
source "$HACK/env.sh"
SRC=$HACK/images
OUT=$PYCRID_CACHE/images
LAYOUT=$OUT/oci
# Fixed timestamps make rebuilds byte-identical, so image IDs only change
# when the inputs do.
EPOCH=1704067200
CREATED=2024-01-01T00:00:00Z

# One image per line: its tag in the OCI layout, then every registry ref
# (path:tag) it is pushed as. Upstream names: cri-tools v1.36.0
# pkg/validate/consts.go, security_context_linux.go, multi_container_linux.go,
# pkg/framework/util.go. Refs sharing a line are one image (same ID); images
# on different lines differ, which the image specs rely on.
IMAGES=(
	"busybox e2e-test-images/busybox:1.29-2 library/busybox:1 library/busybox:latest"
	"nginx e2e-test-images/nginx:1.14-2"
	"httpd e2e-test-images/httpd:2.4.39-4"
	"nonewprivs e2e-test-images/nonewprivs:1.3"
	"hostnet-nginx k8s-staging-cri-tools/hostnet-nginx-amd64:latest"
	"user-uid k8s-staging-cri-tools/test-image-user-uid:latest"
	"user-username k8s-staging-cri-tools/test-image-user-username:latest"
	"user-uid-group k8s-staging-cri-tools/test-image-user-uid-group:latest"
	"user-username-group k8s-staging-cri-tools/test-image-user-username-group:latest"
	"predefined-group k8s-staging-cri-tools/test-image-predefined-group:latest"
	"test-latest k8s-staging-cri-tools/test-image-latest:latest"
	"test-1 k8s-staging-cri-tools/test-image-1:latest"
	"test-2 k8s-staging-cri-tools/test-image-2:latest"
	"test-3 k8s-staging-cri-tools/test-image-3:latest"
	"test-tags k8s-staging-cri-tools/test-image-tags:1 k8s-staging-cri-tools/test-image-tags:2 k8s-staging-cri-tools/test-image-tags:3"
	"test-tag-test k8s-staging-cri-tools/test-image-tag:test"
	"test-tag-all k8s-staging-cri-tools/test-image-tag:all"
	"pause-3.9 pause:3.9"
	"pause-3.10 pause:3.10"
)
# hack/cluster's add-ons, pushed only when named (the CRI tests need none of their 100 MB).
ADDON_IMAGES=(
	"coredns coredns/coredns:v1.14.2"
	"metrics-server metrics-server/metrics-server:v0.8.1"
)
# The add-on binaries (hack/kube/build.sh).
KUBE_BIN=$PYCRID_CACHE/kube/v1.36.3/bin
ADDONS=(coredns metrics-server)

die() { echo "images.sh: $*" >&2; exit 1; }

need() {
	local t
	for t; do command -v "$t" >/dev/null || die "missing $t (see the header of $0 for packages)"; done
}

cmd_list() {
	local line
	for line in "${IMAGES[@]}"; do printf '%s\n' ${line#* }; done
}

# Hash of every input: the recipe files (path, mode, content) and this script.
inputs_hash() {
	(
		cd "$HACK"
		find images -type f -printf '%p %m\n' | LC_ALL=C sort
		find images -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
		sha256sum images.sh
		local addon
		for addon in "${ADDONS[@]}"; do sha256sum "$KUBE_BIN/$addon"; done
	) | sha256sum | cut -d' ' -f1
}

# The busybox .deb is fetched once and kept, so builds are offline after that.
busybox_deb() {
	local dir=$OUT/debs deb
	mkdir -p "$dir"
	deb=$(find "$dir" -name 'busybox_*.deb' | head -n1)
	if [[ -z $deb ]]; then
		# _apt cannot write into root's cache dir; download in a world-writable tmp.
		local tmp
		tmp=$(mktemp -d)
		chmod 777 "$tmp"
		(cd "$tmp" && apt-get download -q busybox >&2)
		mv "$tmp"/busybox_*.deb "$dir"/
		rm -rf "$tmp"
		deb=$(find "$dir" -name 'busybox_*.deb' | head -n1)
	fi
	echo "$deb"
}

# Stage the glibc busybox: the binary, its shared libraries at the paths the
# loader expects, and every applet as a hard link. Debian's busybox-static
# would run applets built in and ignore, say, a masked /bin/ls.
stage_busybox() {
	local root=$1 deb bb lib d
	deb=$(busybox_deb)
	dpkg-deb -x "$deb" "$WORK/deb"
	bb=$WORK/deb/bin/busybox
	for d in bin sbin usr/bin usr/sbin usr/local/bin dev proc sys etc home root run tmp \
		var/run var/spool/mail var/www; do
		mkdir -p "$root/$d"
	done
	chmod 1777 "$root/tmp"
	chmod 700 "$root/root"
	install -m 755 "$bb" "$root/bin/busybox"
	# ldd lines: "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and the
	# loader as "/lib64/ld-linux-x86-64.so.2 (0x...)".
	for lib in $(ldd "$bb" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
	"$bb" --list-full | while read -r applet; do
		# linuxrc is the initramfs init, not a command.
		[[ $applet == bin/busybox || $applet == linuxrc ]] && continue
		mkdir -p "$root/$(dirname "$applet")"
		ln "$root/bin/busybox" "$root/$applet"
	done
}

# layer IMAGE DIR WHAT: append DIR's content to IMAGE as one layer, packed by
# GNU tar with fixed owner and mtime (umoci 0.4.7's own `insert` writes a
# truncated tar).
layer() {
	local image=$1 dir=$2 what=$3 entries
	find "$dir" -exec touch -h -d "@$EPOCH" {} +
	mapfile -t entries < <(cd "$dir" && ls -A | LC_ALL=C sort)
	tar -C "$dir" --sort=name --owner=0 --group=0 --numeric-owner -cf "$WORK/layer.tar" -- "${entries[@]}"
	umoci raw add-layer --image "$NEW:$image" --history.created "$CREATED" \
		--history.created_by "hack/images.sh: $what" "$WORK/layer.tar"
}

# config IMAGE UMOCI-CONFIG-FLAGS...
config() {
	local image=$1
	shift
	umoci config --image "$NEW:$image" --created "$CREATED" --history.created "$CREATED" "$@"
}

# derive BASE IMAGE: start IMAGE as a copy of BASE.
derive() { umoci tag --image "$NEW:$1" "$2"; }

# stage NAME: a fresh staging dir holding hack/images/rootfs/NAME (if any).
stage() {
	local dir=$WORK/stage/$1
	rm -rf "$dir"
	mkdir -p "$dir"
	if [[ -d $SRC/rootfs/$1 ]]; then
		cp -R "$SRC/rootfs/$1/." "$dir/"
	fi
	# The checkout's umask and owner must not leak into the image.
	chown -R 0:0 "$dir"
	chmod -R go-w "$dir"
	echo "$dir"
}

# A busybox-based image that differs from the others by one marker file, like
# upstream's `ADD ${TEST} ${TEST}`.
marker_image() {
	local image=$1 marker=$2 dir
	derive busybox "$image"
	dir=$(stage "$image")
	echo "$marker" >"$dir/$marker"
	layer "$image" "$dir" "marker /$marker"
}

# built IMAGE: the one progress line per image, with the refs it becomes.
built() {
	local line
	for line in "${IMAGES[@]}" "${ADDON_IMAGES[@]}"; do
		[[ ${line%% *} == "$1" ]] && echo "built $1: ${line#* }"
	done
	return 0
}

build_all() {
	local dir bin p
	bin=$WORK/bin
	mkdir -p "$bin"
	for p in pause nginx nnp; do
		gcc -static -Os -s -Wall -Wextra -o "$bin/$p" "$SRC/src/$p.c"
	done

	umoci init --layout "$NEW"

	# busybox: base layer (binary, libs, applets, skeleton) + config layer.
	umoci new --image "$NEW:busybox"
	stage_busybox "$WORK/stage/busybox-base"
	layer busybox "$WORK/stage/busybox-base" "busybox $(basename "$(busybox_deb)") with glibc"
	layer busybox "$(stage busybox)" "/etc, pgrep and ipcs stand-ins"
	config busybox --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--config.cmd sh
	built busybox

	derive busybox nginx
	dir=$(stage nginx)
	install -D -m 755 "$bin/nginx" "$dir/usr/sbin/nginx"
	layer nginx "$dir" "nginx stand-in"
	config nginx --config.exposedports 80/tcp \
		--config.cmd nginx --config.cmd=-g --config.cmd "daemon off;"
	built nginx

	# Same image with a second layer that overwrites nginx.conf (port 12003).
	derive nginx hostnet-nginx
	layer hostnet-nginx "$(stage hostnet-nginx)" "nginx.conf listening on 12003"
	config hostnet-nginx --clear config.exposedports --config.exposedports 12003/tcp
	built hostnet-nginx

	derive busybox httpd
	layer httpd "$(stage httpd)" "httpd stand-in (busybox httpd)"
	config httpd --config.exposedports 80/tcp --config.workingdir /usr/local/apache2 \
		--config.cmd httpd-foreground
	built httpd

	derive busybox nonewprivs
	dir=$(stage nonewprivs)
	install -D -m 4755 "$bin/nnp" "$dir/usr/local/bin/nnp"
	layer nonewprivs "$dir" "setuid-root euid printer"
	config nonewprivs --config.user 1000 --config.cmd /usr/local/bin/nnp
	built nonewprivs

	# Config-only images: no layer of their own.
	local spec name user
	for spec in user-uid=1002 user-username=www-data user-uid-group=1003:1004 \
		user-username-group=www-data:1004; do
		name=${spec%%=*} user=${spec#*=}
		derive busybox "$name"
		config "$name" --config.user "$user"
		built "$name"
	done

	derive busybox predefined-group
	layer predefined-group "$(stage predefined-group)" "default-user in group-defined-in-image"
	config predefined-group --config.user 1000
	built predefined-group

	for name in test-latest test-1 test-2 test-tags test-tag-test test-tag-all; do
		marker_image "$name" "$name"
		built "$name"
	done
	# test-image-3 also deletes a directory of the base, so pulls exercise a
	# whiteout entry.
	marker_image test-3 test-3
	dir=$(stage test-3-whiteout)
	touch "$dir/.wh.home"
	layer test-3 "$dir" "whiteout /home"
	built test-3

	for name in 3.9 3.10; do
		umoci new --image "$NEW:pause-$name"
		dir=$(stage "pause-$name")
		install -m 755 "$bin/pause" "$dir/pause"
		layer "pause-$name" "$dir" "pause"
		# The version label keeps the two configs, hence image IDs, apart: 3.10
		# is the sandbox image and must survive removal of 3.9.
		config "pause-$name" --config.user 65535:65535 --config.entrypoint /pause \
			--config.label "org.opencontainers.image.version=$name"
		built "pause-$name"
	done

	# The add-ons: the static binary alone, run as root with only the capabilities their pod specs
	# add (CoreDNS binds port 53); metrics-server writes its self-signed serving cert to /tmp.
	umoci new --image "$NEW:coredns"
	dir=$(stage coredns)
	install -m 755 "$KUBE_BIN/coredns" "$dir/coredns"
	layer coredns "$dir" "coredns $("$KUBE_BIN/coredns" -version | head -n1)"
	config coredns --config.entrypoint /coredns --config.exposedports 53/udp --config.exposedports 53/tcp
	built coredns

	umoci new --image "$NEW:metrics-server"
	dir=$(stage metrics-server)
	install -m 755 "$KUBE_BIN/metrics-server" "$dir/metrics-server"
	install -d -m 1777 "$dir/tmp"
	layer metrics-server "$dir" "metrics-server"
	config metrics-server --config.entrypoint /metrics-server --config.user 65534:65534
	built metrics-server

	umoci gc --layout "$NEW"
}

cmd_build() {
	need sha256sum
	local addon
	for addon in "${ADDONS[@]}"; do
		[[ -x $KUBE_BIN/$addon ]] || die "missing $KUBE_BIN/$addon: hack/kube/build.sh builds it"
	done
	local hash
	hash=$(inputs_hash)
	if [[ -f $OUT/stamp && $(<"$OUT/stamp") == "$hash" && -f $LAYOUT/index.json ]]; then
		echo "images: up to date (${#IMAGES[@]} images in $LAYOUT)"
		return 0
	fi
	# Only a build needs the build tools (the v2 guest, which has none, finds the images built).
	need umoci gcc dpkg-deb apt-get tar ldd
	mkdir -p "$OUT"
	WORK=$(mktemp -d)
	NEW=$OUT/oci.new
	trap 'rm -rf "$WORK" "$NEW"' EXIT
	rm -rf "$NEW"
	build_all
	# Swap in the finished layout only, so an interrupted build never looks done.
	rm -rf "$LAYOUT" "$OUT/stamp"
	mv "$NEW" "$LAYOUT"
	echo "$hash" >"$OUT/stamp"
}

# push_one IMAGE REF: copy one layout tag to one registry ref.
push_one() {
	local image=$1 ref=$2 format=oci
	# Docker Hub and registry.k8s.io serve the busybox and pause images as
	# Docker schema 2; pushing those so exercises the runtime's docker path.
	case $ref in library/* | pause:*) format=v2s2 ;; esac
	# Parallel pushes of shared blobs can meet a 500 from docker-registry 2.8 (its blob
	# uploads race); the layers that made it are there, so a retry is quick.
	local try
	for try in 1 2 3; do
		if skopeo --insecure-policy copy -q --format "$format" --dest-tls-verify=false \
			"${CREDS[@]}" "oci:$LAYOUT:$image" "docker://$HOST/$ref"; then
			echo "pushed $HOST/$ref ($format)"
			return 0
		fi
		echo "push of $HOST/$ref failed (try $try), retrying" >&2
		sleep 0.$((RANDOM % 5 + 1))
	done
	return 1
}

cmd_push() {
	need skopeo
	CREDS=(--dest-no-creds)
	if [[ ${1-} == --creds ]]; then
		[[ $# -ge 2 ]] || die "--creds needs USER:PASS"
		CREDS=(--dest-creds "$2")
		shift 2
	fi
	[[ $# -ge 1 ]] || die "usage: $0 push [--creds USER:PASS] HOST:PORT [REF...]"
	HOST=$1
	shift
	[[ -f $LAYOUT/index.json ]] || die "no images in $LAYOUT; run $0 build first"
	local -A wanted=()
	local ref line image running=0 failed=0
	for ref; do wanted[$ref]=1; done
	local all=("${IMAGES[@]}")
	(($# == 0)) || all+=("${ADDON_IMAGES[@]}")
	for line in "${all[@]}"; do
		image=${line%% *}
		for ref in ${line#* }; do
			[[ $# -eq 0 || -n ${wanted[$ref]-} ]] || continue
			unset "wanted[$ref]"
			push_one "$image" "$ref" &
			# A few pushes at a time: most of the time goes to round trips.
			if ((++running >= 4)); then
				wait -n || failed=1
				((running--))
			fi
		done
	done
	while ((running > 0)); do
		wait -n || failed=1
		((running--))
	done
	((${#wanted[@]} == 0)) || die "unknown refs: ${!wanted[*]}"
	((failed == 0)) || die "some pushes to $HOST failed"
}

case ${1-} in
build) cmd_build ;;
push) shift; cmd_push "$@" ;;
list) cmd_list ;;
*) die "usage: $0 build | push [--creds USER:PASS] HOST:PORT [REF...] | list" ;;
esac
