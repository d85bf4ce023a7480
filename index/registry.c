/* The registry client: libcurl easy handles (one per request, so threads
 * never share one), the ping that settles the scheme, and authentication.
 *
 * libcurl is opened with dlopen on the first request, not linked: with its
 * TLS, LDAP, Kerberos and SSH libraries it costs every lazybox process about
 * 12 ms of loading and relocation before main (measured), and only pull,
 * login and run --pull use it. */
#include "registry.h"
#include "auth.h"
#include "config.h"
#include "../store/util.h"

#include <curl/curl.h>
#include <dlfcn.h>
#include <jansson.h>
#include "../store/crypto.h"
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))
#define ERR_BODY_MAX (64u << 10)
#define TOKEN_MAX (1u << 20)
#define MANIFEST_MAX (4u << 20) /* what containers/image accepts */

struct lbx_registry {
  char *host;     /* as the reference names it */
  char *api_host; /* where requests go */
  char *repo;
  char *base; /* "https://api_host" or "http://api_host" */
  bool insecure;
  char *user, *pass;
  pthread_mutex_t mu;
  char *auth; /* "Authorization: ..." header line, or NULL */
  char *ca;   /* PEM: the system's CAs and those of the certs.d *.crt files, or NULL */
  size_t ca_len;
  char *cert, *key; /* client certificate and key files, or NULL */
};

struct resp {
  CURL *h;
  long status;
  char *ctype, *www_auth, *digest;
  char *buf;
  size_t len, max;
  bool too_big;
  lbx_sink_fn sink;
  void *sink_ctx;
  bool sink_stopped;
  uint64_t from; /* the Range asked for */
  uint64_t skip; /* bytes to drop: the server ignored the Range request */
  bool started;
  char errbuf[CURL_ERROR_SIZE];
};

static void
resp_clear(struct resp *q)
{
  free(q->ctype);
  free(q->www_auth);
  free(q->digest);
  free(q->buf);
  q->ctype = q->www_auth = q->digest = q->buf = NULL;
  q->len = 0;
  q->status = 0;
  q->too_big = false;
}

#define CURL_SONAME "libcurl.so.4"

/* The libcurl functions this file calls, resolved once. */
static struct {
  __typeof__(curl_global_init) *global_init;
  __typeof__(curl_easy_init) *easy_init;
  __typeof__(curl_easy_setopt) *easy_setopt;
  __typeof__(curl_easy_perform) *easy_perform;
  __typeof__(curl_easy_getinfo) *easy_getinfo;
  __typeof__(curl_easy_cleanup) *easy_cleanup;
  __typeof__(curl_easy_strerror) *easy_strerror;
  __typeof__(curl_easy_escape) *easy_escape;
  __typeof__(curl_free) *free;
  __typeof__(curl_slist_append) *slist_append;
  __typeof__(curl_slist_free_all) *slist_free_all;
  __typeof__(curl_version) *version;
} cu;
static char curl_load_error[256];
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void
curl_init(void)
{
  /* Never closed: curl's global state lives until exit. */
  void *dl = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    snprintf(curl_load_error, sizeof curl_load_error, "%s", dlerror());
    return;
  }
#define SYM(field, name)                                                                           \
  do {                                                                                             \
    *(void **)&cu.field = dlsym(dl, name);                                                         \
    if (!cu.field) {                                                                               \
      snprintf(curl_load_error, sizeof curl_load_error, "%s: no symbol %s", CURL_SONAME, name);    \
      return;                                                                                      \
    }                                                                                              \
  } while (0)
  SYM(easy_init, "curl_easy_init");
  SYM(easy_setopt, "curl_easy_setopt");
  SYM(easy_perform, "curl_easy_perform");
  SYM(easy_getinfo, "curl_easy_getinfo");
  SYM(easy_cleanup, "curl_easy_cleanup");
  SYM(easy_strerror, "curl_easy_strerror");
  SYM(easy_escape, "curl_easy_escape");
  SYM(free, "curl_free");
  SYM(slist_append, "curl_slist_append");
  SYM(slist_free_all, "curl_slist_free_all");
  SYM(version, "curl_version");
  SYM(global_init, "curl_global_init"); /* last: it marks the table complete */
