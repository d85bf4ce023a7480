#!/usr/bin/env bats
# Crashes and a full disk: SIGKILL of pull at random moments, of a box's
# supervisor while the box fsyncs records, of mount daemons; ENOSPC during
# pull, import and a box's writes. After each: `system check` finds nothing
# but what docs/store-format.md ("Crash safety") calls garbage, the same
# operation succeeds again, and what was read or fsynced before reads right.

bats_require_minimum_version 1.5.0
load helpers

CRASH_REF=lbx/crash:v1
BB=localhost/bb:latest

# crash_layer_dir DIR K: layer K's files below DIR/lK: one 2 MiB file, 24
# files of 40 KiB (blob files), 40 of 300 bytes (inline); random bytes, so
# gzip cannot shrink the download to nothing
crash_layer_dir() {
	local d="$1/l$2" j
	mkdir -p "$d/mid" "$d/small"
	head -c 2097152 /dev/urandom >"$d/big.bin"
	for j in $(seq 24); do head -c 40960 /dev/urandom >"$d/mid/$j"; done
	for j in $(seq 40); do head -c 300 /dev/urandom >"$d/small/$j"; done
}

setup_file() {
	local d="$BATS_FILE_TMPDIR" k
	# the pulled image: three layers, l1/ l2/ l3/; $d/crash-src holds all
	# three, as the merged tree must show them
	mkdir -p "$d/crash-src" "$d/crash-layers"
	for k in 1 2 3; do
		crash_layer_dir "$d/crash-src" "$k"
		mkdir -p "$d/crash-l$k"
		cp -a "$d/crash-src/l$k" "$d/crash-l$k/"
		python3 "$MKIMAGE" layer "$d/crash-layers/layer$k.tar" "$d/crash-l$k"
	done
	image_from_layers oci "$d/crash-oci" "$d/crash-layers" gzip crash:v1
	# the box image: busybox
	local busybox="${LBX_BUSYBOX:-/bin/busybox}"
	if [ -x "$busybox" ]; then
		busybox_rootfs "$d/bb-rootfs"
		ln -s busybox "$d/bb-rootfs/bin/sync"
		ln -s busybox "$d/bb-rootfs/bin/dd"
		ln -s busybox "$d/bb-rootfs/bin/head"
		ln -s busybox "$d/bb-rootfs/bin/seq"
		tar --numeric-owner --owner=0 --group=0 -C "$d/bb-rootfs" -cf "$d/bb.tar" .
	fi
	command -v docker-registry >/dev/null && command -v skopeo >/dev/null || return 0
	export REG_DIR="$d/registry"
	start_registry "$REG_DIR"
	export REG="127.0.0.1:$(cat "$REG_DIR/port")"
	push "$d/crash-oci:crash:v1" "$REG/$CRASH_REF"
}

teardown_file() {
	[ -n "${REG_DIR:-}" ] && stop_registry "$REG_DIR"
	return 0
}

setup() {
	common_setup
	require_cmd jq python3
	export HOME="$BATS_TEST_TMPDIR/home" XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/config"
	export XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/run"
	export CONTAINERS_REGISTRIES_CONF="$BATS_TEST_TMPDIR/registries.conf"
	unset REGISTRY_AUTH_FILE
	mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_RUNTIME_DIR"
	: >"$CONTAINERS_REGISTRIES_CONF"
	# every mount point, store root and pid a test makes, for teardown
	MOUNTS="$BATS_TEST_TMPDIR/mounts.list"
	ROOTS="$BATS_TEST_TMPDIR/roots.list"
	PIDS="$BATS_TEST_TMPDIR/pids.list"
	: >"$MOUNTS"
	echo "$LAZYBOX_ROOT" >"$ROOTS"
	: >"$PIDS"
}

