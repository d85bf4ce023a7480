# Common setup for lazybox's bats system tests.   -*- sh -*-
#
# Environment (meson sets the first two):
#   LAZYBOX         the lazybox binary (default build-test/cli/lazybox)
#   LBX_DUMP_TREE   tests/lbx-dump-tree: `lbx-dump-tree ROOT IMAGE` prints the
#                   merged tree of IMAGE in dumptree.py's format
#   LBX_BUSYBOX     static busybox put in the fixture (default /bin/busybox)
#
# Per test: a fresh store in $LAZYBOX_ROOT (= $BATS_TEST_TMPDIR/root), passed
# to every command with --root; XDG_DATA_HOME points into the test dir too,
# so nothing ever touches a real store.
#
# Per file (setup_file -> fixture_setup_file): the standard fixture's layer
# tars, and the umoci reference dump of it, built once in $BATS_FILE_TMPDIR.

LBX_SYSTEM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LBX_SRCROOT="$(cd "$LBX_SYSTEM_DIR/../.." && pwd)"
LAZYBOX="${LAZYBOX:-$LBX_SRCROOT/build-test/cli/lazybox}"
LBX_DUMP="${LBX_DUMP_TREE:-$LBX_SRCROOT/build-test/tests/lbx-dump-tree}"
export LAZYBOX LBX_DUMP LBX_DUMP_TREE="$LBX_DUMP"
MKIMAGE="$LBX_SYSTEM_DIR/mkimage.py"
MKFIXTURE="$LBX_SYSTEM_DIR/mkfixture.py"
DUMPTREE="$LBX_SYSTEM_DIR/dumptree.py"
export PYTHONDONTWRITEBYTECODE=1

# The standard fixture's ref as written into images, and the name lazybox
# must give it.
FIXTURE_REF="lbx-fixture:latest"
FIXTURE_NAME="docker.io/library/lbx-fixture:latest"

# Rootless: umoci --rootless cannot chown or mknod, so uid/gid columns are
# blanked and device nodes dropped on both sides of every comparison.
if [ "$(id -u)" -eq 0 ]; then LBX_ROOTLESS=0; else LBX_ROOTLESS=1; fi
export LBX_ROOTLESS

lbx() {
	"$LAZYBOX" --root "$LAZYBOX_ROOT" "$@"
}

# --- per test ---------------------------------------------------------------

common_setup() {
	[ -x "$LAZYBOX" ] || skip "lazybox binary not built: $LAZYBOX"
	export LAZYBOX_ROOT="$BATS_TEST_TMPDIR/root"
	export XDG_DATA_HOME="$BATS_TEST_TMPDIR/xdg-data"
	export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$BATS_TEST_TMPDIR/xdg-run}"
	mkdir -p "$XDG_DATA_HOME"
}

common_teardown() {
	# umoci --rootless and the store leave read-only dirs/blobs behind
	chmod -R u+rwX "$BATS_TEST_TMPDIR" 2>/dev/null || true
}

require_dump_tool() {
	[ -x "$LBX_DUMP" ] || skip "lbx-dump-tree not built: $LBX_DUMP"
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || skip "$c not installed"
	done
}

# --- assertions (no bats-assert on Debian 12) ---------------------------------

fail() {
	printf '%s\n' "$@" >&2
	return 1
}

assert_success() {
	[ "$status" -eq 0 ] || fail "expected success, got status $status" "output: $output" \
		"${stderr:+stderr: $stderr}"
}

assert_failure() {
	[ "$status" -ne 0 ] || fail "expected failure, got status 0" "output: $output"
}

# assert_line TEXT: one line of $output equals TEXT
assert_line() {
	local l
	for l in "${lines[@]}"; do [ "$l" = "$1" ] && return 0; done
	fail "no line equal to: $1" "output: $output"
}

# assert_contains HAYSTACK NEEDLE
assert_contains() {
	[[ "$1" == *"$2"* ]] || fail "expected to contain: $2" "got: $1"
}

