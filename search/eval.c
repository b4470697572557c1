// search/eval.c — evaluator factory and shared helpers (eval.h).
#include "search/eval.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int eval_create(Evaluator *ev, const char *kind, const EvalOptions *o, char *err, size_t errlen) {
  memset(ev, 0, sizeof *ev);
  if (!strcmp(kind, "table")) return eval_table_create(ev, o, err, errlen);
  if (!strcmp(kind, "command")) return eval_command_create(ev, o, err, errlen);
  if (!strcmp(kind, "full")) return eval_full_create(ev, o, err, errlen);
  if (!strcmp(kind, "ws")) return eval_ws_create(ev, o, err, errlen);
  snprintf(err, errlen, "unknown evaluator '%s' (known: table, command, ws, full)", kind);
  return -1;
}

void eval_destroy(Evaluator *ev) {
  if (ev->destroy) ev->destroy(ev);
  memset(ev, 0, sizeof *ev);
}

int eval_parse_accuracy(const char *s, size_t len, double *out) {
  while (len && isspace((unsigned char)*s)) s++, len--;
  while (len && isspace((unsigned char)s[len - 1])) len--;
  if (!len || len > 64) return -1;
  char buf[72];
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  if (errno || *end || !isfinite(v)) return -1;
  *out = v;
  return 0;
}
