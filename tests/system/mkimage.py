#!/usr/bin/env python3
"""Build test images for lazybox's system tests (stdlib only; `zstd` CLI for zstd).

  mkimage.py layer OUT.tar DIR
      Deterministic pax layer tar of DIR: entries sorted, mode/uid/gid/mtime
      (whole seconds) kept, hard links as link entries, symlinks verbatim,
      fifos and device nodes, user.* xattrs as SCHILY.xattr.* records.
      Whiteouts are plain files named .wh.NAME (or .wh..wh..opq) in DIR.

  mkimage.py oci OUTDIR --ref NAME:TAG --layer a.tar [--layer b.tar ...]
      OCI image layout. --compress gzip|zstd|none (default gzip),
      --docker-media-types (schema2 manifest/config/layer types),
      --cmd ARG (repeatable: one argv element each), --entrypoint ARG,
      --env K=V (repeatable), --workdir DIR, --user U, --created RFC3339,
      --arch, --os. --ref is repeatable; a ref is stored verbatim as the
      org.opencontainers.image.ref.name annotation ("latest", "busybox:1",
      "docker.io/library/busybox:latest" are all fine). If OUTDIR already
      holds a layout, the new manifest is appended to its index.json.

  mkimage.py oci-archive OUT.tar ...     same as oci, as a tar of the layout
  mkimage.py docker-archive OUT.tar ...  `docker save` style tarball:
      manifest.json, repositories, <config hex>.json, <v1 id>/{layer.tar,
      VERSION,json}; layer.tar is compressed as --compress asks (default
      none, as docker writes it).

Everything is deterministic: the same inputs give the same digests.
As a module: write_layer(), LayerWriter, build_oci(), build_docker_archive().
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile

DEFAULT_CREATED = "2024-01-01T00:00:00Z"
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REF_ANNOTATION = "org.opencontainers.image.ref.name"

OCI_MT = {
    "index": "application/vnd.oci.image.index.v1+json",
    "manifest": "application/vnd.oci.image.manifest.v1+json",
    "config": "application/vnd.oci.image.config.v1+json",
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
DOCKER_MT = {
    "index": "application/vnd.oci.image.index.v1+json",  # index.json is always OCI
    "manifest": "application/vnd.docker.distribution.manifest.v2+json",
    "config": "application/vnd.docker.container.image.v1+json",
    "none": "application/vnd.docker.image.rootfs.diff.tar",
    "gzip": "application/vnd.docker.image.rootfs.diff.tar.gzip",
    # Not part of schema2; what some tools (buildkit) write for zstd.
    "zstd": "application/vnd.docker.image.rootfs.diff.tar.zstd",
}

CHUNK = 1 << 20


# --------------------------------------------------------------------------
# layer tars


class LayerWriter:
    """Writes one pax-format layer tar entry by entry, parents first.

    Nothing touches the host filesystem except the tar itself, so ownership,
    device nodes and xattrs work without root. Callers add parent
    directories explicitly (layers made by real tools always do).
    """

    def __init__(self, path, mtime=1700000000):
        self.mtime = mtime
        self.tf = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)

    def close(self):
        self.tf.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _info(self, name, typ, mode, uid, gid, mtime, xattrs):
        ti = tarfile.TarInfo(name.lstrip("/"))
        ti.type = typ
        ti.mode = mode
        ti.uid = uid
        ti.gid = gid
        ti.uname = ""
        ti.gname = ""
        ti.mtime = int(self.mtime if mtime is None else mtime)
        if xattrs:
            for k, v in sorted(xattrs.items()):
                if isinstance(v, bytes):
                    v = v.decode("utf-8", "surrogateescape")
                ti.pax_headers["SCHILY.xattr." + k] = v
        return ti

    def dir(self, name, mode=0o755, uid=0, gid=0, mtime=None, xattrs=None):
        ti = self._info(name.rstrip("/"), tarfile.DIRTYPE, mode, uid, gid, mtime, xattrs)
        self.tf.addfile(ti)

    def file(self, name, data=b"", mode=0o644, uid=0, gid=0, mtime=None, xattrs=None):
        if isinstance(data, str):
            data = data.encode()
        ti = self._info(name, tarfile.REGTYPE, mode, uid, gid, mtime, xattrs)
        ti.size = len(data)
        self.tf.addfile(ti, io.BytesIO(data))

    def file_from(self, name, src, mode=None, uid=0, gid=0, mtime=None):
        st = os.stat(src)
        ti = self._info(name, tarfile.REGTYPE, stat.S_IMODE(st.st_mode) if mode is None else mode,
                        uid, gid, mtime, None)
        ti.size = st.st_size
        with open(src, "rb") as f:
            self.tf.addfile(ti, f)

    def symlink(self, name, target, uid=0, gid=0, mtime=None):
        ti = self._info(name, tarfile.SYMTYPE, 0o777, uid, gid, mtime, None)
        ti.linkname = target
        self.tf.addfile(ti)

    def hardlink(self, name, target, mode=0o644, uid=0, gid=0, mtime=None):
        ti = self._info(name, tarfile.LNKTYPE, mode, uid, gid, mtime, None)
        ti.linkname = target.lstrip("/")
        self.tf.addfile(ti)

    def fifo(self, name, mode=0o644, uid=0, gid=0, mtime=None):
        self.tf.addfile(self._info(name, tarfile.FIFOTYPE, mode, uid, gid, mtime, None))

    def chardev(self, name, major, minor, mode=0o666, uid=0, gid=0, mtime=None):
        ti = self._info(name, tarfile.CHRTYPE, mode, uid, gid, mtime, None)
        ti.devmajor, ti.devminor = major, minor
        self.tf.addfile(ti)

    def blockdev(self, name, major, minor, mode=0o660, uid=0, gid=0, mtime=None):
        ti = self._info(name, tarfile.BLKTYPE, mode, uid, gid, mtime, None)
        ti.devmajor, ti.devminor = major, minor
        self.tf.addfile(ti)

    def whiteout(self, name, mtime=None):
        d, b = os.path.split(name.rstrip("/"))
        self.file(os.path.join(d, ".wh." + b), b"", mode=0o600, mtime=mtime)

    def opaque(self, dirname, mtime=None):
        self.file(os.path.join(dirname.rstrip("/"), ".wh..wh..opq"), b"", mode=0o600, mtime=mtime)


def write_layer(out, root):
    """Deterministic pax tar of the directory tree ROOT (ROOT itself excluded)."""
    root = os.path.abspath(root)
    paths = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            paths.append(os.path.relpath(full, root))
    # Sort by path components so a directory comes right before its children.
    paths.sort(key=lambda p: [c.encode("utf-8", "surrogateescape") for c in p.split(os.sep)])
    seen_inodes = {}
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for rel in paths:
            full = os.path.join(root, rel)
            st = os.lstat(full)
            ti = tarfile.TarInfo(rel)
            ti.mode = stat.S_IMODE(st.st_mode)
            ti.uid, ti.gid = st.st_uid, st.st_gid
            ti.uname = ti.gname = ""
            ti.mtime = int(st.st_mtime)
            fobj = None
            if stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen_inodes:
                    ti.type = tarfile.LNKTYPE
                    ti.linkname = seen_inodes[key]
                else:
                    seen_inodes[key] = rel
                    ti.type = tarfile.REGTYPE
                    ti.size = st.st_size
                    fobj = open(full, "rb")
            elif stat.S_ISDIR(st.st_mode):
                ti.type = tarfile.DIRTYPE
            elif stat.S_ISLNK(st.st_mode):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(full)
            elif stat.S_ISFIFO(st.st_mode):
                ti.type = tarfile.FIFOTYPE
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                ti.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            else:
                print(f"mkimage: skipping socket {rel}", file=sys.stderr)
                continue
            if not stat.S_ISLNK(st.st_mode):
                try:
                    for k in sorted(os.listxattr(full, follow_symlinks=False)):
                        if k.startswith("user."):
                            v = os.getxattr(full, k, follow_symlinks=False)
                            ti.pax_headers["SCHILY.xattr." + k] = v.decode("utf-8", "surrogateescape")
                except OSError:
                    pass
            try:
                tf.addfile(ti, fobj)
            finally:
                if fobj:
                    fobj.close()


# --------------------------------------------------------------------------
# blobs


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def compress_file(src, dst, compress):
    """Compress SRC into DST deterministically."""
    if compress == "none":
        shutil.copyfile(src, dst)
    elif compress == "gzip":
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            with gzip.GzipFile(filename="", mode="wb", fileobj=fo, mtime=0, compresslevel=6) as gz:
                shutil.copyfileobj(fi, gz, CHUNK)
    elif compress == "zstd":
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            subprocess.run(["zstd", "-q", "-c", "-3", "--no-progress"], stdin=fi, stdout=fo, check=True)
    else:
        raise ValueError(f"unknown compression {compress!r}")


class Layer:
    def __init__(self, tar, compress, workdir):
        self.diff_id = "sha256:" + _sha256_file(tar)
        self.path = os.path.join(workdir, f"layer-{len(os.listdir(workdir))}")
        compress_file(tar, self.path, compress)
        self.digest = "sha256:" + _sha256_file(self.path)
        self.size = os.path.getsize(self.path)


def make_config(layers, args):
    cfg = {}
    env = [DEFAULT_PATH] + list(args.env or [])
    cfg["Env"] = env
    if args.entrypoint:
        cfg["Entrypoint"] = list(args.entrypoint)
    if args.cmd:
        cfg["Cmd"] = list(args.cmd)
    if args.workdir:
        cfg["WorkingDir"] = args.workdir
    if args.user:
        cfg["User"] = args.user
    if args.hostname:  # Docker's image config carries one; OCI's does not
        cfg["Hostname"] = args.hostname
    history = [{"created": args.created, "created_by": f"mkimage.py layer {i}"}
               for i in range(len(layers))]
    return {
        "created": args.created,
        "architecture": args.arch,
        "os": args.os,
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": history,
    }


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _put_blob(blobdir, data=None, path=None):
    os.makedirs(blobdir, exist_ok=True)
    if data is not None:
        hexd = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobdir, hexd), "wb") as f:
            f.write(data)
        return "sha256:" + hexd, len(data)
    hexd = _sha256_file(path)
    dst = os.path.join(blobdir, hexd)
    if not os.path.exists(dst):
        shutil.copyfile(path, dst)
    return "sha256:" + hexd, os.path.getsize(dst)


def build_oci(outdir, args):
    mt = DOCKER_MT if args.docker_media_types else OCI_MT
    with tempfile.TemporaryDirectory() as work:
        layers = [Layer(t, args.compress, work) for t in args.layer]
        blobdir = os.path.join(outdir, "blobs", "sha256")
        os.makedirs(blobdir, exist_ok=True)
        cfg_digest, cfg_size = _put_blob(blobdir, canonical(make_config(layers, args)))
        manifest = {"schemaVersion": 2, "mediaType": mt["manifest"],
                    "config": {"mediaType": mt["config"], "digest": cfg_digest, "size": cfg_size},
                    "layers": []}
        for l in layers:
            d, s = _put_blob(blobdir, path=l.path)
            manifest["layers"].append({"mediaType": mt[args.compress], "digest": d, "size": s})
    man_digest, man_size = _put_blob(blobdir, canonical(manifest))

    with open(os.path.join(outdir, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    index_path = os.path.join(outdir, "index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            index = json.load(f)
    else:
        index = {"schemaVersion": 2, "mediaType": OCI_MT["index"], "manifests": []}
    desc = {"mediaType": mt["manifest"], "digest": man_digest, "size": man_size,
            "platform": {"architecture": args.arch, "os": args.os}}
    refs = args.ref or [None]
    for ref in refs:
        d = dict(desc)
        if ref is not None:
            d["annotations"] = {REF_ANNOTATION: ref}
            # one ref names one manifest: drop older entries with this ref
            index["manifests"] = [m for m in index["manifests"]
                                  if m.get("annotations", {}).get(REF_ANNOTATION) != ref]
        index["manifests"].append(d)
    with open(index_path, "wb") as f:
        f.write(canonical(index))
    print(man_digest)


def _tar_dir(out, src):
    """Deterministic tar of the contents of SRC (root entry excluded)."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        names = []
        for dirpath, dirnames, filenames in os.walk(src):
            for n in dirnames + filenames:
                names.append(os.path.relpath(os.path.join(dirpath, n), src))
        names.sort(key=lambda p: p.split(os.sep))
        for rel in names:
            full = os.path.join(src, rel)
            ti = tf.gettarinfo(full, rel)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            ti.mtime = 0
            ti.mode = 0o755 if ti.isdir() else 0o644
            if ti.isreg():
                with open(full, "rb") as f:
                    tf.addfile(ti, f)
            else:
                tf.addfile(ti)