teardown() {
	local d id r p
	while read -r d; do
		mountpoint -q "$d" 2>/dev/null && { lbx umount "$d" || fusermount3 -u -z "$d" || umount -l "$d"; } >/dev/null 2>&1
	done <"$MOUNTS"
	# no box may outlive its test, in any store the test used
	while read -r r; do
		[ -d "$r" ] || continue
		for id in $("$LAZYBOX" --root "$r" ps -q 2>/dev/null); do "$LAZYBOX" --root "$r" kill "$id" >/dev/null 2>&1 || true; done
		for id in $("$LAZYBOX" --root "$r" ps -aq 2>/dev/null); do "$LAZYBOX" --root "$r" wait "$id" >/dev/null 2>&1 || true; done
	done <"$ROOTS"
	if [ -n "${SMALL_HOLDER:-}" ]; then
		for id in $(lbs ps -q 2>/dev/null); do lbs kill "$id" >/dev/null 2>&1 || true; done
		for id in $(lbs ps -aq 2>/dev/null); do lbs wait "$id" >/dev/null 2>&1 || true; done
		# the small file system lives as long as its mount namespace
		echo "$SMALL_HOLDER" >>"$PIDS"
	fi
	while read -r p; do
		kill -9 "$p" 2>/dev/null || true
	done <"$PIDS"
	common_teardown
}

require_registry() {
	require_cmd docker-registry skopeo
	[ -n "${REG:-}" ] || fail "the registry did not start (see setup_file)"
}

require_fuse() {
	[ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable by uid $(id -u)"
	command -v fusermount3 >/dev/null || [ "$(id -u)" -eq 0 ] || skip "fusermount3 (fuse3) missing"
}

require_busybox() {
	[ -f "$BATS_FILE_TMPDIR/bb.tar" ] || skip "no static busybox at ${LBX_BUSYBOX:-/bin/busybox} (busybox-static)"
}

now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# only_garbage JSON [stale]: the problems of a `system check --format json`
# are all what a crash may leave (docs/store-format.md, "Crash safety"):
# files in tmp/, blob files no row names, rows no image needs; with
# "stale", boxes recorded running whose supervisor is gone, too
only_garbage() {
	local bad
	bad="$(jq -r --arg stale "${2:-}" '.Problems[] | select(.Kind != "tmp" and .Kind != "orphan" and
		.Kind != "unused" and ($stale == "" or .Kind != "box" or
		(.Reason | test("recorded running .*supervisor is gone") | not))) |
		"\(.Kind) \(.Object): \(.Reason)"' <<<"$1")" || fail "not check json: $1"
	[ -z "$bad" ] || fail "damage after a crash:" "$bad"
}

# mount_ok WHAT: lbx mount WHAT; its directory in $dir, remembered for teardown
mount_ok() {
	run --separate-stderr lbx mount "$@"
	assert_success
	dir="${lines[-1]}"
	echo "$dir" >>"$MOUNTS"
	mountpoint -q "$dir" || fail "mount printed $dir, which is not a mount point"
}

# daemon_of DIR: the pid of the FUSE daemon serving DIR (its fd on /dev/fuse
# is what fuse mounts name in mountinfo as the source's owner; we look for
# the lazybox process of this store whose cwd or args name the mount)
mount_daemon() {
	pgrep -u "$(id -u)" -f -- "--root $LAZYBOX_ROOT mount $1" | head -n1
}

# not_mounted DIR: no line of /proc/self/mountinfo names DIR
not_mounted() {
	! awk -v d="$1" '$5 == d { found = 1 } END { exit !found }' /proc/self/mountinfo ||
		fail "$1 is still in /proc/self/mountinfo"
}

# --- 1. SIGKILL during pull -----------------------------------------------------

