// search/eval_full.h — internals of the `full` evaluator shared by
// eval_full.c (options, finished runs, in-process training, dispatch) and
// eval_full_jobs.c (nao-train command lines, local processes, job lists).
//
// Where things live, for an architecture file ROUND/arch-IIII.nao:
//   ROUND/runs/arch-IIII/         its nao-train run folder (result.json at the end)
//   ROUND/runs/arch-IIII.log      stdout and stderr of its nao-train process
//   ROUND/jobs.txt                the round's job list (written once per round)
//   ROUND/jobs-pending.txt        the commands of the runs without a result yet
#ifndef NAO_EVAL_FULL_H
#define NAO_EVAL_FULL_H

#include <signal.h>

#include "search/eval.h"

enum { FULL_MAX_OPTS = 48, FULL_DEFAULT_VAL_SIZE = 5000 };

typedef struct {
  const SearchSpace *sp;
  int epochs, jobs, job_list, collect;
  int max_steps;         // --full-recipe sets max-steps: runs may end before their last epoch
  double timeout;
  char *out;             // the search's run folder (messages)
  char *data;            // --data for in-process runs; NULL: the dataset's default
  char *data_abs;        // ... made absolute for command lines; NULL: none
  char *nao_train;       // absolute path of nao-train; NULL: not needed (in-process)
  int synth_train, synth_test;  // --synthetic-size; 0: nao-train's default
  int n_opts;            // recipe options (epochs and val-size first)
  char *opt_name[FULL_MAX_OPTS], *opt_value[FULL_MAX_OPTS];
  int threads_per_job;   // --jobs processes: CPUs / jobs
  volatile sig_atomic_t stop;  // the trainer's stop flag (never set: a signal ends the search)
} Full;

// ROUND/runs/arch-IIII for the architecture file at path (malloc'd). With
// absolute, ROUND is made absolute (job lists run from anywhere).
char *full_run_dir(const char *path, int absolute);
// The finished run's score (validation top-1 of the last epoch). Returns 0
// with *acc, 1 when the run has no result yet, -1 with a message.
int full_read_score(const Full *f, const EvalItem *it, const char *run, double *acc, char *err, size_t errlen);

// items[todo[k]], k < m: as nao-train processes (--jobs) or a job list.
int full_run_processes(Full *f, const EvalItem *items, const int *todo, int m, double *acc, EvalDoneFn done,
                       void *ctx, char *err, size_t errlen);
int full_job_list(Full *f, const EvalItem *items, const int *todo, int m, char *err, size_t errlen);

#endif
