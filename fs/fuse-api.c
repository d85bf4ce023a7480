/* libfuse3 through dlopen: see fuse-api.h for why. */
#define LBX_FUSE_API_IMPL
#include "fuse-api.h"
#include "fs.h"

#include <dlfcn.h>
#include <stddef.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define FUSE_SONAME "libfuse3.so.3"

struct lbx_fuse_api lbx_fuse;
static char load_error[256];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void
load(void)
{
  /* Never closed: the daemon's threads run its code until exit. */
  void *dl = dlopen(FUSE_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    snprintf(load_error, sizeof load_error, "%s", dlerror());
    return;
  }
  /* the versions a link against libfuse 3.14 binds (objdump -T lazybox
   * before this file existed): the 3.12 loop API, 3.0 for the rest */
  static const struct {
    size_t off;
    const char *name, *version;
  } syms[] = {
#define SYM(field, version) {offsetof(struct lbx_fuse_api, field), "fuse_" #field, version}
      SYM(add_direntry, "FUSE_3.0"),
      SYM(add_direntry_plus, "FUSE_3.0"),
      SYM(buf_copy, "FUSE_3.0"),
      SYM(buf_size, "FUSE_3.0"),
      SYM(loop_cfg_create, "FUSE_3.12"),
      SYM(loop_cfg_destroy, "FUSE_3.12"),
      SYM(loop_cfg_set_clone_fd, "FUSE_3.12"),
      SYM(loop_cfg_set_idle_threads, "FUSE_3.12"),
      SYM(lowlevel_notify_inval_inode, "FUSE_3.0"),
      SYM(opt_free_args, "FUSE_3.0"),
      SYM(pkgversion, "FUSE_3.0"),
      SYM(remove_signal_handlers, "FUSE_3.0"),
      SYM(reply_attr, "FUSE_3.0"),
      SYM(reply_buf, "FUSE_3.0"),
      SYM(reply_create, "FUSE_3.0"),
      SYM(reply_data, "FUSE_3.0"),
      SYM(reply_entry, "FUSE_3.0"),
      SYM(reply_err, "FUSE_3.0"),
      SYM(reply_none, "FUSE_3.0"),
      SYM(reply_open, "FUSE_3.0"),
      SYM(reply_readlink, "FUSE_3.0"),
      SYM(reply_statfs, "FUSE_3.0"),
      SYM(reply_write, "FUSE_3.0"),
      SYM(reply_xattr, "FUSE_3.0"),
      SYM(req_ctx, "FUSE_3.0"),
      SYM(req_userdata, "FUSE_3.0"),
      SYM(session_destroy, "FUSE_3.0"),
      SYM(session_exit, "FUSE_3.0"),
      SYM(session_loop_mt, "FUSE_3.12"),
      SYM(session_mount, "FUSE_3.0"),
      SYM(session_new, "FUSE_3.0"),
      SYM(session_unmount, "FUSE_3.0"),
      SYM(set_signal_handlers, "FUSE_3.0"),
#undef SYM
  };
  /* every field of the table has its row above */
  _Static_assert(sizeof syms / sizeof syms[0] ==
                     sizeof(struct lbx_fuse_api) / sizeof(void (*)(void)),
                 "fuse-api: syms[] and struct lbx_fuse_api differ");
  struct lbx_fuse_api api = {0};
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    void *f = dlvsym(dl, syms[i].name, syms[i].version);
    if (!f) {
      snprintf(load_error, sizeof load_error, "%s: no symbol %s@%s", FUSE_SONAME, syms[i].name,
               syms[i].version);
      return;
    }
    memcpy((char *)&api + syms[i].off, &f, sizeof f);
  }
  lbx_fuse = api; /* complete, or left empty */
}

int
lbx_fuse_load(lbx_err **err)
{
  pthread_once(&once, load);
  if (!lbx_fuse.set_signal_handlers)
    return lbx_error(err, ELIBACC, "cannot load libfuse3 (%s), needed to mount", load_error);
  return 0;
}

const char *
lbx_fs_fuse_version(lbx_err **err)
{
  return lbx_fuse_load(err) < 0 ? NULL : lbx_fuse.pkgversion();
}