# assert_one_line_error NEEDLE...: after `run --separate-stderr`, stderr is
# exactly one line and names every NEEDLE.
assert_one_line_error() {
	assert_failure
	[ "${#stderr_lines[@]}" -eq 1 ] || fail "expected one stderr line, got ${#stderr_lines[@]}:" "$stderr"
	local n
	for n in "$@"; do assert_contains "$stderr" "$n"; done
}

# --- dumps --------------------------------------------------------------------

# normalize_dump [EXCLUDE_FILE] < dump: rootless blanks uid/gid and drops
# device nodes; paths listed (escaped form, one per line) in EXCLUDE_FILE go.
normalize_dump() {
	awk -F'\t' -v OFS='\t' -v rootless="$LBX_ROOTLESS" -v excl="${1:-}" '
		BEGIN { if (excl != "") while ((getline l < excl) > 0) drop[l] = 1 }
		($1 in drop) { next }
		rootless == 1 { if ($2 == "c" || $2 == "b") next; $4 = "-"; $5 = "-" }
		{ print }'
}

# lbx_dump IMAGE: our merged tree of IMAGE, normalized
lbx_dump() {
	"$LBX_DUMP" "$LAZYBOX_ROOT" "$1" | normalize_dump
	return "${PIPESTATUS[0]}"
}

# umoci_dump OCIDIR TAG: unpack with umoci (--rootless unless root) and print
# the normalized dump of its rootfs. umoci 0.4.7 cannot read zstd layers or
# Docker media types: dump the gzip OCI twin of such images instead.
umoci_dump() {
	local oci="$1" tag="$2" b
	b="$(mktemp -d "${BATS_TEST_TMPDIR:-${BATS_FILE_TMPDIR:-/tmp}}/umoci.XXXXXX")"
	local opts=()
	[ "$LBX_ROOTLESS" = 1 ] && opts=(--rootless)
	if ! umoci unpack "${opts[@]}" --image "$oci:$tag" "$b/bundle" >"$b/log" 2>&1; then
		cat "$b/log" >&2
		return 1
	fi
	# rootless umoci writes empty files in place of device nodes:
	#   rootless{dev/null} creating empty file in place of device 1:3
	sed -n 's/.*rootless{\(.*\)} creating empty file in place of device.*/\/\1/p' "$b/log" |
		python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); from dumptree import esc
for l in sys.stdin.buffer: print(esc(l.rstrip(b"\n")))' "$LBX_SYSTEM_DIR" >"$b/devices"
	python3 "$DUMPTREE" "$b/bundle/rootfs" | normalize_dump "$b/devices"
	local rc="${PIPESTATUS[0]}"
	chmod -R u+rwX "$b" 2>/dev/null
	rm -rf "$b"
	return "$rc"
}

# assert_tree IMAGE EXPECTED_DUMP_FILE: our dump of IMAGE equals the file
assert_tree() {
	local got="$BATS_TEST_TMPDIR/got.dump"
	"$LBX_DUMP" "$LAZYBOX_ROOT" "$1" >"$got.raw" || fail "lbx-dump-tree $1 failed"
	normalize_dump <"$got.raw" >"$got"
	diff -u "$2" "$got" >&2 || fail "tree of $1 differs from $2 (- expected, + lazybox)"
}

# --- fixtures -----------------------------------------------------------------

# fixture_layers DIR [VARIANT]: layer1.tar layer2.tar layer3.tar of the
# standard fixture (see mkfixture.py for what is in them)
fixture_layers() {
	local dir="$1" variant="${2:-}"
	[ -f "$dir/layer3.tar" ] && return 0
	python3 "$MKFIXTURE" standard "$dir" ${variant:+--variant "$variant"}
}

# _layers_of DIR: --layer args for every layer*.tar in DIR, in order
_layer_args() {
	local f
	for f in "$1"/layer*.tar; do printf -- '--layer\n%s\n' "$f"; done
}

