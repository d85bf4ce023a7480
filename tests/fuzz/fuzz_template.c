/* --format templates: the input is a template as a user would type it. It
 * parses or fails with a one-line message; what parses renders over a box's
 * and an image's kind of JSON, or fails with a one-line message. */
#include "fuzz.h"
#include "cli/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char doc[] =
    "{\"Id\":\"abc\",\"Names\":[\"web\",\"db\"],\"State\":{\"Status\":\"running\",\"Pid\":42},"
    "\"Config\":{\"Env\":[\"A=1\"],\"Labels\":{\"a\":\"b\"},\"Tty\":false},\"Mounts\":[],"
    "\"Size\":1.5,\"Nothing\":null,\"Deep\":[[{\"x\":[1,2,{\"y\":null}]}]]}";

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *src = malloc(size + 1);
  memcpy(src, data, size);
  src[size] = '\0';
  static json_t *dot;
  if (!dot)
    dot = json_loads(doc, 0, NULL);
  lbx_template *t = NULL;
  lbx_err *err = NULL;
  if (lbx_template_parse(src, &t, &err) < 0) {
    FUZZ_CHECK(err && !t && !strchr(err->msg, '\n'));
  } else {
    FUZZ_CHECK(t && !err);
    char *out = lbx_template_render(t, dot, &err);
    FUZZ_CHECK(out ? !err : (err && !strchr(err->msg, '\n')));
    free(out);
    free(lbx_template_header(t, NULL));
  }
  lbx_error_free(err);
  lbx_template_free(t);
  free(src);
  return 0;
}
