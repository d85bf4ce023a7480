# Sourced by the bench/ scripts: the build, the peers, hyperfine medians,
# a registry on loopback, Podman with a configuration that works on these
# machines, and the figures file that bench/plot draws.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$PWD"
W="${LBX_BENCH_WORK:-$SRC/bench/work}"
mkdir -p "$W" "$SRC/bench/results"

# need PKG...: installs what is missing (Debian packages only).
need() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -q installed || missing+=("$p")
	done
	[ "${#missing[@]}" -eq 0 ] ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" </dev/null >/dev/null
}

build_release() {
	[ -f build-bench/meson-private/coredata.dat ] || meson setup build-bench --buildtype=release >/dev/null
	# what the benches run, not the test tools
	ninja -C build-bench cli/lazybox bench/inflate-hash >/dev/null
	LBX="$SRC/build-bench/cli/lazybox"
}

machine() {
	echo "$(nproc) CPUs, $(LC_ALL=C lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr), user $(id -un)"
}

# hf NAME [hyperfine options...] -- CMD: median in ms of CMD (-N: no shell),
# the runs kept in $W/hf-NAME.json (sd NAME: their spread).
hf() {
	local name="$1"
	shift
	local opts=()
	while [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	# HF_CPU=N: hyperfine and what it runs pinned to CPU N
	${HF_CPU:+taskset -c "$HF_CPU"} hyperfine --style none --warmup "${WARMUP:-3}" --runs "$RUNS" "${opts[@]}" \
		--export-json "$W/hf-$name.json" "$@" >/dev/null 2>"$W/hf-$name.err" || {
		echo "hyperfine $name failed: $(tail -n 3 "$W/hf-$name.err")" >&2
		return 1
	}
	jq -r '.results[0].median * 1000 | . * 10 | round / 10' "$W/hf-$name.json"
}

# sd NAME: the standard deviation in ms of the runs hf NAME kept, rounded
# as hf rounds the median (0 when there was one run: hyperfine gives none).
sd() {
	jq -r '(.results[0].stddev // 0) * 1000 | . * 10 | round / 10' "$W/hf-$1.json"
}

# figure SCRIPT FIGURE TOOL VALUE UNIT: one row of bench/results/SCRIPT.tsv,
# which bench/plot draws (the markdown tables are written by each script).
figure() {
	printf '%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" >>"$SRC/bench/results/$1.tsv"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# registry_start DIR: Debian's docker-registry on 127.0.0.1 at a free
# port, storage in DIR; sets REG=127.0.0.1:PORT.
registry_start() {
	local dir="$1" port
	mkdir -p "$dir/storage"
	port="$(free_port)"
	cat >"$dir/config.yml" <<-EOF
		version: 0.1
		log:
		  level: warn
		  accesslog:
		    disabled: true
		storage:
		  filesystem:
		    rootdirectory: $dir/storage
		http:
		  addr: 127.0.0.1:$port
	EOF
	docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
	echo "$!" >"$dir/pid"
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$port/v2/" >/dev/null && break
		sleep 0.1
	done
	REG="127.0.0.1:$port"
}

registry_stop() {
	[ -f "$1/pid" ] && kill "$(cat "$1/pid")" 2>/dev/null
	rm -f "$1/pid"
}

# podman_setup DIR: Podman as these machines run it (its default crun
# fails here: setrlimit not permitted, hybrid cgroups): runc, cgroupfs,
# the file events logger, no network namespace, no default ulimits, and a
# root and runroot of its own. Sets PM (the command) and PM_DRIVER.
podman_setup() {
	local dir="$1"
	mkdir -p "$dir"
	cat >"$dir/containers.conf" <<-EOF
		[containers]
		netns = "none"
		default_ulimits = []
		log_driver = "k8s-file"
		[engine]
		runtime = "runc"
		cgroup_manager = "cgroupfs"
		events_logger = "file"
	EOF
	export CONTAINERS_CONF="$dir/containers.conf"
	# overlay: the kernel's as root, fuse-overlayfs rootless; vfs otherwise
	PM_DRIVER=overlay
	local opt=()
	[ "$(id -u)" -ne 0 ] && opt=(--storage-opt overlay.mount_program=/usr/bin/fuse-overlayfs)
	PM="podman --root $dir/root --runroot $dir/run --storage-driver overlay ${opt[*]}"
	if ! $PM info >/dev/null 2>&1; then
		PM_DRIVER=vfs
		PM="podman --root $dir/root --runroot $dir/run --storage-driver vfs"
	fi
}

podman_cleanup() {
	[ -n "${PM:-}" ] || return 0
	$PM rm -af -t 0 >/dev/null 2>&1 || true
	$PM system reset -f >/dev/null 2>&1 || true
}

# many_files DIR: 50,000 small files in 500 directories under DIR/data
# (the "50k small-file image" of the issues), made once per DIR.
many_files() {
	[ -f "$1/data/d499/f099" ] && return 0
	python3 - "$1" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(500):
    p = os.path.join(root, "data", "d%03d" % d)
    os.makedirs(p, exist_ok=True)
    for f in range(100):
        with open(os.path.join(p, "f%03d" % f), "w") as fh:
            fh.write("%d/%d\n" % (d, f))
PY
}

# debian_layouts: the two Debian bookworm minbase OCI layouts of bench/index
# ($W/oci-a, $W/oci-b), made with debootstrap when missing (root, network
# to the Debian mirror).
debian_layouts() {
	local v
	for v in a b; do
		if [ ! -f "$W/rootfs-$v/etc/debian_version" ]; then
			rm -rf "${W:?}/rootfs-$v"
			debootstrap --variant=minbase bookworm "$W/rootfs-$v" http://deb.debian.org/debian >"$W/debootstrap-$v.log"
			[ "$v" = b ] || sleep 1
		fi
		if [ ! -f "$W/layer-$v.tar" ]; then
			tar --numeric-owner --xattrs --sort=name -C "$W/rootfs-$v" -cf "$W/layer-$v.tar" .
		fi
		if [ ! -f "$W/oci-$v/index.json" ]; then
			rm -rf "${W:?}/oci-$v"
			python3 tests/system/mkimage.py oci "$W/oci-$v" --ref "bench/debian:$v" \
				--layer "$W/layer-$v.tar" --compress gzip >/dev/null
		fi
	done
}
