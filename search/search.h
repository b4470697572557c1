// search/search.h — nao-search: the NAO search loop, its options and its run
// folder.
//
// The loop (the reference's train_search.py main, NAO-SPEC §1c): a seed pool of
// random architectures; then rounds of
//   evaluate  the pool's new architectures (a stateful evaluator: the whole pool)
//   train     the controller on the pool (targets = accuracies scaled to [0, 1])
//   generate  new architectures from the pool's best by the inference step
//   replace   the bottom of the pool with them
// and a last evaluation. Every step ends with an atomic commit of the state
// file, so a run killed at any moment resumes (--resume) from the last
// completed step; evaluations finished inside the step in flight are kept too
// (journal). docs/search.md describes the run folder.
#ifndef NAO_SEARCH_H
#define NAO_SEARCH_H

#include <stdint.h>
#include <stdio.h>

#include "compiler/netspec.h"
#include "search/ctl.h"
#include "search/space.h"

typedef struct {
  const char *space;        // nao-small | nao-large | nb201
  const char *evaluator;    // table | command | ws | full
  const char *table;        // --table FILE
  const char *command;      // --command CMD
  int jobs;                 // --jobs: commands at once
  double timeout;           // --timeout: seconds per command, 0 = none
  const char *out;          // --out DIR
  int resume;               // --resume
  int seed_archs;           // 600
  int new_archs;            // 300
  int rounds;               // controller rounds (4: the reference evaluates 5 times)
  int controller_epochs;    // 1000
  long budget;              // stop after this many evaluations, 0 = no limit
  uint64_t seed;            // 0
  int top_k;                // top/rank-1 .. rank-K
  int infer_top;            // the inference step starts from the best 100
  int max_step;             // lambda = 1, 2, ... until > 50
  CtlConfig ctl;            // controller sizes and optimiser
  NetSpec backbone;         // settings written into each architecture's file (and the ws supernet's)
  // ws: the weight-sharing supernet (eval.h, EvalOptions)
  const char *data;         // --data: folder, "" = the dataset's default, "synthetic"
  const char *backend;      // --backend cpu | cuda
  int ws_epochs, ws_batch;  // 30, 64
  double ws_lr, ws_lr_min, ws_momentum, ws_weight_decay, ws_grad_clip, ws_drop_path_keep;
  int ws_eval_images, ws_heldout, ws_train_images;  // 500, 5000, 0 (= all)
  int progress;             // -1: when stderr is a terminal, 0 off, 1 on
  int quiet;                // no per-step lines on stdout
  char *config_text;        // the options that shape the run, as OUT/config holds them
  // --evaluator full (eval_full.c, docs/search.md):
  int full_epochs;          // --full-epochs: epochs per training (10, the reference's rerank)
  const char *full_data;    // --full-data DIR|synthetic ("" = the dataset's default)
  const char *full_recipe;  // --full-recipe 'name=value,...': recipe overrides
  const char *full_synthetic;  // --full-synthetic-size T,E
  const char *nao_train;    // --nao-train PATH ("" = next to nao-search)
  int job_list;             // --job-list: write OUT/round-NNN/jobs.txt and stop (exit 3)
  int collect;              // `nao-search collect`: read the job list's results back, continue
} SearchOptions;

// Exit status of a run that wrote a job list and waits for its results.
enum { SEARCH_EXIT_JOBS = 3 };

// Parses the command line (and, with --resume, the run's saved options).
// Returns 0 to run, -1 after --help (printed), or an exit code (2 for bad
// usage, 1 for an unreadable run folder) with the message printed to stderr.
int search_options_parse(int argc, char **argv, SearchOptions *o);
void search_options_free(SearchOptions *o);
void search_usage(FILE *f);

// Runs (or resumes) the search. Returns the process exit code: 0, 1 (bad
// input: a table, a failing command, an unusable run folder), 70 (internal).
int search_run(const SearchOptions *o);

// The one place that writes an architecture's file: NAO spaces as a .nao
// program (o->backbone's settings, the architecture's cells) at BASE.nao, nb201
// as its text form at BASE.arch. The written path goes to path_out.
int search_write_arch_file(const SearchOptions *o, const SearchSpace *sp, const int *tok, const char *base,
                           char *path_out, size_t outlen, char *err, size_t errlen);

#endif
