/* Box rows and directories. A box costs a row and two empty directories,
 * whatever its image's size: nothing is extracted. */
#include "store-internal.h"

#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>

void
lbx_box_row_clear(lbx_box_row *r)
{
  free(r->name);
  free(r->config);
  r->name = r->config = NULL;
}

char *
lbx_store_box_dir(const lbx_store *s, const char *id)
{
  return lbx_xasprintf("%s/boxes/%s", s->root, id);
}

int
lbx_store_box_supervised(const lbx_store *s, const char *id)
{
  /* The supervisor holds an exclusive lock on the box's log for its whole
   * life (launcher/io.c): a shared lock that cannot be had means it runs. */
  _cleanup_free_ char *log = lbx_xasprintf("%s/boxes/%s/ctr.log", s->root, id);
  _cleanup_close_ int fd = open(log, O_RDONLY | O_CLOEXEC);
  return fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
}

static int
rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  (void)st;
  (void)ftw;
  /* read-only dirs the box made must not stop the removal */
  if (type == FTW_DP)
    return rmdir(path) < 0 && errno != ENOENT ? -1 : 0;
  return unlink(path) < 0 && errno != ENOENT ? -1 : 0;
}

static int
chmod_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
  (void)ftw;
  if (type == FTW_D || type == FTW_DNR)
    chmod(path, (st->st_mode & 07777) | 0700);
  return 0;
}

static int
rm_rf(const char *path)
{
  nftw(path, chmod_entry, 32, FTW_PHYS);
  return nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT ? -errno : 0;
}

int
lbx_store_box_add(lbx_store *s, const char *id, const char *name, const char *image,
                  const char *config, lbx_err **err)
{
  _cleanup_free_ char *dir = lbx_store_box_dir(s, id);
  _cleanup_free_ char *upper = lbx_xasprintf("%s/upper", dir);
  _cleanup_free_ char *work = lbx_xasprintf("%s/work", dir);
  int r;
  if ((r = lbx_mkdir_p(upper, 0700)) < 0 || (r = lbx_mkdir_p(work, 0700)) < 0)
    return lbx_error_errno(err, -r, "box %s: creating %s", name, dir);
  /* the upper dir is the box's root: it starts as the image's root does */
  chmod(upper, 0755);
  LBX_LOCKED(s);
  _cleanup_finalize_ sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(
          s->db,
          "INSERT INTO boxes(id, name, image, created, config) "
          "SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM images WHERE id = ?3)",
          -1, &st, NULL) != SQLITE_OK) {
    rm_rf(dir);
    return lbx_sql_error(s, err, "preparing");
  }
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 3, image, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, lbx_now_ns());
  sqlite3_bind_text(st, 5, config ? config : "{}", -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_DONE || sqlite3_changes(s->db) != 1) {
    rm_rf(dir);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
      return lbx_error(err, EEXIST, "the name \"%s\" is already in use by a box", name);
    if (rc == SQLITE_DONE)
      return lbx_error(err, ENOENT, "image %.12s is not in the store", image);
    return lbx_sql_error(s, err, "adding the box");
  }
  return 0;
}

static void
fill_row(sqlite3_stmt *st, lbx_box_row *r)
{
  memset(r, 0, sizeof *r);
  snprintf(r->id, sizeof r->id, "%s", (const char *)sqlite3_column_text(st, 0));
  r->name = lbx_xstrdup((const char *)sqlite3_column_text(st, 1));
  snprintf(r->image, sizeof r->image, "%s", (const char *)sqlite3_column_text(st, 2));
  r->created_ns = sqlite3_column_int64(st, 3);
  r->config = lbx_xstrdup((const char *)sqlite3_column_text(st, 4));
  snprintf(r->state, sizeof r->state, "%s", (const char *)sqlite3_column_text(st, 5));
  r->pid = sqlite3_column_int(st, 6);
  r->pid_start = (uint64_t)sqlite3_column_int64(st, 7);
  r->started_ns = sqlite3_column_int64(st, 8);
  r->finished_ns = sqlite3_column_int64(st, 9);
  r->exit_code = sqlite3_column_int(st, 10);
}

#define BOX_COLS                                                                                   \
  "id, name, image, created, config, state, pid, pid_start, started, finished, exit_code"

static int
set_state(lbx_store *s, const char *id, const char *sql, int64_t a, int64_t b, int64_t c,
          lbx_err **err)
{
  LBX_LOCKED(s);
  _cleanup_finalize_ sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
    return lbx_sql_error(s, err, "recording the box's state");
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, a);
  sqlite3_bind_int64(st, 3, b);
  sqlite3_bind_int64(st, 4, c);
  if (sqlite3_step(st) != SQLITE_DONE)
    return lbx_sql_error(s, err, "recording the box's state");
  return 0;
}

