// search/search_state.c — architecture lists and the state file (search_state.h).
//
// Format of OUT/state (text, one item per line):
//   nao-search-state 1
//   round R / phase NAME / evaluations N / evaluator_ready R / log_size N
//   rng HEX HEX HEX HEX / controller PATH|-
//   pool N, then N lines  TEXT<TAB>ACC<TAB>PRED<TAB>BORN
//   history N, then N lines of the same form
//   end
// A file without the final "end" line is rejected (it cannot happen with the
// atomic replacement, but a hand-edited or truncated copy could).
#include "search/search_state.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "search/sfile.h"

void archlist_init(ArchList *l, int len) {
  memset(l, 0, sizeof *l);
  l->len = len;
}

void archlist_free(ArchList *l) {
  free(l->tok), free(l->acc), free(l->pred), free(l->born);
  int len = l->len;
  memset(l, 0, sizeof *l);
  l->len = len;
}

void archlist_push(ArchList *l, const int *tok, double acc, double pred, int born) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 64;
    l->tok = xrealloc(l->tok, (size_t)l->cap * l->len * sizeof(int));
    l->acc = xrealloc(l->acc, (size_t)l->cap * sizeof(double));
    l->pred = xrealloc(l->pred, (size_t)l->cap * sizeof(double));
    l->born = xrealloc(l->born, (size_t)l->cap * sizeof(int));
  }
  memcpy(l->tok + (size_t)l->n * l->len, tok, (size_t)l->len * sizeof(int));
  l->acc[l->n] = acc, l->pred[l->n] = pred, l->born[l->n] = born;
  l->n++;
}

void archlist_copy_item(ArchList *dst, const ArchList *src, int i) {
  archlist_push(dst, src->tok + (size_t)i * src->len, src->acc[i], src->pred[i], src->born[i]);
}

static int better(double a, double b) {  // a sorts before b
  if (isnan(b)) return !isnan(a);
  return !isnan(a) && a > b;
}

void archlist_sort_desc(ArchList *l) {  // insertion order kept among equals
  int *idx = xmalloc((size_t)(l->n ? l->n : 1) * sizeof(int)), *tmp = xmalloc((size_t)(l->n ? l->n : 1) * sizeof(int));
  for (int i = 0; i < l->n; i++) idx[i] = i;
  for (int w = 1; w < l->n; w *= 2)  // bottom-up merge sort: stable
    for (int lo = 0; lo < l->n; lo += 2 * w) {
      int mid = lo + w < l->n ? lo + w : l->n, hi = lo + 2 * w < l->n ? lo + 2 * w : l->n;
      int a = lo, b = mid, k = lo;
      while (a < mid || b < hi)
        tmp[k++] = b >= hi || (a < mid && !better(l->acc[idx[b]], l->acc[idx[a]])) ? idx[a++] : idx[b++];
      memcpy(idx + lo, tmp + lo, (size_t)(hi - lo) * sizeof(int));
    }
  ArchList s;
  archlist_init(&s, l->len);
  for (int i = 0; i < l->n; i++) archlist_copy_item(&s, l, idx[i]);
  archlist_free(l);
  *l = s;
  free(idx), free(tmp);
}

// ---------------------------------------------------------------- state
static const char *const phase_names[] = {"evaluate", "train", "generate", "finished"};

const char *search_phase_name(SearchPhase p) { return phase_names[p]; }

void search_state_init(SearchState *s, int len) {
  memset(s, 0, sizeof *s);
  s->evaluator_ready = -1;
  archlist_init(&s->pool, len);
  archlist_init(&s->history, len);
}

void search_state_free(SearchState *s) {
  archlist_free(&s->pool);
  archlist_free(&s->history);
}

static void put_list(StrBuf *sb, const char *name, const ArchList *l, const SearchSpace *sp) {
  char text[SPACE_TEXT_MAX];
  sb_printf(sb, "%s %d\n", name, l->n);
  for (int i = 0; i < l->n; i++) {
    space_format(sp, l->tok + (size_t)i * l->len, text, sizeof text);
    sb_printf(sb, "%s\t%.17g\t%.17g\t%d\n", text, l->acc[i], l->pred[i], l->born[i]);
  }
}

int search_state_save(const SearchState *s, const SearchSpace *sp, const char *out, char *err, size_t errlen) {
  StrBuf sb = {0}, path = {0};
  sb_printf(&sb, "nao-search-state 1\nround %d\nphase %s\nevaluations %ld\nevaluator_ready %d\nlog_size %" PRIu64 "\n",
            s->round, phase_names[s->phase], s->evaluations, s->evaluator_ready, s->log_size);
  sb_printf(&sb, "rng %016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64 "\ncontroller %s\n", s->rng.s[0],
            s->rng.s[1], s->rng.s[2], s->rng.s[3], s->controller[0] ? s->controller : "-");
  put_list(&sb, "pool", &s->pool, sp);
  put_list(&sb, "history", &s->history, sp);
  sb_append(&sb, "end\n");
  sb_printf(&path, "%s/state", out);
  int rc = sf_write_atomic(path.data, sb.data, sb.len, err, errlen);
  sb_free(&sb), sb_free(&path);
  return rc;
}

