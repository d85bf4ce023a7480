/* The tar writer (launcher/tarw.c), read back by our own reader
 * (index/tar.c): names and link targets past ustar's fields, sizes, ids
 * past the octal fields, every type, and the end. GNU tar reads the same
 * streams in tests/system/cp.bats. */
#include "index/tar.h"
#include "launcher/tarw.h"
#include "store/util.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static ssize_t
fd_read(void *ctx, void *buf, size_t len, lbx_err **err)
{
  (void)err;
  return read(*(int *)ctx, buf, len);
}

static struct stat
st_of(mode_t mode, uid_t uid, off_t size, time_t mtime)
{
  struct stat st;
  memset(&st, 0, sizeof st);
  st.st_mode = mode;
  st.st_uid = uid;
  st.st_gid = uid + 1;
  st.st_size = size;
  st.st_mtim.tv_sec = mtime;
  return st;
}

int
main(void)
{
  int fd = memfd_create("tarw", MFD_CLOEXEC);
  int data = memfd_create("data", MFD_CLOEXEC);
  if (fd < 0 || data < 0)
    return printf("Bail out! memfd_create: %s\n", strerror(errno)), 1;
  const char body[] = "hello, tar\n";
  if (write(data, body, sizeof body - 1) != (ssize_t)(sizeof body - 1))
    return 1;

  char longname[300], longlink[260];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  longname[120] = '/';
  memset(longlink, 'l', sizeof longlink - 1);
  longlink[sizeof longlink - 1] = '\0';

  struct stat d = st_of(S_IFDIR | 0751, 0, 0, 1600000000);
  struct stat f = st_of(S_IFREG | 04755, 1000, sizeof body - 1, 1500000000);
  struct stat big_ids = st_of(S_IFREG | 0600, 3000000, 0, 1);
  struct stat l = st_of(S_IFLNK | 0777, 0, 0, 2);
  struct stat c = st_of(S_IFCHR | 0666, 0, 0, 3);
  c.st_rdev = makedev(1, 3);
  struct stat p = st_of(S_IFIFO | 0644, 0, 0, 4);
  struct stat sock = st_of(S_IFSOCK | 0755, 0, 0, 5);

  tap_is_int(lbx_tarw_header(fd, "dir", &d, NULL), 0, "a directory");
  tap_is_int(lbx_tarw_header(fd, "dir/file", &f, NULL), 0, "a file's header");
  lseek(data, 0, SEEK_SET);
  int read_err = -1;
  tap_is_int(lbx_tarw_data(fd, data, f.st_size, &read_err), 0, "its data, padded");
  tap_is_int(lbx_tarw_header(fd, longname, &big_ids, NULL), 0, "a long name, ids past octal");
  tap_is_int(lbx_tarw_header(fd, "link", &l, longlink), 0, "a symlink with a long target");
  tap_is_int(lbx_tarw_header(fd, "null", &c, NULL), 0, "a character device");
  tap_is_int(lbx_tarw_header(fd, "fifo", &p, NULL), 0, "a fifo");
  struct stat old = st_of(S_IFREG | 0644, 0, 0, -100),
              future = st_of(S_IFREG | 0644, 0, 0, 10000000000);
  tap_is_int(lbx_tarw_header(fd, "old", &old, NULL), 0, "an mtime before 1970");
  tap_is_int(lbx_tarw_header(fd, "future", &future, NULL), 0, "an mtime after 2242");
  tap_is_int(lbx_tarw_header(fd, "sock", &sock, NULL), -EINVAL, "a socket is refused");
  struct stat grown = st_of(S_IFREG | 0644, 0, 100, 6);
  lseek(data, 0, SEEK_SET);
  off_t before = lseek(fd, 0, SEEK_CUR);
  tap_is_int(lbx_tarw_header(fd, "shrank", &grown, NULL), 0, "a header for 100 bytes");
  tap_is_int(lbx_tarw_data(fd, data, 100, &read_err), 1, "a file that has fewer is 1");
  tap_is_int(read_err, 0, "... with no read error");
  /* the caller stops there; back to before it for the rest */
  if (ftruncate(fd, before) < 0 || lseek(fd, before, SEEK_SET) != before)
    return 1;
  tap_is_int(lbx_tarw_end(fd), 0, "the end");
  tap_is_int(lseek(fd, 0, SEEK_END) % 512, 0, "whole blocks");

  lseek(fd, 0, SEEK_SET);
  _cleanup_(lbx_tar_freep) lbx_tar *t = lbx_tar_new("tarw.tar", fd_read, &fd);
  _cleanup_error_ lbx_err *err = NULL;
  const lbx_tar_entry *e;
  tap_is_int(lbx_tar_next(t, &e, &err), 1, "read: dir");
  tap_is_str(e->path, "dir/", "dir: name with its slash");
  tap_ok(e->type == LBX_TAR_DIR && e->mode == 0751 && e->mtime_sec == 1600000000,
         "dir: type, mode, mtime");
  tap_is_int(lbx_tar_next(t, &e, &err), 1, "read: file");
  tap_is_str(e->path, "dir/file", "file: name");
  tap_ok(e->type == LBX_TAR_REG && e->mode == 04755 && e->uid == 1000 && e->gid == 1001 &&
             e->size == sizeof body - 1,
         "file: type, mode with set-uid, owner, size");
  char got[64] = {0};
  tap_is_int(lbx_tar_read(t, got, sizeof got, &err), (long long)(sizeof body - 1), "file: data");
  tap_is_str(got, body, "file: data intact");
  tap_is_int(lbx_tar_next(t, &e, &err), 1, "read: long name");
  tap_is_str(e->path, longname, "long name: whole, from pax");
  tap_ok(e->uid == 3000000 && e->gid == 3000001, "ids past the octal fields, from pax");
  tap_is_int(lbx_tar_next(t, &e, &err), 1, "read: symlink");
  tap_ok(e->type == LBX_TAR_SYMLINK && e->linkname && strcmp(e->linkname, longlink) == 0,
         "symlink: long target, from pax");
  tap_is_int(lbx_tar_next(t, &e, &err), 1, "read: device");
  tap_ok(e->type == LBX_TAR_CHR && e->devmajor == 1 && e->devminor == 3, "device: 1,3");
  tap_is_int(lbx_tar_next(t, &e, &err), 1, "read: fifo");
  tap_ok(e->type == LBX_TAR_FIFO && strcmp(e->path, "fifo") == 0, "fifo");
  tap_is_int(lbx_tar_next(t, &e, &err), 1, "read: old");
  tap_is_int(e->mtime_sec, -100, "an mtime before 1970, from pax");
  tap_is_int(lbx_tar_next(t, &e, &err), 1, "read: future");
  tap_is_int(e->mtime_sec, 10000000000LL, "an mtime after 2242, from pax");
  tap_is_int(lbx_tar_next(t, &e, &err), 0, "then the end, nothing else");
  if (err)
    printf("# %s\n", err->msg);
  close(fd);
  close(data);
  return tap_done();
}
