#!/usr/bin/env bats
# lazybox system check: an fsck of the store. Each test damages a fresh
# store in one way and checks what is reported, the exit status, and what
# --repair does and does not touch.

bats_require_minimum_version 1.5.0
load helpers

IMG=localhost/chk:latest

setup_file() {
	# a one-layer image: big.bin (64 KiB, a blob file), etc/small (inline)
	local src="$BATS_FILE_TMPDIR/src"
	mkdir -p "$src/etc"
	head -c 65536 /dev/urandom >"$src/big.bin"
	echo small >"$src/etc/small"
	tar -C "$src" -cf "$BATS_FILE_TMPDIR/chk.tar" .
}

setup() {
	common_setup
	lbx import -q "$BATS_FILE_TMPDIR/chk.tar" chk >/dev/null
	BIG_HEX="$(sha256sum "$BATS_FILE_TMPDIR/src/big.bin" | cut -d' ' -f1)"
	BIG_BLOB="$LAZYBOX_ROOT/blobs/sha256/${BIG_HEX:0:2}/$BIG_HEX"
	[ -f "$BIG_BLOB" ] || fail "big.bin's content is not in a blob file: $BIG_BLOB"
	MOUNTS="$BATS_TEST_TMPDIR/mounts.list"
	: >"$MOUNTS"
}

teardown() {
	local d
	while read -r d; do
		mountpoint -q "$d" 2>/dev/null && { lbx umount "$d" || fusermount3 -u -z "$d" || umount -l "$d"; } >/dev/null 2>&1
	done <"$MOUNTS"
	common_teardown
}

# the state column of box NAME, read from the database itself (ps would
# record a dead supervisor's box as exited by looking)
box_state() {
	sqlite3 "$LAZYBOX_ROOT/store.db" "SELECT state FROM boxes WHERE name = '$1'"
}

@test "check: a clean store exits 0, in text and json" {
	run --separate-stderr lbx system check
	assert_success
	assert_contains "${lines[-1]}" "no problems found"
	[ "${#lines[@]}" -eq 1 ] || fail "a clean store prints only the summary: $output"
	run --separate-stderr lbx system check --verify --format json
	assert_success
	jq -e '.Found == 0 and .Problems == [] and .Blobs == 1 and .InlineBlobs >= 1 and .BytesHashed >= 65536' \
		<<<"$output" >/dev/null || fail "json: $output"
}

@test "check: a missing blob file is reported with its image; --repair leaves its rows" {
	rm -f "$BIG_BLOB"
	run --separate-stderr lbx system check
	[ "$status" -eq 1 ] || fail "want 1, got $status: $output $stderr"
	assert_contains "$output" "blob sha256:$BIG_HEX: its file blobs/sha256/${BIG_HEX:0:2}/$BIG_HEX"
	assert_contains "$output" "image $IMG"
	assert_contains "${lines[-1]}" "1 problem found, 0 repaired"
	# nothing can bring the bytes back: repair reports, and removes no row
	run --separate-stderr lbx system check --repair
	[ "$status" -eq 1 ] || fail "repair cannot fix a lost content, want 1: $output"
	run lbx images -q
	assert_success
	[ -n "$output" ] || fail "repair removed the image"
	[ "$(sqlite3 "$LAZYBOX_ROOT/store.db" "SELECT count(*) FROM blobs WHERE hex(digest) = upper('$BIG_HEX')")" = 1 ] ||
		fail "repair removed the blob row"
}

@test "check: corrupt bytes are found by --verify only, and never deleted" {
	chmod u+w "$BIG_BLOB"
	printf 'XYZ' | dd of="$BIG_BLOB" bs=1 seek=100 conv=notrunc 2>/dev/null
	chmod 0444 "$BIG_BLOB"
	run --separate-stderr lbx system check
	assert_success
	assert_contains "$output" "no problems found"
	run --separate-stderr lbx system check --verify
	[ "$status" -eq 1 ] || fail "want 1, got $status: $output"
	assert_contains "$output" "blob sha256:$BIG_HEX: digest mismatch"
	assert_contains "$output" "image $IMG"
	run --separate-stderr lbx system check --verify --repair
	[ "$status" -eq 1 ] || fail "a damaged content stays a problem after --repair: $output"
	[ -f "$BIG_BLOB" ] || fail "--repair deleted a file a row names"
	run lbx system check --verify --format json
	jq -e --arg d "blob sha256:$BIG_HEX" '.Found == 1 and .Problems[0].Kind == "blob" and
		.Problems[0].Object == $d and .Problems[0].Repaired == null' <<<"$output" >/dev/null ||
		fail "json: $output"
}

