#!/usr/bin/env bats
# A box's read-write root (fs/box.c, through the tests/lbx-box-mount
# harness): the same operations on the mount and on the image unpacked by
# umoci give the same results, the upper dir keeps them across a remount,
# and deletions are OCI whiteouts in the upper dir. Everything runs in a
# user + mount namespace (unshare -rm), where the caller is root, as in a box.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	fixture_setup_file
}

setup() {
	common_setup
	require_fixture
	[ -x "${LBX_BOX_MOUNT:-}" ] || skip "lbx-box-mount not built"
	[ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable by uid $(id -u)"
	unshare -rm true 2>/dev/null || skip "unshare -rm (user namespaces) not permitted here"
	lbx load -q -i "$LBX_FIXTURE_OCI"
	B="$BATS_TEST_TMPDIR/box"
	mkdir -p "$B/upper" "$B/work" "$B/mnt"
}

teardown() {
	common_teardown
}

# in_box SCRIPT: runs SCRIPT in a user+mount namespace with the box mounted
# at $B/mnt (the mount dies with the namespace)
in_box() {
	unshare -rm bash -c '
		"$LBX_BOX_MOUNT" "$LAZYBOX_ROOT" "$FIXTURE_NAME" "$B/upper" "$B/work" "$B/mnt" 2>"$B/daemon.log" &
		for i in $(seq 100); do mountpoint -q "$B/mnt" && break; sleep 0.05; done
		mountpoint -q "$B/mnt" || { echo "box did not mount: $(cat "$B/daemon.log")" >&2; exit 3; }
		( '"$1"' )
		rc=$?
		umount "$B/mnt" || umount -l "$B/mnt"
		wait
		exit $rc'
}

unpacked() {
	local ref="$BATS_TEST_TMPDIR/ref"
	umoci unpack --rootless --image "$LBX_FIXTURE_OCI:$FIXTURE_REF" "$ref" >/dev/null 2>&1 ||
		fail "umoci unpack failed"
	echo "$ref/rootfs"
}

@test "box mount: the same operations give the same results as a plain directory" {
	export B LBX_BOX_MOUNT FIXTURE_NAME LBX_SYSTEM_DIR DUMPTREE
	ref="$(unpacked)"
	run unshare -rm "$LBX_SYSTEM_DIR/boxfs-ops.sh" "$ref"
	assert_success
	want="$output"
	run in_box '"$LBX_SYSTEM_DIR/boxfs-ops.sh" "$B/mnt"'
	assert_success
	got="$output"
	diff -u <(echo "$want") <(echo "$got") >&2 || fail "transcripts differ (- plain dir, + box)"
	# and the resulting trees, without owners and times
	# Left out: devices (umoci --rootless makes empty files of them) and
	# /home/user's contents (owned by uid 1000, which this one-uid user
	# namespace cannot map: the kernel keeps even its root out).
	strip() {
		awk -F'\t' -v OFS='\t' '$1 ~ /^\/dev\// || $1 ~ /^\/home\/user\// { next }
			{ $4 = "-"; $5 = "-"; $8 = "-"; if ($2 == "d") $6 = 0; print }'
	}
	unshare -rm python3 "$DUMPTREE" "$ref" | normalize_dump | strip >"$BATS_TEST_TMPDIR/want.dump"
	in_box 'python3 "$DUMPTREE" "$B/mnt"' | normalize_dump | strip >"$BATS_TEST_TMPDIR/got.dump"
	diff -u "$BATS_TEST_TMPDIR/want.dump" "$BATS_TEST_TMPDIR/got.dump" >&2 ||
		fail "trees differ after the operations (- plain dir, + box)"
	# persistence: a new mount over the same upper dir shows the same tree
	in_box 'python3 "$DUMPTREE" "$B/mnt"' | normalize_dump | strip >"$BATS_TEST_TMPDIR/again.dump"
	diff -u "$BATS_TEST_TMPDIR/got.dump" "$BATS_TEST_TMPDIR/again.dump" >&2 ||
		fail "the tree changed across a remount"
}

@test "box mount: the upper dir is an OCI layer diff" {
	export B LBX_BOX_MOUNT FIXTURE_NAME LBX_SYSTEM_DIR DUMPTREE
	in_box 'cd "$B/mnt" && rm etc/motd && rm -r usr/share && mkdir usr/share && echo n > new &&
		echo x >> etc/passwd'
	[ -f "$B/upper/etc/.wh.motd" ] || fail "no whiteout for etc/motd"
	[ ! -s "$B/upper/etc/.wh.motd" ] || fail "whiteouts are empty files"
	[ -f "$B/upper/usr/share/.wh..wh..opq" ] || fail "a re-made deleted dir must be opaque"
	[ -f "$B/upper/new" ] && [ -f "$B/upper/etc/passwd" ]
	[ ! -e "$B/upper/bin" ] || fail "untouched lower dirs must not be copied up"
	run ls "$B/work"
	[ -z "$output" ] || fail "work dir not empty: $output"
}

@test "box mount: names starting with .wh. cannot be made (EPERM) nor seen" {
	export B LBX_BOX_MOUNT FIXTURE_NAME
	run in_box 'cd "$B/mnt"; touch .wh.x; echo "touch=$?"; mkdir .wh.d; echo "mkdir=$?";
		rm etc/motd; ls -a etc | grep -c "^\.wh\." ; ls etc/.wh.motd; echo "ls=$?"'
	assert_contains "$output" "touch=1"
	assert_contains "$output" "mkdir=1"
	assert_contains "$output" "ls=2"
	assert_contains "$output" "Operation not permitted"
}

@test "box mount: findings of its first review (each failed before its fix)" {
	export B LBX_BOX_MOUNT FIXTURE_NAME
	# a half-done copy-up left by a killed daemon must not block copy-ups
	touch "$B/work/copyup-1" "$B/work/copyup-2"
	run in_box 'cd "$B/mnt" || exit 9
		# an open file stays readable and stat-able after unlink / rename over it
		exec 3<etc/motd; rm etc/motd; echo "unlinked-read=$(cat <&3 | wc -c)"
		stat -L -c "unlinked-stat=%s" /proc/self/fd/3
		echo one >f1; echo two >f2; exec 4<f1; mv f2 f1; echo "replaced-read=$(cat <&4)"
		# concurrent appends to one lower file: one copy-up, no write lost
		before=$(stat -c %s usr/bin/big 2>/dev/null || stat -c %s bin/busybox)
		t=bin/busybox; [ -f usr/bin/big ] && t=usr/bin/big
		(echo AAAA >>$t) & (echo BBBB >>$t) & (echo CCCC >>$t) & wait
		echo "grew=$(( $(stat -c %s $t) - before ))"
		# a rename that fails (a device cannot be copied up here) keeps the target
		mv dev/null etc/passwd 2>/dev/null; echo "rename-rc=$?"; echo "target-kept=$(test -s etc/passwd && echo yes)"
		# copy-up keeps the image xattrs
		chmod 600 etc/xattr-file
		python3 -c "import os; print(\"xattr=\" + os.getxattr(\"etc/xattr-file\", \"user.test\").decode())"
		# set and remove an xattr on a lower file (copied up on the way)
		python3 -c "import os; p=\"etc/group\"; os.setxattr(p, \"user.new\", b\"v\"); print(\"set=\" + os.getxattr(p, \"user.new\").decode()); os.removexattr(p, \"user.new\"); print(\"removed=%s\" % (\"user.new\" not in os.listxattr(p)))"
		# readdir and stat agree on the number of a copied-up name
		python3 -c "import os; e=[x for x in os.scandir(\"etc\") if x.name == \"xattr-file\"][0]; print(\"ino-agree=%s\" % (e.inode() == os.stat(\"etc/xattr-file\").st_ino))"
		cd /'
	assert_success
	[[ "$output" =~ unlinked-read=[1-9] ]] || fail "unlinked file unreadable: $output"
	[[ "$output" =~ unlinked-stat=[1-9] ]] || fail "unlinked file not stat-able: $output"
	assert_line "replaced-read=one"
	assert_line "grew=15"
	assert_line "rename-rc=1"
	assert_line "target-kept=yes"
	assert_line "xattr=hello"
	assert_line "ino-agree=True"
	assert_line "set=v"
	assert_line "removed=True"
	run ls -A "$B/work"
	[ -z "$output" ] || fail "work dir not cleaned: $output"
}
