#!/usr/bin/env python3
"""Write the layer tars of lazybox's test images (stdlib only, works rootless).

  mkfixture.py standard OUTDIR [--variant STR]
      OUTDIR/layer1.tar layer2.tar layer3.tar: the standard busybox fixture.
      --variant adds /etc/variant (content STR) to every layer and changes one
      dir mtime, so all three layer digests differ while nearly all file
      content stays the same (the dedup test).
  mkfixture.py big OUTDIR       layer1.tar (~96 MiB of random files) and
                                layer2.tar (2000 small files): the kill test.
  mkfixture.py unique OUTDIR    layer1.tar with a few files found nowhere else.
  mkfixture.py hostile OUTDIR   layer1.tar with a "../evil" entry.

What the standard layers hold (tests rely on these paths):
  layer1  /bin/busybox (from the host's busybox-static) + sh ls cat symlinks,
          /usr/bin/env -> /bin/busybox (absolute), /etc/passwd, /etc/group,
          /tmp 1777, /root 0700, /var/empty 0555, /srv 2775 gid 50,
          /home/user 0750 1000:1000 with file 0640 1000:1000,
          /usr/bin/suid 4755, /usr/bin/sgid 2755 gid 50,
          /usr/share/hl-a + /usr/share/hl-b (hard link pair),
          /run/initctl (fifo), /dev/null (char 1,3), /dev/loop9 (block 7,9),
          /etc/xattr-file (user.test=hello), /etc/motd, /etc/removeme,
          /etc/gone-dir/{a,b/c}, /usr/share/doc/pkg/{README,COPYING,sub/x},
          /opt/replaced/{child}, a > 100 byte path, a UTF-8 name,
          a name with a space, an empty file, a file owned by 65534.
  layer2  modifies /etc/motd, .wh.removeme, .wh.gone-dir, /srv -> 0750,
          opaque /usr/share/doc/pkg with new child NEW.
  layer3  re-creates /etc/removeme, /opt/replaced becomes a file,
          /usr/share/hl-c hard link to layer1's /usr/share/hl-a,
          /usr/lib/big.bin (3 MiB, seeded random), /usr/share/many/f0000..f0499.
"""

import argparse
import os
import random
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkimage import LayerWriter  # noqa: E402

