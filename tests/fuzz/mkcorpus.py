#!/usr/bin/env python3
"""Write the seed corpus of the libFuzzer targets: tests/fuzz/corpus/TARGET/.

  mkcorpus.py [OUTDIR]     (default: the corpus/ directory next to this file)

Small valid inputs, made with tests/system/mkimage.py: layer tars in every
header flavour (tar), those tars plain, gzip'd and zstd'd (stream), image
references (ref), tree programs (tree), image configs (config) and whole
docker-archive / OCI-layout tarballs (load). Deterministic: running it again
gives the same files. The committed corpus stays well under 1 MB.
"""

import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile

sys.dont_write_bytecode = True  # keep the source tree clean
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))
import mkimage  # noqa: E402

EMPTY_DIFF_ID = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def put(outdir, target, name, data):
    d = os.path.join(outdir, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def strip_record_padding(data):
    """tarfile pads to 10 KiB records; two zero blocks are all a reader needs."""
    end = len(data)
    while end >= 512 and data[end - 512:end] == bytes(512):
        end -= 512
    return data[:end] + bytes(1024)


def layer_pax(path):
    with mkimage.LayerWriter(path) as w:
        w.dir("etc", mode=0o755)
        w.file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", mode=0o644)
        w.file("etc/x", b"hello", xattrs={"user.test": "v", "security.capability": b"\x01\x00"})
        w.symlink("etc/link", "../bin/sh")
        w.hardlink("etc/hard", "etc/passwd")
        w.fifo("run/fifo")
        w.chardev("dev/null", 1, 3)
        w.blockdev("dev/loop0", 7, 0)
        w.file("d" * 120 + "/long-name", b"x" * 700, uid=70000, mtime=1700000000)
        w.whiteout("etc/gone")
        w.opaque("usr/share")


def layer_flavour(path, fmt):
    with tarfile.open(path, "w", format=fmt) as tf:
        for name, data in (("a/", None), ("a/b", b"data\n"), ("a/" + "n" * 150, b"long")):
            ti = tarfile.TarInfo(name.rstrip("/"))
            ti.mtime = 1700000000
            if data is None:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tf.addfile(ti)
            else:
                ti.size = len(data)
                ti.mode = 0o644
                tf.addfile(ti, io.BytesIO(data))
        ti = tarfile.TarInfo("a/l")
        ti.type = tarfile.SYMTYPE
        ti.linkname = "t" * 120
        tf.addfile(ti)


def tars(tmp):
    out = {}
    p = os.path.join(tmp, "pax.tar")
    layer_pax(p)
    out["pax"] = p
    for name, fmt in (("gnu", tarfile.GNU_FORMAT), ("ustar", tarfile.USTAR_FORMAT)):
        p = os.path.join(tmp, name + ".tar")
        try:
            layer_flavour(p, fmt)
        except ValueError:  # ustar cannot hold the long link: keep it short
            with tarfile.open(p, "w", format=fmt) as tf:
                ti = tarfile.TarInfo("a/b")
                ti.size = 5
                tf.addfile(ti, io.BytesIO(b"data\n"))
        out[name] = p
    return {k: strip_record_padding(open(v, "rb").read()) for k, v in out.items()}


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-3"], input=data, stdout=subprocess.PIPE,
                          check=True).stdout


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def corpus_tar(outdir, layers):
    for i, (name, data) in enumerate(sorted(layers.items())):
        for ctl in (0x00, 0x08 | 0x10, 0x08 | 0x21):  # chunking / read sizes / skip data
            put(outdir, "tar", f"{name}-{ctl:02x}", bytes([ctl ^ i]) + data)


def corpus_stream(outdir, layers):
    data = layers["pax"]
    put(outdir, "stream", "plain", b"\x00" + data)
    put(outdir, "stream", "gzip", b"\x01" + gz(data))
    put(outdir, "stream", "gzip-2members", b"\x09" + gz(data[:600]) + gz(data[600:]))
    put(outdir, "stream", "zstd", b"\x02" + zstd(data))
    put(outdir, "stream", "zstd-2frames", b"\x0b" + zstd(data[:700]) + zstd(data[700:]))
    put(outdir, "stream", "gzip-empty", b"\x00" + gz(b""))
    put(outdir, "stream", "zstd-empty", b"\x00" + zstd(b""))
    put(outdir, "stream", "short", b"\x00\x1f")