// ---------------------------------------------------------------- reading
typedef struct {
  char *p;
  int line;
  const char *path;
  char *err;
  size_t errlen;
} Reader;

static char *next_line(Reader *r) {
  if (!r->p || !*r->p) return NULL;
  char *s = r->p, *nl = strchr(s, '\n');
  if (nl) *nl = '\0', r->p = nl + 1;
  else r->p = s + strlen(s);
  r->line++;
  return s;
}

static int fail(Reader *r, const char *what) {
  snprintf(r->err, r->errlen, "%s:%d: %s", r->path, r->line, what);
  return -1;
}

// "key VALUE": the value after the key, or NULL (error set).
static const char *field(Reader *r, const char *key) {
  char *s = next_line(r);
  size_t k = strlen(key);
  if (!s || strncmp(s, key, k) || s[k] != ' ') {
    char what[96];
    snprintf(what, sizeof what, "expected '%s ...'", key);
    fail(r, what);
    return NULL;
  }
  return s + k + 1;
}

static int read_list(Reader *r, const char *name, ArchList *l, const SearchSpace *sp) {
  const char *v = field(r, name);
  int n;
  if (!v || sscanf(v, "%d", &n) != 1 || n < 0) return v ? fail(r, "bad count") : -1;
  int tok[SPACE_MAX_LEN];
  for (int i = 0; i < n; i++) {
    char *s = next_line(r), *f[4];
    if (!s) return fail(r, "the file ends inside a list");
    f[0] = s;
    for (int k = 1; k < 4; k++) {
      f[k] = f[k - 1] ? strchr(f[k - 1], '\t') : NULL;
      if (f[k]) *f[k]++ = '\0';
    }
    char why[200];
    if (!f[3]) return fail(r, "expected 4 tab-separated fields");
    if (space_parse(sp, f[0], tok, why, sizeof why) != 0) return fail(r, why);
    archlist_push(l, tok, strtod(f[1], NULL), strtod(f[2], NULL), atoi(f[3]));
  }
  return 0;
}

static int read_header(Reader *r, SearchState *s) {
  const char *v;
  char *line = next_line(r);
  if (!line || strcmp(line, "nao-search-state 1")) return fail(r, "not a nao-search state file (version 1)");
  if (!(v = field(r, "round")) || sscanf(v, "%d", &s->round) != 1) return v ? fail(r, "bad round") : -1;
  if (!(v = field(r, "phase"))) return -1;
  int ph = -1;
  for (int i = 0; i < 4; i++)
    if (!strcmp(v, phase_names[i])) ph = i;
  if (ph < 0) return fail(r, "unknown phase");
  s->phase = (SearchPhase)ph;
  if (!(v = field(r, "evaluations")) || sscanf(v, "%ld", &s->evaluations) != 1) return v ? fail(r, "bad count") : -1;
  if (!(v = field(r, "evaluator_ready")) || sscanf(v, "%d", &s->evaluator_ready) != 1) return v ? fail(r, "bad round") : -1;
  if (!(v = field(r, "log_size")) || sscanf(v, "%" SCNu64, &s->log_size) != 1) return v ? fail(r, "bad size") : -1;
  if (!(v = field(r, "rng")) || sscanf(v, "%" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64, &s->rng.s[0], &s->rng.s[1],
                                       &s->rng.s[2], &s->rng.s[3]) != 4)
    return v ? fail(r, "bad rng state") : -1;
  if (!(v = field(r, "controller"))) return -1;
  if (strlen(v) >= sizeof s->controller) return fail(r, "controller path too long");
  snprintf(s->controller, sizeof s->controller, "%s", strcmp(v, "-") ? v : "");
  return 0;
}

int search_state_load(SearchState *s, const SearchSpace *sp, const char *out, char *err, size_t errlen) {
  StrBuf path = {0};
  sb_printf(&path, "%s/state", out);
  size_t len;
  const char *why;
  char *buf = nao_read_file(path.data, &len, &why);
  if (!buf) {
    snprintf(err, errlen, "%s: cannot read the run's state: %s", path.data, why);
    sb_free(&path);
    return -1;
  }
  Reader r = {buf, 0, path.data, err, errlen};
  int rc = read_header(&r, s);
  if (rc == 0) rc = read_list(&r, "pool", &s->pool, sp);
  if (rc == 0) rc = read_list(&r, "history", &s->history, sp);
  if (rc == 0) {
    char *end = next_line(&r);
    if (!end || strcmp(end, "end")) rc = fail(&r, "missing the final 'end' line (truncated file)");
  }
  free(buf);
  sb_free(&path);
  return rc;
}
