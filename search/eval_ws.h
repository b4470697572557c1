// search/eval_ws.h — internals of the `ws` evaluator (eval.h), shared by
// eval_ws.c (setup, data, scoring), eval_ws_train.c (begin_round: supernet
// training) and eval_ws_state.c (save / load).
//
// One ModelState holds every supernet weight over the master ParamTable
// (lower_ws_declare_params); the graphs of every architecture are lowered on
// the supernet (NetBuildOptions.ws) and so have tables of the same layout: the
// backends of all architectures work on the one state. Invariant: epochs_done
// counts supernet epochs since the start; round r is trained when
// epochs_done >= (r + 1) * epochs, so begin_round is idempotent and a resumed
// run continues at its last epoch boundary.
#ifndef NAO_EVAL_WS_H
#define NAO_EVAL_WS_H

#include <stdint.h>

#include "compiler/params.h"
#include "runtime/backend.h"
#include "runtime/data.h"
#include "runtime/loader.h"
#include "runtime/model_state.h"
#include "runtime/netbuild.h"
#include "search/eval.h"

#define WS_FORMAT "naoc-supernet/1"
#define WS_FILE "supernet.safetensors"

typedef struct {
  EvalOptions o;          // copies of the options (strings owned below)
  char data[1024];        // the data folder actually used, or "synthetic"
  char state_dir[1024];   // "" = no saves
  BackendKind backend;
  NetSpec base;           // backbone with the supernet's settings (no aux, no dropout)
  ParamTable table;       // the master table: every supernet weight
  ModelState state;
  // Position (saved).
  long long step;         // training steps done
  int epochs_done;
  Rng rng;                // architecture sampling
  // Data.
  DataSource *src;
  DataSet train_set, heldout_set;
  Loader *loader;
  int steps_per_epoch, train_per_epoch;
  long long total_steps;  // T of the drop-path schedule
  int total_epochs;       // of the learning-rate schedule
  // Scoring images of the current round.
  int eval_round;         // round they were drawn for (-1: none)
  int n_eval;
  float *eval_images;     // (n_eval, C, H, W)
  int32_t *eval_labels;
  int round;              // of the last begin_round (-1: none)
} Ws;

// The architecture's spec on the supernet's backbone.
int ws_arch_spec(const Ws *w, const int *tokens, NetSpec *ns, char *err, size_t errlen);
// A NetBuild (train: training graph with gradients; else the scoring graph)
// and its backend on w->state. Returns 0, or -1 with a message.
int ws_build(Ws *w, const NetSpec *ns, int train, NetBuild *nb, Backend **be, char *err, size_t errlen);
void ws_unbuild(NetBuild *nb, Backend *be);

int ws_begin_round(Evaluator *ev, int round, const EvalItem *pool, int n, char *err, size_t errlen);
int ws_save(Evaluator *ev, const char *dir, char *err, size_t errlen);
int ws_load(Evaluator *ev, const char *dir, char *err, size_t errlen);

#endif
