/* launcher/tarw.c: a POSIX tar stream written to a file descriptor, for
 * `lazybox cp BOX:PATH -`. Each entry is a ustar header; a name or link
 * target longer than ustar holds, a size past 8 GiB or an id past its
 * octal field, an mtime before 1970 or after 2242 goes in a pax extended
 * header before it, as GNU tar and
 * bsdtar read it. Owners are numeric (no user or group names). */
#ifndef LBX_TARW_H
#define LBX_TARW_H

#include <stdint.h>
#include <sys/stat.h>

/* The header of one entry: its type and mode from st (regular file,
 * directory, symlink with link, character or block device, fifo), size
 * st_size for a regular file, else 0. A directory's name gets its "/".
 * 0 or -errno (-EINVAL for a socket, which tar cannot hold). */
int lbx_tarw_header(int fd, const char *name, const struct stat *st, const char *link);

/* A regular file's data: exactly size bytes from in, then the padding to
 * the next block; bytes it grew by since its header are not read. 0, or
 * -errno when writing fails, or 1 when in fails (*read_err its errno) or
 * ends first (it shrank while being read: *read_err 0); the archive is
 * then cut short. */
int lbx_tarw_data(int fd, int in, uint64_t size, int *read_err);

/* The two zero blocks that end the archive. 0 or -errno. */
int lbx_tarw_end(int fd);

#endif
