#!/usr/bin/env bats
# lazybox load / images / inspect / tag / rmi / system df|prune / import.
# Reference trees come from `umoci unpack` of the same images (helpers.bash).

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
	fixture_setup_file
}

setup() {
	common_setup
	require_fixture
}

teardown() {
	common_teardown
}

# load_ok PATH: load must succeed and print "Loaded image: NAME" lines
load_ok() {
	run --separate-stderr lbx load -i "$1"
	assert_success
}

fixture_id() {
	oci_config_digest "$LBX_FIXTURE_OCI"
}

# --- load: formats ------------------------------------------------------------

@test "load OCI layout (gzip): tree equals umoci's" {
	require_dump_tool
	load_ok "$LBX_FIXTURE_OCI"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
}

@test "load OCI layout (zstd): tree equals umoci's" {
	require_dump_tool
	require_cmd zstd
	oci="$(cached_image oci-zstd fixture_oci_args zstd)"
	load_ok "$oci"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
}

@test "load OCI layout (uncompressed): tree equals umoci's" {
	require_dump_tool
	oci="$(cached_image oci-none fixture_oci_args none)"
	load_ok "$oci"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
}

@test "load OCI layout with Docker schema2 media types" {
	require_dump_tool
	oci="$(cached_image oci-docker-mt fixture_oci_args gzip --docker-media-types)"
	load_ok "$oci"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
}

@test "load OCI layout as a tar (with and without ./ prefix)" {
	require_dump_tool
	tar -C "$LBX_FIXTURE_OCI" -cf "$BATS_TEST_TMPDIR/dot.tar" .
	(cd "$LBX_FIXTURE_OCI" && tar -cf "$BATS_TEST_TMPDIR/plain.tar" oci-layout index.json blobs)
	load_ok "$BATS_TEST_TMPDIR/dot.tar"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
	load_ok "$BATS_TEST_TMPDIR/plain.tar"
	assert_line "Loaded image: $FIXTURE_NAME"
	run lbx images -q
	[ "${#lines[@]}" -eq 1 ]
}

@test "load docker-archive (uncompressed layers, two tags)" {
	require_dump_tool
	arch="$(cached_image da-none.tar fixture_archive_args none --ref "$FIXTURE_REF" --ref quay.io/lbx/other:v1)"
	load_ok "$arch"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_line "Loaded image: quay.io/lbx/other:v1"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
	assert_tree quay.io/lbx/other:v1 "$LBX_FIXTURE_DUMP"
	# same config as the OCI fixture, so the same image id
	run lbx inspect "$FIXTURE_NAME"
	assert_success
	id="$(fixture_id)"
	[ "$(jq -r '.[0].Id' <<<"$output")" = "${id#sha256:}" ] || [ "$(jq -r '.[0].Id' <<<"$output")" = "$id" ]
}

@test "load docker-archive (gzip layers)" {
	require_dump_tool
	arch="$(cached_image da-gzip.tar fixture_archive_args gzip)"
	load_ok "$arch"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
}

@test "load reads standard input: a pipe without -i, -i -, a gzipped pipe, a redirected file" {
	require_dump_tool
	arch="$(cached_image da-gzip.tar fixture_archive_args gzip)"
	run bash -c 'cat "$1" | "$LAZYBOX" --root "$LAZYBOX_ROOT" load' sh "$arch"
	assert_success
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
	lbx rmi -a -f >/dev/null
	run bash -c 'gzip -c "$1" | "$LAZYBOX" --root "$LAZYBOX_ROOT" load -i -' sh "$arch"
	assert_success
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
	run bash -c '"$LAZYBOX" --root "$LAZYBOX_ROOT" load -q <"$1"' sh "$arch"
	assert_success
	[ -z "$(ls -A "$LAZYBOX_ROOT/tmp")" ] || fail "the copy of the pipe was left in tmp/: $(ls -A "$LAZYBOX_ROOT/tmp")"
	# not an archive: one line naming standard input
	run --separate-stderr bash -c 'echo not-an-archive | "$LAZYBOX" --root "$LAZYBOX_ROOT" load'
	assert_one_line_error "standard input"
}

@test "load docker-archive (zstd layers)" {
	require_dump_tool
	require_cmd zstd
	arch="$(cached_image da-zstd.tar fixture_archive_args zstd)"
	load_ok "$arch"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
}

