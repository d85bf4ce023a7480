#!/usr/bin/env python3
# dumptree.py ROOTFS [--no-owner] [--no-devices]
#
# Prints one line per path under an unpacked rootfs (the root itself is not
# printed). tests/lbx-dump-tree ROOT IMAGE must print exactly the same bytes
# for lazybox's merged tree of IMAGE.
#
# FORMAT (one line per entry, "\n"-terminated, 10 fields separated by "\t"):
#
#   path  type  mode  uid  gid  nlink  size  mtime  link  sha256
#
#   path    absolute path inside the rootfs, starting with "/", no trailing
#           "/" ("/bin", "/bin/sh"). Escaped as below.
#   type    one char: f regular, d dir, l symlink, c char dev, b block dev,
#           p fifo, s socket
#   mode    st_mode & 07777 as exactly 4 octal digits ("0755", "4755",
#           "1777"). Symlinks always print "0777" whatever the tar said.
#   uid gid decimal. With --no-owner both are printed as "-".
#   nlink   decimal st_nlink for regular files: the number of paths of the
#           merged tree that are hard links to this file (hard links made in
#           later layers to a file of an earlier layer count too). "0" for
#           every non-regular entry (directory link counts differ between
#           implementations).
#   size    decimal byte size for regular files; "0" for everything else.
#   mtime   decimal whole seconds (st_mtime truncated toward zero, i.e. the
#           tar header's integer mtime). "0" for symlinks (not every unpacker
#           keeps symlink times). For directories: the mtime of the topmost
#           layer's entry for that directory (layers written by our fixtures
#           always carry every parent directory, and umoci restores a
#           directory's time after creating or removing its children).
#   link    symlinks: the target, verbatim (escaped). Char/block devices:
#           "MAJOR:MINOR" in decimal. Everything else: "-".
#   sha256  regular files: lowercase hex sha256 of the content. Else "-".
#
# Escaping of path and link: the raw bytes, where every byte outside
# 0x21..0x7e, and "\" itself, is written as "\xHH" (two lowercase hex
# digits); so a space is "\x20", a tab "\x09", "\" is "\x5c", and each byte of
# a UTF-8 "ü" is escaped separately ("\xc3\xbc").
#
# Order: lines sorted by the raw (unescaped) path bytes, memcmp order, i.e.
# strcmp() of the full "/..." paths. ("/a-b" < "/a/b" < "/a0".)
#
# --no-owner    print "-" for uid and gid (rootless unpackers cannot chown).
# --no-devices  omit char/block device entries (rootless unpackers cannot
#               mknod them).
# Whiteout files (.wh.*) never appear in an unpacked rootfs; if any exist in
# ROOTFS they are printed like any other file.

import hashlib
import os
import stat
import sys

TYPES = [
    (stat.S_ISREG, "f"),
    (stat.S_ISDIR, "d"),
    (stat.S_ISLNK, "l"),
    (stat.S_ISCHR, "c"),
    (stat.S_ISBLK, "b"),
    (stat.S_ISFIFO, "p"),
    (stat.S_ISSOCK, "s"),
]


def esc(b):
    out = []
    for c in b:
        if 0x21 <= c <= 0x7E and c != 0x5C:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return "".join(out)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def dump(root, no_owner=False, no_devices=False, out=sys.stdout):
    root = os.fsencode(root)
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            full = os.path.join(dirpath, n)
            entries.append(b"/" + os.path.relpath(full, root))
    entries.sort()
    lines = []
    for rel in entries:
        full = root + rel
        st = os.lstat(full)
        typ = next(t for test, t in TYPES if test(st.st_mode))
        if no_devices and typ in "cb":
            continue
        mode = stat.S_IMODE(st.st_mode)
        nlink = size = 0
        mtime = int(st.st_mtime)
        link = "-"
        digest = "-"
        if typ == "f":
            nlink, size = st.st_nlink, st.st_size
            digest = sha256_file(full)
        elif typ == "l":
            mode, mtime = 0o777, 0
            link = esc(os.readlink(full))
        elif typ in "cb":
            link = "%d:%d" % (os.major(st.st_rdev), os.minor(st.st_rdev))
        uid, gid = ("-", "-") if no_owner else (str(st.st_uid), str(st.st_gid))
        lines.append("\t".join([esc(rel), typ, "%04o" % mode, uid, gid, str(nlink),
                                str(size), str(mtime), link, digest]))
    out.write("".join(l + "\n" for l in lines))


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = {a for a in argv if a.startswith("--")}
    unknown = flags - {"--no-owner", "--no-devices"}
    if len(args) != 1 or unknown:
        print("usage: dumptree.py ROOTFS [--no-owner] [--no-devices]", file=sys.stderr)
        return 2
    if not os.path.isdir(args[0]):
        print(f"dumptree.py: {args[0]}: not a directory", file=sys.stderr)
        return 1
    dump(args[0], "--no-owner" in flags, "--no-devices" in flags)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
