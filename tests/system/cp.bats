#!/usr/bin/env bats
# lazybox cp: into and out of stopped and running boxes, Podman's naming
# rules, errors, and images whose symlinks point at host paths.

bats_require_minimum_version 1.5.0
load helpers

# A busybox image made here (as run.bats's), and a hostile one whose
# symlinks point at host paths in $BATS_FILE_TMPDIR.
setup_file() {
	local busybox="${LBX_BUSYBOX:-/bin/busybox}"
	[ -x "$busybox" ] || return 0
	local r="$BATS_FILE_TMPDIR/rootfs"
	busybox_rootfs "$r"
	export LBX_CP_ROOTFS="$r"
	export LBX_RUN_TAR="$BATS_FILE_TMPDIR/busybox.tar"
	tar --numeric-owner --owner=0 --group=0 -C "$r" -cf "$LBX_RUN_TAR" .
	# /etc: an absolute symlink to a host dir; /link: a relative one that
	# climbs out of any root to a host dir holding a secret; /tmp/esc: an
	# absolute one to the host dir
	local h="$BATS_FILE_TMPDIR/hostile"
	mkdir -p "$h/bin" "$h/tmp"
	cp -a "$r/bin/." "$h/bin/"
	export LBX_HOSTILE_TARGET="$BATS_FILE_TMPDIR/host-etc"
	export LBX_HOST_SECRET="$BATS_FILE_TMPDIR/host-secret"
	mkdir -p "$LBX_HOSTILE_TARGET" "$LBX_HOST_SECRET"
	echo TOPSECRET >"$LBX_HOST_SECRET/secret"
	ln -s "$LBX_HOSTILE_TARGET" "$h/etc"
	ln -s "../../../../../../../..$LBX_HOST_SECRET" "$h/link"
	ln -s "$LBX_HOSTILE_TARGET" "$h/tmp/esc"
	export LBX_HOSTILE_TAR="$BATS_FILE_TMPDIR/hostile.tar"
	tar --numeric-owner --owner=0 --group=0 -C "$h" -cf "$LBX_HOSTILE_TAR" .
}

