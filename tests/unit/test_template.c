/* --format templates: each row is what Go's text/template (as Podman runs
 * it) prints for the template over the JSON value, or the error's reason. */
#include "cli/template.h"
#include "store/util.h"
#include "tests/unit/tap.h"

static const char *const doc =
    "{\"Id\":\"abc\",\"Names\":[\"web\",\"db\"],\"State\":{\"Status\":\"running\",\"Pid\":42,"
    "\"Running\":true,\"ExitCode\":0},\"Config\":{\"Env\":[\"A=1\",\"B=2\"],"
    "\"Labels\":{\"z\":\"last\",\"a\":\"first\"},\"Tty\":false},\"Mounts\":[],"
    "\"Size\":1.5,\"Pi\":3.14159265,\"Nothing\":null}";

struct row {
  const char *tmpl, *want; /* want NULL: an error whose message has why */
  const char *why;
};

static const struct row rows[] = {
    {"{{.Id}}", "abc", NULL},
    {"{{.State.Pid}}", "42", NULL},
    {"pid={{.State.Pid}} status={{.State.Status}}", "pid=42 status=running", NULL},
    {"{{.State.Running}} {{.Config.Tty}}", "true false", NULL},
    {"{{.Names}}", "[web db]", NULL},
    {"{{.Config.Labels}}", "map[a:first z:last]", NULL},
    {"{{.Size}}", "1.5", NULL},
    {"{{.Nothing}}", "<nil>", NULL},
    {"{{.Missing}}", "<no value>", NULL},
    {"{{.Nothing.Deeper}}", "<no value>", NULL},
    {"{{json .Config.Env}}", "[\"A=1\",\"B=2\"]", NULL},
    {"{{json .State}}", "{\"Status\":\"running\",\"Pid\":42,\"Running\":true,\"ExitCode\":0}",
     NULL},
    {"{{.State | json}}", "{\"Status\":\"running\",\"Pid\":42,\"Running\":true,\"ExitCode\":0}",
     NULL},
    {"{{index .Config.Labels \"z\"}}", "last", NULL},
    {"{{index .Names 1}}", "db", NULL},
    /* a key a map lacks: "", the zero value of Podman's string maps */
    {"{{index .Config.Labels \"nope\"}}", "", NULL},
    {"{{len .Nothing}} {{len .Missing}}", "0 0", NULL},
    {"{{.ID}}", "abc", NULL}, /* Podman's Go field is ID where the JSON says Id */
    {"{{.Pi}}", "3.14159265", NULL},
    {"{{/* don't \"quote }} */}}y", "y", NULL},
    {"{{len .Names}} {{len .Id}} {{len .Config.Labels}}", "2 3 2", NULL},
    {"{{join .Names \",\"}}", "web,db", NULL},
    {"{{.Names | join \", \"}}", "web, db", NULL},
    {"{{upper .State.Status}}", "RUNNING", NULL},
    {"{{.Id | upper | lower}}", "abc", NULL},
    {"{{split \"a:b:c\" \":\"}}", "[a b c]", NULL},
    {"{{range .Config.Env}}[{{.}}]{{end}}", "[A=1][B=2]", NULL},
    {"{{range .Config.Labels}}{{.}} {{end}}", "first last ", NULL},
    {"{{range .Mounts}}x{{else}}no mounts{{end}}", "no mounts", NULL},
    {"{{range .Names}}{{$.Id}}/{{.}} {{end}}", "abc/web abc/db ", NULL},
    {"{{if .State.Running}}up{{else}}down{{end}}", "up", NULL},
    {"{{if .Config.Tty}}tty{{else}}no tty{{end}}", "no tty", NULL},
    {"{{if .Mounts}}m{{end}}|{{if .Missing}}m{{end}}", "|", NULL},
    /* {{else if}} and {{else with}} chain up to one shared {{end}} */
    {"{{if .Missing}}a{{else if .State.Running}}b{{else}}c{{end}}", "b", NULL},
    {"{{if .Missing}}a{{else if .Config.Tty}}b{{else}}c{{end}}", "c", NULL},
    {"{{if .Missing}}a{{else if .Nothing}}b{{else if .Id}}{{.Id}}{{end}}!", "abc!", NULL},
    {"{{with .Missing}}a{{else with .Nothing}}b{{else with .Id}}{{.}}{{end}}", "abc", NULL},
    {"{{with .State}}{{.Status}}/{{.Pid}}{{end}}", "running/42", NULL},
    {"{{with .Missing}}x{{else}}none{{end}}", "none", NULL},
    {"a  {{- .Id -}}  b", "aabcb", NULL},
    {"{{/* a comment */}}x", "x", NULL},
    {"{{.Id}}\\t{{.State.Pid}}\\n", "abc\t42\n", NULL},
    {"{{\"lit\"}} {{7}}", "lit 7", NULL},
    /* a literal's bytes need not be UTF-8 (jansson's checked strings
     * refused them, and the NULL crashed the printer: found by fuzzing) */
    {"{{\"\xe1\\M\"}}|{{upper \"\xe1\"}}", "\xe1M|\xe1", NULL},
    {"{{`raw \"q\"`}}", "raw \"q\"", NULL},
    {"{{.}}", NULL, NULL}, /* checked below: the whole map */
    /* errors: the reason is in the one-line message */
    {"{{.Id", NULL, "not closed"},
    {"{{}}", NULL, "empty"},
    {"{{printf \"%s\" .Id}}", NULL, "function \"printf\" is not supported"},
    {"{{range .Names}}x", NULL, "no {{end}}"},
    {"x{{end}}", NULL, "{{end}} without"},
    {"{{if .Id}}a{{else}}b{{else}}c{{end}}", NULL, "second {{else}}"},
    {"{{if .Id}}a{{else}}b{{else if .Id}}c{{end}}", NULL, "second {{else}}"},
    {"{{if .Id}}a{{else range .Names}}b{{end}}", NULL, "other than \"if\" or \"with\""},
    {"{{if .Missing}}a{{else if .Nothing}}b{{end", NULL, "not closed"},
    {"{{if .Missing}}a{{else if .Nothing}}b", NULL, "no {{end}}"},
    {"a{{else if .Id}}b", NULL, "{{else if}} without {{if}}"},
    /* as in Go: else if only in an if, else with only in a with */
    {"{{range .Mounts}}m{{else if .Names}}n{{end}}", NULL, "{{else if}} outside an {{if}}"},
    {"{{if .Missing}}m{{else with .Names}}n{{end}}", NULL, "{{else with}} outside a {{with}}"},
    {"{{.Id.Name}}", NULL, "can't evaluate field Name in a string"},
    {"{{range .Id}}x{{end}}", NULL, "range can't iterate over a string"},
    {"{{index .Names 5}}", NULL, "index out of range"},
    {"{{.Id .Names}}", NULL, "only a function takes arguments"},
    {"{{\"x}}", NULL, "not closed"},
    {"{{json}}", NULL, "json takes one argument"},
    {"{{range $k, $v := .Config.Labels}}{{$k}}{{end}}", NULL, "variables"},
    {"{{99999999999999999999}}", NULL, "out of range"},
    {"{{/* never closed }}", NULL, "comment is not closed"},
    {"{{. }}{{.Id | .Names}}", NULL, "only a function can follow"},
};