# fixture_oci DIR COMPRESS [mkimage args...]: the standard fixture as an OCI
# layout, ref $FIXTURE_REF unless given, Cmd /bin/sh
fixture_oci() {
	local dir="$1" compress="$2"
	shift 2
	local refargs=(--ref "$FIXTURE_REF")
	[[ " $* " == *" --ref "* ]] && refargs=()
	local la
	mapfile -t la < <(_layer_args "$LBX_FIXTURE_LAYERS")
	python3 "$MKIMAGE" oci "$dir" "${refargs[@]}" --compress "$compress" "${la[@]}" \
		--cmd /bin/sh "$@" >/dev/null
}

# fixture_archive FILE COMPRESS [mkimage args...]: the standard fixture as a
# docker-archive tarball
fixture_archive() {
	local file="$1" compress="$2"
	shift 2
	local refargs=(--ref "$FIXTURE_REF")
	[[ " $* " == *" --ref "* ]] && refargs=()
	local la
	mapfile -t la < <(_layer_args "$LBX_FIXTURE_LAYERS")
	python3 "$MKIMAGE" docker-archive "$file" "${refargs[@]}" --compress "$compress" "${la[@]}" \
		--cmd /bin/sh "$@" >/dev/null
}

# image_from_layers KIND OUT LAYERDIR COMPRESS REF [mkimage args...]
image_from_layers() {
	local kind="$1" out="$2" ldir="$3" compress="$4" ref="$5"
	shift 5
	local la
	mapfile -t la < <(_layer_args "$ldir")
	python3 "$MKIMAGE" "$kind" "$out" --ref "$ref" --compress "$compress" "${la[@]}" "$@" >/dev/null
}

# oci_manifest OCIDIR [N]: path of the Nth (default first) manifest blob
oci_manifest() {
	local d
	d="$(jq -r ".manifests[${2:-0}].digest" "$1/index.json")"
	echo "$1/blobs/sha256/${d#sha256:}"
}

# oci_config_digest OCIDIR: "sha256:<hex>" of the image config (= image id)
oci_config_digest() {
	jq -r .config.digest "$(oci_manifest "$1")"
}

# oci_layer_digests OCIDIR: compressed layer digests, one per line
oci_layer_digests() {
	jq -r '.layers[].digest' "$(oci_manifest "$1")"
}

# oci_diff_ids OCIDIR: uncompressed layer digests (config rootfs.diff_ids)
oci_diff_ids() {
	local c
	c="$(oci_config_digest "$1")"
	jq -r '.rootfs.diff_ids[]' "$1/blobs/sha256/${c#sha256:}"
}

# fixture_setup_file: call from setup_file. Builds the standard layers, the
# gzip OCI layout and its umoci dump ($LBX_FIXTURE_DUMP), exported for tests.
fixture_setup_file() {
	local busybox="${LBX_BUSYBOX:-/bin/busybox}"
	export LBX_FIXTURE_DIR="$BATS_FILE_TMPDIR/fixture"
	export LBX_FIXTURE_LAYERS="$LBX_FIXTURE_DIR/layers"
	export LBX_FIXTURE_OCI="$LBX_FIXTURE_DIR/oci-gzip"
	export LBX_FIXTURE_DUMP="$LBX_FIXTURE_DIR/umoci.dump"
	[ -f "$LBX_FIXTURE_DUMP" ] && return 0
	# Missing tools are reported per test (skip), not as a setup_file error.
	[ -x "$busybox" ] || return 0
	command -v umoci >/dev/null || return 0
	mkdir -p "$LBX_FIXTURE_DIR"
	fixture_layers "$LBX_FIXTURE_LAYERS"
	fixture_oci "$LBX_FIXTURE_OCI" gzip
	umoci_dump "$LBX_FIXTURE_OCI" "$FIXTURE_REF" >"$LBX_FIXTURE_DUMP.tmp"
	# sanity: the reference really holds the fixture
	[ "$(wc -l <"$LBX_FIXTURE_DUMP.tmp")" -gt 500 ] || {
		echo "umoci dump of the fixture is too short" >&2
		return 1
	}
	mv "$LBX_FIXTURE_DUMP.tmp" "$LBX_FIXTURE_DUMP"
}