#undef SYM
  cu.global_init(CURL_GLOBAL_DEFAULT);
}

/* 0, or -1 with *err naming the library and why it could not be used. */
static int
curl_ready(lbx_err **err)
{
  pthread_once(&curl_once, curl_init);
  if (!cu.global_init)
    return lbx_error(err, ELIBACC, "cannot load libcurl (%s), needed to reach a registry",
                     curl_load_error);
  return 0;
}

const char *
lbx_registry_curl_version(lbx_err **err)
{
  return curl_ready(err) < 0 ? NULL : cu.version();
}

static char *
header_value(const char *line, size_t n, const char *name)
{
  size_t nl = strlen(name);
  if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
    return NULL;
  const char *v = line + nl + 1, *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
    end--;
  return lbx_xstrndup(v, (size_t)(end - v));
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
  struct resp *q = ctx;
  size_t n = size * nmemb;
  if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
    /* a new response (after a redirect or a 100): forget the last one's */
    free(q->ctype);
    free(q->www_auth);
    free(q->digest);
    q->ctype = q->www_auth = q->digest = NULL;
    return n;
  }
  char *v;
  if ((v = header_value(data, n, "content-type"))) {
    char *semi = strchr(v, ';');
    if (semi)
      *semi = '\0';
    while (semi && semi > v && semi[-1] == ' ')
      *--semi = '\0';
    free(q->ctype);
    q->ctype = v;
  } else if ((v = header_value(data, n, "www-authenticate"))) {
    free(q->www_auth);
    q->www_auth = v;
  } else if ((v = header_value(data, n, "docker-content-digest"))) {
    free(q->digest);
    q->digest = v;
  }
  return n;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
  struct resp *q = ctx;
  size_t n = size * nmemb;
  long status = 0;
  cu.easy_getinfo(q->h, CURLINFO_RESPONSE_CODE, &status);
  if (q->sink && status / 100 == 2) {
    if (!q->started) {
      q->started = true;
      if (status == 200)
        q->skip = q->from; /* a whole blob although a range was asked for */
    }
    if (q->skip) {
      size_t k = q->skip < n ? (size_t)q->skip : n;
      q->skip -= k;
      data += k;
      if (n == k)
        return n;
      if (q->sink(q->sink_ctx, data, n - k) < 0) {
        q->sink_stopped = true;
        return 0;
      }
      return n;
    }
    if (q->sink(q->sink_ctx, data, n) < 0) {
      q->sink_stopped = true;
      return 0;
    }
    return n;
  }
  if (q->len + n > q->max) {
    q->too_big = true;
    return 0;
  }
  q->buf = lbx_xrealloc(q->buf, q->len + n + 1);
  memcpy(q->buf + q->len, data, n);
  q->len += n;
  q->buf[q->len] = '\0';
  return n;
}

static bool
curl_transient(CURLcode c)
{
  switch (c) {
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
  case CURLE_GOT_NOTHING:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_COULDNT_CONNECT:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    return true;
  default:
    return false;
  }
}

static bool
curl_tls_error(CURLcode c)
{
  switch (c) {
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
    return true;
  default:
    return false;
  }
}