@test "pull killed at 20 moments: check finds only garbage; pull again, repair, verify clean, reads right" {
	require_registry
	require_fuse
	local want
	want="$(oci_config_digest "$BATS_FILE_TMPDIR/crash-oci" | cut -d: -f2)"
	# how long one whole pull takes here, to spread the kills over it
	local t0 t1
	t0="$(now_ms)"
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/$CRASH_REF"
	t1="$(now_ms)"
	assert_success
	[ "$output" = "$want" ] || fail "pull gave $output, want $want"
	local dur=$((t1 - t0)) base="$BATS_TEST_TMPDIR/stores" k
	[ "$dur" -gt 0 ] || dur=1
	mkdir -p "$base"
	# not i: bats's run (with flags) sets a global i
	for k in $(seq 0 19); do
		export LAZYBOX_ROOT="$base/$k"
		echo "$LAZYBOX_ROOT" >>"$ROOTS"
		# kill k falls in the k-th twentieth of the pull's duration
		local delay=$((k * dur / 20 + RANDOM % (dur / 20 + 1)))
		"$LAZYBOX" --root "$LAZYBOX_ROOT" pull -q --tls-verify=false "$REG/$CRASH_REF" \
			>"$base/$k.out" 2>"$base/$k.err" 3>&- &
		local pid=$!
		echo "$pid" >>"$PIDS"
		sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
		kill -9 "$pid" 2>/dev/null || true
		{ wait "$pid"; } 2>/dev/null || true
		# right after the crash: nothing but garbage, even hashing every content
		run --separate-stderr lbx system check --verify --format json
		[ "$status" -le 1 ] || fail "kill $k (${delay} ms): check could not run: $status $stderr"
		only_garbage "$output"
		echo "# kill $k after ${delay} of ${dur} ms left: $(jq -r '[.Problems[].Kind] | group_by(.) |
			map("\(.[0]) \(length)") | join(", ")' <<<"$output")" >&3
		# nothing half-visible: the image is there whole or not at all
		run --separate-stderr lbx images -q --no-trunc
		assert_success
		[ -z "$output" ] || [ "$output" = "sha256:$want" ] || fail "kill $k: images after the crash: $output"
		# the pull resumes: layers committed before the kill are not fetched again
		local layers
		layers="$(df_json Layers)"
		run --separate-stderr lbx pull --tls-verify=false "$REG/$CRASH_REF"
		assert_success
		[ "${lines[-1]}" = "$want" ] || fail "kill $k: pull after the crash gave $output"
		[ "$(grep -c 'skipped: already exists' <<<"$stderr")" -ge "$layers" ] ||
			fail "kill $k: $layers layers were in the store, yet the pull fetched them again:" "$stderr"
		run --separate-stderr lbx system check --repair
		assert_success
		run --separate-stderr lbx system check --verify
		assert_success
		assert_contains "$output" "no problems found"
		mount_ok "$REG/$CRASH_REF"
		diff -r "$BATS_FILE_TMPDIR/crash-src" "$dir" >&2 || fail "kill $k (${delay} ms): the image reads wrong"
		run --separate-stderr lbx umount "$dir"
		assert_success
		chmod -R u+rwX "$LAZYBOX_ROOT"
		rm -rf "${LAZYBOX_ROOT:?}"
	done
}