int
lbx_store_box_set_running(lbx_store *s, const char *id, int pid, uint64_t pid_start,
                          int64_t started_ns, lbx_err **err)
{
  return set_state(s, id,
                   "UPDATE boxes SET state = 'running', pid = ?2, pid_start = ?3, started = ?4, "
                   "finished = 0, exit_code = 0 WHERE id = ?1",
                   pid, (int64_t)pid_start, started_ns, err);
}

int
lbx_store_box_set_exited(lbx_store *s, const char *id, int exit_code, int64_t finished_ns,
                         lbx_err **err)
{
  return set_state(s, id,
                   "UPDATE boxes SET state = 'exited', pid = 0, exit_code = ?2, finished = ?3 "
                   "WHERE id = ?1",
                   exit_code, finished_ns, 0, err);
}

/* "code ns": what a supervisor could not write to a full store */
#define EXIT_XATTR "user.lazybox.exit"

int
lbx_box_keep_exit(const char *root, const char *id, int exit_code, int64_t finished_ns)
{
  _cleanup_free_ char *dir = lbx_xasprintf("%s/boxes/%s", root, id);
  char v[48];
  int n = snprintf(v, sizeof v, "%d %lld", exit_code, (long long)finished_ns);
  return setxattr(dir, EXIT_XATTR, v, (size_t)n, 0) < 0 ? -errno : 0;
}

int
lbx_store_box_reap(lbx_store *s, lbx_box_row *row, lbx_err **err)
{
  _cleanup_free_ char *dir = lbx_store_box_dir(s, row->id);
  char v[48];
  ssize_t n = getxattr(dir, EXIT_XATTR, v, sizeof v - 1);
  int code = -1;
  long long ns = 0;
  if (n > 0) {
    v[n] = '\0';
    if (sscanf(v, "%d %lld", &code, &ns) != 2)
      code = -1, ns = 0;
  }
  if (ns <= 0)
    ns = lbx_now_ns();
  /* The xattr goes only once the row that replaces it is on disk: with
   * synchronous=NORMAL a power cut could undo the commit after the removal
   * reached the disk, and the box's code would be lost. */
  if (n > 0)
    lbx_store_sync_commits(s, true);
  int r = 0;
  bool changed = false;
  {
    LBX_LOCKED(s);
    _cleanup_finalize_ sqlite3_stmt *st = NULL;
    /* Only the run this row saw: since it was read, its supervisor may have
     * recorded the end itself, or a new one (restart) started the box. */
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE boxes SET state = 'exited', pid = 0, exit_code = ?2, "
                           "finished = ?3 WHERE id = ?1 AND state = 'running' AND pid = ?4",
                           -1, &st, NULL) != SQLITE_OK)
      r = lbx_sql_error(s, err, "recording the box's state");
    if (r == 0) {
      sqlite3_bind_text(st, 1, row->id, -1, SQLITE_STATIC);
      sqlite3_bind_int(st, 2, code);
      sqlite3_bind_int64(st, 3, ns);
      sqlite3_bind_int(st, 4, row->pid);
      if (sqlite3_step(st) != SQLITE_DONE)
        r = lbx_sql_error(s, err, "recording the box's state");
      else
        changed = sqlite3_changes(s->db) == 1;
    }
  }
  if (n > 0)
    lbx_store_sync_commits(s, false);
  if (r == 0 && !changed) {
    /* what was recorded meanwhile is the truth */
    lbx_box_row now = {0};
    if (lbx_store_box_by_id(s, row->id, &now) == 1) {
      lbx_box_row_clear(row);
      *row = now;
    }
    return 0;
  }
  if (r == 0) {
    lbx_box_unpublish(s->root, row->id, row->name);
    if (n > 0)
      removexattr(dir, EXIT_XATTR);
  }
  /* Shown as ended, with the end it kept, even when a full store cannot
   * take it yet: the xattr stays for the next look. */
  snprintf(row->state, sizeof row->state, "exited");
  row->exit_code = code;
  row->finished_ns = ns;
  return r;
}

/* ---- what exec needs of a running box, without SQL ----
 *
 * Joining a box costs a process start and a few setns calls; opening the
 * store (the schema read, first-touch page faults) and reading the box's
 * and its image's settings would double it. So the supervisor publishes
 * what exec needs in boxes/<id>/exec.json and names it by a symlink
 * running/<name> -> <id>. Nothing here is trusted beyond a hint: the
 * reader checks that the supervisor still holds the box's log lock, and
 * the CLI that the pid still has the start time the file names; anything
 * else sends it to the store. */