/* One GET. Returns 0 with q->status set, or -1 with *err (and *transient). */
static int
perform(const lbx_registry *r, const char *url, const char *accept, const char *auth, uint64_t from,
        bool tls_verify, struct resp *q, bool *transient, lbx_err **err)
{
  if (curl_ready(err) < 0)
    return -1;
  CURL *h = cu.easy_init();
  if (!h)
    return lbx_error(err, ENOMEM, "registry %s: cannot start a transfer", r->host);
  q->h = h;
  q->errbuf[0] = '\0';
  struct curl_slist *hdrs = NULL;
  if (accept)
    hdrs = cu.slist_append(hdrs, accept);
  if (auth)
    hdrs = cu.slist_append(hdrs, auth);
  char range[64];
  cu.easy_setopt(h, CURLOPT_URL, url);
  cu.easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  cu.easy_setopt(h, CURLOPT_USERAGENT, "lazybox/" LBX_VERSION);
  cu.easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  cu.easy_setopt(h, CURLOPT_MAXREDIRS, 8L);
  cu.easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  cu.easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  cu.easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  cu.easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
  cu.easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  cu.easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  /* curl's default 16 KiB receive buffer means a write callback, and a
   * wake-up of the indexing thread, per 16 KiB of layer: 512 KiB cut the
   * syscalls of a pull severalfold (bench/findings.md) */
  cu.easy_setopt(h, CURLOPT_BUFFERSIZE, 512L * 1024);
  cu.easy_setopt(h, CURLOPT_ERRORBUFFER, q->errbuf);
  cu.easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  cu.easy_setopt(h, CURLOPT_HEADERDATA, q);
  cu.easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  cu.easy_setopt(h, CURLOPT_WRITEDATA, q);
  if (!tls_verify) {
    cu.easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    cu.easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  struct curl_blob ca = {r->ca, r->ca_len, CURL_BLOB_NOCOPY};
  if (r->ca && cu.easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca) != CURLE_OK) {
    cu.easy_cleanup(h);
    cu.slist_free_all(hdrs);
    q->h = NULL;
    *transient = false;
    return lbx_error(err, ENOTSUP,
                     "registry %s: this libcurl cannot take CA certificates from memory (7.77 "
                     "or later with OpenSSL is needed for certs.d *.crt files)",
                     r->host);
  }
  if (r->cert) {
    cu.easy_setopt(h, CURLOPT_SSLCERT, r->cert);
    cu.easy_setopt(h, CURLOPT_SSLKEY, r->key);
  }
  q->from = from;
  q->started = false;
  q->skip = 0;
  if (from) {
    snprintf(range, sizeof range, "%llu-", (unsigned long long)from);
    cu.easy_setopt(h, CURLOPT_RANGE, range);
  }
  CURLcode c = cu.easy_perform(h);
  cu.easy_getinfo(h, CURLINFO_RESPONSE_CODE, &q->status);
  cu.easy_cleanup(h);
  cu.slist_free_all(hdrs);
  q->h = NULL;
  *transient = false;
  if (c == CURLE_OK)
    return 0;
  if (c == CURLE_WRITE_ERROR && q->sink_stopped)
    return -1; /* the sink said why */
  if (c == CURLE_WRITE_ERROR && q->too_big)
    return lbx_error(err, EFBIG, "registry %s: the answer to %s is larger than %zu bytes", r->host,
                     url, q->max);
  const char *msg = q->errbuf[0] ? q->errbuf : cu.easy_strerror(c);
  *transient = curl_transient(c);
  if (c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST ||
      c == CURLE_COULDNT_RESOLVE_PROXY)
    return lbx_error(err, EHOSTUNREACH, "registry %s is unreachable: %s", r->host, msg);
  if (curl_tls_error(c))
    return lbx_error(err, EPROTO, "TLS failure talking to registry %s: %s%s", r->host, msg,
                     tls_verify ? " (--tls-verify=false for a registry without valid TLS)" : "");
  return lbx_error(err, *transient ? ECONNRESET : EIO, "registry %s: %s", r->host, msg);
}

/* The registry's own error text ({"errors":[{"code","message"}]}), if any. */
static char *
registry_message(const struct resp *q)
{
  if (!q->buf)
    return NULL;
  _cleanup_json_ json_t *j = json_loadb(q->buf, q->len, 0, NULL);
  json_t *e = json_array_get(json_object_get(j, "errors"), 0);
  const char *code = json_string_value(json_object_get(e, "code"));
  const char *msg = json_string_value(json_object_get(e, "message"));
  if (!code && !msg)
    return NULL;
  char *out = lbx_xstrdup(msg ? msg : code);
  for (char *c = out; *c; c++)
    if (*c == '\n' || *c == '\r')
      *c = ' ';
  return out;
}

