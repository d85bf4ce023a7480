#!/usr/bin/env python3
"""Hostile images for hostile.bats, built from raw tar headers and bytes
(stdlib only, nothing downloaded).

  mkhostile.py layer KIND OUT.tar [ARG]
      One layer tar of the named kind (see LAYERS below; ARG is what the kind
      needs, e.g. a host path to aim at).
  mkhostile.py many OUT.tar.gz N
      N zero-length files (d000/f000 ... ) streamed into a gzip'd tar.
  mkhostile.py zeros-gz OUT.gz GIB [HEADER_SIZE]
      A gzip of GIB GiB of zeros built from one repeated deflate block (so it
      costs no GiB of CPU here), optionally preceded by a tar header of a file
      "bomb" that declares HEADER_SIZE bytes. No valid trailer: the CRC of the
      whole is not computed (truncated stream).
  mkhostile.py oci OUTDIR BLOB [options]
      OCI layout whose one layer is the file BLOB as it is (any bytes):
      --media-type T, --diff-id D (default: sha256 of the gunzipped BLOB),
      --config-json FILE / --manifest-json FILE / --index-json FILE replace
      the document with the file's bytes; --bad-manifest-digest names a
      manifest digest that is not the manifest's; --rootfs TAR adds a first
      layer (uncompressed) such as a busybox rootfs; --cmd ARG.
  mkhostile.py deep OUT N
      N nested JSON arrays: "[[[...]]]".
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import zlib

T = 1700000000


def info(name, typ=tarfile.REGTYPE, size=0, mode=0o644, link="", devmajor=0, devminor=0):
    i = tarfile.TarInfo(name)
    i.type, i.size, i.mode, i.mtime, i.linkname = typ, size, mode, T, link
    i.uid = i.gid = 0
    i.devmajor, i.devminor = devmajor, devminor
    return i


def raw_header(name, size_field, typ=b"0"):
    """A ustar header with SIZE_FIELD (12 raw bytes) as its size, checksum fixed."""
    h = bytearray(512)
    h[0:len(name)] = name
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = size_field
    h[136:148] = b"%011o\0" % T
    h[156:157] = typ
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def base256(n, width=12):
    b = bytearray(n.to_bytes(width, "big"))
    b[0] |= 0x80
    return bytes(b)


def add(t, name, data=b"", **kw):
    t.addfile(info(name, size=len(data), **kw), io.BytesIO(data))


# Each kind writes its entries into the open tarfile t.
def k_dotdot(t, arg):
    t.addfile(info("ok", tarfile.DIRTYPE, mode=0o755))
    add(t, "ok/file", b"fine\n")
    add(t, "ok/../../" + arg, b"EVIL-PAYLOAD\n")


def k_absolute(t, arg):
    # leading / is dropped: the file lands at ARG inside the image
    add(t, arg, b"ABS-PAYLOAD\n")


def k_symdir_etc(t, arg):
    t.addfile(info("a", tarfile.SYMTYPE, link=arg))
    add(t, "a/passwd", b"PWNED:x:0:0::/:/bin/sh\n")


def k_symdir_up(t, arg):
    t.addfile(info("a", tarfile.SYMTYPE, link="../../.."))
    add(t, "a/x", b"PWNED\n")


def k_hardlink_out(t, arg):
    t.addfile(info("link", tarfile.LNKTYPE, link="../../etc/passwd"))


def k_hardlink_abs(t, arg):
    t.addfile(info("link", tarfile.LNKTYPE, link="/etc/passwd"))


def k_hardlink_missing(t, arg):
    t.addfile(info("link", tarfile.LNKTYPE, link="missing"))


def k_wh_dotdot(t, arg):
    t.addfile(info("d", tarfile.DIRTYPE, mode=0o755))
    add(t, "d/.wh...")


def k_wh_dot(t, arg):
    t.addfile(info("d", tarfile.DIRTYPE, mode=0o755))
    add(t, "d/.wh..")


def k_opq_odd(t, arg):
    # opaque markers at the root, under a file's name, under a symlink, and
    # twice in one dir; a whiteout of a name that never existed
    add(t, ".wh..wh..opq")
    add(t, "file", b"x\n")
    add(t, "file/.wh..wh..opq")


def k_opq_symlink(t, arg):
    t.addfile(info("s", tarfile.SYMTYPE, link="/etc"))
    add(t, "s/.wh..wh..opq")


def k_opq_twice(t, arg):
    t.addfile(info("d", tarfile.DIRTYPE, mode=0o755))
    add(t, "d/.wh..wh..opq")
    add(t, "d/.wh..wh..opq")
    add(t, "d/.wh.never-was")
    add(t, "d/kept", b"k\n")


def k_longnames(t, arg):
    # a 255-byte name, and a 4095-byte path (PATH_MAX with its NUL)
    add(t, "n" * 255, b"name255\n")
    comps = ["%03d" % i + "d" * 197 for i in range(20)]  # 20 * 201 bytes with the slashes
    path = "/".join(comps + ["f" * (4095 - 20 * 201)])
    assert len(path) == 4095, len(path)
    for i in range(1, len(comps) + 1):
        t.addfile(info("/".join(comps[:i]), tarfile.DIRTYPE, mode=0o755))
    add(t, path, b"path4095\n")


def k_name256(t, arg):
    add(t, "n" * 256, b"name256\n")


def k_path_over(t, arg):
    comps = ["%03d" % i + "d" * 197 for i in range(21)]  # 21 * 201 = 4221 > PATH_MAX
    for i in range(1, len(comps) + 1):
        t.addfile(info("/".join(comps[:i]), tarfile.DIRTYPE, mode=0o755))
    add(t, "/".join(comps + ["f"]), b"deep\n")


def k_deep_path(t, arg):
    # ARG components "a/a/a/.../f" in one pax path, directories implied
    add(t, "a/" * int(arg) + "f", b"deep\n")


def k_devices(t, arg):
    # ARG: a busybox rootfs tar to start from
    with tarfile.open(arg) as src:
        for m in src.getmembers():
            t.addfile(m, src.extractfile(m) if m.isfile() else None)
    t.addfile(info("mem", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=1))
    t.addfile(info("zero", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=5))
    with tarfile.open(arg) as src:
        bb = src.extractfile("./bin/busybox").read()
    # named busybox so that it runs the applet its first argument names
    t.addfile(info("suid", tarfile.DIRTYPE, mode=0o755))
    add(t, "suid/busybox", bb, mode=0o4755)


LAYERS = {k[2:].replace("_", "-"): f for k, f in globals().items() if k.startswith("k_")}


def cmd_layer(kind, out, arg=""):
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
        LAYERS[kind](t, arg)


def cmd_tarbomb(out, how):
    """A header declaring a huge size, then a short body."""
    size = {"octal": b"77777777777\0",  # 8 GiB - 1, the largest octal size
            "base256": base256(1 << 40),
            "base256-max": base256((1 << 63) - 1)}[how]
    with open(out, "wb") as f:
        f.write(raw_header(b"bomb", size))
        f.write(b"short body\n" + b"\0" * 1000)


def cmd_many(out, n):
    """Raw ustar headers from one template (tarfile costs ~100 us an entry):
    1000 entries a directory, as packages spread them."""
    n = int(n)
    tmpl = bytearray(raw_header(b"", b"00000000000\0"))
    # the checksum of the empty-named template, its own field as spaces
    base = sum(tmpl[:148]) + 8 * 32 + sum(tmpl[156:])
    with gzip.open(out, "wb", compresslevel=1) as g:
        buf = []
        for i in range(n):
            if i % 1000 == 0:
                name = b"d%04d/" % (i // 1000)
                h = bytearray(raw_header(name, b"00000000000\0", b"5"))
                buf.append(bytes(h))
            name = b"d%04d/f%03d" % (i // 1000, i % 1000)
            h = bytearray(tmpl)
            h[0:len(name)] = name
            h[148:156] = b"%06o\0 " % (base + sum(name))
            buf.append(bytes(h))
            if len(buf) >= 4096:
                g.write(b"".join(buf))
                buf = []
        g.write(b"".join(buf) + b"\0" * 1024)


def cmd_zeros_gz(out, gib, header_size=None):
    """gzip header + GIB GiB of deflated zeros (one 1 MiB block repeated: a
    full flush resets the window, so each block's bytes are the same)."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = b""
    if header_size is not None:
        first = co.compress(raw_header(b"bomb", base256(int(header_size))))
        first += co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(b"\0" * (1 << 20)) + co.flush(zlib.Z_FULL_FLUSH)
    again = co.compress(b"\0" * (1 << 20)) + co.flush(zlib.Z_FULL_FLUSH)
    assert block == again
    with open(out, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")
        f.write(first)
        for _ in range(int(float(gib) * 1024)):
            f.write(block)


def put(blobdir, data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobdir, h), "wb") as f:
        f.write(data)
    return "sha256:" + h, len(data)


def file_digest(path, gunzip):
    h = hashlib.sha256()
    with (gzip.open(path) if gunzip else open(path, "rb")) as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                return "sha256:" + h.hexdigest()
            h.update(b)


def cmd_oci(out, blob, *opts):
    o = {}
    it = iter(opts)
    for k in it:
        flag = k in ("--bad-manifest-digest", "--cut-manifest", "--cut-config")
        o[k.lstrip("-")] = True if flag else next(it)
    blobdir = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobdir, exist_ok=True)
    layers, diff_ids = [], []
    if "rootfs" in o:
        data = open(o["rootfs"], "rb").read()
        d, s = put(blobdir, data)
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d,
                       "size": s})
        diff_ids.append(d)
    mt = o.get("media-type", "application/vnd.oci.image.layer.v1.tar+gzip")
    with open(blob, "rb") as f:
        magic = f.read(2)
    d, s = put(blobdir, open(blob, "rb").read())
    layers.append({"mediaType": mt, "digest": d, "size": s})
    diff_ids.append(o.get("diff-id") or file_digest(blob, magic == b"\x1f\x8b"))
    cfg = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
           "config": {"Cmd": [o.get("cmd", "/bin/sh")], "Env": ["PATH=/bin"]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    cfg = open(o["config-json"], "rb").read() if "config-json" in o else json.dumps(cfg).encode()
    cd, cs = put(blobdir, cfg)
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd,
                      "size": cs}, "layers": layers}
    man = open(o["manifest-json"], "rb").read() if "manifest-json" in o else json.dumps(man).encode()
    md, ms = put(blobdir, man)
    for what, digest in (("manifest", md), ("config", cd)):
        if "cut-" + what in o:
            # the blob named by the digest, cut short: not JSON any more
            p = os.path.join(blobdir, digest[7:])
            data = open(p, "rb").read()
            with open(p, "wb") as f:
                f.write(data[:len(data) // 2])
    if "bad-manifest-digest" in o:
        # the descriptor names other bytes of the same size: a blob file under
        # that name whose content does not hash to it
        bad = "sha256:" + hashlib.sha256(b"not the manifest").hexdigest()
        with open(os.path.join(blobdir, bad[7:]), "wb") as f:
            f.write(man.replace(b"\", \"", b"\",\t\"", 1))
        md = bad
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": md, "size": ms,
                            "platform": {"architecture": "amd64", "os": "linux"},
                            "annotations": {"org.opencontainers.image.ref.name":
                                            o.get("ref", "latest")}}]}
    with open(os.path.join(out, "index.json"), "wb") as f:
        f.write(open(o["index-json"], "rb").read() if "index-json" in o else
                json.dumps(index).encode())
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    print(md)


def cmd_deep(out, n):
    n = int(n)
    with open(out, "w") as f:
        f.write("[" * n + "]" * n)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"layer": lambda k, o, a="": cmd_layer(k, o, a), "tarbomb": cmd_tarbomb, "many": cmd_many,
     "zeros-gz": cmd_zeros_gz, "oci": cmd_oci, "deep": cmd_deep}[cmd](*args)


if __name__ == "__main__":
    main()
