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

# renameat2(RENAME_EXCHANGE) for in_box scripts: python3 -c "$XCHG_PY" A B
# (os.rename has no flags, and not every mv(1) has --exchange)
XCHG_PY='import ctypes, os, sys
l = ctypes.CDLL(None, use_errno=True)
if l.renameat2(-100, os.fsencode(sys.argv[1]), -100, os.fsencode(sys.argv[2]), 2) != 0:
    sys.exit(os.strerror(ctypes.get_errno()))'

@test "box mount: RENAME_EXCHANGE of files, directories, lower and upper names, kept across a remount" {
	export B LBX_BOX_MOUNT FIXTURE_NAME XCHG_PY
	run in_box 'cd "$B/mnt" || exit 9
		x() { python3 -c "$XCHG_PY" "$@" && echo "xchg $1 $2"; }
		x etc/passwd etc/group                  # lower file <-> lower file
		echo upper >upfile; x upfile etc/motd   # upper file <-> lower file
		x usr/share/doc "etc/with space"        # lower dir with content <-> lower file
		mkdir newdir; echo z >newdir/z
		x newdir usr/lib                        # upper dir <-> lower dir with content
		echo more >>etc/removeme
		x etc/removeme bin/cat                  # copied-up file <-> lower symlink
		x etc/nothing etc/motd; echo "missing=$?"'
	assert_success
	assert_line "missing=1"
	[ "$(grep -c '^xchg ' <<<"$output")" = 5 ] || fail "not every exchange worked: $output"
	show='cd "$B/mnt" || exit 9
		echo "passwd=$(head -1 etc/passwd)"; echo "group=$(head -1 etc/group)"
		echo "motd=$(cat etc/motd)"; echo "upfile=$(cat upfile)"
		echo "space=$(cat "etc/with space/pkg/NEW")"; echo "doc=$(cat usr/share/doc)"
		echo "lib=$(ls -a usr/lib | tr "\n" " ")"; echo "newdir=$(ls newdir | tr "\n" " ")"
		echo "big=$(stat -c %s newdir/big.bin)"
		echo "cat=$(readlink etc/removeme)"; echo "bin-cat=$(cat bin/cat | tr "\n" " ")"
		echo "types=$(ls -F etc usr/share | grep -E "^(with space|doc)" | tr "\n" " ")"
		echo "dups=$(for d in etc usr usr/share bin .; do ls -a $d | sort | uniq -d; done | tr "\n" " ")"
		ls -R etc usr bin newdir upfile | md5sum'
	run in_box "$show"
	assert_success
	first="$output"
	assert_line "passwd=root:x:0:"
	assert_line "group=root:x:0:0:root:/root:/bin/sh"
	assert_line "motd=upper"
	assert_line "upfile=welcome to layer 2"
	assert_line "space=new after opaque"
	assert_line "doc=space"
	assert_line "lib=. .. z "
	assert_line "newdir=big.bin "
	assert_line "big=3145728"
	assert_line "cat=busybox"
	assert_line "bin-cat=re-created in layer 3 more "
	assert_line "types=with space/ doc "
	assert_line "dups="
	[ -f "$B/upper/usr/lib/.wh..wh..opq" ] || fail "usr/lib (an upper dir over a lower one) is not opaque"
	run find "$B/upper" -name ".wh.*" ! -name ".wh..wh..opq"
	[ -z "$output" ] || fail "an exchange needs no whiteout: $output"
	# a new mount over the same upper dir shows the same
	run in_box "$show"
	assert_success
	diff -u <(echo "$first") <(echo "$output") >&2 || fail "the exchanges changed across a remount"
	run ls -A "$B/work"
	[ -z "$output" ] || fail "work dir not empty: $output"
}