int
main(void)
{
  json_t *dot = json_loads(doc, 0, NULL);
  tap_ok(dot != NULL, "the test document parses");
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    const struct row *r = &rows[i];
    lbx_err *err = NULL;
    lbx_template *t = NULL;
    char *got = NULL;
    if (lbx_template_parse(r->tmpl, &t, &err) == 0)
      got = lbx_template_render(t, dot, &err);
    if (r->why) {
      tap_ok(!got && err && strstr(err->msg, r->why) && strchr(err->msg, '\n') == NULL,
             "%s: error with \"%s\"", r->tmpl, r->why);
      if (err && !strstr(err->msg, r->why))
        printf("#   got: %s\n", err->msg);
    } else if (r->want) {
      tap_is_str(got, r->want, "%s", r->tmpl);
      if (err)
        printf("#   error: %s\n", err->msg);
    } else {
      tap_ok(got &&
                 strncmp(got, "map[Config:map[Env:[A=1 B=2] Labels:map[a:first z:last]", 55) == 0,
             "{{.}} prints the whole value as Go prints a map");
    }
    free(got);
    lbx_error_free(err);
    lbx_template_free(t);
  }

  /* nesting is bounded (the parser recurses): 100 deep parses, 101 not */
  for (int depth = 100; depth <= 101; depth++) {
    char *src = lbx_xstrdup("");
    for (int k = 0; k < depth; k++) {
      char *more = lbx_xasprintf("%s{{if .Id}}", src);
      free(src);
      src = more;
    }
    for (int k = 0; k < depth; k++) {
      char *more = lbx_xasprintf("%s{{end}}", src);
      free(src);
      src = more;
    }
    lbx_template *nt = NULL;
    lbx_err *nerr = NULL;
    int r = lbx_template_parse(src, &nt, &nerr);
    if (depth == 100)
      tap_ok(r == 0, "{{if}} nested 100 deep parses");
    else
      tap_ok(r < 0 && nerr && strstr(nerr->msg, "more than 100 deep"),
             "{{if}} nested 101 deep is refused");
    lbx_template_free(nt);
    lbx_error_free(nerr);
    free(src);
  }

  /* tables: the header is each field's last name in capitals */
  lbx_template *t = NULL;
  lbx_err *err = NULL;
  tap_ok(lbx_template_parse("table {{.Id}}\\t{{.State.Status}}\\t{{json .Names}}\\t{{.CreatedAt}}",
                            &t, &err) == 0,
         "a table template parses");
  tap_ok(t && lbx_template_is_table(t), "\"table\" is seen");
  char *h = t ? lbx_template_header(t, NULL) : NULL;
  tap_is_str(h, "ID\tSTATUS\tNAMES\tCREATED AT", "the header names the fields");
  free(h);
  static const char *const renames[] = {"Id", "CONTAINER ID", NULL};
  h = t ? lbx_template_header(t, renames) : NULL;
  tap_is_str(h, "CONTAINER ID\tSTATUS\tNAMES\tCREATED AT", "a header can be renamed");
  free(h);
  lbx_template_free(t);
  /* "table": spaces between actions separate columns too, as in Podman */
  t = NULL;
  tap_ok(lbx_template_parse("table {{.Id}} {{join .Names \" \"}}", &t, &err) == 0,
         "table with spaces");
  h = t ? lbx_template_header(t, NULL) : NULL;
  tap_is_str(h, "ID\tNAMES", "its header has a tab where the template had a space");
  free(h);
  char *row = t ? lbx_template_render(t, dot, &err) : NULL;
  tap_is_str(row, "abc\tweb db", "and so has each row; an action's own spaces stay");
  free(row);
  lbx_template_free(t);
  tap_ok(lbx_template_parse("{{.Id}}", &t, &err) == 0 && !lbx_template_is_table(t),
         "without \"table\", no header");
  lbx_template_free(t);
  lbx_error_free(err);
  json_decref(dot);
  return tap_done();
}