setup() {
	common_setup
	[ -x "${LBX_BUSYBOX:-/bin/busybox}" ] || skip "no static busybox (busybox-static)"
	[ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable by uid $(id -u)"
	lbx import -q --change 'ENV PATH=/bin' "$LBX_RUN_TAR" bb:latest >/dev/null
	H="$BATS_TEST_TMPDIR/host"
	OUT="$BATS_TEST_TMPDIR/out"
	mkdir -p "$H" "$OUT"
	# a tree: files, a nested dir, a relative symlink, a fifo, odd modes
	mkdir -p "$H/tree/sub/deep"
	echo alpha >"$H/tree/a.txt"
	printf '#!/bin/sh\necho x\n' >"$H/tree/sub/x.sh"
	echo deep >"$H/tree/sub/deep/y"
	ln -s a.txt "$H/tree/link"
	mkfifo "$H/tree/fifo"
	chmod 0750 "$H/tree/sub/x.sh"
	chmod 0640 "$H/tree/a.txt"
	chmod 0751 "$H/tree/sub"
	touch -h -d @1600000000 "$H/tree/a.txt" "$H/tree/sub/x.sh" "$H/tree/link" "$H/tree/sub/deep" "$H/tree/sub"
	echo file-content >"$H/f.txt"
	chmod 0604 "$H/f.txt"
	touch -d @1500000000 "$H/f.txt"
}

teardown() {
	local id
	for id in $(lbx ps -q 2>/dev/null); do lbx kill "$id" >/dev/null 2>&1 || true; done
	for id in $(lbx ps -aq 2>/dev/null); do lbx wait "$id" >/dev/null 2>&1 || true; done
	common_teardown
}

# same_tree A B [secs]: same names, types, modes, mtimes (to the second
# with secs: all ustar holds) and contents below A and B (not of A and B
# themselves: a "/." copy fills an existing dir)
same_tree() {
	diff -r --no-dereference -x fifo "$1" "$2" >&2 || fail "contents of $1 and $2 differ"
	local ma mb t='%T@'
	[ "${3:-}" = secs ] && t='%Ts'
	ma="$(cd "$1" && find . -mindepth 1 ! -type l -printf "%p %y %m $t\n" | sort)"
	mb="$(cd "$2" && find . -mindepth 1 ! -type l -printf "%p %y %m $t\n" | sort)"
	[ "$ma" = "$mb" ] || fail "metadata differs:" "$ma" "---" "$mb"
	ma="$(cd "$1" && find . -type l -printf '%p %l\n' | sort)"
	mb="$(cd "$2" && find . -type l -printf '%p %l\n' | sort)"
	[ "$ma" = "$mb" ] || fail "symlinks differ:" "$ma" "---" "$mb"
}

# refused_on_terminal ARGS...: `lazybox ARGS` with a terminal as its
# standard input and output (script(1)'s pty) refuses, naming it, with 125
refused_on_terminal() {
	require_cmd script
	run timeout 60 script -qec "\"$LAZYBOX\" --root \"$LAZYBOX_ROOT\" $*; echo rc=\$?" /dev/null </dev/null
	assert_contains "$output" "terminal"
	assert_contains "$output" "rc=125"
}

@test "cp into a stopped box: a file and a tree (symlink, nested dirs, fifo, modes, times)" {
	lbx create --name c1 bb sh -c 'cat /new.txt; stat -c "%n %a %u %Y" /new.txt /tree /tree/a.txt /tree/sub /tree/sub/x.sh;
		readlink /tree/link; cat /tree/sub/deep/y; test -p /tree/fifo && echo fifo; /tree/sub/x.sh' >/dev/null
	run lbx cp "$H/f.txt" c1:/new.txt
	assert_success
	[ -z "$output" ] || fail "cp prints nothing: $output"
	run lbx cp "$H/tree" c1:/
	assert_success
	run lbx start -a c1
	assert_success
	assert_line "file-content"
	assert_line "/new.txt 604 0 1500000000"
	assert_line "/tree/a.txt 640 0 1600000000"
	assert_line "/tree/sub 751 0 1600000000"
	assert_line "/tree/sub/x.sh 750 0 1600000000"
	assert_line "a.txt"
	assert_line "deep"
	assert_line "fifo"
	assert_line "x"
}

@test "cp out of a stopped box: the tree comes back the same, owned by the caller" {
	lbx create --name c2 bb true >/dev/null
	lbx cp "$H/tree" c2:/tmp
	run lbx cp c2:/tmp/tree "$OUT"
	assert_success
	same_tree "$H/tree" "$OUT/tree"
	[ -L "$OUT/tree/link" ] && [ -p "$OUT/tree/fifo" ] || fail "symlink or fifo not kept: $(ls -l "$OUT/tree")"
	[ -z "$(find "$OUT" ! -user "$(id -u)")" ] || fail "not owned by the caller: $(ls -ln "$OUT/tree")"
	# a file of the image's, under a new name
	run lbx cp c2:/etc/passwd "$OUT/pw"
	assert_success
	cmp "$LBX_CP_ROOTFS/etc/passwd" "$OUT/pw"
}

@test "cp BOX:PATH - writes a tar: a tree under its name, \"/.\" as contents, long names, owners as the box sees them" {
	lbx create --name t1 bb true >/dev/null
	lbx cp "$H/tree" t1:/tmp
	# a path past ustar's 100 characters, and a link target past them too
	local long="d$(printf '%0120d' 0)/f$(printf '%0110d' 0)"
	mkdir -p "$H/long/$(dirname "$long")"
	echo far >"$H/long/$long"
	ln -s "$long" "$H/long/far-link"
	lbx cp "$H/long" t1:/tmp
	lbx cp t1:/tmp/tree - >"$BATS_TEST_TMPDIR/t.tar"
	tar -C "$OUT" -xf "$BATS_TEST_TMPDIR/t.tar" || fail "tar cannot read it"
	same_tree "$H/tree" "$OUT/tree" secs
	[ -L "$OUT/tree/link" ] && [ -p "$OUT/tree/fifo" ] || fail "symlink or fifo not kept: $(ls -l "$OUT/tree")"
	# owners: the box's root, as numbers
	run tar --numeric-owner -tvf "$BATS_TEST_TMPDIR/t.tar" tree/a.txt
	[[ "$output" == "-rw-r----- 0/0 "* ]] || fail "tar -tv: $output"
	# "/." gives the contents, each under its own name
	run bash -c "\"$LAZYBOX\" --root \"$LAZYBOX_ROOT\" cp t1:/tmp/tree/. - | tar -t | LC_ALL=C sort"
	assert_success
	[ "$(tr '\n' ' ' <<<"$output")" = "a.txt fifo link sub/ sub/deep/ sub/deep/y sub/x.sh " ] || fail "/. listing: $output"
	# a file alone, read back from the stream
	run bash -c "\"$LAZYBOX\" --root \"$LAZYBOX_ROOT\" cp t1:/etc/passwd - | tar -xOf - passwd"
	assert_success
	[ "$output" = "$(cat "$LBX_CP_ROOTFS/etc/passwd")" ] || fail "passwd from the stream: $output"
	mkdir "$OUT/l"
	lbx cp t1:/tmp/long - | tar -C "$OUT/l" -xf - || fail "long names"
	[ "$(cat "$OUT/l/long/$long")" = far ] && [ "$(readlink "$OUT/l/long/far-link")" = "$long" ] ||
		fail "long names: $(find "$OUT/l" | head)"
	# the same from a running box
	lbx run -d --name t2 bb sleep 1000 >/dev/null
	lbx cp "$H/f.txt" t2:/f.txt
	run bash -c "\"$LAZYBOX\" --root \"$LAZYBOX_ROOT\" cp t2:/f.txt - | tar -xOf - f.txt"
	[ "$output" = file-content ] || fail "running box: $output"
	# the whole root of a running box: its /proc and /sys are the kernel's,
	# and come out as empty directories
	lbx cp t2:/ - >"$BATS_TEST_TMPDIR/root.tar" || fail "cp t2:/ -"
	run tar -tf "$BATS_TEST_TMPDIR/root.tar"
	assert_success
	assert_line "proc/"
	assert_line "sys/"
	assert_line "f.txt"
	[ "$(grep -c -e '^proc/.' -e '^sys/.' <<<"$output" || true)" = 0 ] || fail "the kernel's files came out: $(grep -m5 '^proc/.' <<<"$output")"
	lbx cp t2:/sys "$OUT/sys"
	[ -d "$OUT/sys" ] && [ -z "$(ls -A "$OUT/sys")" ] || fail "cp t2:/sys: $(ls "$OUT/sys" | head)"
	# errors: a terminal as the output, a missing path
	run --separate-stderr lbx cp t1:/nosuch -
	assert_one_line_error "/nosuch in box t1"
	refused_on_terminal cp t1:/etc/passwd -
	lbx rm -f t1 t2 >/dev/null
}

@test "cp - BOX:DIR unpacks a tar from standard input; ../, absolute names and symlinked dirs stay inside" {
	lbx create --name u1 bb true >/dev/null
	tar -C "$H" -cf - tree | lbx cp - u1:/tmp || fail "cp - u1:/tmp"
	lbx cp u1:/tmp/tree "$OUT"
	same_tree "$H/tree" "$OUT/tree" secs
	[ -L "$OUT/tree/link" ] && [ -p "$OUT/tree/fifo" ] || fail "symlink or fifo not kept: $(ls -l "$OUT/tree")"
	# hostile archives: made by python, as an attacker would
	local host="$BATS_TEST_TMPDIR/victim"
	mkdir -p "$host"
	python3 - "$BATS_TEST_TMPDIR" "$host" <<'PY'
import io, sys, tarfile
d, host = sys.argv[1], sys.argv[2]
def mk(name, entries):
    with tarfile.open(f"{d}/{name}.tar", "w", format=tarfile.PAX_FORMAT) as t:
        for n, kind, arg in entries:
            i = tarfile.TarInfo(n)
            if kind == "file":
                i.size = len(arg); t.addfile(i, io.BytesIO(arg))
            elif kind == "dir":
                i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
            elif kind == "sym":
                i.type = tarfile.SYMTYPE; i.linkname = arg; t.addfile(i)
            elif kind == "hard":
                i.type = tarfile.LNKTYPE; i.linkname = arg; t.addfile(i)
            elif kind == "chr":
                i.type = tarfile.CHRTYPE; i.devmajor, i.devminor = 1, 3; t.addfile(i)
mk("dotdot", [("ok", "file", b"ok"), ("../../../../../../../.." + host + "/x", "file", b"x")])
mk("abs", [(host + "/abs", "file", b"abs")])
mk("via-link", [("esc", "sym", host), ("esc/y", "file", b"y")])
mk("hard-out", [("h", "hard", "../../../../../../../.." + host + "/z")])
# merged /usr: a link to a directory is gone through, inside the box
mk("merged", [("usr/bin", "dir", None), ("bin2", "sym", "usr/bin"), ("bin2", "dir", None),
              ("bin2/tool", "file", b"tool\n"), ("abin", "sym", "/tmp/usr/bin"),
              ("abin/t2", "file", b"t2\n"), ("null2", "chr", None)])
mk("hard-missing", [("keep", "hard", "missing")])
PY
	run --separate-stderr lbx cp - u1:/tmp <"$BATS_TEST_TMPDIR/dotdot.tar"
	assert_one_line_error ".."
	lbx cp - u1:/tmp <"$BATS_TEST_TMPDIR/abs.tar" || fail "an absolute name goes below DIR"
	lbx cp u1:/tmp/"${host#/}"/abs "$OUT/abs"
	[ "$(cat "$OUT/abs")" = abs ] || fail "absolute name: $(cat "$OUT/abs")"
	# a link to a host path is looked up inside the box, where it leads nowhere
	run --separate-stderr lbx cp - u1:/tmp <"$BATS_TEST_TMPDIR/via-link.tar"
	assert_one_line_error "esc" "No such file"
	run --separate-stderr lbx cp - u1:/tmp <"$BATS_TEST_TMPDIR/hard-out.tar"
	assert_one_line_error ".."
	[ -z "$(ls -A "$host")" ] || fail "a host path was written: $(ls -la "$host")"
	lbx cp - u1:/tmp <"$BATS_TEST_TMPDIR/merged.tar" || fail "merged /usr"
	lbx cp u1:/tmp/usr/bin/. "$OUT/merged"
	[ "$(cat "$OUT/merged/tool" "$OUT/merged/t2")" = "$(printf 'tool\nt2')" ] || fail "merged /usr: $(ls -la "$OUT/merged")"
	# a hard link to nothing fails before the name it takes is touched
	echo kept >"$H/keep"
	tar -C "$H" -cf - keep | lbx cp - u1:/tmp
	run --separate-stderr lbx cp - u1:/tmp <"$BATS_TEST_TMPDIR/hard-missing.tar"
	assert_one_line_error "link target missing"
	lbx cp u1:/tmp/keep "$OUT/keep" || fail "the hard link's failure removed /tmp/keep"
	# a running box sees what comes in
	lbx run -d --name u2 bb sleep 1000 >/dev/null
	tar -C "$H" -cf - f.txt | lbx cp - u2:/ || fail "cp - into a running box"
	run lbx exec u2 cat /f.txt
	[ "$output" = file-content ] || fail "exec sees: $output"
	# a hard link; unpacked again, what is there is replaced
	mkdir -p "$H/hl" && echo one >"$H/hl/a" && ln "$H/hl/a" "$H/hl/b"
	tar -C "$H" -cf - hl | lbx cp - u2:/
	echo two >"$H/hl/a"
	tar -C "$H" -cf - hl | lbx cp - u2:/ || fail "unpacked again"
	run lbx exec u2 sh -c 'stat -c %h /hl/a; cat /hl/b'
	[ "$output" = "$(printf '2\ntwo')" ] || fail "hard link: $output"
	# not a tar, a missing directory, a terminal
	run --separate-stderr lbx cp - u1:/tmp <"$H/f.txt"
	assert_failure
	[ "${#stderr_lines[@]}" -eq 1 ] || fail "not a tar: $stderr"
	run --separate-stderr lbx cp - u1:/nosuch <"$BATS_TEST_TMPDIR/abs.tar"
	assert_one_line_error "/nosuch in box u1"
	refused_on_terminal cp - u1:/tmp
	lbx rm -f u1 u2 >/dev/null
}

@test "cp on a running box: in and out, seen by exec" {
	lbx run -d --name web bb sleep 1000 >/dev/null
	run lbx cp "$H/f.txt" web:/tmp/
	assert_success
	run lbx exec web cat /tmp/f.txt
	[ "$output" = file-content ] || fail "exec sees: $output"
	# /opt does not exist: the tree is copied under that name
	run lbx cp "$H/tree" web:/opt
	assert_success
	run lbx exec web sh -c 'cat /opt/sub/deep/y; readlink /opt/link; stat -c %a /opt/sub/x.sh'
	[ "$output" = "$(printf 'deep\na.txt\n750')" ] || fail "exec sees: $output"
	lbx exec web sh -c 'echo made-inside > /tmp/made.txt'
	run lbx cp web:/tmp/made.txt "$OUT/"
	assert_success
	[ "$(cat "$OUT/made.txt")" = made-inside ] || fail "copied out: $(cat "$OUT/made.txt")"
	run lbx cp web:/opt "$OUT/opt"
	assert_success
	same_tree "$H/tree" "$OUT/opt"
	# still running, and by ID prefix too
	local id
	id="$(lbx ps -q | head -1)"
	run lbx cp "web:/etc/passwd" "$OUT/pw1"
	assert_success
	run lbx cp "${id:0:8}:/etc/passwd" "$OUT/pw2"
	assert_success
	cmp "$OUT/pw1" "$OUT/pw2"
}

@test "cp naming: into an existing directory, a new name, \"/.\" contents, overwriting a file" {
	lbx create --name c3 bb sh -c 'find /tmp /root | sort; cat /root/f.txt' >/dev/null
	lbx cp "$H/tree" c3:/tmp            # existing dir: /tmp/tree
	lbx cp "$H/tree" c3:/tmp/renamed    # new name
	lbx cp "$H/tree/." c3:/tmp/contents # new name, from the contents
	lbx cp "$H/tree/." c3:/root         # contents into an existing dir
	echo old >"$OUT/old"
	lbx cp "$OUT/old" c3:/root/f.txt
	lbx cp "$H/f.txt" c3:/root/f.txt # overwrites
	run lbx start -a c3
	assert_success
	local want
	for want in /tmp/tree/a.txt /tmp/tree/sub/deep/y /tmp/renamed/a.txt /tmp/renamed/sub/x.sh \
		/tmp/contents/a.txt /tmp/contents/link /root/a.txt /root/sub/deep/y file-content; do
		assert_line "$want"
	done
	for want in /tmp/renamed/tree /tmp/contents/tree /root/tree; do
		! assert_line "$want" 2>/dev/null || fail "$want should not exist: $output"
	done
	# out: existing dir, new name, contents
	mkdir "$OUT/existing"
	lbx cp c3:/tmp/tree "$OUT/existing"
	lbx cp c3:/tmp/tree "$OUT/newname"
	mkdir "$OUT/filled"
	lbx cp c3:/tmp/tree/. "$OUT/filled"
	same_tree "$H/tree" "$OUT/existing/tree"
	same_tree "$H/tree" "$OUT/newname"
	same_tree "$H/tree" "$OUT/filled"
	# a file onto a host file, a directory onto a file: refused
	echo old >"$OUT/pw"
	lbx cp c3:/etc/passwd "$OUT/pw"
	cmp "$LBX_CP_ROOTFS/etc/passwd" "$OUT/pw"
	run --separate-stderr lbx cp c3:/tmp/tree "$OUT/pw"
	assert_one_line_error "$OUT/pw" "not a directory"
	[ "$status" -eq 125 ]
}

@test "cp errors: one line, exit 125" {
	lbx create --name c4 bb true >/dev/null
	run --separate-stderr lbx cp "$H/f.txt" nosuch:/x
	assert_one_line_error "nosuch" "no such box"
	[ "$status" -eq 125 ] || fail "status $status"
	run --separate-stderr lbx cp c4:/etc/nosuch "$OUT/"
	assert_one_line_error "/etc/nosuch in box c4" "No such file or directory"
	[ "$status" -eq 125 ] || fail "status $status"
	run --separate-stderr lbx cp "$H/f.txt" c4:/nosuch/dir/x
	assert_one_line_error "/nosuch/dir/x in box c4" "parent directory"
	[ "$status" -eq 125 ] || fail "status $status"
	run --separate-stderr lbx cp c4:/etc/passwd "$OUT/nosuch/x"
	assert_one_line_error "$OUT/nosuch/x" "parent directory"
	[ "$status" -eq 125 ] || fail "status $status"
	[ ! -e "$OUT/nosuch" ] || fail "made the missing parent"
	run --separate-stderr lbx cp "$H/nosuch" c4:/tmp/
	assert_one_line_error "$H/nosuch" "No such file or directory"
	run --separate-stderr lbx cp "$H/f.txt" "$OUT/x"
	assert_one_line_error "BOX:PATH"
	run --separate-stderr lbx cp c4:/etc/passwd c4:/tmp/x
	assert_one_line_error "between boxes"
	run --separate-stderr lbx cp "$H/f.txt/." c4:/tmp/x
	assert_one_line_error "Not a directory"
	# a running box says the same
	lbx run -d --name web bb sleep 1000 >/dev/null
	run --separate-stderr lbx cp web:/nosuch "$OUT/"
	assert_one_line_error "/nosuch in box web" "No such file or directory"
	[ "$status" -eq 125 ] || fail "status $status"
	# a host path with ':' is named ./a:b
	cp "$H/f.txt" "$H/a:b"
	(cd "$H" && lbx cp ./a:b web:/tmp/colon)
	run lbx exec web cat /tmp/colon
	[ "$output" = file-content ] || fail "./a:b: $output"
}

@test "a hostile box's symlinks (/etc, ../../ climbs, /tmp/esc) cannot make cp touch host paths" {
	# (an ENV: start leaks a JSON array, which the test build's leak
	# checker reports, for an image without one)
	lbx import -q --change 'ENV PATH=/bin' "$LBX_HOSTILE_TAR" hostile:latest >/dev/null
	lbx create --name h hostile /bin/sleep 1000 >/dev/null
	# stopped: /etc resolves inside the root, where its target does not exist
	run --separate-stderr lbx cp "$H/f.txt" h:/etc/x
	assert_one_line_error "/etc/x in box h"
	run --separate-stderr lbx cp "$H/f.txt" h:/tmp/esc/
	assert_failure
	run --separate-stderr lbx cp "$H/tree" h:/etc/
	assert_failure
	# the dangling link itself is replaced, in the box
	run lbx cp "$H/f.txt" h:/tmp/esc
	assert_success
	[ -z "$(ls -A "$LBX_HOSTILE_TARGET")" ] || fail "a host path was written: $(ls -la "$LBX_HOSTILE_TARGET")"
	# out: the climbing link leads nowhere outside; copied, it is a link
	run --separate-stderr lbx cp h:/link/secret "$OUT/s"
	assert_one_line_error "/link/secret in box h"
	[ ! -e "$OUT/s" ] || fail "the host's secret was copied"
	run --separate-stderr lbx cp "h:/../../../../../..$LBX_HOST_SECRET/secret" "$OUT/s"
	assert_failure
	[ ! -e "$OUT/s" ] || fail "the host's secret was copied"
	run lbx cp h:/link "$OUT/l"
	assert_success
	[ -L "$OUT/l" ] || fail "/link was followed"
	run lbx cp h:/ "$OUT/all"
	assert_success
	! grep -rq TOPSECRET "$OUT/all" || fail "the secret came out with /"
	[ -L "$OUT/all/etc" ] && [ -f "$OUT/all/tmp/esc" ] || fail "$(ls -la "$OUT/all" "$OUT/all/tmp")"

	# running: the same, through the box's pid 1
	lbx start h >/dev/null
	lbx exec h /bin/true || fail "the hostile box does not run"
	run --separate-stderr lbx cp "$H/f.txt" h:/etc/x
	assert_one_line_error "/etc/x in box h"
	run lbx cp "$H/f.txt" h:/tmp/esc/x
	assert_failure
	run lbx cp "$H/tree" h:/tmp/
	assert_success
	run lbx exec h /bin/cat /tmp/tree/sub/deep/y
	[ "$output" = deep ] || fail "exec sees: $output"
	[ -z "$(ls -A "$LBX_HOSTILE_TARGET")" ] || fail "a host path was written: $(ls -la "$LBX_HOSTILE_TARGET")"
	run --separate-stderr lbx cp h:/link/secret "$OUT/s2"
	assert_failure
	[ ! -e "$OUT/s2" ] || fail "the host's secret was copied"
	run --separate-stderr lbx cp h:/proc/1/root/etc/passwd "$OUT/s3"
	assert_failure
	[ ! -e "$OUT/s3" ] || fail "a magic link was followed"
	[ "$(cat "$LBX_HOST_SECRET/secret")" = TOPSECRET ] && [ "$(ls -A "$LBX_HOST_SECRET")" = secret ] ||
		fail "the host's secret dir changed"
}
