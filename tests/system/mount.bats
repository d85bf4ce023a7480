#!/usr/bin/env bats
# lazybox mount / umount: an image as a read-only FUSE directory, checked
# entry by entry against `umoci unpack` of the same image.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	fixture_setup_file
}

setup() {
	common_setup
	require_fixture
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	[ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable by uid $(id -u) (mode 0666 needed)"
	command -v fusermount3 >/dev/null || [ "$(id -u)" -eq 0 ] || skip "fusermount3 (fuse3) missing"
	MOUNTS="$BATS_TEST_TMPDIR/mounts.list"
	: >"$MOUNTS"
}

teardown() {
	# unmount what this test mounted, whatever happened
	local d
	while read -r d; do
		mountpoint -q "$d" 2>/dev/null && { "$LAZYBOX" --root "$LAZYBOX_ROOT" umount "$d" ||
			fusermount3 -u -z "$d" || umount -l "$d"; } >/dev/null 2>&1
	done <"$MOUNTS"
	common_teardown
}

# mount_ok IMAGE [DIR]: mount, remember the mount point in $dir
mount_ok() {
	run --separate-stderr lbx mount "$@"
	assert_success
	dir="${lines[-1]}"
	echo "$dir" >>"$MOUNTS"
	mountpoint -q "$dir" || fail "mount printed $dir, which is not a mount point"
}

@test "mount: the tree equals umoci's, contents included" {
	lbx load -q -i "$LBX_FIXTURE_OCI"
	mount_ok "$FIXTURE_NAME"
	python3 "$DUMPTREE" "$dir" | normalize_dump >"$BATS_TEST_TMPDIR/mount.dump"
	diff -u "$LBX_FIXTURE_DUMP" "$BATS_TEST_TMPDIR/mount.dump" >&2 ||
		fail "mounted tree differs from umoci's (- umoci, + mount)"
}

@test "mount: read-only, xattrs, hardlinks share an inode, statfs" {
	lbx load -q -i "$LBX_FIXTURE_OCI"
	mount_ok "$FIXTURE_NAME"
	run touch "$dir/newfile"
	assert_failure
	assert_contains "$output" "Read-only file system"
	run python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.test").decode())' "$dir/etc/xattr-file"
	assert_success
	[ "$output" = hello ]
	run python3 -c 'import os,sys; print(" ".join(os.listxattr(sys.argv[1])))' "$dir/etc/xattr-file"
	[ "$output" = user.test ]
	# every name of a hardlinked file has the same inode number
	inos="$(find "$dir" -type f -links +1 -printf '%n %i\n' | sort -u)"
	[ -n "$inos" ] || fail "no hardlinked file in the fixture"
	while read -r n ino; do
		[ "$(find "$dir" -inum "$ino" | wc -l)" -eq "$n" ] || fail "inode $ino: want $n names"
	done <<<"$inos"
	run stat -f -c '%T' "$dir"
	assert_success
	# inode numbers are stable across mounts
	before="$(find "$dir" -printf '%i %p\n' | sed "s|$dir||" | sort)"
	run lbx umount "$FIXTURE_NAME"
	assert_success
	mount_ok "$FIXTURE_NAME"
	after="$(find "$dir" -printf '%i %p\n' | sed "s|$dir||" | sort)"
	[ "$before" = "$after" ] || fail "inode numbers changed across a remount"
}

@test "mount lists, mounting again reuses the mount point, umount removes it" {
	lbx load -q -i "$LBX_FIXTURE_OCI"
	mount_ok "$FIXTURE_NAME"
	first="$dir"
	mount_ok lbx-fixture
	[ "$dir" = "$first" ] || fail "second mount went to $dir, first to $first"
	run lbx mount
	assert_success
	assert_contains "$output" "$first"
	assert_contains "$output" "$FIXTURE_NAME"
	run lbx unmount lbx-fixture # Podman's other name for umount
	assert_success
	mountpoint -q "$first" && fail "unmount left $first mounted"
	[ ! -e "$first" ] || fail "default mount point $first left behind"
	run lbx mount
	[[ "$output" != *"$first"* ]] || fail "still listed: $output"
}

@test "mount at a chosen directory, umount by directory" {
	lbx load -q -i "$LBX_FIXTURE_OCI"
	mkdir "$BATS_TEST_TMPDIR/mnt"
	mount_ok "$FIXTURE_NAME" "$BATS_TEST_TMPDIR/mnt"
	[ "$dir" = "$BATS_TEST_TMPDIR/mnt" ]
	[ -x "$dir/bin/busybox" ]
	run lbx umount "$BATS_TEST_TMPDIR/mnt"
	assert_success
	! mountpoint -q "$BATS_TEST_TMPDIR/mnt"
	[ -d "$BATS_TEST_TMPDIR/mnt" ] || fail "a chosen mount point must stay"
}

@test "the mount daemon keeps none of its caller's descriptors: a pipe on fd 7 ends when mount returns" {
	lbx load -q -i "$LBX_FIXTURE_OCI"
	mkdir "$BATS_TEST_TMPDIR/mnt"
	echo "$BATS_TEST_TMPDIR/mnt" >>"$MOUNTS"
	# cat ends when every writer of its pipe is gone: the daemon, which
	# outlives mount, must not be one (as bats's own fd 3, or $(...))
	run timeout 20 bash -c '"$1" --root "$2" mount "$3" "$4" 7>&1 | cat' sh "$LAZYBOX" "$LAZYBOX_ROOT" \
		"$FIXTURE_NAME" "$BATS_TEST_TMPDIR/mnt"
	[ "$status" -eq 0 ] || fail "mount | cat ended with $status (124: the daemon held the pipe): $output"
	[ "$output" = "$BATS_TEST_TMPDIR/mnt" ] || fail "mount printed: $output"
	mountpoint -q "$BATS_TEST_TMPDIR/mnt" || fail "not mounted"
	run lbx umount "$BATS_TEST_TMPDIR/mnt"
	assert_success
}

@test "mount errors: unknown image, missing directory; rmi of a mounted image refused" {
	run --separate-stderr lbx mount nosuch:img
	assert_one_line_error nosuch
	lbx load -q -i "$LBX_FIXTURE_OCI"
	run --separate-stderr lbx mount "$FIXTURE_NAME" "$BATS_TEST_TMPDIR/does/not/exist"
	assert_one_line_error "does/not/exist"
	mount_ok "$FIXTURE_NAME"
	run --separate-stderr lbx rmi -f "$FIXTURE_NAME"
	assert_one_line_error "mounted"
	run --separate-stderr lbx umount "$FIXTURE_NAME"
	assert_success
	run --separate-stderr lbx umount "$FIXTURE_NAME"
	assert_one_line_error "not mounted"
	# a directory that is no mount: said so, not parsed as an image name
	run --separate-stderr lbx umount "$BATS_TEST_TMPDIR"
	assert_one_line_error "$BATS_TEST_TMPDIR" "not a lazybox mount"
}

@test "a killed mount daemon: umount cleans up, mount works again" {
	lbx load -q -i "$LBX_FIXTURE_OCI"
	mount_ok "$FIXTURE_NAME"
	pid="$(pgrep -u "$(id -u)" -f "lazybox .*mount $FIXTURE_NAME" | head -n1)"
	[ -n "$pid" ] || fail "no daemon process found"
	kill -9 "$pid"
	run ls "$dir"
	assert_failure
	run lbx umount "$FIXTURE_NAME"
	assert_success
	mount_ok "$FIXTURE_NAME"
	[ -x "$dir/bin/busybox" ]
}

@test "another store's mount of the same image holds nothing in this store" {
	lbx load -q -i "$LBX_FIXTURE_OCI"
	local other="$BATS_TEST_TMPDIR/other-root"
	"$LAZYBOX" --root "$other" load -q -i "$LBX_FIXTURE_OCI"
	mkdir "$BATS_TEST_TMPDIR/mnt"
	run --separate-stderr "$LAZYBOX" --root "$other" mount "$FIXTURE_NAME" "$BATS_TEST_TMPDIR/mnt"
	assert_success
	echo "$BATS_TEST_TMPDIR/mnt" >>"$MOUNTS"
	run lbx mount
	[[ "$output" != *"$BATS_TEST_TMPDIR/mnt"* ]] || fail "this store lists the other's mount: $output"
	run --separate-stderr lbx rmi "$FIXTURE_NAME"
	assert_success
	[ -x "$BATS_TEST_TMPDIR/mnt/bin/busybox" ] || fail "the other store's mount broke"
	run --separate-stderr "$LAZYBOX" --root "$other" rmi "$FIXTURE_NAME"
	assert_one_line_error mounted
	"$LAZYBOX" --root "$other" umount "$BATS_TEST_TMPDIR/mnt"
}