@test "load docker-archive written by skopeo (<diff_id>.tar layers, symlinks)" {
	require_dump_tool
	require_cmd skopeo
	arch="$BATS_TEST_TMPDIR/skopeo.tar"
	skopeo copy -q "oci:$LBX_FIXTURE_OCI:$FIXTURE_REF" "docker-archive:$arch:$FIXTURE_NAME"
	load_ok "$arch"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
	# skopeo keeps the config byte for byte: the id is the OCI fixture's
	id="$(fixture_id)"
	run lbx images -q
	assert_contains "$output" "${id:7:12}"
}

@test "load names: bare tag -> localhost/<dir>:<tag>, full names kept" {
	mkdir -p "$BATS_TEST_TMPDIR/x"
	fixture_oci "$BATS_TEST_TMPDIR/x/myimage" gzip --ref latest
	load_ok "$BATS_TEST_TMPDIR/x/myimage"
	assert_line "Loaded image: localhost/myimage:latest"

	fixture_oci "$BATS_TEST_TMPDIR/x/full" none --ref quay.io/lbx/full:v2
	load_ok "$BATS_TEST_TMPDIR/x/full"
	assert_line "Loaded image: quay.io/lbx/full:v2"

	fixture_oci "$BATS_TEST_TMPDIR/x/short" none --ref short/name:3
	load_ok "$BATS_TEST_TMPDIR/x/short"
	assert_line "Loaded image: docker.io/short/name:3"
}

@test "load twice is idempotent" {
	load_ok "$LBX_FIXTURE_OCI"
	blobs1="$(df_json Blobs)"
	load_ok "$LBX_FIXTURE_OCI"
	assert_line "Loaded image: $FIXTURE_NAME"
	run lbx images -q
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	[ "$(df_json Blobs)" = "$blobs1" ]
	[ "$(df_json Layers)" = 3 ]
}

# --- images / inspect ---------------------------------------------------------

@test "images: table, -q, --format json" {
	load_ok "$LBX_FIXTURE_OCI"
	id="$(fixture_id)"
	id="${id#sha256:}"

	run lbx images
	assert_success
	[[ "${lines[0]}" =~ ^REPOSITORY\ +TAG\ +IMAGE\ ID\ +CREATED\ +SIZE ]] ||
		fail "bad header: ${lines[0]}"
	[ "${#lines[@]}" -eq 2 ]
	read -r repo tag iid _ <<<"${lines[1]}"
	[ "$repo" = docker.io/library/lbx-fixture ] || fail "repo: $repo"
	[ "$tag" = latest ] || fail "tag: $tag"
	[ "$iid" = "${id:0:12}" ] || fail "id: $iid, want ${id:0:12}"

	run lbx images -q
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	[ "${lines[0]}" = "${id:0:12}" ] || [ "${lines[0]}" = "$id" ] || fail "images -q: $output"

	run lbx images --format json
	assert_success
	jq -e 'type == "array" and length == 1' <<<"$output" >/dev/null
	jq -e --arg id "$id" '.[0].Id == $id or .[0].Id == "sha256:" + $id' <<<"$output" >/dev/null ||
		fail "Id: $output"
	jq -e --arg n "$FIXTURE_NAME" '.[0].Names | index($n) != null' <<<"$output" >/dev/null ||
		fail "Names: $output"
	# created 2024-01-01T00:00:00Z: unix seconds (podman) or the RFC 3339 string
	jq -e '.[0].Created == 1704067200 or (.[0].Created | tostring | startswith("2024-01-01"))' \
		<<<"$output" >/dev/null || fail "Created: $output"
	jq -e '.[0].Size > 5000000' <<<"$output" >/dev/null || fail "Size: $output"
}

