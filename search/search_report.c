// search/search_report.c — TSV tables, summary.json and the top/ files
// (search_report.h). All are outputs a resumed step rewrites, so they are
// replaced atomically against kills but not fsynced (sf_write_file).
#include "search/search_report.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "search/sfile.h"

void report_json_string(StrBuf *sb, const char *s) {
  sb_append(sb, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') sb_printf(sb, "\\%c", c);
    else if (c < 0x20) sb_printf(sb, "\\u%04x", c);
    else sb_appendn(sb, s, 1);
  }
  sb_append(sb, "\"");
}

void report_json_number(StrBuf *sb, double x) {
  if (isfinite(x)) sb_printf(sb, "%.10g", x);
  else sb_append(sb, "null");
}

static void tsv_number(StrBuf *sb, double x) {
  if (isfinite(x)) sb_printf(sb, "%.10g", x);
  else sb_append(sb, "-");
}

static int write_sb(const char *path, StrBuf *sb, char *err, size_t errlen) {
  int rc = sf_write_file(path, sb->data ? sb->data : "", sb->len, err, errlen);
  sb_free(sb);
  return rc;
}

int report_round_archs(const char *path, const char *out_dir, const SearchSpace *sp, const ArchList *pool,
                       const int *idx, int n, char *const *files, char *err, size_t errlen) {
  StrBuf sb = {0};
  char text[SPACE_TEXT_MAX];
  sb_append(&sb, "index\tarch\tmeasured\tpredicted\tfile\n");
  for (int k = 0; k < n; k++) {
    int i = idx[k];
    space_format(sp, pool->tok + (size_t)i * pool->len, text, sizeof text);
    sb_printf(&sb, "%d\t%s\t", i, text);
    tsv_number(&sb, pool->acc[i]);
    sb_append(&sb, "\t");
    tsv_number(&sb, pool->pred[i]);
    sb_printf(&sb, "\t%s\n", files[k] + strlen(out_dir) + 1);  // relative to the run folder
  }
  return write_sb(path, &sb, err, errlen);
}

int report_pool(const char *path, const SearchSpace *sp, const ArchList *pool, char *err, size_t errlen) {
  StrBuf sb = {0};
  char text[SPACE_TEXT_MAX];
  sb_append(&sb, "rank\tarch\tmeasured\tpredicted\tround\n");
  for (int i = 0; i < pool->n; i++) {
    space_format(sp, pool->tok + (size_t)i * pool->len, text, sizeof text);
    sb_printf(&sb, "%d\t%s\t", i + 1, text);
    tsv_number(&sb, pool->acc[i]);
    sb_append(&sb, "\t");
    tsv_number(&sb, pool->pred[i]);
    sb_printf(&sb, "\t%d\n", pool->born[i]);
  }
  return write_sb(path, &sb, err, errlen);
}

int report_summary(const SearchOptions *o, const SearchSpace *sp, const SearchState *st, const ArchList *ranked,
                   int finished, char *err, size_t errlen) {
  StrBuf sb = {0}, path = {0}, base = {0};
  char text[SPACE_TEXT_MAX], file[1024], best_file[1024] = "";
  int k = ranked->n < o->top_k ? ranked->n : o->top_k;
  if (k > 0) {
    sb_printf(&path, "%s/top", o->out);
    if (sf_mkdir(path.data, err, errlen) != 0) return sb_free(&path), -1;
  }
  sb_printf(&sb, "{\n  \"space\": \"%s\",\n  \"evaluator\": ", sp->name);
  report_json_string(&sb, o->evaluator);
  sb_printf(&sb, ",\n  \"evaluations\": %ld,\n  \"rounds_completed\": %d,\n  \"finished\": %s,\n  \"top\": [",
            st->evaluations, st->round, finished ? "true" : "false");
  for (int i = 0; i < k; i++) {
    const int *tok = ranked->tok + (size_t)i * ranked->len;
    sb_free(&base);
    sb_printf(&base, "%s/top/rank-%d", o->out, i + 1);
    if (search_write_arch_file(o, sp, tok, base.data, file, sizeof file, err, errlen) != 0) {
      sb_free(&sb), sb_free(&path), sb_free(&base);
      return -1;
    }
    if (i == 0) snprintf(best_file, sizeof best_file, "%s", file + strlen(o->out) + 1);
    space_format(sp, tok, text, sizeof text);
    sb_printf(&sb, "%s\n    {\"rank\": %d, \"arch\": ", i ? "," : "", i + 1);
    report_json_string(&sb, text);
    sb_append(&sb, ", \"accuracy\": ");
    report_json_number(&sb, ranked->acc[i]);
    sb_printf(&sb, ", \"round\": %d, \"file\": ", ranked->born[i]);
    report_json_string(&sb, file + strlen(o->out) + 1);
    sb_append(&sb, "}");
  }
  sb_append(&sb, k ? "\n  ],\n  \"best\": " : "],\n  \"best\": ");
  if (k) {
    space_format(sp, ranked->tok, text, sizeof text);
    sb_append(&sb, "{\"arch\": ");
    report_json_string(&sb, text);
    sb_append(&sb, ", \"accuracy\": ");
    report_json_number(&sb, ranked->acc[0]);
    sb_append(&sb, ", \"file\": ");
    report_json_string(&sb, best_file);
    sb_append(&sb, "}\n}\n");
  } else {
    sb_append(&sb, "null\n}\n");
  }
  sb_free(&path);
  sb_printf(&path, "%s/summary.json", o->out);
  int rc = write_sb(path.data, &sb, err, errlen);
  sb_free(&path), sb_free(&base);
  return rc;
}
