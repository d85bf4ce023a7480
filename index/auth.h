/* Registry credentials and registry configuration, found where
 * containers/image (Podman, skopeo) looks for them:
 *   auth files: --authfile, else $REGISTRY_AUTH_FILE, else
 *     $XDG_RUNTIME_DIR/containers/auth.json (/run/containers/UID/auth.json
 *     when XDG_RUNTIME_DIR is unset), $XDG_CONFIG_HOME/containers/auth.json,
 *     ~/.docker/config.json, in that order. registries.conf: regconf.h. */
#ifndef LBX_AUTH_H
#define LBX_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "../store/error.h"

/* Credentials for a repository on host ("host[:port]", repo "ns/name" or
 * NULL): 1 with *user and *pass allocated, 0 if none, -1 with *err (a file
 * that exists but cannot be read or parsed). authfile NULL: the default
 * search above. Keys of the "auths" object may be "host", "host/ns" (the
 * longest match wins), or URLs such as "https://index.docker.io/v1/"; a
 * "credHelpers" entry for host runs docker-credential-NAME get instead. */
int lbx_auth_lookup(const char *authfile, const char *host, const char *repo, char **user,
                    char **pass, lbx_err **err);

/* The file `login` writes and `logout` edits when no --authfile is given:
 * $REGISTRY_AUTH_FILE, else the first auth file path above (newly allocated). */
char *lbx_auth_default_file(void);

/* Records user:pass for key (a registry "host[:port]") in authfile, keeping
 * the rest of the file; creates it (mode 0600) and its directory (0700). */
int lbx_auth_store(const char *authfile, const char *key, const char *user, const char *pass,
                   lbx_err **err);

/* Removes key's credentials (key NULL: every entry): 1 removed, 0 there
 * were none, -1 with *err. */
int lbx_auth_remove(const char *authfile, const char *key, lbx_err **err);

/* "user:password" -> two strings; -1 with *err when there is no ':'. */
int lbx_auth_split(const char *creds, char **user, char **pass, lbx_err **err);

/* $XDG_CONFIG_HOME if absolute, else ~/.config; NULL without HOME. */
char *lbx_xdg_config_home(void);

#endif