@test "images REPO lists every tag of the repository, by full or short name; REPO:TAG that line alone" {
	load_ok "$LBX_FIXTURE_OCI"
	lbx tag "$FIXTURE_NAME" other:v1 other:v2 quay.io/x/y:z
	tags() { lbx images --format '{{.Repository}}:{{.Tag}}' "$@" | sort | tr '\n' ' '; }
	[ "$(tags other)" = "localhost/other:v1 localhost/other:v2 " ] || fail "images other: $(tags other)"
	[ "$(tags localhost/other)" = "localhost/other:v1 localhost/other:v2 " ] || fail "full name: $(tags localhost/other)"
	[ "$(tags quay.io/x/y)" = "quay.io/x/y:z " ] || fail "quay.io/x/y: $(tags quay.io/x/y)"
	[ "$(tags y)" = "quay.io/x/y:z " ] || fail "y: $(tags y)"
	[ "$(tags other:v2)" = "localhost/other:v2 " ] || fail "other:v2: $(tags other:v2)"
	[ "$(tags nosuch)" = "" ] || fail "nosuch: $(tags nosuch)"
	local id
	id="$(fixture_id)"
	[ "$(tags "sha256:${id#sha256:}" | wc -w)" = 4 ] || fail "by sha256:ID: $(tags "sha256:${id#sha256:}")"
	[ "$(tags "${id#sha256:}" | wc -w)" = 4 ] || fail "by ID: $(tags "${id#sha256:}")"
	[ "$(lbx images -q other)" = "$(lbx images -q "$FIXTURE_NAME")" ] || fail "-q other"
	[ "$(lbx images --format json x/y | jq length)" = 1 ] || fail "json x/y"
}

@test "images: empty store prints only the header" {
	run lbx images
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	run lbx images -q
	assert_success
	[ -z "$output" ]
	run lbx images --format json
	assert_success
	jq -e '. == []' <<<"$output" >/dev/null
}

@test "inspect: Id, RepoTags, Config, RootFS, Layers, Architecture, Os, Size" {
	load_ok "$LBX_FIXTURE_OCI"
	id="$(fixture_id)"
	run --separate-stderr lbx inspect "$FIXTURE_NAME"
	assert_success
	j="$output"
	jq -e 'type == "array" and length == 1' <<<"$j" >/dev/null
	jq -e --arg id "${id#sha256:}" '.[0].Id == $id or .[0].Id == "sha256:" + $id' <<<"$j" >/dev/null ||
		fail "Id: $(jq -c '.[0].Id' <<<"$j")"
	jq -e --arg n "$FIXTURE_NAME" '.[0].RepoTags == [$n]' <<<"$j" >/dev/null ||
		fail "RepoTags: $(jq -c '.[0].RepoTags' <<<"$j")"
	jq -e '.[0].Config.Cmd == ["/bin/sh"]' <<<"$j" >/dev/null || fail "Cmd: $(jq -c '.[0].Config' <<<"$j")"
	jq -e '.[0].Config.Env | index("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") != null' \
		<<<"$j" >/dev/null || fail "Env: $(jq -c '.[0].Config' <<<"$j")"
	[ "$(jq -r '.[0].RootFS.Layers[]' <<<"$j")" = "$(oci_diff_ids "$LBX_FIXTURE_OCI")" ] ||
		fail "RootFS.Layers: $(jq -c '.[0].RootFS' <<<"$j")"
	[ "$(jq -r '.[0].Layers[]' <<<"$j")" = "$(oci_layer_digests "$LBX_FIXTURE_OCI")" ] ||
		fail "Layers: $(jq -c '.[0].Layers' <<<"$j")"
	jq -e '.[0].Architecture == "amd64" and .[0].Os == "linux"' <<<"$j" >/dev/null
	jq -e '.[0].Size > 5000000' <<<"$j" >/dev/null || fail "Size: $(jq -c '.[0].Size' <<<"$j")"
}

@test "inspect by short id (podman users expect it)" {
	load_ok "$LBX_FIXTURE_OCI"
	id="$(fixture_id)"
	id="${id#sha256:}"
	run lbx inspect "${id:0:12}"
	assert_success
	jq -e --arg n "$FIXTURE_NAME" '.[0].RepoTags == [$n]' <<<"$output" >/dev/null
}

@test "inspect by name@manifest-digest and by short name" {
	load_ok "$LBX_FIXTURE_OCI"
	mdigest="$(jq -r '.manifests[0].digest' "$LBX_FIXTURE_OCI/index.json")"
	repo="${FIXTURE_NAME%:*}"
	run lbx inspect "$repo@$mdigest"
	assert_success
	jq -e --arg n "$FIXTURE_NAME" '.[0].RepoTags == [$n]' <<<"$output" >/dev/null
	run --separate-stderr lbx inspect "$repo@sha256:$(printf '0%.0s' {1..64})"
	assert_one_line_error "sha256:0000"
}

# --- tag / rmi / prune --------------------------------------------------------

@test "tag, then rmi of one of two tags only untags" {
	load_ok "$LBX_FIXTURE_OCI"
	id="$(fixture_id)"
	id="${id#sha256:}"
	run lbx tag "$FIXTURE_NAME" localhost/other:v2
	assert_success
	run lbx images
	[ "${#lines[@]}" -eq 3 ] || fail "want two rows: $output"
	run lbx inspect localhost/other:v2
	assert_success
	jq -e --arg n "$FIXTURE_NAME" '.[0].RepoTags | sort == ([$n, "localhost/other:v2"] | sort)' \
		<<<"$output" >/dev/null || fail "RepoTags: $output"

	run lbx rmi localhost/other:v2
	assert_success
	assert_line "Untagged: localhost/other:v2"
	[[ "$output" != *Deleted:* ]] || fail "must not delete: $output"
	run lbx inspect "$FIXTURE_NAME"
	assert_success
	run --separate-stderr lbx inspect localhost/other:v2
	assert_failure
	# a missing image: an error, but not with -f (as Podman, for cleanups)
	run --separate-stderr lbx rmi localhost/other:v2
	assert_one_line_error "no such image"
	run lbx rmi -f localhost/other:v2 nosuch:tag
	assert_success

	run lbx rmi "$FIXTURE_NAME"
	assert_success
	assert_line "Untagged: $FIXTURE_NAME"
	[[ "$output" =~ Deleted:\ (sha256:)?$id ]] || fail "want Deleted: $id in: $output"
	run lbx images -q
	[ -z "$output" ]
}

@test "rmi + system prune keep blobs shared with a remaining image, free the rest" {
	require_dump_tool
	vdir="$(cached_image variant-layers python3 "$MKFIXTURE" standard --variant B)"
	image_from_layers oci "$BATS_TEST_TMPDIR/variant" "$vdir" gzip lbx-variant:latest --cmd /bin/sh
	load_ok "$LBX_FIXTURE_OCI"
	load_ok "$BATS_TEST_TMPDIR/variant"
	stored2="$(df_json StoredBytes)"

	run lbx rmi docker.io/library/lbx-variant:latest
	assert_success
	run lbx system prune -f
	assert_success
	[ "$(df_json Images)" = 1 ]
	[ "$(df_json Layers)" = 3 ]
	[ "$(df_json StoredBytes)" -le "$stored2" ]
	# every blob of the remaining image is still there and intact
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"

	run lbx rmi "$FIXTURE_NAME"
	assert_success
	run lbx system prune -f
	assert_success
	[ "$(df_json Images)" = 0 ]
	[ "$(df_json Layers)" = 0 ]
	[ "$(df_json Blobs)" = 0 ]
	[ "$(df_json StoredBytes)" = 0 ]
	left="$(find "$LAZYBOX_ROOT/blobs" -type f 2>/dev/null | wc -l)"
	[ "$left" -eq 0 ] || fail "$left blob files left after prune"
}

@test "rmi of an image used by a box is refused without -f" {
	require_cmd sqlite3
	load_ok "$LBX_FIXTURE_OCI"
	id="$(fixture_id)"
	id="${id#sha256:}"
	# ADJUST-SCHEMA: fake a box row using the image; change this INSERT if
	# store/'s boxes table changes (store.c: boxes(id, name, image, created)).
	sqlite3 "$LAZYBOX_ROOT/store.db" \
		"INSERT INTO boxes(id,name,image,created) SELECT 'b1','b1',id,0 FROM images WHERE id LIKE '%$id'" ||
		skip "cannot insert a box row (ADJUST-SCHEMA in load.bats)"
	[ "$(sqlite3 "$LAZYBOX_ROOT/store.db" "SELECT count(*) FROM boxes")" = 1 ] ||
		skip "no images row matches $id (ADJUST-SCHEMA in load.bats)"

	run --separate-stderr lbx rmi "$FIXTURE_NAME"
	assert_one_line_error b1
	run lbx images -q
	[ "${#lines[@]}" -eq 1 ] || fail "image must survive: $output"

	run lbx rmi -f "$FIXTURE_NAME"
	assert_success
	assert_line "Untagged: $FIXTURE_NAME"
	run lbx images -q
	[ -z "$output" ]
}

# --- storage ------------------------------------------------------------------

@test "system df: text and json" {
	run lbx system df
	assert_success
	load_ok "$LBX_FIXTURE_OCI"
	run lbx system df
	assert_success
	for w in Images Layers Blobs "Logical size" "Stored size" "Dedup ratio"; do
		assert_contains "$output" "$w"
	done
	run lbx system df --format json
	assert_success
	jq -e '.Images == 1 and .Layers == 3 and .Blobs > 0 and .LogicalBytes > 5000000 and .StoredBytes > 0' \
		<<<"$output" >/dev/null || fail "df json: $output"
}

@test "dedup: two images with different layer digests share file content" {
	require_dump_tool
	vdir="$(cached_image variant-layers python3 "$MKFIXTURE" standard --variant B)"
	image_from_layers oci "$BATS_TEST_TMPDIR/variant" "$vdir" gzip lbx-variant:latest --cmd /bin/sh
	# the variant really has no layer in common with the fixture
	run comm -12 <(oci_diff_ids "$LBX_FIXTURE_OCI" | sort) <(oci_diff_ids "$BATS_TEST_TMPDIR/variant" | sort)
	[ -z "$output" ]

	load_ok "$LBX_FIXTURE_OCI"
	load_ok "$BATS_TEST_TMPDIR/variant"
	lbx_dump "$FIXTURE_NAME" >"$BATS_TEST_TMPDIR/a.dump"
	lbx_dump docker.io/library/lbx-variant:latest >"$BATS_TEST_TMPDIR/b.dump"
	# bytes of distinct file contents over both trees
	unique="$(awk -F'\t' '$2 == "f" && !seen[$10]++ { s += $7 } END { print s }' \
		"$BATS_TEST_TMPDIR/a.dump" "$BATS_TEST_TMPDIR/b.dump")"
	one="$(awk -F'\t' '$2 == "f" { s += $7 } END { print s }' "$BATS_TEST_TMPDIR/a.dump")"

	run lbx system df --format json
	assert_success
	j="$output"
	echo "# unique=$unique one-image=$one df=$(jq -c . <<<"$j")" >&3
	[ "$(jq .Images <<<"$j")" = 2 ]
	[ "$(jq .Layers <<<"$j")" = 6 ]
	jq -e --argjson u "$unique" '.StoredBytes < 1.05 * $u' <<<"$j" >/dev/null ||
		fail "StoredBytes not < 1.05 x $unique: $j"
	jq -e --argjson o "$one" '.LogicalBytes >= 1.8 * $o and .LogicalBytes <= 2.3 * $o' <<<"$j" >/dev/null ||
		fail "LogicalBytes not about 2 x $one: $j"
}

# --- failures leave the store as it was ----------------------------------------

@test "corrupted layer blob: load fails naming the digest, store unchanged" {
	udir="$(cached_image unique-layers python3 "$MKFIXTURE" unique)"
	bad="$BATS_TEST_TMPDIR/bad"
	image_from_layers oci "$bad" "$udir" gzip lbx-bad:latest
	digest="$(oci_layer_digests "$bad")"
	blob="$bad/blobs/sha256/${digest#sha256:}"
	# flip one byte in the middle of the gzip stream
	python3 - "$blob" <<-'EOF'
		import os, sys
		fd = os.open(sys.argv[1], os.O_RDWR)
		off = os.fstat(fd).st_size // 2
		b = os.pread(fd, 1, off)
		os.pwrite(fd, bytes([b[0] ^ 0xFF]), off)
	EOF

	load_ok "$LBX_FIXTURE_OCI"
	images_before="$(lbx images -q)"
	blobs_before="$(df_json Blobs)"
	layers_before="$(df_json Layers)"
	files_before="$(find "$LAZYBOX_ROOT/blobs" -type f | wc -l)"

	run --separate-stderr lbx load -i "$bad"
	assert_one_line_error "${digest#sha256:}"
	[ "$(lbx images -q)" = "$images_before" ]
	[ "$(df_json Blobs)" = "$blobs_before" ]
	[ "$(df_json Layers)" = "$layers_before" ]
	[ -z "$(ls -A "$LAZYBOX_ROOT/tmp" 2>/dev/null)" ] || fail "staging files left: $(ls -A "$LAZYBOX_ROOT/tmp")"
	# blob files the failed load placed before the corrupt byte are swept
	[ "$(find "$LAZYBOX_ROOT/blobs" -type f | wc -l)" = "$files_before" ] ||
		fail "blob files: $(find "$LAZYBOX_ROOT/blobs" -type f | wc -l), before $files_before"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
}

@test "load killed mid-layer (SIGKILL), then loaded again" {
	require_dump_tool
	bdir="$(cached_image big-layers python3 "$MKFIXTURE" big)"
	big="$(cached_image big-oci oci_from_layers_to "$bdir" none lbx-big:latest)"
	big_dump="$(cached_image big.dump umoci_dump_to "$big" lbx-big:latest)"

	"$LAZYBOX" --root "$LAZYBOX_ROOT" load -i "$big" >"$BATS_TEST_TMPDIR/killed.log" 2>&1 3>&- &
	pid=$!
	# kill as soon as it writes into the store (staging or blob files)
	for _ in $(seq 1 2000); do
		kill -0 "$pid" 2>/dev/null || break
		if [ -n "$(ls -A "$LAZYBOX_ROOT/tmp" 2>/dev/null)" ] ||
			[ -n "$(find "$LAZYBOX_ROOT/blobs" -type f -print -quit 2>/dev/null)" ]; then
			break
		fi
		sleep 0.01
	done
	if kill -9 "$pid" 2>/dev/null; then
		killed=1
		echo "# killed the load after $(find "$LAZYBOX_ROOT" -type f | wc -l) files were written" >&3
	else
		killed=0
		echo "# note: the load finished before it could be killed" >&3
	fi
	wait "$pid" || true

	if [ "$killed" = 1 ]; then
		# nothing half-visible: the image is not listed
		run lbx images --format json
		assert_success
		jq -e 'map(select(.Names | index("docker.io/library/lbx-big:latest"))) | length == 0' \
			<<<"$output" >/dev/null || fail "killed load left a visible image: $output"
	fi

	load_ok "$big"
	assert_line "Loaded image: docker.io/library/lbx-big:latest"
	assert_tree docker.io/library/lbx-big:latest "$big_dump"
	run lbx images -q
	[ "${#lines[@]}" -eq 1 ]
	[ "$(df_json Layers)" = 2 ]
}

@test "hostile layer with ../evil: load fails naming the path, nothing escapes" {
	hdir="$(cached_image hostile-layers python3 "$MKFIXTURE" hostile)"
	image_from_layers oci "$BATS_TEST_TMPDIR/hostile" "$hdir" gzip lbx-hostile:latest
	mkdir -p "$BATS_TEST_TMPDIR/cwd/a/b"
	cd "$BATS_TEST_TMPDIR/cwd/a/b"
	run --separate-stderr lbx load -i "$BATS_TEST_TMPDIR/hostile"
	assert_one_line_error "../evil"
	run find "$BATS_TEST_TMPDIR" -name evil -not -path "$LAZYBOX_ROOT/*"
	[ -z "$output" ] || fail "escaped: $output"
	[ ! -e "$LAZYBOX_ROOT/../evil" ]
	run lbx images -q
	[ -z "$output" ]
}

# --- import -------------------------------------------------------------------

@test "import rootfs tar.gz with --change CMD and ENV" {
	require_dump_tool
	gzip -n -c "$LBX_FIXTURE_LAYERS/layer1.tar" >"$BATS_TEST_TMPDIR/rootfs.tar.gz"
	l1dump="$(cached_image layer1.dump layer1_dump)"

	run --separate-stderr lbx import "$BATS_TEST_TMPDIR/rootfs.tar.gz" localhost/imported:1 \
		--change 'CMD=/bin/sh' --change 'ENV=A=B'
	assert_success
	[[ "${lines[-1]}" =~ ^(sha256:)?[0-9a-f]{64}$ ]] || fail "want the full image id: $output"
	id="${lines[-1]#sha256:}"

	run lbx inspect localhost/imported:1
	assert_success
	jq -e --arg id "$id" '.[0].Id == $id or .[0].Id == "sha256:" + $id' <<<"$output" >/dev/null ||
		fail "Id: $output"
	# shell form (docker/podman: ["/bin/sh","-c","/bin/sh"]) or exec form
	jq -e '.[0].Config.Cmd | . == ["/bin/sh"] or . == ["/bin/sh", "-c", "/bin/sh"]' <<<"$output" >/dev/null ||
		fail "Cmd: $(jq -c '.[0].Config' <<<"$output")"
	jq -e '.[0].Config.Env | index("A=B") != null' <<<"$output" >/dev/null ||
		fail "Env: $(jq -c '.[0].Config' <<<"$output")"
	jq -e '.[0].RootFS.Layers | length == 1' <<<"$output" >/dev/null
	assert_tree localhost/imported:1 "$l1dump"

	run lbx import "$BATS_TEST_TMPDIR/rootfs.tar.gz"
	assert_success
	[[ "${lines[-1]}" =~ ^(sha256:)?[0-9a-f]{64}$ ]] || fail "want the full image id: $output"
}

@test "import of a layer whose files pass the early sync's 32 MiB: every blob file is whole" {
	# a thread syncs the store while the layer is still being read
	# (store/layer.c, sync_early); the commit's own sync comes after it
	mkdir -p "$BATS_TEST_TMPDIR/big"
	for k in 1 2 3 4 5 6 7 8; do
		head -c $((9 << 20)) /dev/urandom >"$BATS_TEST_TMPDIR/big/f$k"
	done
	tar -C "$BATS_TEST_TMPDIR/big" -cf "$BATS_TEST_TMPDIR/big.tar" .
	run --separate-stderr lbx import -q "$BATS_TEST_TMPDIR/big.tar" localhost/big:1
	assert_success
	local h
	for k in 1 2 3 4 5 6 7 8; do
		h="$(sha256sum "$BATS_TEST_TMPDIR/big/f$k" | cut -d' ' -f1)"
		[ "$(sha256sum <"$LAZYBOX_ROOT/blobs/sha256/${h:0:2}/$h" | cut -d' ' -f1)" = "$h" ] ||
			fail "f$k: its blob file is missing or differs"
	done
	run --separate-stderr lbx system check --verify
	assert_success
}

# --- errors -------------------------------------------------------------------

@test "load of a missing path: one-line error naming it" {
	run --separate-stderr lbx load -i "$BATS_TEST_TMPDIR/no/such/image"
	assert_one_line_error "$BATS_TEST_TMPDIR/no/such/image"
}

@test "load of a file that is not an image: one-line error naming it" {
	head -c 10000 /dev/urandom >"$BATS_TEST_TMPDIR/junk.tar"
	run --separate-stderr lbx load -i "$BATS_TEST_TMPDIR/junk.tar"
	assert_one_line_error "junk.tar"
	run lbx images -q
	[ -z "$output" ]
}

@test "inspect / rmi / tag of an unknown image: one-line error naming it" {
	run --separate-stderr lbx inspect nosuch-image:v9
	assert_one_line_error nosuch-image
	[ -z "$output" ]
	run --separate-stderr lbx rmi nosuch-image:v9
	assert_one_line_error nosuch-image
	run --separate-stderr lbx tag nosuch-image:v9 localhost/x:1
	assert_one_line_error nosuch-image
}

@test "version: lazybox's and the libraries' found at run time (libfuse, libcurl: opened when needed)" {
	run lbx version
	assert_success
	[[ "$output" =~ [0-9]+\.[0-9]+\.[0-9]+ ]] || fail "no version number: $output"
	run lbx version --format json
	assert_success
	# what the packages installed here say, not what lazybox was built with
	local fuse curl
	fuse="$(dpkg-query -W -f '${Version}' libfuse3-3 2>/dev/null | sed 's/-.*//')"
	curl="$(curl --version | sed -n '1s/^curl [^ ]* [^ ]* \(libcurl\/[0-9.]*\).*/\1/p')"
	jq -e --arg f "libfuse $fuse" --arg c "$curl" '.FUSE == $f and (.Curl | startswith($c)) and
		(.SQLite | test("^3\\.")) and .OsArch != ""' <<<"$output" >/dev/null ||
		fail "version: $output (want libfuse $fuse, $curl)"
}

# --- helpers for cached_image (they take the output path last) -----------------

fixture_oci_args() { # COMPRESS [ARGS...] OUT
	local out="${*: -1}"
	fixture_oci "$out" "${@:1:$#-1}"
}

fixture_archive_args() { # COMPRESS [ARGS...] OUT
	local out="${*: -1}"
	fixture_archive "$out" "${@:1:$#-1}"
}

oci_from_layers_to() { # LAYERDIR COMPRESS REF OUT
	image_from_layers oci "$4" "$1" "$2" "$3"
}

umoci_dump_to() { # OCIDIR TAG OUT
	umoci_dump "$1" "$2" >"$3"
}

layer1_dump() { # OUT: umoci dump of an image made of the fixture's layer1 only
	local d="$BATS_TEST_TMPDIR/l1"
	mkdir -p "$d/layers"
	cp "$LBX_FIXTURE_LAYERS/layer1.tar" "$d/layers/"
	image_from_layers oci "$d/oci" "$d/layers" gzip l1:latest
	umoci_dump "$d/oci" l1:latest >"$1"
}

# --- findings of the first review: each failed before its fix ----------------

@test "concurrent first use of an empty store: every load succeeds" {
	pids=()
	for i in 1 2 3 4 5 6; do
		lbx load -q -i "$LBX_FIXTURE_OCI" 2>"$BATS_TEST_TMPDIR/err.$i" &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || fail "load $((i + 1)) failed: $(cat "$BATS_TEST_TMPDIR/err.$((i + 1))")"
	done
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
}

@test "docker save >= 25 (manifest.json and oci-layout): names from RepoTags; gzip'd archive" {
	require_dump_tool
	arch="$(cached_image da-none.tar fixture_archive_args none --ref "$FIXTURE_REF" --ref quay.io/lbx/other:v1)"
	cp "$arch" "$BATS_TEST_TMPDIR/both.tar"
	mkdir "$BATS_TEST_TMPDIR/extra"
	echo '{"imageLayoutVersion": "1.0.0"}' >"$BATS_TEST_TMPDIR/extra/oci-layout"
	echo '{"schemaVersion": 2, "manifests": []}' >"$BATS_TEST_TMPDIR/extra/index.json"
	tar -C "$BATS_TEST_TMPDIR/extra" -rf "$BATS_TEST_TMPDIR/both.tar" oci-layout index.json
	load_ok "$BATS_TEST_TMPDIR/both.tar"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_line "Loaded image: quay.io/lbx/other:v1"
	gzip -c "$arch" >"$BATS_TEST_TMPDIR/da.tar.gz"
	run lbx rmi -a -f
	load_ok "$BATS_TEST_TMPDIR/da.tar.gz"
	assert_line "Loaded image: $FIXTURE_NAME"
	assert_tree "$FIXTURE_NAME" "$LBX_FIXTURE_DUMP"
	[ -z "$(ls -A "$LAZYBOX_ROOT/tmp")" ] || fail "decompressed copy left in tmp/"
}

@test "import: empty file, far-future mtime, error names the file once" {
	require_dump_tool
	mkdir -p "$BATS_TEST_TMPDIR/r/etc"
	: >"$BATS_TEST_TMPDIR/r/etc/empty"
	echo x >"$BATS_TEST_TMPDIR/r/etc/future"
	touch -d @99999999999 "$BATS_TEST_TMPDIR/r/etc/future"
	tar --format=pax -C "$BATS_TEST_TMPDIR/r" -cf "$BATS_TEST_TMPDIR/r.tar" .
	run --separate-stderr lbx import "$BATS_TEST_TMPDIR/r.tar" odd:1
	assert_success
	run "$LBX_DUMP" "$LAZYBOX_ROOT" odd:1
	assert_success
	assert_contains "$output" "/etc/empty"
	head -c 3000 "$BATS_TEST_TMPDIR/r.tar" >"$BATS_TEST_TMPDIR/trunc.tar"
	run --separate-stderr lbx import "$BATS_TEST_TMPDIR/trunc.tar"
	assert_one_line_error trunc.tar
	[ "$(grep -o trunc.tar <<<"$stderr" | wc -l)" -eq 1 ] || fail "named more than once: $stderr"
}

@test "images NAME with no match: the header only, exit 0" {
	run --separate-stderr lbx images nosuch:thing
	assert_success
	[ "${#lines[@]}" -eq 1 ]
	assert_contains "${lines[0]}" REPOSITORY
}

@test "OCI layout blob that is a FIFO: refused, no hang" {
	cp -a "$LBX_FIXTURE_OCI" "$BATS_TEST_TMPDIR/fifo"
	digest="$(oci_layer_digests "$BATS_TEST_TMPDIR/fifo" | head -n1)"
	blob="$BATS_TEST_TMPDIR/fifo/blobs/sha256/${digest#sha256:}"
	rm -f "$blob" && mkfifo "$blob"
	run --separate-stderr timeout 60 "$LAZYBOX" --root "$LAZYBOX_ROOT" load -i "$BATS_TEST_TMPDIR/fifo"
	[ "$status" -ne 124 ] || fail "load hung on a FIFO"
	assert_one_line_error "not a regular file"
}