#define EXEC_FILE "exec.json"
#define RUNNING_DIR "running"

static bool
is_box_id(const char *id)
{
  size_t n = strspn(id, "0123456789abcdef");
  return n == 64 && id[n] == '\0';
}

static bool
is_box_name(const char *name)
{
  /* what create accepts: never "/", "." or ".." */
  return *name && *name != '.' && !strchr(name, '/') && strlen(name) < 256;
}

int
lbx_box_publish(const char *root, const char *id, const char *name, const char *info)
{
  if (!is_box_id(id) || !is_box_name(name))
    return -EINVAL;
  _cleanup_free_ char *dir = lbx_xasprintf("%s/boxes/%s", root, id);
  _cleanup_free_ char *tmp = lbx_xasprintf("%s/.%s.tmp", dir, EXEC_FILE);
  _cleanup_free_ char *file = lbx_xasprintf("%s/%s", dir, EXEC_FILE);
  {
    _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
      return -errno;
    int r = lbx_write_all(fd, info, strlen(info));
    if (r < 0) {
      unlink(tmp);
      return r;
    }
  }
  /* no fsync: after a crash the pid it names is gone, and readers check */
  if (rename(tmp, file) < 0) {
    int r = -errno;
    unlink(tmp);
    return r;
  }
  _cleanup_free_ char *run = lbx_xasprintf("%s/%s", root, RUNNING_DIR);
  if (mkdir(run, 0700) < 0 && errno != EEXIST)
    return -errno;
  /* a box name starts with a letter or digit: ".name" cannot be one */
  _cleanup_free_ char *ltmp = lbx_xasprintf("%s/.%s", run, name);
  _cleanup_free_ char *link = lbx_xasprintf("%s/%s", run, name);
  unlink(ltmp);
  if (symlink(id, ltmp) < 0)
    return -errno;
  if (rename(ltmp, link) < 0) {
    int r = -errno;
    unlink(ltmp);
    return r;
  }
  return 0;
}

/* Removes running/<name> if it still names the box id. */
static void
unlink_name(const char *root, const char *id, const char *name)
{
  if (!name || !is_box_name(name))
    return;
  _cleanup_free_ char *link = lbx_xasprintf("%s/%s/%s", root, RUNNING_DIR, name);
  char target[80];
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0)
    return;
  target[n] = '\0';
  /* a newer box of that name may have taken it since */
  if (strcmp(target, id) == 0)
    unlink(link);
}

void
lbx_box_unpublish(const char *root, const char *id, const char *name)
{
  unlink_name(root, id, name);
  if (!is_box_id(id))
    return;
  _cleanup_free_ char *file = lbx_xasprintf("%s/boxes/%s/%s", root, id, EXEC_FILE);
  unlink(file);
}

char *
lbx_box_published(const char *root, const char *name, char **id)
{
  if (!is_box_name(name))
    return NULL;
  _cleanup_free_ char *link = lbx_xasprintf("%s/%s/%s", root, RUNNING_DIR, name);
  char target[80];
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n <= 0)
    return NULL;
  target[n] = '\0';
  if (!is_box_id(target))
    return NULL;
  /* as lbx_store_box_supervised: its supervisor holds the log's lock */
  _cleanup_free_ char *log = lbx_xasprintf("%s/boxes/%s/ctr.log", root, target);
  _cleanup_close_ int lfd = open(log, O_RDONLY | O_CLOEXEC);
  if (lfd < 0 || flock(lfd, LOCK_SH | LOCK_NB) == 0 || errno != EWOULDBLOCK)
    return NULL;
  _cleanup_free_ char *file = lbx_xasprintf("%s/boxes/%s/%s", root, target, EXEC_FILE);
  char *text = NULL;
  size_t len;
  if (lbx_read_file(file, 1 << 20, &text, &len) < 0)
    return NULL;
  *id = lbx_xstrdup(target);
  return text;
}

int
lbx_store_box_rename(lbx_store *s, const char *id, const char *old_name, const char *name,
                     lbx_err **err)
{
  {
    LBX_LOCKED(s);
    _cleanup_finalize_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "UPDATE boxes SET name = ?2 WHERE id = ?1", -1, &st, NULL) !=
        SQLITE_OK)
      return lbx_sql_error(s, err, "renaming the box");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
      return lbx_error(err, EEXIST, "the name \"%s\" is already in use by a box", name);
    if (rc != SQLITE_DONE)
      return lbx_sql_error(s, err, "renaming the box");
    if (sqlite3_changes(s->db) != 1)
      return lbx_error(err, ENOENT, "box %.12s: no such box", id);
  }
  /* exec's shortcut knows the box by its old name: withdrawn, and exec asks
   * the store until the box starts again */
  lbx_box_unpublish(s->root, id, old_name);
  return 0;
}

