#!/bin/bash
# boxfs-ops.sh DIR: one fixed sequence of file operations run in DIR,
# printing for each its number, exit status and (for reads) output. Run on
# a box mount and on the same image unpacked by umoci, the two transcripts
# must be equal (tests/system/boxfs.bats).
cd "$1" || exit 2
n=0
op() {
	n=$((n + 1))
	local out
	out="$(sh -c "$1" 2>/dev/null)"
	printf '%d %d %s\n' "$n" "$?" "$(printf '%s' "$out" | tr '\n' '|' | head -c 400)"
}
# reads of lower content
op 'cat etc/passwd'
op 'ls etc | sort'
op 'cat usr/bin/suid'
op 'readlink bin/sh'
# new files, appends and truncation over lower files (copy-up)
op 'echo hello > newfile && cat newfile'
op 'echo more >> etc/motd && cat etc/motd'
op 'printf abc > etc/group && cat etc/group'
op 'truncate -s 3 etc/passwd && cat etc/passwd'
op 'dd if=/dev/zero of=big bs=1M count=3 2>/dev/null && wc -c < big'
# directories
op 'mkdir -p a/b/c && echo x > a/b/c/f && cat a/b/c/f'
op 'rmdir a/b'
op 'rm a/b/c/f && rmdir a/b/c && ls a/b | wc -l'
op 'mkdir etc'
op 'ls -a a | sort | tr "\n" " "'
# the image's hard links stay links when one name is written (copy-up
# links the other names that still show the file; a removed one stays out)
op 'stat -c %h usr/share/hl-a usr/share/hl-b usr/share/hl-c | tr "\n" " "'
op 'rm usr/share/hl-c && echo w >> usr/share/hl-b && cat usr/share/hl-a && stat -c %h usr/share/hl-a usr/share/hl-b | tr "\n" " "'
op 'ls usr/share/hl-c'
# deleting lower names, then making them again
op 'rm etc/motd && ls etc | sort'
op 'cat etc/motd'
op 'echo again > etc/motd && cat etc/motd'
op 'rm -r usr/share 2>/dev/null; ls usr | sort'
op 'mkdir usr/share && ls usr/share | wc -l'
# renames
op 'mv newfile a/moved && cat a/moved && ls newfile'
op 'mv etc/group etc/group2 && cat etc/group2 && ls etc | sort'
op 'echo one > r1 && echo two > r2 && mv r1 r2 && cat r2 && ls r1'
op 'mkdir d1 && echo f > d1/f && mv d1 d2 && cat d2/f'
op 'mv etc etc-moved && ls etc-moved | sort && ls etc'
op 'mv etc-moved etc && ls etc | sort'
# links
op 'ln -s target sym && readlink sym'
op 'ln a/moved hard && cat hard && stat -c %h a/moved'
op 'ln -s ../etc/passwd a/rel && cat a/rel'
# permissions and times (as seen by stat)
op 'chmod 640 etc/passwd && stat -c %a etc/passwd'
op 'chmod 700 a && stat -c %a a'
op 'touch -d @1000000 etc/passwd && stat -c %Y etc/passwd'
op 'mkfifo fifo && stat -c %F fifo'
# O_EXCL and O_APPEND
op 'set -C; echo x > etc/passwd'
op 'echo 1 > ap && echo 2 >> ap && cat ap'
# RENAME_EXCHANGE (renameat2 through python's ctypes: neither os.rename
# nor every mv(1) has it): lower symlink <-> lower file, lower dir <-> upper
# file, upper dir <-> lower dir with content
export XCHG_PY='import ctypes, os, sys
l = ctypes.CDLL(None, use_errno=True)
if l.renameat2(-100, os.fsencode(sys.argv[1]), -100, os.fsencode(sys.argv[2]), 2) != 0:
    sys.exit(os.strerror(ctypes.get_errno()))'
op 'python3 -c "$XCHG_PY" bin/sh usr/bin/suid && readlink usr/bin/suid && cat bin/sh'
op 'python3 -c "$XCHG_PY" usr/lib ap && cat usr/lib && ls ap'
op 'python3 -c "$XCHG_PY" a usr/bin && ls a | sort && ls usr/bin | sort'
op 'python3 -c "$XCHG_PY" a nothing-here'
# directories with lower content move (a copied-up file inside; over an
# empty directory; back over a whiteout)
op 'echo c >> opt/replaced && mkdir emptyd && mv -T opt emptyd && cat emptyd/replaced && ls opt'
op 'mkdir var2 && mv -T var var2 && ls -a var2 var2/empty | tr "\n" " " && ls var'
op 'mv var2 var && ls -a var | tr "\n" " "'
exit 0