@test "Ctrl-C (SIGINT) in the middle of a pull: it stops, the store holds only garbage, the next pull succeeds" {
	require_registry
	local want t0 t1
	want="$(oci_config_digest "$BATS_FILE_TMPDIR/crash-oci" | cut -d: -f2)"
	t0="$(now_ms)"
	"$LAZYBOX" --root "$BATS_TEST_TMPDIR/timing" pull -q --tls-verify=false "$REG/$CRASH_REF" >/dev/null
	t1="$(now_ms)"
	# bash starts background jobs with SIGINT ignored: a wrapper puts the
	# default action back, as a terminal's foreground job has it
	local delay=$(((t1 - t0) / 2)) rc=0 try
	for try in 1 2 3 4; do
		python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
			"$LAZYBOX" --root "$LAZYBOX_ROOT" pull --tls-verify=false "$REG/$CRASH_REF" \
			>"$BATS_TEST_TMPDIR/int.out" 2>"$BATS_TEST_TMPDIR/int.err" 3>&- &
		local pid=$!
		echo "$pid" >>"$PIDS"
		# the wrapper has exec'd lazybox: the pull starts now
		for _ in $(seq 500); do [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = lazybox ] && break; sleep 0.01; done
		sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
		kill -INT "$pid" 2>/dev/null || true
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		[ "$rc" -eq 0 ] || break
		# it finished first: sooner next time, into an empty store again
		echo "# the pull ended before ^C at ${delay} ms; again sooner" >&3
		delay=$((delay / 2))
		chmod -R u+rwX "$LAZYBOX_ROOT" && rm -rf "${LAZYBOX_ROOT:?}"
	done
	[ "$rc" -eq 130 ] || fail "the pull was not ended by ^C (exit $rc):" "$(cat "$BATS_TEST_TMPDIR/int.err")"
	run --separate-stderr lbx system check --verify --format json
	[ "$status" -le 1 ] || fail "check could not run: $status $stderr"
	only_garbage "$output"
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/$CRASH_REF"
	assert_success
	[ "$output" = "$want" ] || fail "the pull after ^C gave $output"
	run --separate-stderr lbx system check --repair
	assert_success
}

# --- 2. SIGKILL of a box's supervisor -------------------------------------------

