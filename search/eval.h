// search/eval.h — evaluators: what turns architectures into accuracies for the
// search, behind one interface.
//
//   table    accuracies looked up in a CSV file `arch,accuracy` (eval_table.c)
//   command  a program run per architecture file, printing an accuracy
//            (eval_command.c)
//   ws       the NAO-WS weight-sharing supernet, trained by the runtime on the
//            pool's architectures, every architecture scored on the same
//            held-out images (eval_ws*.c)
//   full     full training of each candidate: not built yet (eval_create says so)
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
  const char *kind;  // "table", "command", "ws"
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
  int jobs;             // command: processes at once (>= 1)
  double timeout_s;     // command: seconds per evaluation, 0 = no limit
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
  Progress *progress;     // progress line (NULL: none)
} EvalOptions;

// Creates the evaluator of `kind`. Returns 0, or -1 with a message (unknown
// kind, a kind not built yet, a table that does not load).
int eval_create(Evaluator *ev, const char *kind, const EvalOptions *o, char *err, size_t errlen);
void eval_destroy(Evaluator *ev);

// The constructors behind eval_create.
int eval_table_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen);
int eval_command_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen);
int eval_ws_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen);

// Parses an accuracy: a finite number, surrounding blanks allowed, nothing
// else. Returns 0 or -1.
int eval_parse_accuracy(const char *s, size_t len, double *out);

#endif
