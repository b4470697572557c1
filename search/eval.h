// search/eval.h — evaluators: what turns architectures into accuracies for the
// search, behind one interface.
//
//   table    accuracies looked up in a CSV file `arch,accuracy` (eval_table.c)
//   command  a program run per architecture file, printing an accuracy
//            (eval_command.c)
//   full     each architecture trained for E epochs by the runtime, scored
//            by its validation top-1: in-process, as local nao-train
//            processes, or as a job list to run elsewhere (eval_full*.c)
//   ws       the NAO-WS weight-sharing supernet, trained by the runtime on the
//            pool's architectures, every architecture scored on the same
//            held-out images (eval_ws*.c)
//
// The interface is made for all four: an evaluator scores a batch of
// architectures (score); it may keep state across rounds (a supernet), which it
// prepares at the start of each round from the pool the search samples from
// (begin_round) and saves and restores for --resume (save/load). A stateful
// evaluator's scores change as it trains, so the search re-scores the whole
// pool every round (stateful = 1, the reference's NAO-WS loop); a stateless
// one is asked about each architecture once.
//
// Errors name the architecture (text form) and say what went wrong; results
// finished before an error are reported through `done` and kept by the search.
#ifndef NAO_EVAL_H
#define NAO_EVAL_H

#include <stddef.h>

#include "compiler/util.h"
#include "compiler/netspec.h"
#include "search/progress.h"
#include "search/space.h"

typedef struct {
  const int *tokens;  // the space's token sequence
  const char *text;   // its text form (space_format)
  const char *path;   // the architecture file the search wrote for it
} EvalItem;

// Called as each item's score is known (in any order), so the search can
// journal it at once.
typedef void (*EvalDoneFn)(void *ctx, int i, double acc);

typedef struct Evaluator Evaluator;
struct Evaluator {
  const char *kind;  // "table", "command", "full", "ws"
  int stateful;      // scores change across rounds: re-score the pool every round
  void *impl;
  char note[256];    // what the last begin_round did, one line ("" = nothing), for the log
  // Round `round` starts; pool is what the search samples from (the ws
  // supernet trains on it here). NULL: nothing to prepare.
  int (*begin_round)(Evaluator *ev, int round, const EvalItem *pool, int n, char *err, size_t errlen);
  // Scores items[0..n): acc[i], reporting each through done(ctx, i, acc[i]).
  // Returns 0, or -1 with a message in err (the first failure).
  int (*score)(Evaluator *ev, const EvalItem *items, int n, double *acc, EvalDoneFn done, void *ctx, char *err,
               size_t errlen);
  // State across a kill, in folder dir. NULL: stateless. load returns 0 when
  // it loaded a state, 1 when dir holds none (the evaluator stays fresh), -1
  // with a message when the state there is unusable.
  int (*save)(Evaluator *ev, const char *dir, char *err, size_t errlen);
  int (*load)(Evaluator *ev, const char *dir, char *err, size_t errlen);
  void (*destroy)(Evaluator *ev);
};

typedef struct {
  const SearchSpace *space;
  const char *table;    // table: the CSV file
  const char *command;  // command: the command line
  int jobs;             // command: processes at once (>= 1); full: > 1 = nao-train processes
  double timeout_s;     // command, full processes: seconds per evaluation, 0 = no limit
  // full (eval_full.c):
  const char *out;          // the search's run folder (for messages)
  int full_epochs;          // epochs per training (>= 1)
  const char *full_data;    // nao-train --data (NULL or "": the dataset's default)
  const char *full_recipe;  // recipe overrides "name=value,name=value" (NULL or "": none)
  const char *full_synthetic;  // nao-train --synthetic-size T,E (NULL or "": its default)
  const char *nao_train;    // nao-train program (NULL or "": next to this program)
  int job_list;             // write OUT/round-NNN/jobs.txt and stop (EVAL_PENDING)
  int collect;              // job list: unfinished runs are an error (nao-search collect)
  // ws: the supernet's backbone (dataset preset, channels, layers; cells from
  // each architecture), data, schedule and where it keeps its progress.
  const NetSpec *backbone;
  const char *data;     // data folder; "" = the dataset's default; "synthetic"
  int ws_epochs;        // supernet epochs per round
  int ws_batch;
  double ws_lr, ws_lr_min, ws_momentum, ws_weight_decay, ws_grad_clip, ws_drop_path_keep;
  int ws_eval_images;   // held-out images each architecture is scored on
  int ws_heldout;       // images of the training set held out for scoring
  int ws_train_images;  // training images per supernet epoch, 0 = all
  int rounds;           // the schedule spans (rounds + 1) * ws_epochs epochs
  int threads;
  const char *backend;  // "cpu" or "cuda"
  uint64_t seed;
  const char *state_dir;  // progress within a round is saved here every epoch (NULL: not saved)
  SearchProgress *progress;     // progress line (NULL: none)
} EvalOptions;

// score's answer when the evaluator has handed the work to someone else (a
// job list) and results are not there yet: err says what to run.
enum { EVAL_PENDING = -2 };

// Creates the evaluator of `kind`. Returns 0, or -1 with a message (unknown
// kind, a kind not built yet, a table that does not load).
int eval_create(Evaluator *ev, const char *kind, const EvalOptions *o, char *err, size_t errlen);
void eval_destroy(Evaluator *ev);

// The constructors behind eval_create.
int eval_table_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen);
int eval_command_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen);
int eval_full_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen);

// Shell commands run `jobs` at once (eval_command.c): the command evaluator's
// machinery, shared with the full evaluator's processes. Per item, prepare
// gives the `/bin/sh -c` line and the file its stderr goes to (both malloc'd,
// taken over); after an exit with status 0, result turns the child's stdout
// (its last 64 KiB) into the accuracy, or returns -1 with what is wrong in
// msg (it follows the command line in the message). A failure names `what`,
// the arch, the line, what happened and the last line of the log; the
// other commands are then killed. Children get NAO_ARCH, NAO_ARCH_FILE and
// NAO_SPACE in their environment and their own process group.
typedef struct {
  const char *what;  // start of messages: "command evaluator"
  void *ctx;
  void (*prepare)(void *ctx, const EvalItem *it, char **line, char **log);
  int (*result)(void *ctx, const EvalItem *it, const char *out, size_t len, double *acc, char *msg, size_t msglen);
} EvalShell;
int eval_shell_run(const EvalShell *sh, const EvalItem *items, int n, int jobs, double timeout, const char *space,
                   double *acc, EvalDoneFn done, void *ctx, char *err, size_t errlen);
// Appends s single-quoted for the shell.
void eval_sh_quote(StrBuf *sb, const char *s);
int eval_ws_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen);

// Parses an accuracy: a finite number, surrounding blanks allowed, nothing
// else. Returns 0 or -1.
int eval_parse_accuracy(const char *s, size_t len, double *out);

#endif
