// runtime/progress.c — the terminal progress line (progress.h).
#include "runtime/progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double progress_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void progress_init(Progress *p, FILE *out, int enabled) {
  p->out = out;
  p->enabled = enabled >= 0 ? enabled : isatty(fileno(out));
  p->shown = 0;
  p->last_draw = -1e9;
  p->min_interval = 0.25;
}

void progress_format_duration(double s, char *buf, size_t n) {
  if (!(s >= 0) || s > 1e8) {
    snprintf(buf, n, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
  else snprintf(buf, n, "%lds", t);
}

void progress_update(Progress *p, const ProgressInfo *in, int force) {
  if (!p->enabled) return;
  double now = progress_now();
  if (!force && now - p->last_draw < p->min_interval) return;
  p->last_draw = now;
  char eta[32];
  progress_format_duration(in->eta_seconds, eta, sizeof eta);
  double pct = in->total_steps > 0 ? 100.0 * (double)in->step / (double)in->total_steps : 0;
  fprintf(p->out,
          "\repoch %d/%d  step %lld/%lld (%.0f%%)  %.0f img/s  loss %.4f  acc %.1f%%  lr %.3g  "
          "ETA %s\033[K",
          in->epoch + 1, in->epochs, in->step, in->total_steps, pct, in->images_per_sec, in->loss,
          100.0 * in->top1, in->lr, eta);
  fflush(p->out);
  p->shown = 1;
}

void progress_clear(Progress *p) {
  if (!p->enabled || !p->shown) return;
  fprintf(p->out, "\r\033[K");
  fflush(p->out);
  p->shown = 0;
}