require_fixture() {
	[ -x "${LBX_BUSYBOX:-/bin/busybox}" ] || skip "no static busybox at ${LBX_BUSYBOX:-/bin/busybox} (busybox-static)"
	require_cmd umoci jq python3
	[ -f "$LBX_FIXTURE_DUMP" ] || fail "fixture was not built (see setup_file)"
}

# cached_image NAME CMD...: run CMD once per file to build $BATS_FILE_TMPDIR/NAME
# (CMD gets the path as its last argument); prints the path.
cached_image() {
	local name="$1" p="$BATS_FILE_TMPDIR/$1"
	shift
	if [ ! -e "$p" ]; then
		"$@" "$p.tmp" >&2 || return 1
		mv "$p.tmp" "$p"
	fi
	echo "$p"
}

# busybox_rootfs DIR: a root filesystem of Debian's static busybox with the
# applets the box tests use, and /etc/passwd, /etc/group with root and app
# (1000). For run.bats and cp.bats.
busybox_rootfs() {
	local r="$1" a
	mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root" "$r/home/app"
	cp "${LBX_BUSYBOX:-/bin/busybox}" "$r/bin/busybox"
	for a in sh ls cat echo id hostname ps sleep mount touch tty env pwd grep wc stat readlink \
		kill true false rm mkdir mkfifo chown find test; do
		ln -s busybox "$r/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\napp:x:1000:\n' >"$r/etc/group"
}

# wait_log BOX REGEX N: until BOX's log has N lines matching REGEX (10 s
# at most): a box that runs has not necessarily written anything yet
wait_log() {
	local n
	for _ in $(seq 100); do
		n="$(lbx logs "$1" | grep -cE "$2" || true)"
		[ "$n" -ge "$3" ] && return 0
		sleep 0.1
	done
	fail "$1 never logged $2 $3 times: $(lbx logs "$1")"
}

# df_json KEY: a number from `system df --format json`
df_json() {
	lbx system df --format json | jq -r ".$1"
}

# --- loopback registries (Debian's docker-registry) -----------------------------

# free_port: a TCP port free on 127.0.0.1 right now
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (10 s at most)
wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_registry DIR [EXTRA_YAML]: docker-registry on 127.0.0.1 at a free
# port with its storage in DIR; DIR/port and DIR/pid are written. The
# config is kept, so restart_registry brings it back on the same port.
start_registry() {
	local dir="$1" extra="${2:-}" port i
	mkdir -p "$dir/storage"
	for i in 1 2 3; do
		port="$(free_port)"
		cat >"$dir/config.yml" <<-EOC
			version: 0.1
			log:
			  level: warn
			  accesslog:
			    disabled: true
			storage:
			  filesystem:
			    rootdirectory: $dir/storage
			http:
			  addr: 127.0.0.1:$port
			$extra
		EOC
		echo "$port" >"$dir/port"
		restart_registry "$dir" && return 0
		stop_registry "$dir"
	done
	return 1
}

restart_registry() {
	local dir="$1"
	docker-registry serve "$dir/config.yml" >>"$dir/log" 2>&1 3>&- &
	echo "$!" >"$dir/pid"
	wait_port "$(cat "$dir/port")"
}

stop_registry() {
	local dir="$1" pid
	[ -f "$dir/pid" ] || return 0
	pid="$(cat "$dir/pid")"
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f "$dir/pid"
	return 0
}

# push OCIDIR:REF DEST [skopeo args...]
push() {
	local src="$1" dest="$2"
	shift 2
	skopeo --insecure-policy copy -q --dest-tls-verify=false "$@" "oci:$src" "docker://$dest" >&2
}