/* ---- authentication ---- */

char *
lbx_challenge_param(const char *ch, const char *key)
{
  const char *p = strchr(ch, ' ');
  size_t kl = strlen(key);
  while (p && *p) {
    while (*p == ' ' || *p == ',')
      p++;
    const char *eq = strchr(p, '=');
    if (!eq)
      return NULL;
    bool match = (size_t)(eq - p) == kl && strncasecmp(p, key, kl) == 0;
    const char *v = eq + 1, *end;
    if (*v == '"') {
      v++;
      end = strchr(v, '"');
      if (!end)
        return NULL;
      p = end + 1;
    } else {
      end = strchrnul(v, ',');
      p = end;
    }
    if (match)
      return lbx_xstrndup(v, (size_t)(end - v));
  }
  return NULL;
}

static char *
basic_header(const lbx_registry *r)
{
  _cleanup_free_ char *plain = lbx_xasprintf("%s:%s", r->user, r->pass ? r->pass : "");
  size_t n = strlen(plain);
  _cleanup_free_ char *b64 = lbx_xmalloc(4 * ((n + 2) / 3) + 1);
  lbx_base64_encode(b64, plain, n);
  return lbx_xasprintf("Authorization: Basic %s", b64);
}

static char *
url_escape(const char *s)
{
  CURL *h = curl_ready(NULL) == 0 ? cu.easy_init() : NULL;
  char *e = h ? cu.easy_escape(h, s, 0) : NULL;
  char *out = lbx_xstrdup(e ? e : s);
  cu.free(e);
  if (h)
    cu.easy_cleanup(h);
  return out;
}

static int
fetch_token(lbx_registry *r, const char *challenge, char **header, lbx_err **err)
{
  _cleanup_free_ char *realm = lbx_challenge_param(challenge, "realm");
  _cleanup_free_ char *service = lbx_challenge_param(challenge, "service");
  _cleanup_free_ char *scope = lbx_challenge_param(challenge, "scope");
  if (!realm)
    return lbx_error(err, EPROTO, "registry %s: a bearer challenge without a realm", r->host);
  if (strncmp(realm, "https://", 8) != 0 && strncmp(realm, "http://", 7) != 0)
    return lbx_error(err, EPROTO, "registry %s: token realm \"%s\" is not an http(s) URL", r->host,
                     realm);
  if (!scope && r->repo)
    scope = lbx_xasprintf("repository:%s:pull", r->repo);
  _cleanup_free_ char *es = service ? url_escape(service) : NULL;
  _cleanup_free_ char *esc = scope ? url_escape(scope) : NULL;
  _cleanup_free_ char *url =
      lbx_xasprintf("%s%s%s%s%s%s", realm, strchr(realm, '?') ? "&" : "?", es ? "service=" : "",
                    es ? es : "", esc ? (es ? "&scope=" : "scope=") : "", esc ? esc : "");
  /* the credentials travel as basic auth to the token server */
  _cleanup_free_ char *basic = NULL;
  if (r->user) {
    basic = basic_header(r);
  }
  struct resp q = {.max = TOKEN_MAX};
  bool transient;
  int rc = perform(r, url, "Accept: application/json", basic, 0, !r->insecure, &q, &transient, err);
  if (rc < 0) {
    resp_clear(&q);
    return lbx_error_prefix(err, "getting a token from %s", realm);
  }
  if (q.status == 401 || q.status == 403) {
    resp_clear(&q);
    return lbx_error(err, EACCES, "registry %s: authentication failed: the token server %s %s",
                     r->host, realm,
                     r->user ? "refused the credentials" : "wants credentials (see login)");
  }
  if (q.status != 200) {
    resp_clear(&q);
    return lbx_error(err, EPROTO, "registry %s: the token server %s answered HTTP %ld", r->host,
                     realm, q.status);
  }
  _cleanup_json_ json_t *j = json_loadb(q.buf ? q.buf : "", q.len, 0, NULL);
  resp_clear(&q);
  const char *tok = json_string_value(json_object_get(j, "token"));
  if (!tok)
    tok = json_string_value(json_object_get(j, "access_token"));
  if (!tok || !*tok || strpbrk(tok, "\r\n"))
    return lbx_error(err, EPROTO, "registry %s: the token server %s gave no token", r->host, realm);
  *header = lbx_xasprintf("Authorization: Bearer %s", tok);
  return 0;
}

