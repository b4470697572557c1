// runtime/runlog.c — log.jsonl records (runlog.h).
#include "runtime/runlog.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

int runlog_open(RunLog *l, const char *path, char *err, size_t errlen) {
  memset(l, 0, sizeof *l);
  if (!path) return 0;
  l->f = fopen(path, "a");
  if (!l->f) {
    snprintf(err, errlen, "%s: cannot open the log for appending: %s", path, strerror(errno));
    return -1;
  }
  l->path = xstrdup(path);
  return 0;
}

void runlog_close(RunLog *l) {
  if (l->f && fclose(l->f) != 0)
    fprintf(stderr, "nao: warning: %s: closing the log: %s\n", l->path, strerror(errno));
  free(l->path);
  sb_free(&l->line);
  memset(l, 0, sizeof *l);
}

JsonWriter *runlog_begin(RunLog *l, const char *event) {
  l->line.len = 0;
  if (l->line.data) l->line.data[0] = 0;
  jw_init(&l->w, &l->line);
  jw_object_begin(&l->w);
  struct timeval tv;
  gettimeofday(&tv, NULL);
  jw_key(&l->w, "event"), jw_string(&l->w, event);
  jw_key(&l->w, "time"), jw_double(&l->w, (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec);
  return &l->w;
}

int runlog_end(RunLog *l) {
  jw_object_end(&l->w);
  if (!l->f) return 0;
  sb_append(&l->line, "\n");
  if (fwrite(l->line.data, 1, l->line.len, l->f) != l->line.len || fflush(l->f) != 0) {
    fprintf(stderr, "nao: warning: %s: writing the log failed: %s (logging stops)\n", l->path,
            strerror(errno));
    fclose(l->f);
    l->f = NULL;
    return -1;
  }
  return 0;
}

void runlog_int(RunLog *l, const char *key, long long v) { jw_key(&l->w, key), jw_int(&l->w, v); }
void runlog_num(RunLog *l, const char *key, double v) { jw_key(&l->w, key), jw_double(&l->w, v); }
void runlog_str(RunLog *l, const char *key, const char *v) { jw_key(&l->w, key), jw_string(&l->w, v); }

void runlog_raw(RunLog *l, const char *key, const char *json) {
  jw_key(&l->w, key);
  // The writer has no raw value: the key is written, so the text follows it.
  sb_append(l->w.out, json);
  l->w.after_key = 0;
}
