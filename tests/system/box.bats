#!/usr/bin/env bats
# Boxes before the launcher: create (O(1): a row and empty dirs), ps, rm,
# diff, and `mount BOX` (the box's root, read-write, over its image).

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	fixture_setup_file
}

setup() {
	common_setup
	require_fixture
	lbx load -q -i "$LBX_FIXTURE_OCI"
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

require_fuse() {
	[ -c /dev/fuse ] && [ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "/dev/fuse is not usable by uid $(id -u)"
}

@test "create: prints an ID, makes empty dirs only, ps -a lists it, names are unique" {
	run --separate-stderr lbx create --name web "$FIXTURE_NAME" /bin/sh -c 'echo hi'
	assert_success
	id="${lines[-1]}"
	[[ "$id" =~ ^[0-9a-f]{64}$ ]] || fail "want a 64-hex ID: $id"
	[ -d "$LAZYBOX_ROOT/boxes/$id/upper" ] && [ -d "$LAZYBOX_ROOT/boxes/$id/work" ]
	[ -z "$(ls -A "$LAZYBOX_ROOT/boxes/$id/upper")" ] || fail "create copied files"
	run lbx ps
	[ "${#lines[@]}" -eq 1 ] || fail "plain ps lists running boxes only: $output"
	run lbx ps -a --no-trunc
	assert_success
	assert_contains "$output" web
	assert_contains "$output" "$id"
	assert_contains "$output" "/bin/sh -c echo hi"
	run lbx ps -a --format json
	jq -e --arg id "$id" '.[0].Id == $id and .[0].Names == ["web"] and .[0].State == "created"' <<<"$output" >/dev/null ||
		fail "json: $output"
	# Podman's types: the command as its arguments, Created in Unix seconds
	jq -e '.[0].Command == ["/bin/sh", "-c", "echo hi"] and (.[0].Created | type) == "number" and
		(.[0].Created - now | fabs) < 600 and (.[0].CreatedAt | endswith(" ago")) and
		.[0].Status == "Created" and .[0].Exited == false and .[0].AutoRemove == false' <<<"$output" >/dev/null ||
		fail "json, Podman's fields: $output"
	run --separate-stderr lbx create --name web "$FIXTURE_NAME"
	assert_one_line_error web
	run --separate-stderr lbx create --name 'bad name' "$FIXTURE_NAME"
	assert_one_line_error "bad name"
	run --separate-stderr lbx create --pull never nosuch:img
	assert_one_line_error nosuch
	[ "$(lbx ps -aq | wc -l)" -eq 1 ]
}

@test "ps and images: Podman's columns, each as wide as its widest cell; COMMAND cut at 17 unless --no-trunc" {
	lbx tag "$FIXTURE_NAME" localhost/a/repository/name/longer/than/forty/characters:v1
	lbx create --name short-cmd "$FIXTURE_NAME" /bin/true >/dev/null
	lbx create --name a-rather-long-box-name "$FIXTURE_NAME" /bin/sh -c 'echo a command of more than 17 characters' >/dev/null
	run lbx ps -a
	assert_success
	[[ "${lines[0]}" =~ ^CONTAINER\ ID\ +IMAGE\ +COMMAND\ +CREATED\ +STATUS\ +PORTS\ +NAMES$ ]] || fail "header: ${lines[0]}"
	local col="${lines[0]%%NAMES*}" line
	for line in "${lines[@]:1}"; do
		# every row's name starts where the header's NAMES does
		[[ "${line:${#col}}" =~ ^(short-cmd|a-rather-long-box-name)$ ]] || fail "NAMES column not aligned: $output"
	done
	assert_contains "$output" "/bin/sh -c echo a..."
	run lbx ps -a --no-trunc
	assert_contains "$output" "/bin/sh -c echo a command of more than 17 characters"
	# the cut falls inside a two-byte character: it backs off, the box stays listed
	lbx create --name utf "$FIXTURE_NAME" /bin/echo hhéééé >/dev/null
	run lbx ps -a --format '{{.Names}} {{.Command}}'
	assert_contains "$output" "utf /bin/echo hhéé..."
	run lbx images
	assert_success
	[[ "${lines[0]}" =~ ^REPOSITORY\ +TAG\ +IMAGE\ ID\ +CREATED\ +SIZE$ ]] || fail "header: ${lines[0]}"
	col="${lines[0]%%IMAGE ID*}"
	for line in "${lines[@]:1}"; do
		[[ "${line:${#col}}" =~ ^[0-9a-f]{12}\ \  ]] || fail "IMAGE ID column not aligned: $output"
	done
	assert_contains "$output" "localhost/a/repository/name/longer/than/forty/characters  v1"
	# SIZE with three significant digits, as Podman's "1.99 MB"
	[[ "${lines[1]}" =~ \ ([0-9]{1,3}|[0-9]\.[0-9]{1,2}|[0-9]{2}\.[0-9])\ (B|kB|MB|GB)$ ]] || fail "SIZE: ${lines[1]}"
}

@test "ps -l and -n N: the boxes made last, whatever their state" {
	local b
	for b in old mid new; do
		lbx create --name "$b" "$FIXTURE_NAME" /bin/true >/dev/null
	done
	run lbx ps -l --format '{{.Names}}'
	[ "$output" = new ] || fail "ps -l: $output"
	run lbx ps --last 2 --format '{{.Names}}'
	[ "$(sort <<<"$output" | tr '\n' ' ')" = "mid new " ] || fail "ps --last 2: $output"
	run lbx ps -n 5 -q
	[ "${#lines[@]}" -eq 3 ] || fail "ps -n 5: $output"
	run lbx ps -l -f name=mid --format '{{.Names}}'
	[ "$output" = mid ] || fail "ps -l with a filter takes the last of those that match: $output"
	run --separate-stderr lbx ps --last two
	assert_one_line_error "--last two" "whole number"
}

@test "rm removes the row and the directory; rmi refuses a used image, rmi -f takes the box along" {
	id="$(lbx create --name b1 "$FIXTURE_NAME")"
	run --separate-stderr lbx rmi "$FIXTURE_NAME"
	assert_one_line_error b1
	run lbx rm b1
	assert_success
	[ ! -e "$LAZYBOX_ROOT/boxes/$id" ] || fail "box dir left behind"
	[ -z "$(lbx ps -aq)" ]
	run --separate-stderr lbx rm b1
	assert_one_line_error b1
	run lbx rm -f b1
	assert_success
	id="$(lbx create --name b2 "$FIXTURE_NAME")"
	run lbx rmi -f "$FIXTURE_NAME"
	assert_success
	[ ! -e "$LAZYBOX_ROOT/boxes/$id" ] || fail "rmi -f left the box dir"
	[ -z "$(lbx ps -aq)" ]
}

@test "mount BOX: read-write root over the image; diff lists the changes; survives a remount" {
	require_fuse
	lbx create --name b1 "$FIXTURE_NAME" >/dev/null
	run --separate-stderr lbx mount b1
	assert_success
	dir="${lines[-1]}"
	echo "$dir" >>"$MOUNTS"
	[ -n "$dir" ] && mountpoint -q "$dir" || fail "not mounted: $dir"
	echo hello >"$dir/newfile"
	echo more >>"$dir/etc/motd"
	rm "$dir/etc/removeme" 2>/dev/null || rm "$dir/etc/passwd"
	mkdir "$dir/newdir"
	run lbx diff b1
	assert_success
	assert_line "A /newfile"
	assert_line "A /newdir"
	assert_line "C /etc/motd"
	assert_line "C /etc"
	[[ "$output" == *"D /etc/"* ]] || fail "no deletion listed: $output"
	run lbx diff --format json b1
	jq -e '.added | index("/newfile") != null' <<<"$output" >/dev/null || fail "json: $output"
	run --separate-stderr lbx rm b1
	assert_one_line_error mounted
	run lbx umount b1
	assert_success
	! mountpoint -q "$dir"
	run --separate-stderr lbx mount b1
	assert_success
	dir="${lines[-1]}"
	echo "$dir" >>"$MOUNTS"
	[ "$(cat "$dir/newfile")" = hello ]
	[ "$(tail -n1 "$dir/etc/motd")" = more ]
	# the image itself is untouched
	lbx create --name b2 "$FIXTURE_NAME" >/dev/null
	run --separate-stderr lbx mount b2
	assert_success
	d2="${lines[-1]}"
	echo "$d2" >>"$MOUNTS"
	[ ! -e "$d2/newfile" ]
	[ "$(tail -n1 "$d2/etc/motd")" != more ]
	run lbx mount
	assert_contains "$output" b1
	assert_contains "$output" b2
}

@test "mount BOX: the box's root files are the mounting user's to change (root or not)" {
	require_fuse
	lbx create --name b1 "$FIXTURE_NAME" >/dev/null
	run --separate-stderr lbx mount b1
	assert_success
	dir="${lines[-1]}"
	echo "$dir" >>"$MOUNTS"
	[ "$(stat -c %u "$dir/etc/motd")" = "$(id -u)" ] || fail "root's file shows as $(stat -c %u "$dir/etc/motd")"
	echo changed >"$dir/etc/motd"
	[ "$(cat "$dir/etc/motd")" = changed ]
	chmod 600 "$dir/etc/motd"
	[ "$(stat -c %a "$dir/etc/motd")" = 600 ]
}
