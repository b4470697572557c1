// search/progress.c — the progress line (progress.h).
#include "search/progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void search_progress_init(SearchProgress *p, int enabled) {
  p->enabled = enabled;
  p->shown = 0;
  p->last = 0;
}

void search_progress_update(SearchProgress *p, const char *fmt, ...) {
  if (!p->enabled) return;
  double t = now_s();
  if (p->shown && t - p->last < 0.1) return;
  p->last = t;
  char line[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\r%s\033[K", line);
  fflush(stderr);
  p->shown = 1;
}

void search_progress_clear(SearchProgress *p) {
  if (!p->enabled || !p->shown) return;
  fprintf(stderr, "\r\033[K");
  fflush(stderr);
  p->shown = 0;
}