@test "supervisor killed while its box fsyncs records: exited, every fsynced record kept, starts again" {
	require_busybox
	require_fuse
	lbx import -q --change 'ENV PATH=/bin' "$BATS_FILE_TMPDIR/bb.tar" "$BB" >/dev/null
	# each record is appended, fsynced (busybox sync FILE: fsync(2)), then
	# its number is printed: a number in the log is a record on disk
	lbx run -d --name w "$BB" sh -c 'i=0; while :; do i=$((i+1)); echo "record $i" >>/rec.log;
		sync /rec.log || exit 9; echo "synced $i"; done' >/dev/null
	local n=0
	for _ in $(seq 600); do
		n="$(lbx logs w | sed -n 's/^synced //p' | tail -n1)"
		[ "${n:-0}" -ge 30 ] && break
		sleep 0.1
	done
	[ "${n:-0}" -ge 30 ] || fail "the box did not get to 30 records: $(lbx logs w | tail -n3)"
	local pid sup
	pid="$(lbx ps --format json | jq -r '.[0].Pid')"
	[ "$pid" -gt 0 ] || fail "no pid in ps"
	sup="$(awk '{print $4}' "/proc/$pid/stat")"
	[ "$sup" -gt 1 ] || fail "no supervisor for pid $pid"
	kill -9 "$sup"
	for _ in $(seq 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
	[ ! -e "/proc/$pid" ] || fail "the box outlived its supervisor"
	run --separate-stderr lbx ps -a --format json
	assert_success
	jq -e '.[0].Names == ["w"] and .[0].State == "exited"' <<<"$output" >/dev/null || fail "ps: $output"
	# the last count that reached the log: every record up to it is in the file
	n="$(lbx logs w | sed -n 's/^synced //p' | tail -n1)"
	[ "${n:-0}" -ge 30 ] || fail "the log lost its records: $(lbx logs w | tail -n3)"
	run --separate-stderr lbx cp w:/rec.log "$BATS_TEST_TMPDIR/rec.log"
	assert_success
	seq -f 'record %g' 1 "$n" >"$BATS_TEST_TMPDIR/want"
	head -n "$n" "$BATS_TEST_TMPDIR/rec.log" | cmp - "$BATS_TEST_TMPDIR/want" ||
		fail "records 1..$n (fsynced) are not all in the file: $(head -c 300 "$BATS_TEST_TMPDIR/rec.log")"
	run --separate-stderr lbx system check
	assert_success
	# starts again, on its own files
	run --separate-stderr lbx start w
	assert_success
	run --separate-stderr lbx exec w sh -c "head -n $n /rec.log | tail -n1"
	assert_success
	[ "$output" = "record $n" ] || fail "after start the box sees: $output"
	run lbx kill w
	assert_success
	run lbx wait w
	assert_success
}

# --- 3. SIGKILL of mount daemons ------------------------------------------------

@test "killed mount daemons of an image and of a box: umount cleans up, mount works again and reads right" {
	require_busybox
	require_fuse
	lbx import -q --change 'ENV PATH=/bin' "$BATS_FILE_TMPDIR/bb.tar" "$BB" >/dev/null
	mount_ok "$BB"
	local idir="$dir" pid
	cmp "$BATS_FILE_TMPDIR/bb-rootfs/bin/busybox" "$idir/bin/busybox" || fail "image reads wrong"
	pid="$(mount_daemon "$BB")"
	[ -n "$pid" ] || fail "no daemon for $BB"
	kill -9 "$pid"
	for _ in $(seq 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
	run ls "$idir"
	assert_failure
	run --separate-stderr lbx umount "$BB"
	assert_success
	not_mounted "$idir"
	run lbx mount
	[[ "$output" != *"$idir"* ]] || fail "a dead mount is still listed: $output"
	mount_ok "$BB"
	cmp "$BATS_FILE_TMPDIR/bb-rootfs/bin/busybox" "$dir/bin/busybox" || fail "image reads wrong after remount"
	run --separate-stderr lbx umount "$BB"
	assert_success
	not_mounted "$dir"

	# a box's mount is read-write: what was fsynced through it stays
	lbx create --name mb "$BB" true >/dev/null
	mount_ok mb
	local bdir="$dir"
	echo fsynced >"$bdir/kept"
	busybox sync "$bdir/kept"
	pid="$(mount_daemon mb)"
	[ -n "$pid" ] || fail "no daemon for box mb"
	kill -9 "$pid"
	for _ in $(seq 300); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
	run ls "$bdir"
	assert_failure
	run --separate-stderr lbx umount mb
	assert_success
	not_mounted "$bdir"
	mount_ok mb
	[ "$(cat "$dir/kept")" = fsynced ] || fail "a file fsynced through the box mount was lost"
	cmp "$BATS_FILE_TMPDIR/bb-rootfs/bin/busybox" "$dir/bin/busybox" || fail "box reads wrong after remount"
	run --separate-stderr lbx umount mb
	assert_success
	not_mounted "$dir"
	run --separate-stderr lbx start -a mb
	assert_success
	run --separate-stderr lbx system check
	assert_success
}

# --- 4. a full disk ---------------------------------------------------------------

# small_fs MB: a tmpfs of MB MiB at $SMALL, in a mount namespace of its own
# held by $SMALL_HOLDER (a sleep); in_ns runs a command in it. Root mounts
# it in a plain `unshare -m`; a user in `unshare -rm` (tmpfs may be mounted
# in a user namespace), where lazybox then runs as uid 0 of that namespace:
# fine for what the store does, which is what these tests are about.
small_fs() {
	require_cmd unshare nsenter
	SMALL="$BATS_TEST_TMPDIR/small"
	mkdir -p "$SMALL"
	local opt=-m
	[ "$LBX_ROOTLESS" = 1 ] && opt=-rm
	unshare "$opt" sh -c 'mount -t tmpfs -o "size=$1m,mode=0700" tmpfs "$2" && touch "$2.ready" && exec sleep 100000' \
		sh "$1" "$SMALL" 3>&- &
	SMALL_HOLDER=$!
	# killed in teardown, without a job notice
	disown "$SMALL_HOLDER"
	echo "$SMALL_HOLDER" >>"$PIDS"
	for _ in $(seq 300); do
		[ -e "$SMALL.ready" ] && break
		kill -0 "$SMALL_HOLDER" 2>/dev/null || skip "cannot mount a tmpfs in $(unshare "$opt" true 2>&1 || echo "unshare $opt")"
		sleep 0.1
	done
	[ -e "$SMALL.ready" ] || fail "the small file system did not come up"
	in_ns mountpoint -q "$SMALL" || fail "$SMALL is not a mount point in the namespace"
}

in_ns() {
	if [ "$LBX_ROOTLESS" = 1 ]; then
		nsenter -t "$SMALL_HOLDER" -U -m --preserve-credentials -- "$@"
	else
		nsenter -t "$SMALL_HOLDER" -m -- "$@"
	fi
}

# lbs ARGS...: lazybox on the store on the small file system
lbs() {
	in_ns "$LAZYBOX" --root "$SMALL/store" "$@"
}

# fill_to KB: a filler file leaves KB KiB free on the small file system
fill_to() {
	in_ns sh -c 'rm -f "$1/filler"; a=$(df -B1 --output=avail "$1" | tail -n1)
		n=$((a - $2 * 1024)); [ "$n" -gt 0 ] || n=0; head -c "$n" /dev/zero >"$1/filler"' sh "$SMALL" "$1"
}

unfill() {
	in_ns rm -f "$SMALL/filler"
}

# small_check_garbage [stale]: right after a failure, on the still full
# disk, `system check --verify` on the small store finds only garbage
small_check_garbage() {
	run --separate-stderr lbs system check --verify --format json
	[ "$status" -le 1 ] || fail "check could not run: $status $stderr"
	only_garbage "$output" "${1:-}"
}

# small_repair: with room again, --repair leaves a clean store
small_repair() {
	run --separate-stderr lbs system check --repair
	assert_success
}

# same_dump IMAGE: the small store's tree of IMAGE equals the test store's
same_dump() {
	require_dump_tool
	in_ns "$LBX_DUMP" "$SMALL/store" "$1" >"$BATS_TEST_TMPDIR/small.dump" || fail "dump of $1 failed"
	"$LBX_DUMP" "$LAZYBOX_ROOT" "$1" >"$BATS_TEST_TMPDIR/ref.dump" || fail "reference dump of $1 failed"
	diff -u "$BATS_TEST_TMPDIR/ref.dump" "$BATS_TEST_TMPDIR/small.dump" >&2 || fail "$1 reads differently"
}

@test "full disk: import fails with one line naming ENOSPC, leaves no damage, succeeds once there is room" {
	small_fs 40
	local tar="$BATS_FILE_TMPDIR/crash-layers/layer1.tar" size kb failed=0 done=0
	lbx import -q "$tar" one >/dev/null
	lbs images >/dev/null
	size=$(($(stat -c %s "$tar") / 1024))
	# from no room to nearly enough: each fails at another step (a blob
	# file, a blob row, the layer's commit, the image's)
	for kb in 64 $((size / 2)) $((size - 100)) $((size - 30)) $((size + 20)) $((size + 80)) $((size + 200)) $((size + 800)); do
		fill_to "$kb"
		run --separate-stderr lbs import -q "$tar" one
		if [ "$status" -eq 0 ]; then
			done=1
			break
		fi
		failed=$((failed + 1))
		echo "# $kb KiB free: $stderr" >&3
		[ "$status" -eq 125 ] || fail "want 125, got $status"
		assert_one_line_error "No space left on device"
		small_check_garbage
		run lbs images -q
		[ -z "$output" ] || fail "a failed import left an image: $output"
		unfill
		small_repair
	done
	[ "$failed" -gt 0 ] || fail "no import ran out of space"
	unfill
	if [ "$done" = 0 ]; then
		run --separate-stderr lbs import -q "$tar" one
		assert_success
	fi
	run --separate-stderr lbs system check --verify
	assert_success
	assert_contains "$output" "no problems found"
	same_dump localhost/one:latest
}

@test "full disk: pull fails with one line naming ENOSPC; a full store still lists, checks and frees; pull succeeds once there is room" {
	require_registry
	small_fs 40
	lbs images >/dev/null
	lbx pull -q --tls-verify=false "$REG/$CRASH_REF" >/dev/null
	fill_to 2048
	run --separate-stderr lbs pull -q --tls-verify=false "$REG/$CRASH_REF"
	[ "$status" -eq 125 ] || fail "want 125, got $status: $stderr"
	assert_one_line_error "No space left on device" "$REG/$CRASH_REF"
	small_check_garbage
	unfill
	small_repair
	# not a byte left: the store still opens, lists and checks
	fill_to 0
	run --separate-stderr lbs images
	assert_success
	run --separate-stderr lbs system check
	assert_success
	unfill
	run --separate-stderr lbs pull -q --tls-verify=false "$REG/$CRASH_REF"
	assert_success
	run --separate-stderr lbs system check --verify
	assert_success
	assert_contains "$output" "no problems found"
	same_dump "$REG/$CRASH_REF"
	# rmi on a full disk: its deletes need room in the WAL, which it may not
	# have; then it says so, and the store is as a crash would leave it
	fill_to 0
	run --separate-stderr lbs rmi "$REG/$CRASH_REF"
	local rmi_status="$status"
	[ "$status" -eq 0 ] || assert_one_line_error "No space left on device"
	small_check_garbage
	unfill
	if [ "$rmi_status" -ne 0 ]; then
		run --separate-stderr lbs rmi "$REG/$CRASH_REF"
		assert_success
	fi
	run --separate-stderr lbs system prune -f
	assert_success
	small_repair
	run lbs images -q
	[ -z "$output" ] || fail "rmi did not remove the image: $output"
	[ -z "$(in_ns find "$SMALL/store/blobs" -type f)" ] || fail "blob files left after rmi and prune"
}

@test "full disk: a box writing into its root gets ENOSPC, keeps its other files, starts again once there is room" {
	require_busybox
	require_fuse
	# A user gets a small file system only inside `unshare -rm`, where
	# lazybox runs as uid 0 of a namespace that maps one id (devpts without
	# gid=5 and no setgroups there: this test found both)
	small_fs 40
	lbs import -q --change 'ENV PATH=/bin' "$BATS_FILE_TMPDIR/bb.tar" "$BB" >/dev/null
	fill_to 6144
	# the first run fills the disk from inside; a later start finds /ran
	local cmd='if [ -e /ran ]; then cat /keep; rm /fill && echo freed; exit 0; fi
		touch /ran; echo keep >/keep; sync /keep; dd if=/dev/zero of=/fill bs=65536 count=1000; echo "dd=$?"; exit 3'
	run --separate-stderr lbs run --name full "$BB" sh -c "$cmd"
	[ "$status" -eq 3 ] || fail "want the box's own exit code 3, got $status: $output $stderr"
	assert_line "dd=1"
	assert_contains "$stderr" "No space left on device"
	run --separate-stderr in_ns df -B1 --output=avail "$SMALL"
	[ "${lines[-1]}" -lt 65536 ] || fail "the box did not fill the disk: ${lines[-1]} bytes free"
	# its end was recorded on the full disk, or kept until it could be
	run --separate-stderr lbs ps -a --format json
	assert_success
	[ "$(jq -r '.[] | select(.Names[0] == "full") | "\(.State) \(.ExitCode)"' <<<"$output")" = "exited 3" ] ||
		fail "ps after the full-disk run: $output"
	fill_to 0
	# starting it on the full disk: a one-line error naming ENOSPC and the box
	run --separate-stderr lbs start -a full
	assert_one_line_error "No space left on device" full
	# its supervisor could not record the failed start's end in a full
	# database: a stale "running", as after a crash (ps and --repair fix it)
	small_check_garbage stale
	unfill
	run --separate-stderr lbs start -a full
	assert_success
	[ "$output" = "$(printf 'keep\nfreed')" ] || fail "after freeing room the box sees: $output"
	run --separate-stderr lbs system check
	assert_success
}
