/* A client of one registry repository (Docker Registry HTTP API v2 / OCI
 * distribution) over libcurl: manifests, blobs, and the authentication
 * dance (bearer tokens from the realm WWW-Authenticate names, anonymous or
 * with credentials; HTTP basic). Safe to use from several threads at once. */
#ifndef LBX_REGISTRY_H
#define LBX_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../store/error.h"

typedef struct lbx_registry lbx_registry;

typedef struct lbx_registry_opts {
  bool insecure;        /* --tls-verify=false: https without verification, else plain http */
  bool tls_verify;      /* --tls-verify=true given: registries.conf's insecure is overruled */
  const char *cert_dir; /* --cert-dir: *.crt, *.cert, *.key; NULL: certs.d (below) */
  const char *authfile; /* NULL: the default search (auth.h) */
  const char *user;     /* credentials given on the command line, overriding the auth file */
  const char *pass;
} lbx_registry_opts;

/* Error codes the registry's answers map to, for callers that try the next
 * search registry: ENOENT (404 / MANIFEST_UNKNOWN / NAME_UNKNOWN), EACCES
 * (401/403 after authenticating), EHOSTUNREACH (no connection), EPROTO (TLS). */

/* Connects to host ("host[:port]"; docker.io is registry-1.docker.io) for
 * repository repo: pings /v2/ to settle http or https and the auth scheme.
 * TLS: the CAs in *.crt files are trusted besides the system's, and a
 * NAME.cert with its NAME.key is the client certificate; the files come
 * from opts->cert_dir, else the first directory of
 * $XDG_CONFIG_HOME/containers/certs.d/HOST (not for root),
 * /etc/containers/certs.d/HOST and /etc/docker/certs.d/HOST that exists
 * (HOST as the reference names it, with its port), as containers/image
 * reads them. */
int lbx_registry_open(const char *host, const char *repo, const lbx_registry_opts *o,
                      lbx_registry **out, lbx_err **err);
void lbx_registry_free(lbx_registry *r);
static inline void
lbx_registry_freep(lbx_registry **r)
{
  lbx_registry_free(*r);
}

/* GET /v2/<repo>/manifests/<ref>, accepting OCI and Docker schema2
 * manifests and indexes. *type is the Content-Type without parameters,
 * *digest the Docker-Content-Digest header (either may be NULL). */
int lbx_registry_manifest(lbx_registry *r, const char *ref, char **body, size_t *len, char **type,
                          char **digest, lbx_err **err);

/* GET a small blob (a config) into memory, at most max bytes. */
int lbx_registry_blob(lbx_registry *r, const char *digest, size_t max, char **body, size_t *len,
                      lbx_err **err);

/* Streams a blob from byte `from` on (a Range request when from > 0) into
 * sink, which returns 0 to go on or -1 to stop the transfer. *transient
 * tells whether trying again may help (connection lost, 5xx, 429). */
typedef int (*lbx_sink_fn)(void *ctx, const void *buf, size_t len);
int lbx_registry_blob_stream(lbx_registry *r, const char *digest, uint64_t from, lbx_sink_fn sink,
                             void *ctx, bool *transient, lbx_err **err);

/* libcurl's own description of itself and the libraries it uses
 * ("libcurl/7.88.1 OpenSSL/3.0.x ..."), loading it; NULL with *err when it
 * cannot be loaded. */
const char *lbx_registry_curl_version(lbx_err **err);
/* `login`: checks that /v2/ accepts the credentials of opts (for a
 * bearer-token registry, that a token is granted with them). */
int lbx_registry_check_login(const char *host, const lbx_registry_opts *o, lbx_err **err);

/* A WWW-Authenticate challenge `Scheme k="v", k2=v2`: the value of key
 * (case-insensitive), allocated, or NULL when it is not there or the
 * challenge is malformed (an unterminated quote, a parameter without '='). */
char *lbx_challenge_param(const char *challenge, const char *key);

#endif
