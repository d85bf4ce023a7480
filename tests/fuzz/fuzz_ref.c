/* Reference parsing: the input is a reference as a user would type it.
 * Whatever parses, with either flag, must print as a string that parses back
 * to the same reference and prints the same. */
#include "fuzz.h"
#include "index/ref.h"

#include <stdbool.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(const char *s, unsigned flags)
{
  lbx_ref *r = NULL;
  lbx_err *err = NULL;
  if (lbx_ref_parse(s, flags, &r, &err) < 0) {
    FUZZ_CHECK(err && err->msg && !r);
    FUZZ_CHECK(!strchr(err->msg, '\n')); /* messages stay on one line */
    lbx_error_free(err);
    return;
  }
  FUZZ_CHECK(r && !err);
  FUZZ_CHECK(r->domain && *r->domain && r->path && *r->path);
  FUZZ_CHECK(r->tag || r->digest);
  char *str = lbx_ref_string(r);
  char *name = lbx_ref_name(r);
  FUZZ_CHECK(strncmp(str, name, strlen(name)) == 0);

  /* the round trip: a full string parses the same under either flag */
  for (unsigned f = 0; f <= LBX_REF_LOCAL; f += LBX_REF_LOCAL) {
    lbx_ref *again = NULL;
    lbx_err *e2 = NULL;
    if (lbx_ref_parse(str, f, &again, &e2) < 0) {
      fprintf(stderr, "\"%s\" (flags %u) -> \"%s\" does not parse: %s\n", s, flags, str, e2->msg);
      abort();
    }
    char *str2 = lbx_ref_string(again);
    if (strcmp(str, str2) != 0) {
      fprintf(stderr, "\"%s\" (flags %u) -> \"%s\" -> \"%s\"\n", s, flags, str, str2);
      abort();
    }
    FUZZ_CHECK(!again->short_name);
    FUZZ_CHECK(strcmp(again->domain, r->domain) == 0 && strcmp(again->path, r->path) == 0);
    FUZZ_CHECK(!again->tag == !r->tag && !again->digest == !r->digest);
    free(str2);
    lbx_ref_free(again);
  }
  free(name);
  free(str);
  lbx_ref_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size > 4096)
    return 0;
  char *s = malloc(size + 1);
  memcpy(s, data, size);
  s[size] = '\0';
  check(s, 0);
  check(s, LBX_REF_LOCAL);
  free(s);
  return 0;
}