T1, T2, T3 = 1700000000, 1700000100, 1700000200
BUSYBOX = os.environ.get("LBX_BUSYBOX", "/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:
daemon:x:1:
staff:x:50:
user:x:1000:
nogroup:x:65534:
"""
LONGDIR = "usr/share/" + "d" * 60 + "/" + "e" * 60


def standard(out, variant=None):
    def var(w, t):
        if variant is not None:
            w.file("etc/variant", variant + "\n", mtime=t)

    with LayerWriter(os.path.join(out, "layer1.tar"), mtime=T1) as w:
        w.dir("bin")
        w.file_from("bin/busybox", BUSYBOX, mode=0o755, mtime=1600000000)
        for n in ("sh", "ls", "cat"):
            w.symlink(f"bin/{n}", "busybox")
        w.dir("dev")
        w.chardev("dev/null", 1, 3, mode=0o666)
        w.blockdev("dev/loop9", 7, 9, mode=0o660, gid=6)
        w.dir("etc")
        w.file("etc/empty", b"")
        w.dir("etc/gone-dir")
        w.file("etc/gone-dir/a", "a\n")
        w.dir("etc/gone-dir/b", mode=0o700)
        w.file("etc/gone-dir/b/c", "c\n")
        w.file("etc/group", GROUP)
        w.file("etc/motd", "welcome to layer 1\n")
        w.file("etc/passwd", PASSWD)
        w.file("etc/removeme", "remove me\n")
        w.file("etc/with space", "space\n")
        w.file("etc/xattr-file", "has an xattr\n", xattrs={"user.test": "hello"})
        w.file("etc/\u00fcn\u00efc\u00f6de.txt", "utf-8 name\n")
        var(w, T1)
        w.dir("home")
        w.dir("home/user", mode=0o750, uid=1000, gid=1000)
        w.file("home/user/file", "owned by user\n", mode=0o640, uid=1000, gid=1000)
        w.dir("opt")
        w.dir("opt/replaced", mode=0o755)
        w.file("opt/replaced/child", "child\n")
        w.dir("root", mode=0o700)
        w.dir("run")
        w.fifo("run/initctl", mode=0o600)
        w.dir("srv", mode=0o2775, gid=50)
        w.dir("tmp", mode=0o1777, mtime=1690000000 if variant else None)
        w.dir("usr")
        w.dir("usr/bin")
        w.symlink("usr/bin/env", "/bin/busybox")
        w.file("usr/bin/nobody-owned", "nobody\n", uid=65534, gid=65534)
        w.file("usr/bin/sgid", "#!/bin/sh\necho sgid\n", mode=0o2755, gid=50)
        w.file("usr/bin/suid", "#!/bin/sh\necho suid\n", mode=0o4755)
        w.dir("usr/share")
        w.dir("usr/share/doc")
        w.dir("usr/share/doc/pkg")
        w.file("usr/share/doc/pkg/COPYING", "GPL\n")
        w.file("usr/share/doc/pkg/README", "readme v1\n")
        w.dir("usr/share/doc/pkg/sub")
        w.file("usr/share/doc/pkg/sub/x", "x\n")
        w.file("usr/share/hl-a", "hard linked content\n")
        w.hardlink("usr/share/hl-b", "usr/share/hl-a")
        parts = LONGDIR.split("/")
        for i in range(3, len(parts) + 1):
            w.dir("/".join(parts[:i]))
        w.file(LONGDIR + "/" + "f" * 40 + ".txt", "long path\n")
        w.dir("var")
        w.dir("var/empty", mode=0o555)

    with LayerWriter(os.path.join(out, "layer2.tar"), mtime=T2) as w:
        w.dir("etc")
        w.whiteout("etc/gone-dir")
        w.whiteout("etc/removeme")
        w.file("etc/motd", "welcome to layer 2\n", mode=0o644)
        var(w, T2)
        w.dir("srv", mode=0o750, gid=50)
        w.dir("usr")
        w.dir("usr/share")
        w.dir("usr/share/doc")
        w.dir("usr/share/doc/pkg", mode=0o755)
        w.opaque("usr/share/doc/pkg")
        w.file("usr/share/doc/pkg/NEW", "new after opaque\n")

    rnd = random.Random(42)
    with LayerWriter(os.path.join(out, "layer3.tar"), mtime=T3) as w:
        w.dir("etc")
        w.file("etc/removeme", "re-created in layer 3\n", mode=0o600)
        var(w, T3)
        w.dir("opt")
        w.file("opt/replaced", "a file replacing a directory\n")
        w.dir("usr")
        w.dir("usr/lib")
        w.file("usr/lib/big.bin", rnd.randbytes(3 << 20))
        w.dir("usr/share")
        w.hardlink("usr/share/hl-c", "usr/share/hl-a")
        w.dir("usr/share/many")
        for i in range(500):
            # 20 distinct contents among 500 files
            w.file(f"usr/share/many/f{i:04d}", f"small file {i % 20}\n" * (1 + i % 20))


def big(out):
    rnd = random.Random(7)
    with LayerWriter(os.path.join(out, "layer1.tar"), mtime=T1) as w:
        w.dir("big")
        for i in range(48):
            w.file(f"big/r{i:03d}.bin", rnd.randbytes(2 << 20))
    with LayerWriter(os.path.join(out, "layer2.tar"), mtime=T2) as w:
        w.dir("small")
        for i in range(2000):
            w.file(f"small/s{i:04d}", f"{i}\n" * (i % 50))


def unique(out):
    rnd = random.Random(99)
    with LayerWriter(os.path.join(out, "layer1.tar"), mtime=T1) as w:
        w.dir("unique")
        w.file("unique/blob.bin", rnd.randbytes(256 << 10))
        for i in range(20):
            w.file(f"unique/u{i:02d}", f"unique content {i}\n" * 100)


def hostile(out):
    with LayerWriter(os.path.join(out, "layer1.tar"), mtime=T1) as w:
        w.dir("ok")
        w.file("ok/file", "fine\n")
        w.file("../evil", "EVIL-PAYLOAD\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["standard", "big", "unique", "hostile"])
    p.add_argument("out")
    p.add_argument("--variant")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.kind == "standard":
        standard(a.out, a.variant)
    else:
        globals()[a.kind](a.out)


if __name__ == "__main__":
    main()