@test "check: an orphan blob file and a tmp/ leftover are reported, --repair removes them, the image still reads" {
	orphan_hex="$(printf 'no row names me' | sha256sum | cut -d' ' -f1)"
	orphan="$LAZYBOX_ROOT/blobs/sha256/${orphan_hex:0:2}/$orphan_hex"
	mkdir -p "${orphan%/*}"
	printf 'no row names me' >"$orphan"
	printf 'half a blob' >"$LAZYBOX_ROOT/tmp/blob-Ab12Cd"
	run --separate-stderr lbx system check
	[ "$status" -eq 1 ] || fail "want 1, got $status: $output"
	assert_contains "$output" "blobs/sha256/${orphan_hex:0:2}/$orphan_hex: no blob row names this file"
	assert_contains "$output" "tmp/blob-Ab12Cd: left in tmp/"
	assert_contains "${lines[-1]}" "2 problems found, 0 repaired"
	[ -f "$orphan" ] && [ -f "$LAZYBOX_ROOT/tmp/blob-Ab12Cd" ] || fail "check without --repair removed files"
	run --separate-stderr lbx system check --repair
	assert_success
	assert_contains "$output" "repaired: removed"
	assert_contains "${lines[-1]}" "2 problems found, 2 repaired"
	[ ! -e "$orphan" ] || fail "orphan blob file still there"
	[ ! -e "$LAZYBOX_ROOT/tmp/blob-Ab12Cd" ] || fail "tmp leftover still there"
	[ -f "$BIG_BLOB" ] || fail "--repair removed a file a row names"
	run --separate-stderr lbx system check --verify
	assert_success
	assert_contains "$output" "no problems found"

	[ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable by uid $(id -u)"
	command -v fusermount3 >/dev/null || [ "$(id -u)" -eq 0 ] || skip "fusermount3 (fuse3) missing"
	run --separate-stderr lbx mount "$IMG"
	assert_success
	dir="${lines[-1]}"
	echo "$dir" >>"$MOUNTS"
	cmp "$BATS_FILE_TMPDIR/src/big.bin" "$dir/big.bin" || fail "big.bin reads differently after --repair"
	[ "$(cat "$dir/etc/small")" = small ]
}

@test "check: a box recorded running whose supervisor is gone is stale; --repair marks it exited" {
	require_cmd sqlite3
	lbx create --name b1 "$IMG" >/dev/null
	# a pid that is not running, and no supervisor holding the box's log
	sqlite3 "$LAZYBOX_ROOT/store.db" "UPDATE boxes SET state = 'running', pid = 4194000, pid_start = 1 WHERE name = 'b1'"
	run --separate-stderr lbx system check
	[ "$status" -eq 1 ] || fail "want 1, got $status: $output"
	assert_contains "$output" "box b1 ("
	assert_contains "$output" "recorded running (pid 4194000), but its supervisor is gone"
	[ "$(box_state b1)" = running ] || fail "check without --repair changed the box's state"
	run --separate-stderr lbx system check --repair
	assert_success
	assert_contains "$output" "repaired: marked exited"
	[ "$(box_state b1)" = exited ] || fail "state after --repair: $(box_state b1)"
	run lbx ps -a
	assert_success
	assert_contains "$output" "Exited"
	run lbx system check
	assert_success
}

@test "check: a box directory without a row is removed by --repair; a box without its directory is only reported" {
	require_cmd sqlite3
	id="$(lbx create --name b2 "$IMG")"
	stray="$LAZYBOX_ROOT/boxes/$(printf '%064d' 7)"
	mkdir -p "$stray/upper/etc"
	echo x >"$stray/upper/etc/f"
	# older than the grace a `create` in progress gets
	touch -d '2 hours ago' "$stray"
	run --separate-stderr lbx system check
	[ "$status" -eq 1 ] || fail "want 1, got $status: $output"
	assert_contains "$output" "boxes/${stray##*/}: no box row names this directory"
	run --separate-stderr lbx system check --repair
	assert_success
	[ ! -e "$stray" ] || fail "stray box dir still there"
	[ -d "$LAZYBOX_ROOT/boxes/$id/upper" ] || fail "--repair removed the dir of a box that has a row"
	# a fresh stray dir may be a create in progress: left alone
	mkdir "$LAZYBOX_ROOT/boxes/$(printf '%064d' 8)"
	run lbx system check
	assert_success
	rm -rf "${LAZYBOX_ROOT:?}/boxes/${id:?}"
	run --separate-stderr lbx system check --repair
	[ "$status" -eq 1 ] || fail "a box without its dir cannot be repaired, want 1: $output"
	assert_contains "$output" "box b2 (${id:0:12}): its directory boxes/$id is missing"
	[ "$(box_state b2)" = created ] || fail "--repair touched the box's row"
}

@test "check: layers no image uses are reported; --repair collects them as gc does" {
	require_cmd sqlite3
	src="$BATS_TEST_TMPDIR/src2"
	mkdir -p "$src"
	head -c 20000 /dev/urandom >"$src/other.bin"
	tar -C "$src" -cf "$BATS_TEST_TMPDIR/two.tar" .
	id2="$(lbx import -q "$BATS_TEST_TMPDIR/two.tar" two)"
	# what a load killed between committing its layer and its image leaves
	sqlite3 "$LAZYBOX_ROOT/store.db" "DELETE FROM names WHERE image = '$id2'; DELETE FROM image_layers WHERE image = '$id2'; DELETE FROM images WHERE id = '$id2'"
	run --separate-stderr lbx system check
	[ "$status" -eq 1 ] || fail "want 1, got $status: $output"
	assert_contains "$output" ": no image uses it"
	[[ "$output" == *"layer sha256:"* ]] || fail "the unused layer is not named: $output"
	run --separate-stderr lbx system check --repair
	assert_success
	[ "$(df_json Layers)" = 1 ] || fail "unused layer still there"
	[ -f "$BIG_BLOB" ] || fail "the used image's blob went"
	run lbx system check --verify
	assert_success
}

@test "check: while a load holds the store lock, its files are not judged, and --repair waits" {
	require_cmd flock
	printf 'half a blob' >"$LAZYBOX_ROOT/tmp/blob-Zz99Yy"
	# a load holds the lock shared for its whole run
	exec 9<"$LAZYBOX_ROOT/lock"
	flock -s 9
	run --separate-stderr lbx system check
	# --repair waits for the load, as gc does, instead of removing its files
	run -124 timeout 2 "$LAZYBOX" --root "$LAZYBOX_ROOT" system check --repair
	[ -f "$LAZYBOX_ROOT/tmp/blob-Zz99Yy" ] || fail "--repair removed a running load's file"
	run --separate-stderr lbx system check
	flock -u 9
	exec 9<&-
	assert_success
	assert_contains "$output" "A load or pull was running"
	[[ "$output" != *"blob-Zz99Yy"* ]] || fail "a running load's tmp file was reported: $output"
	run --separate-stderr lbx system check
	[ "$status" -eq 1 ] || fail "with the load gone the leftover is a problem: $output"
	assert_contains "$output" "tmp/blob-Zz99Yy"
}

@test "check: rows naming missing rows are database problems, left alone by --repair" {
	require_cmd sqlite3
	id="$(lbx images -q --no-trunc)"
	[ -n "$id" ] || fail "no image ID"
	small_hex="$(printf 'small\n' | sha256sum | cut -d' ' -f1)"
	sqlite3 "$LAZYBOX_ROOT/store.db" "DELETE FROM blobs WHERE hex(digest) = upper('$small_hex')"
	run --separate-stderr lbx system check --repair
	[ "$status" -eq 1 ] || fail "want 1, got $status: $output"
	assert_contains "$output" "file etc/small: its content has no blob row"
	assert_contains "$output" "a file of its tree has a content with no blob row"
	[ "$(lbx images -q --no-trunc)" = "$id" ] || fail "--repair removed the image"
}

@test "check: --help, an unexpected argument is a usage error (125)" {
	run lbx system check --help
	assert_success
	[[ "${lines[0]}" == "Usage: lazybox system check"* ]] || fail "${lines[0]}"
	run --separate-stderr lbx system check extra
	[ "$status" -eq 125 ]
	assert_contains "$stderr" "extra"
	run --separate-stderr lbx system check --format yaml
	[ "$status" -eq 125 ]
}
