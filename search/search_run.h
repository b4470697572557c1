// search/search_run.h — internals of a running search shared by
// search_loop.c (setup, the loop, helpers) and search_steps.c (the steps).
#ifndef NAO_SEARCH_RUN_H
#define NAO_SEARCH_RUN_H

#include "compiler/util.h"
#include "search/ctl.h"
#include "search/eval.h"
#include "search/progress.h"
#include "search/search.h"
#include "search/search_state.h"

// Independent random streams of a run, derived from --seed.
enum { STREAM_LOOP = 1, STREAM_POOL = 2, STREAM_INIT = 3 };

typedef struct {
  const SearchOptions *o;
  SearchSpace sp;
  Evaluator ev;
  Ctl ctl;
  int have_ev, have_ctl;
  SearchState st;
  SearchProgress prog;
  int journal_fd;       // the round's evaluation journal while scoring
  int journal_failed;
  int evaluated_now;    // results reported during this scoring
  int to_evaluate;
  int ev_loaded_round;  // round whose evaluator state was loaded after a resume
  char err[2048];
} Search;

double sr_now(void);
// OUT/ + the formatted rest; owned by the caller.
char *sr_path(const Search *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// A line on stdout (unless --quiet), below the progress line.
void sr_say(Search *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Writes OUT/state: the end of a step. 0 or an exit code (message in s->err).
int sr_commit(Search *s);
// A log.jsonl record: sr_rec_start, then fields ", \"k\": v", then sr_log
// (closes the object, appends, fsyncs, frees rec).
void sr_rec_start(StrBuf *rec, const Search *s, const char *step);
int sr_log(Search *s, StrBuf *rec);
int sr_budget_left(const Search *s);
// The rounds or the budget are spent (or too few evaluated archs to train on).
int sr_done(const Search *s);
// summary.json and top/ from the best so far.
int sr_summary(Search *s, int finished);

int sr_step_evaluate(Search *s);
int sr_step_train(Search *s);
int sr_step_generate(Search *s);
int sr_step_finish(Search *s);

#endif