int
lbx_store_box_by_id(lbx_store *s, const char *id, lbx_box_row *out)
{
  LBX_LOCKED(s);
  _cleanup_finalize_ sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, "SELECT " BOX_COLS " FROM boxes WHERE id = ?1", -1, &st, NULL) !=
      SQLITE_OK)
    return -EIO;
  sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return -lbx_sqlite_errno(rc);
  fill_row(st, out);
  return 1;
}

int
lbx_store_box_find(lbx_store *s, const char *key, lbx_box_row *out)
{
  LBX_LOCKED(s);
  _cleanup_finalize_ sqlite3_stmt *st = NULL;
  /* a name first, then an ID or an ID prefix of at least 3 hex digits */
  if (sqlite3_prepare_v2(s->db,
                         "SELECT " BOX_COLS " FROM boxes WHERE name = ?1 "
                         "UNION ALL SELECT " BOX_COLS " FROM boxes "
                         "WHERE length(?1) >= 3 AND id >= ?1 AND id < ?1 || 'g' AND name <> ?1 "
                         "LIMIT 2",
                         -1, &st, NULL) != SQLITE_OK)
    return -EIO;
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_DONE)
    return 0;
  if (rc != SQLITE_ROW)
    return -lbx_sqlite_errno(rc);
  bool by_name = strcmp((const char *)sqlite3_column_text(st, 1), key) == 0;
  fill_row(st, out);
  if (!by_name && sqlite3_step(st) == SQLITE_ROW) {
    lbx_box_row_clear(out);
    return -EEXIST;
  }
  return 1;
}

int
lbx_store_boxes(lbx_store *s, lbx_box_row **rows, size_t *n, lbx_err **err)
{
  LBX_LOCKED(s);
  _cleanup_finalize_ sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(s->db, "SELECT " BOX_COLS " FROM boxes ORDER BY created DESC", -1, &st,
                         NULL) != SQLITE_OK)
    return lbx_sql_error(s, err, "listing boxes");
  lbx_box_row *v = NULL;
  size_t k = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    v = lbx_xrealloc(v, (k + 1) * sizeof *v);
    fill_row(st, &v[k++]);
  }
  if (rc != SQLITE_DONE) {
    /* a partial list would make `rm -a` and `stop -a` skip boxes */
    for (size_t i = 0; i < k; i++)
      lbx_box_row_clear(&v[i]);
    free(v);
    return lbx_sql_error(s, err, "listing boxes");
  }
  *rows = v;
  *n = k;
  return 0;
}

int
lbx_store_box_dir_remove(lbx_store *s, const char *id, lbx_err **err)
{
  {
    LBX_LOCKED(s);
    _cleanup_finalize_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM boxes WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
      return lbx_sql_error(s, err, "looking up a box");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
      return lbx_error(err, EBUSY, "box %.12s: its directory belongs to a box", id);
    if (rc != SQLITE_DONE)
      return lbx_sql_error(s, err, "looking up a box");
  }
  /* an id from a directory listing: never a path that leaves boxes/ */
  if (!*id || strchr(id, '/') || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
    return lbx_error(err, EINVAL, "box directory \"%s\": not a box's", id);
  _cleanup_free_ char *dir = lbx_store_box_dir(s, id);
  int r = rm_rf(dir);
  if (r < 0)
    return lbx_error_errno(err, -r, "removing %s", dir);
  return 0;
}

int
lbx_store_box_delete(lbx_store *s, const char *id, lbx_err **err)
{
  {
    LBX_LOCKED(s);
    _cleanup_finalize_ sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM boxes WHERE id = ?1 RETURNING name", -1, &st,
                           NULL) != SQLITE_OK)
      return lbx_sql_error(s, err, "removing the box");
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    /* a supervisor killed with its box leaves its name published */
    if (rc == SQLITE_ROW)
      unlink_name(s->root, id, (const char *)sqlite3_column_text(st, 0));
    while (rc == SQLITE_ROW)
      rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
      return lbx_sql_error(s, err, "removing the box");
  }
  _cleanup_free_ char *dir = lbx_store_box_dir(s, id);
  int r = rm_rf(dir);
  if (r < 0)
    return lbx_error_errno(err, -r, "box %.12s: removing %s", id, dir);
  return 0;
}