/* After a 401 carrying challenge: sets r->auth for the next try. */
static int
authenticate(lbx_registry *r, const char *challenge, lbx_err **err)
{
  if (!challenge)
    return lbx_error(err, EACCES, "registry %s: HTTP 401 without a challenge", r->host);
  char *header = NULL;
  if (strncasecmp(challenge, "bearer ", 7) == 0) {
    if (fetch_token(r, challenge, &header, err) < 0)
      return -1;
  } else if (strncasecmp(challenge, "basic", 5) == 0) {
    if (!r->user)
      return lbx_error(err, EACCES,
                       "registry %s: authentication required (lazybox login %s, or --creds)",
                       r->host, r->host);
    header = basic_header(r);
  } else {
    return lbx_error(err, EPROTO, "registry %s: unsupported authentication scheme in \"%.40s\"",
                     r->host, challenge);
  }
  pthread_mutex_lock(&r->mu);
  free(r->auth);
  r->auth = header;
  pthread_mutex_unlock(&r->mu);
  return 0;
}

/* A GET under r->base, authenticating once on a 401. */
static int
request(lbx_registry *r, const char *path, const char *accept, uint64_t from, struct resp *q,
        bool *transient, lbx_err **err)
{
  _cleanup_free_ char *url = lbx_xasprintf("%s%s", r->base, path);
  for (int round = 0;; round++) {
    pthread_mutex_lock(&r->mu);
    _cleanup_free_ char *auth = r->auth ? lbx_xstrdup(r->auth) : NULL;
    pthread_mutex_unlock(&r->mu);
    resp_clear(q);
    if (perform(r, url, accept, auth, from, !r->insecure, q, transient, err) < 0)
      return -1;
    if (q->status != 401 || round > 0)
      return 0;
    pthread_mutex_lock(&r->mu);
    bool changed = (r->auth == NULL) != (auth == NULL) || (auth && strcmp(auth, r->auth) != 0);
    pthread_mutex_unlock(&r->mu);
    if (changed)
      continue; /* another thread authenticated meanwhile */
    if (authenticate(r, q->www_auth, err) < 0) {
      *transient = false;
      return -1;
    }
  }
}

/* Turns a non-2xx status into an error naming what was asked. */
static int
status_error(const lbx_registry *r, const struct resp *q, const char *what, bool *transient,
             lbx_err **err)
{
  _cleanup_free_ char *msg = registry_message(q);
  *transient = q->status >= 500 || q->status == 429 || q->status == 408;
  int code = q->status == 404                       ? ENOENT
             : q->status == 401 || q->status == 403 ? EACCES
             : *transient                           ? EAGAIN
                                                    : EIO;
  if (q->status == 401 || q->status == 403)
    return lbx_error(err, code, "%s: access denied by registry %s (HTTP %ld%s%s)%s", what, r->host,
                     q->status, msg ? ": " : "", msg ? msg : "",
                     r->user ? "" : "; log in with lazybox login, or give --creds");
  if (q->status == 404)
    return lbx_error(err, code, "%s: not found in registry %s%s%s%s", what, r->host,
                     msg ? " (" : "", msg ? msg : "", msg ? ")" : "");
  return lbx_error(err, code, "%s: registry %s answered HTTP %ld%s%s", what, r->host, q->status,
                   msg ? ": " : "", msg ? msg : "");
}

/* ---- opening: the ping ---- */