@test "box mount: a directory with lower content moves by rename, over an emptied lower dir, kept across a remount" {
	export B LBX_BOX_MOUNT FIXTURE_NAME
	run in_box 'cd "$B/mnt" || exit 9
		echo more >>usr/share/doc/pkg/NEW     # copied up, nested
		rm usr/share/hl-b                     # a whiteout inside
		echo new >usr/share/many/new          # an upper-only name inside
		rm opt/replaced                       # the target: a lower dir, emptied
		python3 -c "import os; os.rename(\"usr/share\", \"opt\")" && echo renamed'
	assert_success
	assert_line renamed
	show='cd "$B/mnt" || exit 9
		echo "usr=$(ls usr | tr "\n" " ")"
		echo "NEW=$(cat opt/doc/pkg/NEW | tr "\n" " ")"
		echo "hl=$(cat opt/hl-a) $(ls opt/hl-b 2>&1 >/dev/null | grep -c "No such")"
		echo "many=$(ls opt/many | wc -l) $(cat opt/many/new) $(cat opt/many/f0019 | wc -l)"
		echo "leak=$(ls opt | grep -c replaced)"
		find usr opt | sort | md5sum'
	run in_box "$show"
	assert_success
	first="$output"
	assert_line "usr=bin lib "
	assert_line "NEW=new after opaque more "
	assert_line "hl=hard linked content 1"
	assert_line "many=501 new 20"
	assert_line "leak=0"
	[ -f "$B/upper/usr/.wh.share" ] || fail "no whiteout for the old name"
	[ ! -e "$B/upper/.wh.opt" ] || fail "the new name's whiteout was left"
	[ -f "$B/upper/opt/.wh..wh..opq" ] || fail "the moved dir is not opaque"
	run find "$B/upper/opt" -name ".wh.*" ! -name ".wh..wh..opq"
	[ -z "$output" ] || fail "whiteouts left in the opaque moved dir: $output"
	run in_box "$show"
	assert_success
	diff -u <(echo "$first") <(echo "$output") >&2 || fail "the moved dir changed across a remount"
	run ls -A "$B/work"
	[ -z "$output" ] || fail "work dir not empty: $output"
}

