#!/usr/bin/env bats
# Hostile images, each built here (mkhostile.py: raw tar headers and bytes,
# nothing downloaded): lazybox gives one line naming the thing and the
# reason, or a safe result; no host file is touched outside the store, no
# crash (the ASan build), memory bounded.

bats_require_minimum_version 1.5.0
load helpers

MKHOSTILE="$LBX_SYSTEM_DIR/mkhostile.py"
TAR_MT=application/vnd.oci.image.layer.v1.tar

setup() {
	common_setup
	require_cmd python3 jq
	# host paths a hostile entry aims at: they must stay as they are
	export HOSTDIR="$BATS_TEST_TMPDIR/host"
	mkdir -p "$HOSTDIR/etc"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$HOSTDIR/etc/passwd"
}

teardown() {
	local id
	for id in $(lbx ps -q 2>/dev/null); do lbx kill "$id" >/dev/null 2>&1 || true; done
	[ -n "${MNT:-}" ] && lbx umount "$MNT" >/dev/null 2>&1
	common_teardown
}

# layer KIND [ARG]: prints the path of a one-kind layer tar
layer() {
	local out="$BATS_TEST_TMPDIR/$1.tar"
	python3 "$MKHOSTILE" layer "$1" "$out" "${2:-}"
	echo "$out"
}

# oci_of BLOB [mkhostile oci options...]: an OCI layout of BLOB in
# $BATS_TEST_TMPDIR/oci-N, path printed
oci_of() {
	local n=0
	while [ -e "$BATS_TEST_TMPDIR/oci-$n" ]; do n=$((n + 1)); done
	python3 "$MKHOSTILE" oci "$BATS_TEST_TMPDIR/oci-$n" "$@" >/dev/null
	echo "$BATS_TEST_TMPDIR/oci-$n"
}

