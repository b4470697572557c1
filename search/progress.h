// search/progress.h — a one-line progress display on stderr, redrawn in place
// at most 10 times a second, only when enabled (nao-search enables it when
// stderr is a terminal, or on --progress).
#ifndef NAO_SEARCH_PROGRESS_H
#define NAO_SEARCH_PROGRESS_H

typedef struct {
  int enabled;
  int shown;      // a line is on the screen
  double last;    // time of the last redraw
} SearchProgress;

void search_progress_init(SearchProgress *p, int enabled);
void search_progress_update(SearchProgress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Erases the line (before ordinary output, and at the end).
void search_progress_clear(SearchProgress *p);

#endif