@test "box mount: mv of a lower directory renames it (no EXDEV copy); one holding devices gets EXDEV" {
	export B LBX_BOX_MOUNT FIXTURE_NAME
	run in_box 'cd "$B/mnt" || exit 9
		before=$(stat -c %i etc)
		mv etc etc2; echo "mv=$?"
		# a copy by mv(1) would make a new directory, with a new number
		echo "same-ino=$([ "$(stat -c %i etc2)" = "$before" ] && echo yes)"
		echo "etc=$(ls etc 2>&1 | grep -c "No such") motd=$(cat etc2/motd)"
		python3 -c "import os; os.rename(\"opt\", \"opt2\")"; echo "py=$?"
		python3 -c "
import errno, os
try:
    os.rename(\"dev\", \"dev2\")
except OSError as e:
    print(\"dev=\" + errno.errorcode[e.errno])"
		echo "devs=$(ls dev | tr "\n" " ")"'
	assert_success
	assert_line "mv=0"
	assert_line "same-ino=yes"
	assert_line "etc=1 motd=welcome to layer 2"
	assert_line "py=0"
	assert_line "dev=EXDEV"
	assert_line "devs=loop9 null "
	[ ! -e "$B/upper/dev" ] || fail "a refused move copied something up"
}

# FSX_RUNS: "DIR SEED..." per line: lbx-fsstress runs each seed in turn on
# DIR (a directory of the image, so the first change of each name is a
# copy-up), continuing from the tree the previous seed left. Seeds that
# found bugs in fs/ (each from a fresh box, by bench/soak):
#   1005  etc: link(2) of a copied-up image file, then stat: one link shown
#         (the source's attributes, cached for a day while it was lower)
FSX_RUNS='etc 1005 2
usr/share/doc 3 4
opt 5'
FSX_OPS=1200

# fsx_run ROOT: the runs under ROOT; each DIR's final model goes to
# $B/fsx-<DIR with / as _>.dump, the control's to ...-ctl.dump
fsx_run() {
	local root="$1" suffix="$2" dir seeds s
	while read -r dir seeds; do
		for s in $seeds; do
			"$LBX_FSSTRESS" -s "$s" -n "$FSX_OPS" -o "$B/fsx-${dir//\//_}$suffix.dump" "$root/$dir" || return 1
		done
	done <<<"$FSX_RUNS"
}

@test "box mount: lbx-fsstress (random operations checked against a model) on image dirs, kept across a remount; the same on a plain dir" {
	[ -x "${LBX_FSSTRESS:-}" ] || skip "lbx-fsstress not built"
	export B LBX_BOX_MOUNT FIXTURE_NAME LBX_FSSTRESS FSX_RUNS FSX_OPS
	export -f fsx_run
	mkdir "$B/ctl"
	# the control starts from the same trees, copied out of the box
	run in_box 'cd "$B/mnt" && while read -r dir seeds; do
			mkdir -p "$B/ctl/$(dirname "$dir")" && cp -a "$dir" "$B/ctl/$dir" || exit 1
		done <<<"$FSX_RUNS"'
	assert_success
	run fsx_run "$B/ctl" -ctl
	[ "$status" -eq 0 ] || fail "the model fails on a plain directory (a bug of lbx-fsstress):" "$output"
	run in_box 'fsx_run "$B/mnt" ""'
	[ "$status" -eq 0 ] || fail "lbx-fsstress on the box:" "$output"
	# the same operations, the same results: the box ends where the plain dir does
	local dir seeds
	while read -r dir seeds; do
		diff -u "$B/fsx-${dir//\//_}-ctl.dump" "$B/fsx-${dir//\//_}.dump" >&2 ||
			fail "$dir: the box and the plain dir end differently"
	done <<<"$FSX_RUNS"
	# persistence: a new mount over the upper dir shows the final trees
	run in_box 'while read -r dir seeds; do
			"$LBX_FSSTRESS" -C "$B/fsx-${dir//\//_}.dump" "$B/mnt/$dir" || exit 1
		done <<<"$FSX_RUNS"'
	[ "$status" -eq 0 ] || fail "the trees changed across a remount:" "$output"
	run ls -A "$B/work"
	[ -z "$output" ] || fail "work dir not empty: $output"
}

@test "box mount: an rmdir that fails in the upper dir brings no lower child back" {
	export B LBX_BOX_MOUNT FIXTURE_NAME
	# usr/share/doc/pkg shows one lower name, NEW; once it is deleted the
	# upper pkg holds only its whiteout. A hidden name rmdir(2) cannot
	# remove (a directory named like a whiteout, planted on the host) makes
	# the directory's removal fail in the upper dir: it must not have taken
	# the whiteout with it (it did: rmdir said ENOTEMPTY and NEW was back).
	run in_box 'cd "$B/mnt" || exit 9
		rm usr/share/doc/pkg/NEW || exit 8
		mkdir -p "$B/upper/usr/share/doc/pkg/.wh.zz/keep"
		rmdir usr/share/doc/pkg; echo "rmdir=$?"
		echo "NEW=$(cat usr/share/doc/pkg/NEW 2>&1 | grep -c "new after")"
		echo "pkg=$(ls -A usr/share/doc/pkg 2>/dev/null | tr "\n" " ")"'
	assert_success
	assert_line "NEW=0"
	assert_line "pkg="
	run in_box 'cd "$B/mnt" && echo "NEW=$(cat usr/share/doc/pkg/NEW 2>&1 | grep -c "new after")"'
	assert_line "NEW=0"
	run ls -A "$B/work"
	[ -z "$output" ] || fail "work dir not emptied at mount: $output"
}

# Prints "create" or "moved_to": how NAME first arrived in DIR (inotify),
# after touching READY. python3 -c "$ARRIVAL_PY" DIR NAME READY
ARRIVAL_PY='import ctypes, os, struct, sys
l = ctypes.CDLL(None, use_errno=True)
fd = l.inotify_init1(0)
l.inotify_add_watch(fd, os.fsencode(sys.argv[1]), 0x100 | 0x80)
open(sys.argv[3], "w").close()
while True:
    buf, at = os.read(fd, 65536), 0
    while at < len(buf):
        wd, mask, cookie, n = struct.unpack_from("iIII", buf, at)
        name = buf[at + 16:at + 16 + n].rstrip(b"\0").decode()
        at += 16 + n
        if name == sys.argv[2]:
            print("moved_to" if mask & 0x80 else "create")
            sys.exit(0)'

@test "box mount: a directory made over a deleted lower one arrives in the upper dir whole (opaque) by a rename" {
	export B LBX_BOX_MOUNT FIXTURE_NAME ARRIVAL_PY
	# mkdir then the opaque marker left a moment (a crash) where the new
	# directory showed the deleted one's children; made in the work dir
	# and renamed into place, it never exists there without its marker
	run in_box 'cd "$B/mnt" || exit 9
		rm -r usr/share/doc || exit 8
		python3 -c "$ARRIVAL_PY" "$B/upper/usr/share" doc "$B/ready" >"$B/arrival" &
		while [ ! -e "$B/ready" ]; do sleep 0.01; done
		mkdir usr/share/doc; echo "mkdir=$?"
		wait
		echo "arrival=$(cat "$B/arrival")"
		echo "doc=$(ls -A usr/share/doc | wc -l)"'
	assert_success
	assert_line "mkdir=0"
	assert_line "arrival=moved_to"
	assert_line "doc=0"
	[ -f "$B/upper/usr/share/doc/.wh..wh..opq" ] || fail "not opaque"
	run ls -A "$B/work"
	[ -z "$output" ] || fail "work dir not empty: $output"
}