static int
ping(lbx_registry *r, lbx_err **err)
{
  struct resp q = {.max = ERR_BODY_MAX};
  bool transient;
  _cleanup_free_ char *https = lbx_xasprintf("https://%s", r->api_host);
  _cleanup_free_ char *url = lbx_xasprintf("%s/v2/", https);
  lbx_err *first = NULL;
  int rc = perform(r, url, NULL, NULL, 0, !r->insecure, &q, &transient, &first);
  if (rc < 0 && r->insecure) {
    /* what containers/image does for an insecure registry: plain http */
    free(url);
    url = lbx_xasprintf("http://%s/v2/", r->api_host);
    resp_clear(&q);
    lbx_err *second = NULL;
    rc = perform(r, url, NULL, NULL, 0, false, &q, &transient, &second);
    if (rc == 0) {
      lbx_error_free(first);
      first = NULL;
      r->base = lbx_xasprintf("http://%s", r->api_host);
    } else {
      lbx_error_free(second);
    }
  } else if (rc == 0) {
    r->base = lbx_xstrdup(https);
  }
  if (rc < 0) {
    resp_clear(&q);
    *err = first;
    return -1;
  }
  if (q.status != 200 && q.status != 401) {
    resp_clear(&q);
    return lbx_error(err, EPROTO, "%s is not a container registry: GET /v2/ answered HTTP %ld",
                     r->host, q.status);
  }
  if (q.status == 401 && q.www_auth && strncasecmp(q.www_auth, "basic", 5) == 0 && r->user)
    authenticate(r, q.www_auth, NULL); /* no round trip per request */
  resp_clear(&q);
  return 0;
}