# load_fails BLOB NEEDLE... [-- oci options]: the load of a layout of BLOB
# fails with one line naming every NEEDLE, and adds no image
load_fails() {
	local blob="$1" needles=() opts=(--media-type "$TAR_MT")
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do needles+=("$1"); shift; done
	[ $# -gt 0 ] && { shift; opts=("$@"); }
	local oci before
	oci="$(oci_of "$blob" "${opts[@]}")"
	before="$(lbx images -q | wc -l)"
	run --separate-stderr lbx load -i "$oci"
	assert_one_line_error "$oci" "${needles[@]}"
	[ "$status" -eq 125 ] || fail "status $status"
	[ "$(lbx images -q | wc -l)" = "$before" ] || fail "an image was added"
}

# host_untouched: nothing named by the hostile layers exists outside the store
host_untouched() {
	[ "$(cat "$HOSTDIR/etc/passwd")" = 'root:x:0:0:root:/root:/bin/sh' ] || fail "host passwd changed"
	run find "$BATS_TEST_TMPDIR" "$BATS_TEST_TMPDIR/.." -maxdepth 6 \
		\( -name evil -o -name 'abs-evil' -o -name x -o -name link \) -not -path "$LAZYBOX_ROOT/*"
	[ -z "$output" ] || fail "escaped: $output"
	! grep -rqs PWNED /etc/passwd "$HOSTDIR" || fail "a PWNED file on the host"
}

# mount_image IMAGE: $MNT is a mount of it
mount_image() {
	[ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable"
	MNT="$BATS_TEST_TMPDIR/mnt"
	mkdir -p "$MNT"
	run --separate-stderr lbx mount "$1" "$MNT"
	assert_success
}

# --- paths ----------------------------------------------------------------------

@test "../ and absolute paths: load and import refuse ../ naming it; / is dropped, inside the image" {
	mkdir -p "$BATS_TEST_TMPDIR/cwd/a/b"
	cd "$BATS_TEST_TMPDIR/cwd/a/b"
	# ../ hidden in the middle (ok/../../evil), where a plain prefix check misses it
	l="$(layer dotdot evil)"
	load_fails "$l" 'ok/../../evil' '".." components are not allowed'
	run --separate-stderr lbx import "$l" localhost/x:1
	assert_one_line_error "$l" 'ok/../../evil' '".." components are not allowed'
	gzip -c "$l" | {
		run --separate-stderr lbx import - localhost/x:1
		assert_one_line_error 'ok/../../evil'
	}
	host_untouched

	# an absolute path lands inside the image, never at that host path
	l="$(layer absolute "$HOSTDIR/abs-evil")"
	oci="$(oci_of "$l" --media-type "$TAR_MT")"
	run --separate-stderr lbx load -i "$oci"
	assert_success
	[ ! -e "$HOSTDIR/abs-evil" ] || fail "written at the host path"
	run --separate-stderr lbx import "$l" localhost/abs:1
	assert_success
	[ ! -e "$HOSTDIR/abs-evil" ] || fail "written at the host path"
	require_dump_tool
	run "$LBX_DUMP" "$LAZYBOX_ROOT" localhost/abs:1
	assert_contains "$output" "$HOSTDIR/abs-evil	f"
}

@test "a symlinked dir then a file under it (a -> /etc, a/passwd; a -> ../../.., a/x): refused, nothing written through it" {
	load_fails "$(layer symdir-etc "$HOSTDIR/etc")" '"a/passwd"' 'parent "a" is not a directory'
	load_fails "$(layer symdir-up)" '"a/x"' 'parent "a" is not a directory'
	run --separate-stderr lbx import "$(layer symdir-etc /etc)" localhost/x:1
	assert_one_line_error '"a/passwd"' 'parent "a" is not a directory'
	host_untouched
	# the link alone loads; through a mount, a is the symlink itself, and
	# a/passwd is whatever the reader's own /etc holds: the image adds nothing
	python3 - "$BATS_TEST_TMPDIR/link.tar" "$HOSTDIR/etc" <<-'EOF'
		import sys, tarfile
		with tarfile.open(sys.argv[1], "w") as t:
		    i = tarfile.TarInfo("a"); i.type = tarfile.SYMTYPE; i.linkname = sys.argv[2]
		    t.addfile(i)
	EOF
	oci="$(oci_of "$BATS_TEST_TMPDIR/link.tar" --media-type "$TAR_MT" --ref link)"
	run --separate-stderr lbx load -i "$oci"
	assert_success
	mount_image "$(lbx images -q | head -1)"
	[ "$(stat -c %F "$MNT/a")" = "symbolic link" ] || fail "a: $(stat -c %F "$MNT/a")"
	[ "$(readlink "$MNT/a")" = "$HOSTDIR/etc" ]
	[ "$(cat "$MNT/a/passwd")" = 'root:x:0:0:root:/root:/bin/sh' ]
	run ls "$MNT"
	[ "$output" = a ] || fail "mount holds: $output"
}

@test "hardlinks out of the layer or to nothing: one line naming link and target" {
	load_fails "$(layer hardlink-out)" 'hardlink "link"' '"../../etc/passwd"' '".." components'
	load_fails "$(layer hardlink-abs)" '"link"' 'hardlink target "etc/passwd" does not exist'
	load_fails "$(layer hardlink-missing)" '"link"' 'hardlink target "missing" does not exist'
	host_untouched
}

@test "whiteouts of .. and ., opaque markers in odd places" {
	load_fails "$(layer wh-dotdot)" '"d/.wh..."' 'whiteout of an invalid name'
	load_fails "$(layer wh-dot)" '"d/.wh.."' 'whiteout of an invalid name'
	load_fails "$(layer opq-odd)" '"file/.wh..wh..opq"' 'parent "file" is not a directory'
	load_fails "$(layer opq-symlink)" '"s/.wh..wh..opq"' 'parent "s" is not a directory'
	# twice in one dir, and a whiteout of a name that never was: harmless
	oci="$(oci_of "$(layer opq-twice)" --media-type "$TAR_MT")"
	run --separate-stderr lbx load -i "$oci"
	assert_success
	require_dump_tool
	run "$LBX_DUMP" "$LAZYBOX_ROOT" "$(lbx images -q | head -1)"
	[ "$(cut -f1 <<<"$output" | tr '\n' ' ')" = "/d /d/kept " ] || fail "tree: $output"
}

# --- names ----------------------------------------------------------------------

@test "255-byte names and a 4095-byte path load and read through a mount; 256 bytes is refused; deeper than PATH_MAX is kept" {
	oci="$(oci_of "$(layer longnames)" --media-type "$TAR_MT")"
	run --separate-stderr lbx load -i "$oci"
	assert_success
	mount_image "$(lbx images -q | head -1)"
	n255="$(printf 'n%.0s' $(seq 255))"
	[ "$(cat "$MNT/$n255")" = name255 ]
	# the whole path is PATH_MAX with its NUL: walk it relative, a dir at a time
	python3 - "$MNT" <<-'EOF'
		import os, sys
		fd = os.open(sys.argv[1], os.O_RDONLY)
		depth = 0
		while True:
		    names = os.listdir(fd)
		    assert len(names) == 1 or depth == 0, names
		    name = [n for n in names if not n.startswith("n")][0]
		    if name.startswith("f"):
		        break
		    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
		    depth += 1
		assert depth == 20 and len(name) == 4095 - 20 * 201, (depth, len(name))
		assert os.read(os.open(name, os.O_RDONLY, dir_fd=fd), 100) == b"path4095\n"
	EOF
	lbx umount "$MNT"
	MNT=

	# NAME_MAX + 1 could be stored but never looked up: refused at load
	load_fails "$(layer name256)" 'a name of 256 bytes (at most 255)'
	run --separate-stderr lbx import "$(layer name256)" localhost/x:1
	assert_one_line_error 'a name of 256 bytes'
	# a path past PATH_MAX (4221 bytes) is legal on Linux, a component at a
	# time: kept and readable the same way
	oci="$(oci_of "$(layer path-over)" --media-type "$TAR_MT" --ref over)"
	run --separate-stderr lbx load -i "$oci"
	assert_success
	require_dump_tool
	run "$LBX_DUMP" "$LAZYBOX_ROOT" "localhost/oci-2:over"
	assert_success
	[[ "$output" == *"/f	f	"* ]] || fail "the deep file is missing"
}

# --- size -----------------------------------------------------------------------

@test "1M entries in one layer: load succeeds, peak memory bounded" {
	# 1M headers are 512 MB of tar, 5 MB gzip'd; the load takes ~20 s under
	# ASan here. The rows wait for the commit in a file, not in memory; the
	# merged tree grows with the entries (about 130 bytes each without ASan),
	# so this bounds that constant: 1M entries in < 512 MiB.
	require_cmd /usr/bin/time
	python3 "$MKHOSTILE" many "$BATS_TEST_TMPDIR/many.tar.gz" 1000000
	oci="$(oci_of "$BATS_TEST_TMPDIR/many.tar.gz")"
	# ASan's quarantine keeps 256 MiB of freed memory on its own: off, so the
	# peak is lazybox's
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0" \
		run --separate-stderr /usr/bin/time -f 'maxrss=%M' "$LAZYBOX" --root "$LAZYBOX_ROOT" load -i "$oci"
	assert_success
	kb="$(grep -o 'maxrss=[0-9]*' <<<"$stderr" | cut -d= -f2)"
	echo "# peak RSS of a 1M-entry load: $((kb / 1024)) MiB" >&3
	[ "$kb" -lt $((512 * 1024)) ] || fail "peak RSS $kb KiB"
	[ "$(df_json Layers)" = 1 ]
}

@test "tar bombs: 8 GiB octal, 1 TiB and 2^63 base-256 sizes with a short body fail at once" {
	for how in octal base256 base256-max; do
		python3 "$MKHOSTILE" tarbomb "$BATS_TEST_TMPDIR/$how.tar" "$how"
		# either the store cannot hold the size, or the body ends short
		oci="$(oci_of "$BATS_TEST_TMPDIR/$how.tar" --media-type "$TAR_MT")"
		run --separate-stderr lbx load -i "$oci"
		assert_one_line_error '"bomb"'
		[[ "$stderr" == *"unexpected end"* || "$stderr" == *"bytes free in"* ]] || fail "$stderr"
		[ -z "$(find "$LAZYBOX_ROOT/tmp" -type f 2>/dev/null)" ] || fail "tmp files left"
	done
}

@test "gzip bombs: a 1 TiB entry is refused before a byte is written; GiBs of zeros cost no disk or memory" {
	# header of a 1 TiB file, then 1 GiB of deflated zeros (1 MiB on disk)
	python3 "$MKHOSTILE" zeros-gz "$BATS_TEST_TMPDIR/bomb.gz" 1 $((1 << 40))
	oci="$(oci_of "$BATS_TEST_TMPDIR/bomb.gz" --diff-id "sha256:$(printf %064d 0)")"
	run --separate-stderr /usr/bin/time -f 'maxrss=%M' "$LAZYBOX" --root "$LAZYBOX_ROOT" load -i "$oci"
	[ "$status" -eq 125 ] || fail "status $status: $stderr"
	assert_contains "$stderr" '"bomb": its 1099511627776 bytes do not fit in the'
	kb="$(grep -o 'maxrss=[0-9]*' <<<"$stderr" | cut -d= -f2)"
	[ "$kb" -lt $((256 * 1024)) ] || fail "peak RSS $kb KiB"
	[ "$(du -sk "$LAZYBOX_ROOT" | cut -f1)" -lt 10240 ] || fail "store grew: $(du -sh "$LAZYBOX_ROOT")"

	# 2 GiB of zeros and no gzip trailer: the tar ends at the first zero
	# blocks, the rest is drained for the digest (CPU only), then the cut
	python3 "$MKHOSTILE" zeros-gz "$BATS_TEST_TMPDIR/zeros.gz" 2
	oci="$(oci_of "$BATS_TEST_TMPDIR/zeros.gz" --diff-id "sha256:$(printf %064d 0)")"
	run --separate-stderr /usr/bin/time -f 'maxrss=%M' "$LAZYBOX" --root "$LAZYBOX_ROOT" load -i "$oci"
	[ "$status" -eq 125 ] || fail "status $status: $stderr"
	assert_contains "$stderr" "unexpected end of compressed data"
	kb="$(grep -o 'maxrss=[0-9]*' <<<"$stderr" | cut -d= -f2)"
	[ "$kb" -lt $((256 * 1024)) ] || fail "peak RSS $kb KiB"
	[ "$(du -sk "$LAZYBOX_ROOT" | cut -f1)" -lt 10240 ] || fail "store grew: $(du -sh "$LAZYBOX_ROOT")"
}

@test "a truncated gzip layer: one line naming the layer" {
	l="$(layer opq-twice)"
	gzip -c "$l" | head -c 60 >"$BATS_TEST_TMPDIR/cut.gz"
	oci="$(oci_of "$BATS_TEST_TMPDIR/cut.gz" --diff-id "sha256:$(sha256sum <"$l" | cut -c1-64)")"
	d="$(jq -r '.layers[0].digest' "$oci/blobs/sha256/$(jq -r '.manifests[0].digest' "$oci/index.json" | cut -c8-)")"
	run --separate-stderr lbx load -i "$oci"
	assert_one_line_error "$d" "unexpected end of compressed data"
}

# --- digests --------------------------------------------------------------------

@test "a manifest that is not its digest, a config with a wrong diff_id: load says which" {
	l="$(layer opq-twice)"
	# same size, one byte of whitespace changed: still valid JSON, so only the
	# digest can tell; cut short, not JSON: the digest is checked first all
	# the same (it was parsed first, and reported as invalid JSON)
	load_fails "$l" 'manifest sha256:' 'its content does not match the digest' -- \
		--media-type "$TAR_MT" --bad-manifest-digest
	load_fails "$l" 'manifest sha256:' 'its content does not match the digest' -- \
		--media-type "$TAR_MT" --cut-manifest
	load_fails "$l" 'config sha256:' 'its content does not match the digest' -- \
		--media-type "$TAR_MT" --cut-config
	zero="sha256:$(printf %064d 0)"
	load_fails "$l" 'diff_id mismatch' "$zero" -- --media-type "$TAR_MT" --diff-id "$zero"
}

@test "JSON nested 100k deep in a config, a manifest, an index.json: one line, no stack overflow" {
	python3 "$MKHOSTILE" deep "$BATS_TEST_TMPDIR/deep.json" 100000
	l="$(layer opq-twice)"
	for doc in config manifest index; do
		load_fails "$l" 'maximum parsing depth reached' -- --media-type "$TAR_MT" \
			"--$doc-json" "$BATS_TEST_TMPDIR/deep.json"
	done
}

# --- through a registry -----------------------------------------------------------

# push_oci OCIDIR REPO: pushed byte for byte to $REG as REPO:v1
push_oci() {
	python3 "$LBX_SYSTEM_DIR/regpush.py" "$1" latest "$REG" "$2" v1
}

@test "pull: ../ and absolute paths, a manifest not matching its digest, a wrong diff_id" {
	require_cmd docker-registry
	export HOME="$BATS_TEST_TMPDIR/home" XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/config"
	export CONTAINERS_REGISTRIES_CONF="$BATS_TEST_TMPDIR/registries.conf"
	unset REGISTRY_AUTH_FILE
	mkdir -p "$HOME" "$XDG_CONFIG_HOME"
	: >"$CONTAINERS_REGISTRIES_CONF"
	start_registry "$BATS_TEST_TMPDIR/reg"
	REG="127.0.0.1:$(cat "$BATS_TEST_TMPDIR/reg/port")"

	push_oci "$(oci_of "$(layer dotdot evil)" --media-type "$TAR_MT")" h/dotdot
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/h/dotdot:v1"
	assert_one_line_error "$REG/h/dotdot:v1" 'ok/../../evil' '".." components are not allowed'
	host_untouched

	push_oci "$(oci_of "$(layer absolute "$HOSTDIR/abs-evil")" --media-type "$TAR_MT")" h/abs
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/h/abs:v1"
	assert_success
	[ ! -e "$HOSTDIR/abs-evil" ] || fail "written at the host path"

	zero="sha256:$(printf %064d 0)"
	push_oci "$(oci_of "$(layer opq-twice)" --media-type "$TAR_MT" --diff-id "$zero")" h/diff
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/h/diff:v1"
	assert_one_line_error "$REG/h/diff:v1" 'diff_id mismatch' "$zero"

	# the registry's copy of a manifest damaged (valid JSON, other bytes)
	oci="$(oci_of "$(layer opq-twice)" --media-type "$TAR_MT" --ref latest)"
	push_oci "$oci" h/man
	d="$(jq -r '.manifests[0].digest' "$oci/index.json" | cut -c8-)"
	f="$BATS_TEST_TMPDIR/reg/storage/docker/registry/v2/blobs/sha256/${d:0:2}/$d/data"
	[ -f "$f" ] || fail "no manifest blob at $f"
	python3 -c 'import sys; p = sys.argv[1]; b = open(p, "rb").read(); open(p, "wb").write(b.replace(b"\", \"", b"\",\t\"", 1))' "$f"
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/h/man:v1"
	assert_one_line_error "$REG/h/man:v1" "sha256:$d" "mismatch"
	stop_registry "$BATS_TEST_TMPDIR/reg"
	[ "$(lbx images -q | wc -l)" = 1 ] || fail "images: $(lbx images)"
}

# --- devices and setuid in a box -------------------------------------------------

@test "device nodes and setuid files in a box: the root is nodev and nosuid" {
	[ -x "${LBX_BUSYBOX:-/bin/busybox}" ] || skip "no static busybox (busybox-static)"
	[ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable"
	r="$BATS_TEST_TMPDIR/rootfs"
	busybox_rootfs "$r"
	tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$BATS_TEST_TMPDIR/bb.tar" .
	l="$(layer devices "$BATS_TEST_TMPDIR/bb.tar")"
	lbx import -q --change 'ENV PATH=/bin' "$l" localhost/devs:1 >/dev/null
	run --separate-stderr lbx run --rm localhost/devs:1 sh -c '
		stat -c "%F %t,%T" /mem /zero; head -c 1 /mem >/dev/null 2>&1 && echo mem-open;
		head -c 1 /zero >/dev/null 2>&1 && echo zero-open;
		stat -c "%a" /suid/busybox;
		while read -r _ _ _ _ mp opts _; do [ "$mp" = / ] && echo "root-opts $opts"; done </proc/self/mountinfo; true'
	assert_success
	assert_line "character special file 1,1"
	assert_line "4755"
	[[ "$output" != *mem-open* && "$output" != *zero-open* ]] || fail "a device node opened: $output"
	opts="$(grep '^root-opts' <<<"$output")"
	[[ "$opts" == *nodev* && "$opts" == *nosuid* ]] || fail "box root: $opts"
	# a user without privileges gains none from the setuid copy of busybox
	run --separate-stderr lbx run --rm -u 1000 localhost/devs:1 /suid/busybox id -u
	if [ "$status" -eq 0 ]; then
		[ "$output" = 1000 ] || fail "setuid took effect: $output"
	else
		[[ "$stderr" == *1000* ]] || fail "run -u 1000: $stderr"
	fi
}

@test "a 200,000-deep path: import, mount, every level there, check clean; in a box root, writes past PATH_MAX get ENAMETOOLONG" {
	# one pax entry "a/a/.../f", its directories implied: 400 KB of path
	run --separate-stderr lbx import -q "$(layer deep-path 200000)" localhost/deep:1
	assert_success
	mount_image localhost/deep:1
	[ "$(find "$MNT" | wc -l)" -eq 200002 ] || fail "levels seen: $(find "$MNT" | wc -l)"
	lbx umount "$MNT"
	MNT=
	run --separate-stderr lbx system check --verify
	assert_success
	assert_contains "$output" "no problems found"
	# a box root over a 3,000-deep image: paths in its upper dir are made
	# from the root, so a write deeper than PATH_MAX fails with a clear
	# errno and the daemon goes on
	run --separate-stderr lbx import -q "$(layer deep-path 3000)" localhost/deep:2
	assert_success
	id="$(lbx create localhost/deep:2 true)"
	MNT="$(lbx mount "$id")"
	[ "$(find "$MNT" | wc -l)" -eq 3002 ] || fail "levels seen in the box: $(find "$MNT" | wc -l)"
	run bash -c 'cd "$1/$(printf "a/%.0s" $(seq 1000))" && echo x >near && cat near' sh "$MNT"
	assert_success
	[ "$output" = x ]
	run bash -c 'cd "$1/$(printf "a/%.0s" $(seq 1500))" && cd "$(printf "a/%.0s" $(seq 1500))" && echo y >far' sh "$MNT"
	assert_failure
	assert_contains "$output" "File name too long"
	[ "$(cat "$MNT/$(printf 'a/%.0s' $(seq 1000))near")" = x ] || fail "the daemon stopped answering"
	lbx umount "$MNT"
	MNT=
	# the near write is in the upper dir, and comes back after a remount
	MNT="$(lbx mount "$id")"
	[ "$(cat "$MNT/$(printf 'a/%.0s' $(seq 1000))near")" = x ] || fail "lost across a remount"
	lbx umount "$MNT"
	MNT=
	host_untouched
}
