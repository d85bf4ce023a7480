#!/usr/bin/env bats
# lazybox pull / login / logout against Debian's docker-registry on loopback.
# Registries listen on 127.0.0.1 at free ports; images are built from the
# standard fixture and pushed with skopeo; trees are compared with umoci's.

bats_require_minimum_version 1.5.0
load helpers

# --- registries (free_port, start_registry, push...: helpers.bash) -------------

# make_multi OUT AMD64_OCI ARM64_OCI: one OCI layout whose ref "multi" is an
# index of the two images (linux/amd64, linux/arm64 without a variant)
make_multi() {
	python3 - "$@" <<-'EOF'
		import hashlib, json, os, shutil, sys
		out, amd, arm = sys.argv[1:]
		os.makedirs(out + "/blobs/sha256", exist_ok=True)
		descs = []
		for src, arch in ((amd, "amd64"), (arm, "arm64")):
		    for b in os.listdir(src + "/blobs/sha256"):
		        shutil.copy(src + "/blobs/sha256/" + b, out + "/blobs/sha256/" + b)
		    d = json.load(open(src + "/index.json"))["manifests"][0]
		    descs.append({"mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
		                  "platform": {"architecture": arch, "os": "linux"}})
		index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
		                    "manifests": descs}).encode()
		h = hashlib.sha256(index).hexdigest()
		open(out + "/blobs/sha256/" + h, "wb").write(index)
		json.dump({"schemaVersion": 2, "manifests": [{
		    "mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + h,
		    "size": len(index), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]},
		    open(out + "/index.json", "w"))
		open(out + "/oci-layout", "w").write('{"imageLayoutVersion": "1.0.0"}')
	EOF
}

setup_file() {
	fixture_setup_file
	[ -f "${LBX_FIXTURE_DUMP:-}" ] || return 0
	command -v docker-registry >/dev/null && command -v skopeo >/dev/null || return 0
	export REG_DIR="$BATS_FILE_TMPDIR/registry"
	start_registry "$REG_DIR"
	export REG="127.0.0.1:$(cat "$REG_DIR/port")"
	local d="$BATS_FILE_TMPDIR"
	push "$LBX_FIXTURE_OCI:$FIXTURE_REF" "$REG/lbx/fixture:gzip"
	fixture_oci "$d/oci-zstd" zstd
	push "$d/oci-zstd:$FIXTURE_REF" "$REG/lbx/fixture:zstd"
	fixture_oci "$d/oci-none" none
	python3 "$LBX_SYSTEM_DIR/regpush.py" "$d/oci-none" "$FIXTURE_REF" "$REG" lbx/fixture none
	# skopeo converts the media types to Docker schema2 (same gzip blobs)
	push "$LBX_FIXTURE_OCI:$FIXTURE_REF" "$REG/lbx/fixture:docker" --format v2s2
	mkdir -p "$d/arm-layers"
	ln -sf "$LBX_FIXTURE_LAYERS/layer1.tar" "$d/arm-layers/layer1.tar"
	image_from_layers oci "$d/oci-arm64" "$d/arm-layers" gzip arm:latest --arch arm64
	make_multi "$d/oci-multi" "$LBX_FIXTURE_OCI" "$d/oci-arm64"
	push "$d/oci-multi:multi" "$REG/lbx/multi:v1" --all
}

teardown_file() {
	[ -n "${REG_DIR:-}" ] && stop_registry "$REG_DIR"
	return 0
}

setup() {
	common_setup
	require_fixture
	require_cmd docker-registry skopeo
	[ -n "${REG:-}" ] || fail "the registry did not start (see setup_file)"
	# nothing of the user's: no auth files, no registries.conf
	export HOME="$BATS_TEST_TMPDIR/home" XDG_CONFIG_HOME="$BATS_TEST_TMPDIR/config"
	export XDG_RUNTIME_DIR="$BATS_TEST_TMPDIR/run"
	export CONTAINERS_REGISTRIES_CONF="$BATS_TEST_TMPDIR/registries.conf"
	unset REGISTRY_AUTH_FILE
	mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_RUNTIME_DIR"
	: >"$CONTAINERS_REGISTRIES_CONF"
}