def build_oci_archive(out, args):
    with tempfile.TemporaryDirectory() as work:
        build_oci(work, args)
        _tar_dir(out, work)


def build_docker_archive(out, args):
    with tempfile.TemporaryDirectory() as work:
        ldir = os.path.join(work, ".layers")
        os.mkdir(ldir)
        layers = [Layer(t, args.compress, ldir) for t in args.layer]
        stage = os.path.join(work, "stage")
        os.mkdir(stage)
        cfg = canonical(make_config(layers, args))
        cfg_hex = hashlib.sha256(cfg).hexdigest()
        with open(os.path.join(stage, cfg_hex + ".json"), "wb") as f:
            f.write(cfg)
        paths = []
        parent = ""
        for l in layers:
            # legacy v1 ids: any deterministic, distinct value will do
            v1 = hashlib.sha256((parent + " " + l.diff_id).encode()).hexdigest()
            os.mkdir(os.path.join(stage, v1))
            shutil.copyfile(l.path, os.path.join(stage, v1, "layer.tar"))
            with open(os.path.join(stage, v1, "VERSION"), "w") as f:
                f.write("1.0")
            v1json = {"id": v1, "created": args.created, "os": args.os}
            if parent:
                v1json["parent"] = parent
            with open(os.path.join(stage, v1, "json"), "wb") as f:
                f.write(canonical(v1json))
            paths.append(v1 + "/layer.tar")
            parent = v1
        refs = args.ref or []
        manifest = [{"Config": cfg_hex + ".json", "RepoTags": refs, "Layers": paths}]
        with open(os.path.join(stage, "manifest.json"), "wb") as f:
            f.write(json.dumps(manifest).encode())
        repos = {}
        for r in refs:
            name, _, tag = r.rpartition(":")
            if not name or "/" in tag:
                name, tag = r, "latest"
            repos.setdefault(name, {})[tag] = parent
        with open(os.path.join(stage, "repositories"), "wb") as f:
            f.write(json.dumps(repos).encode())
        _tar_dir(out, stage)
    print("sha256:" + cfg_hex)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    pl = sub.add_parser("layer", help="deterministic layer tar from a directory")
    pl.add_argument("out")
    pl.add_argument("dir")
    for mode in ("oci", "oci-archive", "docker-archive"):
        sp = sub.add_parser(mode)
        sp.add_argument("out")
        sp.add_argument("--ref", action="append", help="NAME:TAG (repeatable)")
        sp.add_argument("--layer", action="append", required=True, help="layer tar, bottom first")
        sp.add_argument("--compress", choices=["gzip", "zstd", "none"],
                        default="none" if mode == "docker-archive" else "gzip")
        sp.add_argument("--docker-media-types", action="store_true")
        sp.add_argument("--cmd", action="append", help="one Cmd argv element (repeatable)")
        sp.add_argument("--entrypoint", action="append")
        sp.add_argument("--env", action="append", help="K=V (repeatable)")
        sp.add_argument("--workdir")
        sp.add_argument("--user")
        sp.add_argument("--hostname")
        sp.add_argument("--created", default=DEFAULT_CREATED)
        sp.add_argument("--arch", default="amd64")
        sp.add_argument("--os", default="linux")
    args = p.parse_args(argv)
    if args.mode == "layer":
        write_layer(args.out, args.dir)
    elif args.mode == "oci":
        os.makedirs(args.out, exist_ok=True)
        build_oci(args.out, args)
    elif args.mode == "oci-archive":
        build_oci_archive(args.out, args)
    else:
        build_docker_archive(args.out, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
