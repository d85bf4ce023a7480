/* libfuse3 through dlopen, as libcurl and libcrypto are: only mount, run
 * and start serve a file system, and linking the library cost every other
 * command (create, exec, ps: the ones measured in milliseconds) its loading
 * at start. fs/ includes this header instead of <fuse_lowlevel.h>; the
 * calls below go through a table that lbx_fuse_load fills once, with the
 * symbol versions a link against libfuse 3.14 would have bound. */
#ifndef LBX_FUSE_API_H
#define LBX_FUSE_API_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 312
#endif
#include <fuse_lowlevel.h>

#include "store/error.h"

struct lbx_fuse_api {
  __typeof__(fuse_add_direntry) *add_direntry;
  __typeof__(fuse_add_direntry_plus) *add_direntry_plus;
  __typeof__(fuse_buf_copy) *buf_copy;
  __typeof__(fuse_buf_size) *buf_size;
  __typeof__(fuse_loop_cfg_create) *loop_cfg_create;
  __typeof__(fuse_loop_cfg_destroy) *loop_cfg_destroy;
  __typeof__(fuse_loop_cfg_set_clone_fd) *loop_cfg_set_clone_fd;
  __typeof__(fuse_loop_cfg_set_idle_threads) *loop_cfg_set_idle_threads;
  __typeof__(fuse_lowlevel_notify_inval_inode) *lowlevel_notify_inval_inode;
  __typeof__(fuse_opt_free_args) *opt_free_args;
  __typeof__(fuse_pkgversion) *pkgversion;
  __typeof__(fuse_remove_signal_handlers) *remove_signal_handlers;
  __typeof__(fuse_reply_attr) *reply_attr;
  __typeof__(fuse_reply_buf) *reply_buf;
  __typeof__(fuse_reply_create) *reply_create;
  __typeof__(fuse_reply_data) *reply_data;
  __typeof__(fuse_reply_entry) *reply_entry;
  __typeof__(fuse_reply_err) *reply_err;
  __typeof__(fuse_reply_none) *reply_none;
  __typeof__(fuse_reply_open) *reply_open;
  __typeof__(fuse_reply_readlink) *reply_readlink;
  __typeof__(fuse_reply_statfs) *reply_statfs;
  __typeof__(fuse_reply_write) *reply_write;
  __typeof__(fuse_reply_xattr) *reply_xattr;
  __typeof__(fuse_req_ctx) *req_ctx;
  __typeof__(fuse_req_userdata) *req_userdata;
  __typeof__(fuse_session_destroy) *session_destroy;
  __typeof__(fuse_session_exit) *session_exit;
  __typeof__(fuse_session_loop_mt) *session_loop_mt;
  __typeof__(fuse_session_mount) *session_mount;
  __typeof__(fuse_session_new) *session_new;
  __typeof__(fuse_session_unmount) *session_unmount;
  __typeof__(fuse_set_signal_handlers) *set_signal_handlers;
};
extern struct lbx_fuse_api lbx_fuse;

/* 0 once the table is filled (the first call loads the library), or -1
 * with *err naming the library and why it cannot be used. */
int lbx_fuse_load(lbx_err **err);

#ifndef LBX_FUSE_API_IMPL
#define fuse_add_direntry lbx_fuse.add_direntry
#define fuse_add_direntry_plus lbx_fuse.add_direntry_plus
#define fuse_buf_copy lbx_fuse.buf_copy
#define fuse_buf_size lbx_fuse.buf_size
#define fuse_loop_cfg_create lbx_fuse.loop_cfg_create
#define fuse_loop_cfg_destroy lbx_fuse.loop_cfg_destroy
#define fuse_loop_cfg_set_clone_fd lbx_fuse.loop_cfg_set_clone_fd
#define fuse_loop_cfg_set_idle_threads lbx_fuse.loop_cfg_set_idle_threads
#define fuse_lowlevel_notify_inval_inode lbx_fuse.lowlevel_notify_inval_inode
#define fuse_opt_free_args lbx_fuse.opt_free_args
#define fuse_pkgversion lbx_fuse.pkgversion
#define fuse_remove_signal_handlers lbx_fuse.remove_signal_handlers
#define fuse_reply_attr lbx_fuse.reply_attr
#define fuse_reply_buf lbx_fuse.reply_buf
#define fuse_reply_create lbx_fuse.reply_create
#define fuse_reply_data lbx_fuse.reply_data
#define fuse_reply_entry lbx_fuse.reply_entry
#define fuse_reply_err lbx_fuse.reply_err
#define fuse_reply_none lbx_fuse.reply_none
#define fuse_reply_open lbx_fuse.reply_open
#define fuse_reply_readlink lbx_fuse.reply_readlink
#define fuse_reply_statfs lbx_fuse.reply_statfs
#define fuse_reply_write lbx_fuse.reply_write
#define fuse_reply_xattr lbx_fuse.reply_xattr
#define fuse_req_ctx lbx_fuse.req_ctx
#define fuse_req_userdata lbx_fuse.req_userdata
#define fuse_session_destroy lbx_fuse.session_destroy
#define fuse_session_exit lbx_fuse.session_exit
#undef fuse_session_loop_mt
#define fuse_session_loop_mt lbx_fuse.session_loop_mt
#define fuse_session_mount lbx_fuse.session_mount
#define fuse_session_new lbx_fuse.session_new
#define fuse_session_unmount lbx_fuse.session_unmount
#define fuse_set_signal_handlers lbx_fuse.set_signal_handlers
#endif

#endif