teardown() {
	local f
	for f in "$BATS_TEST_TMPDIR"/*/pid; do
		[ -f "$f" ] && stop_registry "$(dirname "$f")"
	done
	for f in "$BATS_TEST_TMPDIR"/*.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	# a registry this test started and nothing above stopped is a leak
	local left
	left="$(pgrep -f "docker-registry serve $BATS_TEST_TMPDIR/" || true)"
	if [ -n "$left" ]; then
		kill $left 2>/dev/null
		common_teardown
		fail "registries left running by the test: $left"
	fi
	common_teardown
}

# pull_ok ARGS...: lazybox pull must succeed; the last stdout line is the ID
pull_ok() {
	run --separate-stderr lbx pull "$@"
	assert_success
	[ "${#lines[@]}" -eq 1 ] || fail "expected only the image ID on stdout, got: $output"
}

# store_is_empty: no image, no layer, no blob file
store_is_empty() {
	run lbx images -q
	[ -z "$output" ] || fail "images left: $output"
	[ "$(df_json Layers)" = 0 ] || fail "layers left: $(df_json Layers)"
	[ -z "$(find "$LAZYBOX_ROOT/blobs" -type f 2>/dev/null)" ] || fail "blob files left"
}

# --- formats ----------------------------------------------------------------------

@test "pull gzip image: podman-style output, ID, name, tree equals umoci's" {
	require_dump_tool
	pull_ok --tls-verify=false "$REG/lbx/fixture:gzip"
	[ "$output" = "$(oci_config_digest "$LBX_FIXTURE_OCI" | cut -d: -f2)" ] ||
		fail "ID $output is not the config digest"
	[ "${stderr_lines[0]}" = "Trying to pull $REG/lbx/fixture:gzip..." ] || fail "$stderr"
	[ "${stderr_lines[1]}" = "Getting image source signatures" ] || fail "$stderr"
	[ "$(grep -c '^Copying blob [0-9a-f]\{12\} done$' <<<"$stderr")" -eq 3 ] || fail "$stderr"
	assert_contains "$stderr" "Copying config ${output:0:12} done"
	[ "${stderr_lines[-1]}" = "Writing manifest to image destination" ] || fail "$stderr"
	assert_tree "$REG/lbx/fixture:gzip" "$LBX_FIXTURE_DUMP"
	run lbx images --format json
	jq -e --arg n "$REG/lbx/fixture:gzip" '.[0].Names | index($n) != null' <<<"$output" >/dev/null ||
		fail "not named $REG/lbx/fixture:gzip: $output"
	# Podman's fields: the manifest's digest, and the repository @ it
	jq -e --arg r "$REG/lbx/fixture" '.[0] | (.Digest | test("^sha256:[0-9a-f]{64}$")) and
		.RepoDigests == [$r + "@" + .Digest] and .VirtualSize == .Size and .Dangling == false' \
		<<<"$output" >/dev/null || fail "images json, Digest and RepoDigests: $output"
}

@test "pull zstd image: tree equals umoci's" {
	require_dump_tool
	pull_ok --tls-verify=false "$REG/lbx/fixture:zstd"
	assert_tree "$REG/lbx/fixture:zstd" "$LBX_FIXTURE_DUMP"
}

@test "pull uncompressed image: tree equals umoci's" {
	require_dump_tool
	pull_ok --tls-verify=false "$REG/lbx/fixture:none"
	assert_tree "$REG/lbx/fixture:none" "$LBX_FIXTURE_DUMP"
}

@test "pull Docker schema2 image: tree equals umoci's" {
	require_dump_tool
	pull_ok --tls-verify=false "$REG/lbx/fixture:docker"
	assert_tree "$REG/lbx/fixture:docker" "$LBX_FIXTURE_DUMP"
}

@test "pull -q prints only the ID; a second pull downloads nothing" {
	pull_ok -q --tls-verify=false "$REG/lbx/fixture:gzip"
	[ -z "$stderr" ] || fail "-q printed: $stderr"
	id="$output"
	pull_ok --tls-verify=false "$REG/lbx/fixture:gzip"
	[ "$output" = "$id" ]
	[ "$(grep -c 'skipped: already exists' <<<"$stderr")" -eq 3 ] || fail "$stderr"
	# the same layers under another compression are indexed once per diff_id
	pull_ok --tls-verify=false "$REG/lbx/fixture:none"
	[ "$(grep -c 'skipped: already exists' <<<"$stderr")" -eq 3 ] || fail "$stderr"
}

@test "pull by digest; name@digest finds the image" {
	m="sha256:$(sha256sum <"$(oci_manifest "$LBX_FIXTURE_OCI")" | cut -c1-64)"
	pull_ok --tls-verify=false "$REG/lbx/fixture@$m"
	id="$output"
	run --separate-stderr lbx inspect "$REG/lbx/fixture@$m"
	assert_success
	[ "$(jq -r '.[0].Id' <<<"$output")" = "$id" ]
	# Podman's Digest and RepoDigests, for scripts that pin what they pulled;
	# "name@digest" names the image (no tag), so it is not dangling
	jq -e --arg m "$m" --arg rd "$REG/lbx/fixture@$m" \
		'.[0].Digest == $m and .[0].RepoDigests == [$rd] and .[0].RepoTags == []' <<<"$output" >/dev/null ||
		fail "digests: $(jq -c '.[0] | {Digest, RepoDigests, RepoTags}' <<<"$output")"
	run lbx images --format '{{.Repository}} {{.Tag}} {{.Dangling}}'
	[ "$output" = "$REG/lbx/fixture <none> false" ] || fail "images: $output"
	lbx system prune -f >/dev/null
	run lbx inspect -f '{{.Id}}' "$REG/lbx/fixture@$m"
	[ "$output" = "$id" ] || fail "system prune took an image pulled by digest: $output"
	lbx tag "$REG/lbx/fixture@$m" "$REG/lbx/fixture:pinned" "$REG/lbx/other:x"
	run lbx inspect -f '{{json .RepoDigests}}' "$REG/lbx/fixture@$m"
	[ "$output" = "[\"$REG/lbx/fixture@$m\",\"$REG/lbx/other@$m\"]" ] || fail "RepoDigests: $output"
	run lbx inspect -f '{{index .RepoDigests 0}}' "$REG/lbx/fixture@$m"
	[ "$output" = "$REG/lbx/fixture@$m" ] || fail "inspect -f: $output"
	# a line per tag, as Podman's: the digest's name no longer shows
	run lbx images --format '{{.Repository}} {{.Tag}} {{.Digest}}'
	[ "$output" = "$(printf '%s pinned %s\n%s x %s' "$REG/lbx/fixture" "$m" "$REG/lbx/other" "$m")" ] ||
		fail "images .Digest: $output"
	run lbx images --format json
	jq -e --arg t "$REG/lbx/fixture:pinned" '.[0].RepoTags | index($t) != null and all(test("@") | not)' \
		<<<"$output" >/dev/null || fail "images json RepoTags: $output"
}

# --- manifest lists -------------------------------------------------------------

@test "manifest list: host platform by default, --platform picks another" {
	[ "$(uname -m)" = x86_64 ] || skip "the list holds linux/amd64 and linux/arm64; host is $(uname -m)"
	amd="$(oci_config_digest "$LBX_FIXTURE_OCI" | cut -d: -f2)"
	arm="$(oci_config_digest "$BATS_FILE_TMPDIR/oci-arm64" | cut -d: -f2)"
	pull_ok --tls-verify=false "$REG/lbx/multi:v1"
	[ "$output" = "$amd" ] || fail "host pull gave $output, want $amd"
	pull_ok --tls-verify=false --platform linux/arm64 "$REG/lbx/multi:v1"
	[ "$output" = "$arm" ] || fail "arm64 pull gave $output, want $arm"
	# by the list's digest: found in the store afterwards, without the registry
	local list
	list="$(skopeo inspect --raw --tls-verify=false "docker://$REG/lbx/multi:v1" | sha256sum | cut -d' ' -f1)"
	pull_ok --tls-verify=false "$REG/lbx/multi@sha256:$list"
	[ "$output" = "$amd" ] || fail "pull by list digest gave $output, want $amd"
	stop_registry "$REG_DIR"
	run lbx inspect --format json "$REG/lbx/multi@sha256:$list"
	restart_registry "$REG_DIR"
	assert_success
	[ "$(jq -r '.[0].Id' <<<"$output")" = "$amd" ] || fail "name@list-digest: $output"
	# the image's own manifest is its Digest; tagged, each digest it came by
	# (its own and the list's) makes a RepoDigest
	local own
	own="sha256:$(sha256sum <"$(oci_manifest "$LBX_FIXTURE_OCI")" | cut -c1-64)"
	lbx tag "$REG/lbx/multi@sha256:$list" "$REG/lbx/multi:amd"
	run lbx inspect --format json "$REG/lbx/multi:amd"
	jq -e --arg own "$own" --arg list "sha256:$list" --arg r "$REG/lbx/multi" \
		'.[0].Digest == $own and (.[0].RepoDigests | index($r + "@" + $own) != null and index($r + "@" + $list) != null)' \
		<<<"$output" >/dev/null || fail "digests: $(jq -c '.[0] | {Digest, RepoDigests}' <<<"$output")"
	run --separate-stderr lbx create --pull never "$REG/lbx/multi@sha256:$list" true
	assert_success
	lbx rm "$output" >/dev/null
	# a variant falls back to the entry that names none
	pull_ok --tls-verify=false --platform linux/aarch64/v8 "$REG/lbx/multi:v1"
	[ "$output" = "$arm" ]
	run --separate-stderr lbx pull -q --tls-verify=false --platform linux/s390x "$REG/lbx/multi:v1"
	assert_one_line_error "$REG/lbx/multi:v1" "linux/s390x"
	[ "$status" -eq 125 ]
	run --separate-stderr lbx pull -q --tls-verify=false --platform s390x "$REG/lbx/multi:v1"
	assert_one_line_error "s390x" "OS/ARCH"
}

# --- errors ---------------------------------------------------------------------

@test "unknown tag, unknown repository: one line naming the reference" {
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/fixture:nope"
	assert_one_line_error "$REG/lbx/fixture:nope" "not found"
	[ "$status" -eq 125 ]
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/nothere"
	assert_one_line_error "$REG/lbx/nothere:latest" "not found"
	store_is_empty
}

@test "unreachable registry, TLS failure: one line each" {
	port="$(free_port)"
	run --separate-stderr lbx pull -q --tls-verify=false "127.0.0.1:$port/lbx/fixture:gzip"
	assert_one_line_error "127.0.0.1:$port/lbx/fixture:gzip" "unreachable"
	run --separate-stderr lbx pull -q "$REG/lbx/fixture:gzip"
	assert_one_line_error "$REG/lbx/fixture:gzip" "TLS" "--tls-verify=false"
	store_is_empty
}

@test "unsupported media types: one line naming the reference and the type" {
	# a manifest whose layer is not a tar, put straight through the API
	python3 - "$REG" <<-'EOF'
		import hashlib, json, sys, urllib.request
		reg = "http://" + sys.argv[1]
		def put_blob(data):
		    d = "sha256:" + hashlib.sha256(data).hexdigest()
		    r = urllib.request.urlopen(urllib.request.Request(reg + "/v2/lbx/odd/blobs/uploads/", method="POST"))
		    loc = r.headers["Location"]
		    loc = (loc if loc.startswith("http") else reg + loc) + ("&" if "?" in loc else "?") + "digest=" + d
		    urllib.request.urlopen(urllib.request.Request(loc, data=data, method="PUT",
		        headers={"Content-Type": "application/octet-stream"}))
		    return {"digest": d, "size": len(data)}
		cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}).encode()
		c = put_blob(cfg); c["mediaType"] = "application/vnd.oci.image.config.v1+json"
		l = put_blob(b"not a tar"); l["mediaType"] = "application/vnd.example.thing"
		for tag, m in (("layer", {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": [l]}),
		               ("config", {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		                           "config": dict(c, mediaType="application/vnd.example.config+json"), "layers": []})):
		    urllib.request.urlopen(urllib.request.Request(reg + "/v2/lbx/odd/manifests/" + tag, data=json.dumps(m).encode(),
		        method="PUT", headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
	EOF
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/odd:layer"
	assert_one_line_error "$REG/lbx/odd:layer" "unsupported media type application/vnd.example.thing"
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/odd:config"
	assert_one_line_error "$REG/lbx/odd:config" "unsupported media type application/vnd.example.config+json"
	store_is_empty
}

@test "a corrupted blob in the registry fails the pull and leaves the store as it was" {
	# an image of its own, so no other test sees the damage
	mkdir -p "$BATS_TEST_TMPDIR/l"
	python3 - "$BATS_TEST_TMPDIR/l/layer1.tar" <<-'EOF'
		import io, os, sys, tarfile
		with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
		    data = os.urandom(300000)
		    i = tarfile.TarInfo("random.bin"); i.size = len(data); i.mtime = 1700000000
		    t.addfile(i, io.BytesIO(data))
	EOF
	image_from_layers oci "$BATS_TEST_TMPDIR/oci" "$BATS_TEST_TMPDIR/l" none bad:latest
	python3 "$LBX_SYSTEM_DIR/regpush.py" "$BATS_TEST_TMPDIR/oci" bad:latest "$REG" lbx/bad v1
	d="$(oci_layer_digests "$BATS_TEST_TMPDIR/oci")"
	d="${d#sha256:}"
	blob="$REG_DIR/storage/docker/registry/v2/blobs/sha256/${d:0:2}/$d/data"
	[ -f "$blob" ] || fail "no blob file at $blob"
	printf 'XXXX' | dd of="$blob" bs=1 seek=150000 conv=notrunc status=none
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/bad:v1"
	assert_one_line_error "$REG/lbx/bad:v1" "sha256:$d" "digest mismatch"
	[ "$status" -eq 125 ]
	store_is_empty
}

# --- transfers ------------------------------------------------------------------

@test "a transfer cut mid-layer resumes with a range request" {
	require_dump_tool
	python3 "$LBX_SYSTEM_DIR/cutproxy.py" --upstream "${REG#*:}" --cut-after 1000000 \
		--port-file "$BATS_TEST_TMPDIR/proxy.port" --log "$BATS_TEST_TMPDIR/proxy.log" 3>&- &
	echo "$!" >"$BATS_TEST_TMPDIR/proxy.pid"
	for _ in $(seq 100); do [ -f "$BATS_TEST_TMPDIR/proxy.port" ] && break; sleep 0.1; done
	proxy="127.0.0.1:$(cat "$BATS_TEST_TMPDIR/proxy.port")"
	pull_ok --tls-verify=false "$proxy/lbx/fixture:none"
	assert_contains "$(cat "$BATS_TEST_TMPDIR/proxy.log")" "cut after"
	grep -qi '^range: bytes=[1-9][0-9]*-' "$BATS_TEST_TMPDIR/proxy.log" ||
		fail "no range request:" "$(cat "$BATS_TEST_TMPDIR/proxy.log")"
	assert_contains "$stderr" "resuming at byte"
	assert_tree "$proxy/lbx/fixture:none" "$LBX_FIXTURE_DUMP"
}

@test "registry stopped: pull fails cleanly; restarted: the next pull succeeds" {
	require_dump_tool
	stop_registry "$REG_DIR"
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/fixture:gzip"
	restart_registry "$REG_DIR" || fail "registry did not restart"
	assert_one_line_error "$REG/lbx/fixture:gzip" "unreachable"
	store_is_empty
	pull_ok --tls-verify=false "$REG/lbx/fixture:gzip"
	assert_tree "$REG/lbx/fixture:gzip" "$LBX_FIXTURE_DUMP"
}

@test "two pulls of the same image at once both succeed" {
	require_dump_tool
	lbx pull -q --tls-verify=false "$REG/lbx/fixture:zstd" >"$BATS_TEST_TMPDIR/a.out" 2>&1 3>&- &
	a=$!
	lbx pull -q --tls-verify=false "$REG/lbx/fixture:zstd" >"$BATS_TEST_TMPDIR/b.out" 2>&1 3>&- &
	b=$!
	wait "$a" || fail "first pull failed: $(cat "$BATS_TEST_TMPDIR/a.out")"
	wait "$b" || fail "second pull failed: $(cat "$BATS_TEST_TMPDIR/b.out")"
	[ "$(cat "$BATS_TEST_TMPDIR/a.out")" = "$(cat "$BATS_TEST_TMPDIR/b.out")" ]
	assert_tree "$REG/lbx/fixture:zstd" "$LBX_FIXTURE_DUMP"
	run lbx images -q
	[ "${#lines[@]}" -eq 1 ]
}

# --- names ----------------------------------------------------------------------

@test "short names go through registries.conf's unqualified-search-registries" {
	port="$(free_port)"
	printf '# test\nunqualified-search-registries = [\n  "127.0.0.1:%s", # nothing there\n  "%s",\n]\n[[registry]]\nlocation = "x"\n' \
		"$port" "$REG" >"$CONTAINERS_REGISTRIES_CONF"
	pull_ok --tls-verify=false lbx/fixture:gzip
	assert_contains "$stderr" "Trying to pull 127.0.0.1:$port/lbx/fixture:gzip..."
	assert_contains "$stderr" "Trying to pull $REG/lbx/fixture:gzip..."
	run lbx images --format json
	jq -e --arg n "$REG/lbx/fixture:gzip" '.[0].Names | index($n) != null' <<<"$output" >/dev/null ||
		fail "not named $REG/lbx/fixture:gzip: $output"
	run --separate-stderr lbx pull -q --tls-verify=false lbx/fixture:nope
	assert_one_line_error "lbx/fixture:nope" "search registries"
	# an empty entry (found by fuzz-auth) is an error naming the file
	printf 'unqualified-search-registries = ["%s", ""]\n' "$REG" >"$CONTAINERS_REGISTRIES_CONF"
	run --separate-stderr lbx pull -q --tls-verify=false lbx/fixture:gzip
	assert_one_line_error "$CONTAINERS_REGISTRIES_CONF" "empty name"
}

# --- registries.conf's [[registry]] tables and certs.d -------------------------

# names_of IMAGE: the image's names, one per line
names_of() {
	lbx inspect "$1" | jq -r '.[0].RepoTags[]'
}

@test "registries.conf: insecure = true, --tls-verify=true outranks it; a blocked registry; v1 refused" {
	printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REG" >"$CONTAINERS_REGISTRIES_CONF"
	pull_ok -q "$REG/lbx/fixture:gzip"
	assert_tree "$REG/lbx/fixture:gzip" "$LBX_FIXTURE_DUMP"
	# so do create's and run's pulls, and their --tls-verify=true
	run --separate-stderr lbx create --pull=always --tls-verify=true "$REG/lbx/fixture:gzip" true
	assert_one_line_error "$REG/lbx/fixture:gzip" "TLS"
	run --separate-stderr lbx create --pull=always --name viaconf "$REG/lbx/fixture:gzip" true
	assert_success
	lbx rm viaconf >/dev/null
	lbx rmi -a >/dev/null
	# login goes by the same table (this registry takes any credentials)
	run --separate-stderr lbx login -u u -p p "$REG"
	assert_success
	run --separate-stderr lbx login --tls-verify=true -u u -p p "$REG"
	assert_one_line_error "login $REG" "TLS"
	run --separate-stderr lbx pull -q --tls-verify=true "$REG/lbx/fixture:gzip"
	assert_one_line_error "$REG/lbx/fixture:gzip" "TLS"
	: >"$CONTAINERS_REGISTRIES_CONF"
	run --separate-stderr lbx pull -q "$REG/lbx/fixture:gzip"
	assert_one_line_error "$REG/lbx/fixture:gzip" "TLS" "--tls-verify=false"
	# blocked: refused before any connection, by prefix and by wildcard
	printf '[[registry]]\nprefix = "%s/lbx"\nlocation = "%s/lbx"\nblocked = true\n[[registry]]\nprefix = "*.invalid"\nblocked = true\n' \
		"$REG" "$REG" >"$CONTAINERS_REGISTRIES_CONF"
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/fixture:gzip"
	assert_one_line_error "$REG/lbx/fixture:gzip" "blocked" "$CONTAINERS_REGISTRIES_CONF:1"
	run --separate-stderr lbx pull -q "a.b.invalid/x/y:1"
	assert_one_line_error "a.b.invalid/x/y:1" "blocked" "$CONTAINERS_REGISTRIES_CONF:5"
	store_is_empty
	# a prefix matches whole path components: lbxx/ is not under lbx
	python3 "$LBX_SYSTEM_DIR/regpush.py" "$BATS_FILE_TMPDIR/oci-none" "$FIXTURE_REF" "$REG" lbxx/fixture none
	pull_ok -q --tls-verify=false "$REG/lbxx/fixture:none"
	# version 1 and syntax errors: file, line and reason on one line
	printf '# v1\n[registries.search]\nregistries = ["docker.io"]\n' >"$CONTAINERS_REGISTRIES_CONF"
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/fixture:gzip"
	assert_one_line_error "$CONTAINERS_REGISTRIES_CONF:2" "version 1"
	printf '[[registry]]\nlocation = "%s\n' "$REG" >"$CONTAINERS_REGISTRIES_CONF"
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/fixture:gzip"
	assert_one_line_error "$CONTAINERS_REGISTRIES_CONF:2" "not closed"
	printf '[[registry]]\ninsecure = true\n' >"$CONTAINERS_REGISTRIES_CONF"
	run --separate-stderr lbx pull -q --tls-verify=false "$REG/lbx/fixture:gzip"
	assert_one_line_error "$CONTAINERS_REGISTRIES_CONF:1" "neither prefix nor location"
}

@test "registries.conf: mirrors are tried first, by tag or digest only as told; the name stays the image's" {
	require_dump_tool
	dead="127.0.0.1:$(free_port)"
	dead2="127.0.0.1:$(free_port)"
	# the name's own registry is a closed port: only the mirror can serve it
	cat >"$CONTAINERS_REGISTRIES_CONF" <<-EOF
		[[registry]]
		prefix = "lbx.invalid/team"
		location = "$dead/team"
		[[registry.mirror]]
		location = "$dead2/nothing" # closed too: the next one is tried
		insecure = true
		[[registry.mirror]]
		location = "$REG/lbx"
		insecure = true
	EOF
	pull_ok "lbx.invalid/team/fixture:gzip"
	assert_contains "$stderr" "Trying to pull lbx.invalid/team/fixture:gzip..."
	[ "$(names_of lbx.invalid/team/fixture:gzip)" = "lbx.invalid/team/fixture:gzip" ] ||
		fail "names: $(names_of lbx.invalid/team/fixture:gzip)"
	assert_tree "lbx.invalid/team/fixture:gzip" "$LBX_FIXTURE_DUMP"
	lbx rmi -a >/dev/null
	# digest-only: a tag goes to the registry itself, and fails there
	digest="$(skopeo inspect --tls-verify=false "docker://$REG/lbx/fixture:gzip" | jq -r .Digest)"
	cat >"$CONTAINERS_REGISTRIES_CONF" <<-EOF
		[[registry]]
		prefix = "lbx.invalid/team"
		location = "$dead/team"
		[[registry.mirror]]
		location = "$REG/lbx"
		insecure = true
		pull-from-mirror = "digest-only"
	EOF
	run --separate-stderr lbx pull -q "lbx.invalid/team/fixture:gzip"
	assert_one_line_error "lbx.invalid/team/fixture:gzip" "$dead" "unreachable"
	pull_ok -q "lbx.invalid/team/fixture@$digest"
	run --separate-stderr lbx inspect "lbx.invalid/team/fixture@$digest"
	assert_success
	lbx rmi -a >/dev/null
	# every mirror and the registry fail: the registry's reason, mirrors counted
	sed -i "s|$REG/lbx|$dead2/lbx|; /pull-from-mirror/d" "$CONTAINERS_REGISTRIES_CONF"
	run --separate-stderr lbx pull -q "lbx.invalid/team/fixture:gzip"
	assert_one_line_error "lbx.invalid/team/fixture:gzip" "1 mirror failed, then the registry" "$dead"
	store_is_empty
}

@test "registries.conf: [aliases] name short names; drop-ins in registries.conf.d add and replace" {
	unset CONTAINERS_REGISTRIES_CONF
	conf="$XDG_CONFIG_HOME/containers"
	mkdir -p "$conf/registries.conf.d"
	dead="127.0.0.1:$(free_port)"
	printf 'unqualified-search-registries = ["%s"]\n[aliases]\n"fix" = "%s/lbx/fixture"\n' \
		"$dead" "$REG" >"$conf/registries.conf"
	# the alias's registry is insecure only by a drop-in
	printf '[[registry]]\nlocation = "%s"\ninsecure = true\n' "$REG" >"$conf/registries.conf.d/50-local.conf"
	pull_ok fix:zstd
	assert_contains "$stderr" "Trying to pull $REG/lbx/fixture:zstd..."
	[ "$(names_of "$REG/lbx/fixture:zstd")" = "$REG/lbx/fixture:zstd" ]
	# a later drop-in replaces the search list; short names go there
	printf 'unqualified-search-registries = ["%s"]\n' "$REG" >"$conf/registries.conf.d/60-search.conf"
	pull_ok -q lbx/fixture:gzip
	run lbx inspect "$REG/lbx/fixture:gzip"
	assert_success
	# an empty alias cancels the earlier one: the search list again
	printf '[aliases]\n"fix" = ""\n' >"$conf/registries.conf.d/65-cancel.conf"
	run --separate-stderr lbx pull -q fix:zstd
	assert_one_line_error "$REG/fix:zstd"
	# an alias to a short name is refused, naming file and line
	printf '[aliases]\n"fix" = "fixture"\n' >"$conf/registries.conf.d/70-bad.conf"
	run --separate-stderr lbx pull -q fix:gzip
	assert_one_line_error "$conf/registries.conf.d/70-bad.conf:2" "alias \"fix\"" "fully qualified"
}

# tls_setup DIR: a CA, a server certificate for 127.0.0.1 and a client
# certificate it signed, and a registry that requires the client's
tls_setup() {
	local d="$1"
	mkdir -p "$d/ca" "$d/client" "$d/server"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca/ca.key" -out "$d/ca/ca.crt" \
		-days 2 -subj /CN=lbx-test-ca >/dev/null 2>&1
	openssl req -newkey rsa:2048 -nodes -keyout "$d/server/key.pem" -out "$d/server/req.pem" \
		-subj /CN=127.0.0.1 >/dev/null 2>&1
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/server/ext"
	openssl x509 -req -in "$d/server/req.pem" -CA "$d/ca/ca.crt" -CAkey "$d/ca/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/server/ext" -out "$d/server/cert.pem" >/dev/null 2>&1
	openssl req -newkey rsa:2048 -nodes -keyout "$d/client/client.key" -out "$d/client/req.pem" \
		-subj /CN=lbx-client >/dev/null 2>&1
	printf 'extendedKeyUsage=clientAuth\n' >"$d/client/ext"
	openssl x509 -req -in "$d/client/req.pem" -CA "$d/ca/ca.crt" -CAkey "$d/ca/ca.key" \
		-CAcreateserial -days 2 -extfile "$d/client/ext" -out "$d/client/client.cert" >/dev/null 2>&1
	rm -f "$d/client/req.pem" "$d/client/ext"
	# one level under the test's dir, where teardown finds and stops it
	start_registry "$BATS_TEST_TMPDIR/tlsreg" "  tls:
    certificate: $d/server/cert.pem
    key: $d/server/key.pem
    clientcas:
      - $d/ca/ca.crt"
	TREG="127.0.0.1:$(cat "$BATS_TEST_TMPDIR/tlsreg/port")"
	push "$LBX_FIXTURE_OCI:$FIXTURE_REF" "$TREG/lbx/fixture:tls" --dest-cert-dir "$d/client"
}

@test "TLS: a registry's own CA and a client certificate from --cert-dir; errors name what is missing" {
	require_cmd openssl
	require_dump_tool
	d="$BATS_TEST_TMPDIR/tls"
	tls_setup "$d"
	# the system's CAs do not know this one
	run --separate-stderr lbx pull -q "$TREG/lbx/fixture:tls"
	assert_one_line_error "$TREG/lbx/fixture:tls" "TLS"
	# the CA alone: the registry asks for a client certificate
	mkdir -p "$d/only-ca"
	cp "$d/ca/ca.crt" "$d/only-ca/"
	run --separate-stderr lbx pull -q --cert-dir "$d/only-ca" "$TREG/lbx/fixture:tls"
	assert_one_line_error "$TREG/lbx/fixture:tls"
	store_is_empty
	cp "$d/ca/ca.crt" "$d/client/"
	ln -s "$d/nothing-here.crt" "$d/client/dangling.crt" # skipped, as Podman does
	pull_ok -q --cert-dir "$d/client" "$TREG/lbx/fixture:tls"
	assert_tree "$TREG/lbx/fixture:tls" "$LBX_FIXTURE_DUMP"
	# a key without its certificate, a certificate without its key
	mkdir -p "$d/half"
	cp "$d/ca/ca.crt" "$d/client/client.key" "$d/half/"
	run --separate-stderr lbx pull -q --cert-dir "$d/half" "$TREG/lbx/fixture:tls"
	assert_one_line_error "$d/half/client.key" "no certificate"
	mv "$d/half/client.key" "$d/half/other.cert"
	run --separate-stderr lbx pull -q --cert-dir "$d/half" "$TREG/lbx/fixture:tls"
	assert_one_line_error "$d/half/other.cert" "its key"
	run --separate-stderr lbx pull -q --cert-dir "$d/absent" "$TREG/lbx/fixture:tls"
	assert_one_line_error "--cert-dir $d/absent"
}

@test "TLS: certs.d/HOST:PORT under ~/.config/containers is read by a user who is not root" {
	[ "$(id -u)" != 0 ] || skip "as root only /etc/containers/certs.d and /etc/docker/certs.d are read, which a test must not write"
	require_cmd openssl
	require_dump_tool
	d="$BATS_TEST_TMPDIR/tls"
	tls_setup "$d"
	mkdir -p "$XDG_CONFIG_HOME/containers/certs.d/$TREG"
	cp "$d/ca/ca.crt" "$d/client/client.cert" "$d/client/client.key" \
		"$XDG_CONFIG_HOME/containers/certs.d/$TREG/"
	pull_ok -q "$TREG/lbx/fixture:tls"
	assert_tree "$TREG/lbx/fixture:tls" "$LBX_FIXTURE_DUMP"
	run --separate-stderr lbx login -u u -p p "$TREG"
	assert_success
}

# --- authentication -------------------------------------------------------------

@test "basic auth: denied without credentials; --creds, login/--authfile, logout" {
	require_cmd openssl
	dir="$BATS_TEST_TMPDIR/basic"
	mkdir -p "$dir"
	python3 -W ignore -c 'import crypt, sys
h = crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)).replace("$2b$", "$2y$", 1)
print("alice:" + h)' s3cret >"$dir/htpasswd"
	start_registry "$dir" "auth:
  htpasswd:
    realm: lbx-basic
    path: $dir/htpasswd"
	breg="127.0.0.1:$(cat "$dir/port")"
	push "$LBX_FIXTURE_OCI:$FIXTURE_REF" "$breg/lbx/fixture:v1" --dest-creds alice:s3cret

	run --separate-stderr lbx pull -q --tls-verify=false "$breg/lbx/fixture:v1"
	assert_one_line_error "$breg/lbx/fixture:v1" "authentication required"
	run --separate-stderr lbx pull -q --tls-verify=false --creds alice:wrong "$breg/lbx/fixture:v1"
	assert_one_line_error "$breg/lbx/fixture:v1" "access denied"
	store_is_empty
	pull_ok -q --tls-verify=false --creds alice:s3cret "$breg/lbx/fixture:v1"
	lbx rmi -a >/dev/null
	# --creds are the named registry's: a mirror on another host never gets
	# them (it asks for its own, from the auth file: none here), so the
	# mirror answers 401 and the registry itself is a closed port
	dead="127.0.0.1:$(free_port)"
	printf '[[registry]]\nprefix = "lbx.invalid/lbx"\nlocation = "%s/lbx"\n[[registry.mirror]]\nlocation = "%s/lbx"\ninsecure = true\n' \
		"$dead" "$breg" >"$CONTAINERS_REGISTRIES_CONF"
	run --separate-stderr lbx pull -q --creds alice:s3cret "lbx.invalid/lbx/fixture:v1"
	assert_one_line_error "lbx.invalid/lbx/fixture:v1" "1 mirror failed" "$dead"
	: >"$CONTAINERS_REGISTRIES_CONF"

	run --separate-stderr lbx login --tls-verify=false -u alice -p wrong "$breg"
	assert_one_line_error "login $breg" "denied"
	[ ! -e "$XDG_RUNTIME_DIR/containers/auth.json" ]
	run --separate-stderr lbx login --tls-verify=false -u alice --password-stdin "$breg" <<<"s3cret"
	assert_success
	[ "$output" = "Login Succeeded!" ]
	# the file Podman writes, in Podman's format
	jq -e --arg k "$breg" '.auths[$k].auth == "YWxpY2U6czNjcmV0"' \
		"$XDG_RUNTIME_DIR/containers/auth.json" >/dev/null || fail "$(cat "$XDG_RUNTIME_DIR/containers/auth.json")"
	lbx rmi -a >/dev/null
	pull_ok -q --tls-verify=false "$breg/lbx/fixture:v1"

	# --authfile and $REGISTRY_AUTH_FILE, and ~/.docker/config.json
	mv "$XDG_RUNTIME_DIR/containers/auth.json" "$BATS_TEST_TMPDIR/auth.json"
	run --separate-stderr lbx pull -q --tls-verify=false "$breg/lbx/fixture:v1"
	assert_failure
	pull_ok -q --tls-verify=false --authfile "$BATS_TEST_TMPDIR/auth.json" "$breg/lbx/fixture:v1"
	REGISTRY_AUTH_FILE="$BATS_TEST_TMPDIR/auth.json" run --separate-stderr lbx pull -q --tls-verify=false "$breg/lbx/fixture:v1"
	assert_success
	mkdir -p "$HOME/.docker"
	jq --arg k "http://$breg/" '{auths: {($k): .auths[]}}' "$BATS_TEST_TMPDIR/auth.json" >"$HOME/.docker/config.json"
	pull_ok -q --tls-verify=false "$breg/lbx/fixture:v1"

	# credHelpers: docker-credential-NAME get, the registry on stdin
	mkdir -p "$BATS_TEST_TMPDIR/bin"
	cat >"$BATS_TEST_TMPDIR/bin/docker-credential-lbxtest" <<-EOF
		#!/bin/sh
		[ "\$1" = get ] || exit 2
		host=\$(cat)
		echo "\$host" >>"$BATS_TEST_TMPDIR/helper.log"
		[ "\$host" = "$breg" ] || { echo "credentials not found in native keychain"; exit 1; }
		echo '{"ServerURL": "'"\$host"'", "Username": "alice", "Secret": "s3cret"}'
	EOF
	chmod +x "$BATS_TEST_TMPDIR/bin/docker-credential-lbxtest"
	export PATH="$BATS_TEST_TMPDIR/bin:$PATH"
	printf '{"credHelpers": {"%s": "lbxtest"}}\n' "$breg" >"$BATS_TEST_TMPDIR/helper.json"
	lbx rmi -a >/dev/null
	pull_ok -q --tls-verify=false --authfile "$BATS_TEST_TMPDIR/helper.json" "$breg/lbx/fixture:v1"
	[ "$(cat "$BATS_TEST_TMPDIR/helper.log")" = "$breg" ] || fail "helper asked: $(cat "$BATS_TEST_TMPDIR/helper.log")"
	# a helper that says too much is read to its end and refused (not waited for forever)
	printf '#!/bin/sh\nhead -c 200000 /dev/zero | tr "\\0" x\n' >"$BATS_TEST_TMPDIR/bin/docker-credential-big"
	chmod +x "$BATS_TEST_TMPDIR/bin/docker-credential-big"
	printf '{"credHelpers": {"%s": "big"}}\n' "$breg" >"$BATS_TEST_TMPDIR/helper.json"
	run --separate-stderr timeout 60 "$LAZYBOX" --root "$LAZYBOX_ROOT" pull -q --tls-verify=false --authfile "$BATS_TEST_TMPDIR/helper.json" "$breg/lbx/fixture:v1"
	assert_one_line_error "credential helper docker-credential-big" "over 65536 bytes"
	printf '{"credHelpers": {"%s": "nosuch"}}\n' "$breg" >"$BATS_TEST_TMPDIR/helper.json"
	run --separate-stderr lbx pull -q --tls-verify=false --authfile "$BATS_TEST_TMPDIR/helper.json" "$breg/lbx/fixture:v1"
	assert_one_line_error "$breg/lbx/fixture:v1" "credential helper docker-credential-nosuch"

	run --separate-stderr lbx logout --authfile "$BATS_TEST_TMPDIR/auth.json" "$breg"
	assert_success
	[ "$output" = "Removed login credentials for $breg" ]
	jq -e '.auths == {}' "$BATS_TEST_TMPDIR/auth.json" >/dev/null
	run --separate-stderr lbx logout --authfile "$BATS_TEST_TMPDIR/auth.json" "$breg"
	assert_one_line_error "not logged into $breg"
	run --separate-stderr lbx logout --all
	assert_success
}

@test "bearer tokens: anonymous and with credentials, scope per repository" {
	require_cmd openssl
	dir="$BATS_TEST_TMPDIR/bearer"
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" \
		-days 2 -subj /CN=lbx-token >/dev/null 2>&1
	python3 "$LBX_SYSTEM_DIR/tokenserver.py" --cert "$dir/cert.pem" --key "$dir/key.pem" \
		--issuer lbx-issuer --service lbx-registry --user bob:hunter2 \
		--port-file "$dir/token.port" --log "$dir/token.log" 3>&- &
	echo "$!" >"$BATS_TEST_TMPDIR/token.pid"
	for _ in $(seq 100); do [ -f "$dir/token.port" ] && break; sleep 0.1; done
	start_registry "$dir" "auth:
  token:
    realm: http://127.0.0.1:$(cat "$dir/token.port")/token
    service: lbx-registry
    issuer: lbx-issuer
    rootcertbundle: $dir/cert.pem"
	treg="127.0.0.1:$(cat "$dir/port")"
	push "$LBX_FIXTURE_OCI:$FIXTURE_REF" "$treg/public/fixture:v1" --dest-creds bob:hunter2
	push "$LBX_FIXTURE_OCI:$FIXTURE_REF" "$treg/private/fixture:v1" --dest-creds bob:hunter2
	: >"$dir/token.log"

	pull_ok -q --tls-verify=false "$treg/public/fixture:v1"
	grep -q '^token user=- scope=repository:public/fixture:pull service=lbx-registry$' "$dir/token.log" ||
		fail "no anonymous token request:" "$(cat "$dir/token.log")"
	lbx rmi -a >/dev/null
	run --separate-stderr lbx pull -q --tls-verify=false "$treg/private/fixture:v1"
	assert_one_line_error "$treg/private/fixture:v1" "access denied"
	run --separate-stderr lbx pull -q --tls-verify=false --creds bob:nope "$treg/private/fixture:v1"
	assert_one_line_error "$treg/private/fixture:v1" "refused the credentials"
	pull_ok -q --tls-verify=false --creds bob:hunter2 "$treg/private/fixture:v1"
	grep -q '^token user=bob scope=repository:private/fixture:pull' "$dir/token.log" ||
		fail "$(cat "$dir/token.log")"
	run --separate-stderr lbx login --tls-verify=false -u bob -p hunter2 "$treg"
	assert_success
	lbx rmi -a >/dev/null
	pull_ok -q --tls-verify=false "$treg/private/fixture:v1"
	assert_tree "$treg/private/fixture:v1" "$LBX_FIXTURE_DUMP"
}

@test "pull of image B while image A, which shares a layer with it, is removed and pruned: B is whole" {
	local k
	for k in 1 2 3 4 5; do
		pull_ok --tls-verify=false "$REG/lbx/fixture:gzip"
		# B (arm64) shares layer1 with A; rmi + prune race the pull
		"$LAZYBOX" --root "$LAZYBOX_ROOT" pull -q --tls-verify=false --platform linux/arm64 "$REG/lbx/multi:v1" \
			>"$BATS_TEST_TMPDIR/b.out" 2>"$BATS_TEST_TMPDIR/b.err" &
		local pid=$!
		sleep "0.0$((RANDOM % 10))"
		run --separate-stderr lbx rmi "$REG/lbx/fixture:gzip"
		assert_success
		run --separate-stderr lbx system prune -f
		assert_success
		wait "$pid" || fail "round $k: the pull of B failed: $(cat "$BATS_TEST_TMPDIR/b.err")"
		run --separate-stderr lbx system check --verify
		assert_success
		run --separate-stderr lbx inspect "$REG/lbx/multi:v1"
		assert_success
		[ "$(jq -r '.[0].Architecture' <<<"$output")" = arm64 ] || fail "round $k: B: $output"
		lbx rmi "$REG/lbx/multi:v1" >/dev/null
		lbx system prune -f >/dev/null
	done
}