def corpus_ref(outdir):
    refs = [
        "busybox", "busybox:1.36", "library/busybox:latest", "docker.io/library/busybox",
        "index.docker.io/foo/bar:tag", "quay.io/org/img:v1.2-rc_3", "localhost/img",
        "localhost:5000/a/b/c:t", "[::1]:5000/img:x", "127.0.0.1:5000/x",
        "reg.example.com/a__b/c-d.e/f---g:Tag",
        "img@sha256:" + "a" * 64, "img:tag@sha256:" + "0" * 64,
        "img@sha512:" + "b" * 128, "img@blake3+x:" + "c" * 32,
        "sha256:" + "d" * 64, "e" * 64, "UPPER/x", "a//b", "x:", "x@", ":tag", "",
    ]
    for i, r in enumerate(refs):
        put(outdir, "ref", f"ref{i:02d}", r.encode())


def corpus_tree(outdir):
    rnd = random.Random(7)
    # a tree program: opcode byte, then the path bytes (see fuzz_tree.c)
    progs = {
        "files": bytes([1, 1, 0, 0x40, 1, 0x41, 1, 1, 0x33, 3, 0x11, 2, 0, 1, 0xff, 0x0f]),
        "whiteout": bytes([3, 1, 0, 1, 1, 1, 0, 2, 0, 0, 1, 0, 4, 0, 0x0f]),
        "opaque": bytes([3, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 7, 0x0f]),
        "hardlink": bytes([1, 1, 0, 2, 0, 7, 0, 1, 0, 0, 1, 0, 0, 0x0f]),
    }
    for i in range(8):
        progs[f"random{i}"] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(16, 200)))
    for name, data in progs.items():
        put(outdir, "tree", name, data)


def config(diff_ids, **extra):
    c = {
        "created": "2024-01-01T00:00:00.123456789Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [mkimage.DEFAULT_PATH], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "mkcorpus"}] * len(diff_ids),
    }
    c.update(extra)
    return mkimage.canonical(c)


def corpus_config(outdir):
    put(outdir, "config", "none", config([]))
    put(outdir, "config", "one", config([EMPTY_DIFF_ID]))
    put(outdir, "config", "two", config([EMPTY_DIFF_ID, EMPTY_DIFF_ID],
                                         created="2023-06-01T12:00:00+02:00"))
    put(outdir, "config", "zone", config([EMPTY_DIFF_ID], created="1970-01-01T00:00:00-05:30"))
    put(outdir, "config", "nocreated", b'{"rootfs":{"type":"layers","diff_ids":[]}}')
    put(outdir, "config", "notjson", b'{"rootfs":')


def corpus_load(outdir, tmp):
    lay = os.path.join(tmp, "small.tar")
    with mkimage.LayerWriter(lay) as w:
        w.dir("bin")
        w.file("bin/sh", b"#!", mode=0o755)
        w.symlink("bin/ls", "sh")
        w.hardlink("bin/cat", "bin/sh")
    lay2 = os.path.join(tmp, "small2.tar")
    with mkimage.LayerWriter(lay2) as w:
        w.whiteout("bin/ls")
        w.file("etc/motd", b"hi\n")
    runs = {
        "docker": ["docker-archive", "--ref", "img:1", "--layer", lay],
        "docker-2": ["docker-archive", "--ref", "a/b:2", "--layer", lay, "--layer", lay2],
        "oci-none": ["oci-archive", "--ref", "latest", "--compress", "none", "--layer", lay],
        "oci-gzip": ["oci-archive", "--ref", "quay.io/x/y:z", "--compress", "gzip",
                     "--layer", lay, "--layer", lay2],
        "oci-zstd-docker": ["oci-archive", "--compress", "zstd", "--docker-media-types",
                            "--layer", lay2],
    }
    for name, argv in runs.items():
        out = os.path.join(tmp, name + ".tar")
        with contextlib.redirect_stdout(io.StringIO()):
            mkimage.main([argv[0], out] + argv[1:])
        put(outdir, "load", name, strip_record_padding(open(out, "rb").read()))
    # a gzip'd docker save, as load also takes
    data = open(os.path.join(outdir, "load", "docker"), "rb").read()
    put(outdir, "load", "docker-gz", gz(data))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    for t in ("tar", "stream", "ref", "tree", "config", "load"):
        shutil.rmtree(os.path.join(outdir, t), ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        layers = tars(tmp)
        corpus_tar(outdir, layers)
        corpus_stream(outdir, layers)
        corpus_ref(outdir)
        corpus_tree(outdir)
        corpus_config(outdir)
        corpus_load(outdir, tmp)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(outdir) for f in fs)
    print(f"mkcorpus: {outdir}: {total} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