void
lbx_registry_free(lbx_registry *r)
{
  if (!r)
    return;
  free(r->host);
  free(r->api_host);
  free(r->repo);
  free(r->base);
  free(r->user);
  free(r->pass);
  free(r->auth);
  free(r->ca);
  free(r->cert);
  free(r->key);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

/* ---- certs.d ---- */

/* The first certs.d directory for host that exists, or NULL. */
static char *
cert_dir_of(const char *host)
{
  _cleanup_free_ char *cfg = getuid() != 0 ? lbx_xdg_config_home() : NULL;
  char *dirs[] = {
      cfg ? lbx_xasprintf("%s/containers/certs.d/%s", cfg, host) : NULL,
      lbx_xasprintf("/etc/containers/certs.d/%s", host),
      lbx_xasprintf("/etc/docker/certs.d/%s", host),
  };
  char *found = NULL;
  for (size_t i = 0; i < LBX_ARRAY_SIZE(dirs); i++) {
    struct stat st;
    if (!found && dirs[i] && stat(dirs[i], &st) == 0 && S_ISDIR(st.st_mode))
      found = steal_pointer(&dirs[i]);
    free(dirs[i]);
  }
  return found;
}

static int
add_ca(lbx_registry *r, const char *path, bool must, lbx_err **err)
{
  _cleanup_free_ char *pem = NULL;
  size_t len;
  int e = lbx_read_file(path, 16u << 20, &pem, &len);
  /* a dangling symlink is skipped, as containers/image skips it */
  if (e < 0)
    return must && e != -ENOENT
               ? lbx_error_errno(err, -e, "registry %s: certificate %s", r->host, path)
               : 0;
  r->ca = lbx_xrealloc(r->ca, r->ca_len + len + 2);
  memcpy(r->ca + r->ca_len, pem, len);
  r->ca_len += len;
  r->ca[r->ca_len++] = '\n'; /* a file without a final newline must not glue two PEM blocks */
  r->ca[r->ca_len] = '\0';
  return 0;
}

/* What containers/image takes from a certs.d directory: every *.crt is a
 * CA; NAME.cert with NAME.key is the client's certificate (the first such
 * pair by name; a .cert without its .key, or a .key alone, is an error). */
static int
load_certs(lbx_registry *r, const char *given, lbx_err **err)
{
  _cleanup_free_ char *dir = given ? lbx_xstrdup(given) : cert_dir_of(r->host);
  if (!dir)
    return 0;
  static const char *const kinds[] = {".crt", ".cert", ".key", NULL};
  _cleanup_(lbx_strv_freep) char **names = NULL;
  int e = lbx_dir_names(dir, kinds, &names);
  if (e < 0)
    return lbx_error_errno(err, -e, "registry %s: certificate directory %s", r->host, dir);
  int rc = 0;
  /* the system's CAs first (the blob replaces curl's bundle, and a
   * registry may redirect blobs to another host): the first bundle of the
   * places Debian, Fedora, openSUSE and Alpine keep it */
  static const char *const bundles[] = {"/etc/ssl/certs/ca-certificates.crt",
                                        "/etc/pki/tls/certs/ca-bundle.crt",
                                        "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"};
  bool any_crt = false;
  for (size_t i = 0; names[i]; i++)
    any_crt = any_crt || lbx_has_suffix(names[i], ".crt");
  for (size_t i = 0; any_crt && i < LBX_ARRAY_SIZE(bundles) && !r->ca && rc == 0; i++)
    rc = add_ca(r, bundles[i], false, err);
  for (size_t i = 0; names[i] && rc == 0; i++) {
    _cleanup_free_ char *path = lbx_xasprintf("%s/%s", dir, names[i]);
    size_t base = strlen(names[i]) - (lbx_has_suffix(names[i], ".key") ? 4 : 5);
    if (lbx_has_suffix(names[i], ".crt")) {
      rc = add_ca(r, path, true, err);
    } else if (lbx_has_suffix(names[i], ".cert")) {
      _cleanup_free_ char *key = lbx_xasprintf("%s/%.*s.key", dir, (int)base, names[i]);
      if (access(key, R_OK) < 0)
        rc = lbx_error_errno(err, errno, "registry %s: client certificate %s: its key %s", r->host,
                             path, key);
      else if (!r->cert) {
        r->cert = steal_pointer(&path);
        r->key = steal_pointer(&key);
      }
    } else {
      _cleanup_free_ char *cert = lbx_xasprintf("%s/%.*s.cert", dir, (int)base, names[i]);
      if (access(cert, F_OK) < 0)
        rc = lbx_error(err, ENOENT, "registry %s: key %s has no certificate %s", r->host, path,
                       cert);
    }
  }
  return rc;
}

static lbx_registry *
registry_new(const char *host, const char *repo, const lbx_registry_opts *o, lbx_err **err)
{
  lbx_registry *r = lbx_xcalloc(1, sizeof *r);
  pthread_mutex_init(&r->mu, NULL);
  r->host = lbx_xstrdup(host);
  r->api_host = lbx_xstrdup(strcmp(host, "docker.io") == 0 ? "registry-1.docker.io" : host);
  r->repo = repo ? lbx_xstrdup(repo) : NULL;
  r->insecure = o->insecure;
  if (o->user) {
    r->user = lbx_xstrdup(o->user);
    r->pass = lbx_xstrdup(o->pass ? o->pass : "");
  } else if (lbx_auth_lookup(o->authfile, host, repo, &r->user, &r->pass, err) < 0) {
    lbx_registry_free(r);
    return NULL;
  }
  if (load_certs(r, o->cert_dir, err) < 0) {
    lbx_registry_free(r);
    return NULL;
  }
  return r;
}

int
lbx_registry_open(const char *host, const char *repo, const lbx_registry_opts *o,
                  lbx_registry **out, lbx_err **err)
{
  lbx_registry *r = registry_new(host, repo, o, err);
  if (!r)
    return -1;
  if (ping(r, err) < 0) {
    lbx_registry_free(r);
    return -1;
  }
  *out = r;
  return 0;
}

int
lbx_registry_check_login(const char *host, const lbx_registry_opts *o, lbx_err **err)
{
  _cleanup_(lbx_registry_freep) lbx_registry *r = registry_new(host, NULL, o, err);
  if (!r || ping(r, err) < 0)
    return -1;
  struct resp q = {.max = ERR_BODY_MAX};
  bool transient;
  int rc = request(r, "/v2/", NULL, 0, &q, &transient, err);
  if (rc == 0 && q.status != 200) {
    _cleanup_free_ char *what = lbx_xasprintf("logging in to %s", host);
    rc = status_error(r, &q, what, &transient, err);
  }
  resp_clear(&q);
  return rc;
}

/* ---- manifests and blobs ---- */

#define MANIFEST_ACCEPT                                                                            \
  "Accept: application/vnd.oci.image.index.v1+json, "                                              \
  "application/vnd.oci.image.manifest.v1+json, "                                                   \
  "application/vnd.docker.distribution.manifest.list.v2+json, "                                    \
  "application/vnd.docker.distribution.manifest.v2+json"

/* Backoff for transient failures: 0.5 s, 1 s, 2 s, 4 s. */
#define RETRIES 4
static void
backoff(int attempt)
{
  usleep((useconds_t)(500000u << attempt));
}

int
lbx_registry_manifest(lbx_registry *r, const char *ref, char **body, size_t *len, char **type,
                      char **digest, lbx_err **err)
{
  _cleanup_free_ char *path = lbx_xasprintf("/v2/%s/manifests/%s", r->repo, ref);
  _cleanup_free_ char *what = strchr(ref, ':') ? lbx_xasprintf("manifest %s", ref)
                                               : lbx_xasprintf("no such image or tag \"%s\"", ref);
  for (int attempt = 0;; attempt++) {
    struct resp q = {.max = MANIFEST_MAX};
    bool transient = false;
    lbx_err *e = NULL;
    int rc = request(r, path, MANIFEST_ACCEPT, 0, &q, &transient, &e);
    if (rc == 0 && q.status == 200) {
      *body = q.buf ? steal_pointer(&q.buf) : lbx_xstrdup("");
      *len = q.len;
      *type = steal_pointer(&q.ctype);
      *digest = steal_pointer(&q.digest);
      resp_clear(&q);
      return 0;
    }
    if (rc == 0)
      status_error(r, &q, what, &transient, &e);
    resp_clear(&q);
    if (!transient || attempt + 1 >= RETRIES) {
      *err = e;
      return -1;
    }
    lbx_error_free(e);
    backoff(attempt);
  }
}

int
lbx_registry_blob(lbx_registry *r, const char *digest, size_t max, char **body, size_t *len,
                  lbx_err **err)
{
  _cleanup_free_ char *path = lbx_xasprintf("/v2/%s/blobs/%s", r->repo, digest);
  _cleanup_free_ char *what = lbx_xasprintf("blob %s", digest);
  for (int attempt = 0;; attempt++) {
    struct resp q = {.max = max};
    bool transient = false;
    lbx_err *e = NULL;
    int rc = request(r, path, NULL, 0, &q, &transient, &e);
    if (rc == 0 && q.status == 200) {
      *body = q.buf ? steal_pointer(&q.buf) : lbx_xstrdup("");
      *len = q.len;
      resp_clear(&q);
      return 0;
    }
    if (rc == 0)
      status_error(r, &q, what, &transient, &e);
    resp_clear(&q);
    if (!transient || attempt + 1 >= RETRIES) {
      *err = e;
      return -1;
    }
    lbx_error_free(e);
    backoff(attempt);
  }
}

int
lbx_registry_blob_stream(lbx_registry *r, const char *digest, uint64_t from, lbx_sink_fn sink,
                         void *ctx, bool *transient, lbx_err **err)
{
  _cleanup_free_ char *path = lbx_xasprintf("/v2/%s/blobs/%s", r->repo, digest);
  struct resp q = {.max = ERR_BODY_MAX, .sink = sink, .sink_ctx = ctx};
  int rc = request(r, path, NULL, from, &q, transient, err);
  if (rc == 0 && q.status / 100 != 2) {
    _cleanup_free_ char *what = lbx_xasprintf("blob %s", digest);
    rc = status_error(r, &q, what, transient, err);
  }
  resp_clear(&q);
  return rc;
}
