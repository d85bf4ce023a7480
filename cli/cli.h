/* cli/: the lazybox command. The only place that prints to the terminal
 * and the only place that exits. */
#ifndef LBX_CLI_H
#define LBX_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "../index/index.h"

enum lbx_log_level { LBX_LOG_ERROR, LBX_LOG_WARN, LBX_LOG_INFO, LBX_LOG_DEBUG };

typedef struct lbx_cli {
  const char *root;
  enum lbx_log_level log_level;
  lbx_store *store; /* opened on first use */
} lbx_cli;

typedef struct lbx_cmd {
  const char *name;
  int (*run)(lbx_cli *cli, int argc, char **argv, lbx_err **err);
  const char *summary;
  const char *help; /* usage and options, as `lazybox NAME --help` prints it */
} lbx_cmd;

extern const lbx_cmd lbx_image_cmds[];
extern const lbx_cmd lbx_pull_cmds[];  /* cmd-pull.c: pull, login, logout */
extern const lbx_cmd lbx_mount_cmds[]; /* cmd-mount.c: mount, umount */
extern const lbx_cmd lbx_box_cmds[];   /* cmd-box.c: ps, rm, diff, rename */
extern const lbx_cmd lbx_run_cmds[];   /* cmd-run.c: run, start, stop, kill, wait, exec */
extern const lbx_cmd lbx_logs_cmds[];  /* cmd-logs.c: logs */
extern const lbx_cmd lbx_cp_cmds[];    /* cmd-cp.c: cp */
extern const lbx_cmd lbx_system_cmds[];

/* Opens the store under cli->root (once). */
lbx_store *lbx_cli_store(lbx_cli *cli, lbx_err **err);
void lbx_log(const lbx_cli *cli, enum lbx_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses a command's options; returns the index of the first operand, or
 * -1 after printing help (*exit_code 0) or a usage error (*err). Options
 * are described getopt_long style; "--help" is handled for every command. */
struct option;
int lbx_parse_opts(const lbx_cmd *cmd, int argc, char **argv, const char *shortopts,
                   const struct option *longopts, int (*on_opt)(void *ctx, int opt, char *arg),
                   void *ctx, int *exit_code, lbx_err **err);

/* cmd-run.c: a box runs while its supervisor holds its log's lock; a
 * "running" row whose supervisor is gone is recorded as exited (-1). */
struct lbx_box_row;
/* By name, ID or ID prefix; -1 with "box KEY: no such box" (ENOENT) or
 * "...: the ID prefix is ambiguous" (EEXIST). */
int lbx_cli_box_find(lbx_store *s, const char *key, struct lbx_box_row *box, lbx_err **err);
/* The store, opened if need be, with the box KEY found in it; NULL with
 * *err (the store cannot be opened, or as lbx_cli_box_find). */
lbx_store *lbx_cli_store_box(lbx_cli *cli, const char *key, struct lbx_box_row *box, lbx_err **err);
bool lbx_cli_box_running(lbx_store *s, struct lbx_box_row *box);
/* A box name as Podman takes them: [a-zA-Z0-9][a-zA-Z0-9_.-]* */
bool lbx_cli_valid_name(const char *name);
/* In a process about to become a daemon (a detached supervisor, a mount's
 * server): closes every descriptor from 3 up but keep (-1: none). What
 * the caller left open (a pipe its shell or test runner reads to the end,
 * bats's fd 3) must not stay open for the daemon's whole life. */
void lbx_cli_close_inherited(int keep);
/* `inspect BOX`: the box's row, its settings and state, Podman's keys. */
struct json_t;
struct json_t *lbx_cli_box_json(lbx_store *s, struct lbx_box_row *box);
/* Waits for the box's supervisor to end: 0, or -1 after timeout_ms (< 0: none). */
int lbx_cli_box_wait(lbx_store *s, const char *id, long timeout_ms);
/* The boxes a command acts on: with all, every box's ID (running_only: every
 * running box's), and no operand may be given; else the operands, of
 * which there must be one at least. A NULL-terminated vector, or NULL with
 * *err ("CMD: ..."). */
char **lbx_cli_box_args(lbx_store *s, const char *cmd, bool all, bool running_only, int argc,
                        char **argv, int first, lbx_err **err);

/* An on_opt for commands with no options of their own (main.c). */
int lbx_no_opt(void *ctx, int opt, char *arg);

/* Output helpers (output.c). */
char *lbx_human_size(uint64_t bytes); /* "4.26 MB", like Podman */
char *lbx_human_ago(int64_t ns);      /* "2 months ago" */
char *lbx_rfc3339(int64_t ns);
bool lbx_format_is_json(const char *format, lbx_err **err);
/* --format TEMPLATE (anything but json and table): Go template text, as
 * Podman takes (template.h); lbx_format_print renders it over each value of
 * the JSON array values, one line each, with a header for "table ..."
 * (renames: pairs of field and header name, as lbx_template_header). */
struct json_t;
bool lbx_format_is_template(const char *format);
int lbx_format_print(const char *format, struct json_t *values, const char *const *renames,
                     lbx_err **err);

#endif
