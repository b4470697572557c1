// search/eval_table.c — the `table` evaluator: accuracies looked up in a CSV
// file for tabular benchmarks (eval.h).
//
// Format: first line exactly `arch,accuracy`; then one row per architecture:
// its text form in the search space (optionally in double quotes), a comma,
// a finite number. Blank lines are skipped, CRLF is accepted. The whole file is
// read and checked when the evaluator is made: a malformed row, an arch that
// is not in the space, or the same arch twice with different accuracies is an
// error naming PATH:LINE and what is wrong. Looking up an arch the table does
// not have is an error naming the arch and the file.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "search/archmap.h"
#include "search/eval.h"

typedef struct {
  char *path;
  ArchMap map;    // tokens -> row index
  double *acc;    // per row
  int n;
} Table;

static int bad(char *err, size_t errlen, const char *path, int line, const char *what, const char *detail) {
  snprintf(err, errlen, "%s:%d: %s%s%s", path, line, what, detail ? ": " : "", detail ? detail : "");
  return -1;
}

// One data row "arch,accuracy" of length len at s (no line break).
static int table_row(Table *t, const SearchSpace *sp, char *s, size_t len, int line, char *err, size_t errlen) {
  char *comma = memchr(s, ',', len);
  if (!comma) return bad(err, errlen, t->path, line, "expected 'arch,accuracy' (no comma)", NULL);
  if (memchr(comma + 1, ',', len - (size_t)(comma + 1 - s)))
    return bad(err, errlen, t->path, line, "expected 2 fields 'arch,accuracy', found more", NULL);
  char *a = s, *ae = comma;
  while (a < ae && (*a == ' ' || *a == '\t')) a++;
  while (ae > a && (ae[-1] == ' ' || ae[-1] == '\t')) ae--;
  if (ae - a >= 2 && *a == '"' && ae[-1] == '"') a++, ae--;
  *ae = '\0';
  double acc;
  if (eval_parse_accuracy(comma + 1, len - (size_t)(comma + 1 - s), &acc) != 0) {
    char shown[48];
    snprintf(shown, sizeof shown, "'%.*s'", (int)(len - (size_t)(comma + 1 - s) > 40 ? 40 : len - (size_t)(comma + 1 - s)),
             comma + 1);
    return bad(err, errlen, t->path, line, "accuracy is not a number", shown);
  }
  int tok[SPACE_MAX_LEN];
  char why[256];
  if (space_parse(sp, a, tok, why, sizeof why) != 0) {
    char msg[400];
    snprintf(msg, sizeof msg, "arch '%.120s' is not in the %s space", a, sp->name);
    return bad(err, errlen, t->path, line, msg, why);
  }
  int prev = archmap_get(&t->map, tok);
  if (prev >= 0) {
    if (t->acc[prev] == acc) return 0;
    char msg[300];
    snprintf(msg, sizeof msg, "arch '%.120s' appears again with accuracy %g (first %g)", a, acc, t->acc[prev]);
    return bad(err, errlen, t->path, line, msg, NULL);
  }
  t->acc = xrealloc(t->acc, (size_t)(t->n + 1) * sizeof(double));
  t->acc[t->n] = acc;
  archmap_put(&t->map, tok, t->n++);
  return 0;
}

static int table_load(Table *t, const SearchSpace *sp, char *err, size_t errlen) {
  size_t len;
  const char *why;
  char *buf = nao_read_file(t->path, &len, &why);
  if (!buf) return snprintf(err, errlen, "%s: cannot read the table: %s", t->path, why), -1;
  int rc = 0, line = 0;
  char *p = buf, *end = buf + len;
  while (rc == 0 && p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *le = nl ? nl : end;
    line++;
    size_t n = (size_t)(le - p);
    if (n && p[n - 1] == '\r') n--;
    p[n] = '\0';
    if (line == 1) {
      if (strcmp(p, "arch,accuracy") != 0) rc = bad(err, errlen, t->path, 1, "the header must be 'arch,accuracy'", NULL);
    } else if (strspn(p, " \t") != n) {
      rc = table_row(t, sp, p, n, line, err, errlen);
    }
    p = le + 1;
  }
  if (rc == 0 && line == 0) rc = bad(err, errlen, t->path, 1, "empty file (the header must be 'arch,accuracy')", NULL);
  if (rc == 0 && t->n == 0) rc = bad(err, errlen, t->path, line, "the table has no rows", NULL);
  free(buf);
  return rc;
}

static int table_score(Evaluator *ev, const EvalItem *items, int n, double *acc, EvalDoneFn done, void *ctx,
                       char *err, size_t errlen) {
  Table *t = ev->impl;
  for (int i = 0; i < n; i++) {
    int row = archmap_get(&t->map, items[i].tokens);
    if (row < 0) {
      snprintf(err, errlen, "table %s has no row for arch '%s'", t->path, items[i].text);
      return -1;
    }
    acc[i] = t->acc[row];
    if (done) done(ctx, i, acc[i]);
  }
  return 0;
}

static void table_destroy(Evaluator *ev) {
  Table *t = ev->impl;
  if (!t) return;
  archmap_free(&t->map);
  free(t->acc), free(t->path), free(t);
  ev->impl = NULL;
}

int eval_table_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen) {
  if (!o->table || !*o->table) return snprintf(err, errlen, "the table evaluator needs --table FILE"), -1;
  Table *t = xcalloc(1, sizeof *t);
  t->path = xstrdup(o->table);
  archmap_init(&t->map, o->space->length);
  ev->kind = "table", ev->impl = t, ev->score = table_score, ev->destroy = table_destroy;
  if (table_load(t, o->space, err, errlen) != 0) {
    table_destroy(ev);
    return -1;
  }
  return 0;
}
