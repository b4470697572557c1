// runtime/progress.h — the one-line progress display of a training run on a
// terminal: epoch, step, images/s, loss, accuracy, learning rate, ETA.
//
// The line is redrawn in place ("\r", erase to the end of the line) on stderr
// at most a few times a second, and only when stderr is a terminal (or when
// forced, for tests); other messages go through progress_clear first so they
// do not mix with it.
#ifndef NAO_PROGRESS_H
#define NAO_PROGRESS_H

#include <stdio.h>

typedef struct {
  FILE *out;
  int enabled;
  int shown;          // a line is on the screen
  double last_draw;   // monotonic seconds
  double min_interval;
} Progress;

typedef struct {
  int epoch, epochs;            // 0-based epoch in progress, total
  long long step, total_steps;  // steps done, steps of the run
  double images_per_sec;
  double loss;                  // running mean since the last log record
  double top1;                  // running training accuracy (fraction)
  double lr;
  double eta_seconds;           // < 0: unknown
} ProgressInfo;

// enabled: 1 on, 0 off, -1 when `out` is a terminal.
void progress_init(Progress *p, FILE *out, int enabled);
// Redraws when due (force: now).
void progress_update(Progress *p, const ProgressInfo *info, int force);
// Erases the line so that a message can be printed.
void progress_clear(Progress *p);
// Seconds as "1h02m", "7m12s", "45s".
void progress_format_duration(double seconds, char *buf, size_t n);
double progress_now(void);  // monotonic seconds

#endif
