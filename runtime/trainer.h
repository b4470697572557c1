// runtime/trainer.h — a training run: the network, its data, a backend, the
// model state, logs and checkpoints, and the loop that drives them
// (docs/training.md).
//
// trainer_setup does everything that can fail on bad input before the first
// step (network, recipe, data, run folder, checkpoint to resume, backend);
// trainer_train then runs epochs from the state it set up (a fresh start, a
// resumed checkpoint or given weights); trainer_evaluate scores the current
// weights on the validation and test splits.
//
// Determinism: a run is a pure function of the network, the recipe (its seed
// included) and the data. The state between two steps is (parameters, BN
// statistics, momentum buffers, step, epoch, batch within the epoch); the
// loader's order and augmentation, and the dropout and drop-path masks, are
// functions of (seed, epoch, item) and (seed, step, node). So a run resumed
// from a checkpoint continues bit for bit as if it had not stopped, on the
// cpu backend with any thread count.
#ifndef NAO_TRAINER_H
#define NAO_TRAINER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler/netspec.h"
#include "runtime/backend.h"
#include "runtime/checkpoint.h"
#include "runtime/data.h"
#include "runtime/dist.h"
#include "runtime/loader.h"
#include "runtime/model_state.h"
#include "runtime/netbuild.h"
#include "runtime/progress.h"
#include "runtime/recipe.h"
#include "runtime/runlog.h"

enum { TRAINER_MAX_RECIPE_OPTS = 64 };

typedef struct {
  const char *net_path;        // the .nao file (with net_text: the name it is known by)
  const char *net_text;        // the network's .nao text (a generated trainer's); NULL: read net_path
  const void *cuda_net;        // a generated trainer's net.cu plan (const CudaNet *), for --backend cuda
  const char *cuda_source;     // ... and net.cu's text (NVRTC compiles its device code)
  const char *kernel_cache;    // --kernel-cache DIR (NULL: the default folder)
  const char *data;            // directory, or "synthetic"; NULL: the dataset's default
  const char *dataset;         // NULL: the network's dataset
  const char *recipe;          // preset name; NULL: the network's dataset's
  const char *opt_name[TRAINER_MAX_RECIPE_OPTS];  // recipe options as given (no dashes)
  const char *opt_value[TRAINER_MAX_RECIPE_OPTS];
  int n_opts;
  const char *out;             // run folder; NULL: runs/NAME
  int resume;
  int threads;                 // <= 0: tp_default_threads()
  int workers;                 // loader threads; < 0: 1 for in-memory data, else the CPUs
  BackendKind backend;
  int gpus;
  const char *init_weights;    // start from these weights
  int eval_only;
  const char *weights;         // --eval-only: the weights to score
  int synthetic_train, synthetic_test;  // images of --data synthetic
  int synthetic_given;         // ... given on the command line (else a resume takes the checkpoint's)
  int progress;                // 1 on, 0 off, -1 when stderr is a terminal
  int quiet;                   // no per-epoch lines on stderr
  long long checkpoint_steps;  // also write the checkpoint every this many steps (0: epochs
                               //   only; -1: not given, a resume takes the checkpoint's)
  Dist *dist;                  // data parallelism (train_dist.h); NULL: one process
  double dist_timeout;         // seconds a collective may wait (<= 0: $NAO_DIST_TIMEOUT, else 600)
  int bn_eval;                 // test mode: the train graph uses BN running statistics (no
                               //   batch statistics, aux head, dropout or drop-path), so a step
                               //   does not depend on how its batch is split across processes
} TrainerConfig;

void trainer_config_default(TrainerConfig *c);

// Why trainer_train returned.
typedef enum {
  TRAIN_DONE = 0,         // every epoch ran
  TRAIN_MAX_STEPS,        // the recipe's max_steps was reached
  TRAIN_INTERRUPTED,      // a stop was requested (signal); a checkpoint was written
} TrainEnd;

typedef struct {
  double loss, top1, top5;  // plain CE per image; fractions
  long long images;
} EvalScores;

typedef struct Trainer {
  TrainerConfig cfg;
  NetSpec spec;               // as read from the file
  Recipe recipe;
  char run_dir[4096];
  char ckpt_path[4200], best_path[4200], log_path[4200];
  char resume_data[1024], resume_dataset[32];  // the checkpoint's data (cfg points here)
  NetBuild nb;
  ModelState state;
  Backend *backend;
  DataSource *src;
  DataSet train_set, valid_set, test_set;
  int has_valid;
  Loader *train_loader, *valid_loader, *test_loader;
  int steps_per_epoch;
  long long total_steps;      // T of the drop-path schedule
  CkptInfo pos;               // where the run is: step, epoch, batch, best, seed, rng
  RunLog log;
  Progress progress;
  volatile sig_atomic_t *stop;  // set asynchronously (to the signal's number) to request a
                              //   stop at a step boundary
  int stop_signal;            // the signal that asked (for the exit status); any rank's
  Dist *dist;                 // cfg.dist, or NULL
  int stop_checked, stop_agreed;  // train_dist_stop's answer at stop_checked_step
  long long stop_checked_step;
  EvalScores last_valid, last_test;
} Trainer;

// Returns 0, or an exit status (NAO_EXIT_INPUT / USAGE / INTERNAL) after
// printing the reason; the trainer must be freed either way.
int trainer_setup(Trainer *t, const TrainerConfig *cfg, volatile sig_atomic_t *stop);
void trainer_free(Trainer *t);

// Runs the remaining epochs. Returns 0 with *end set, or an exit status.
int trainer_train(Trainer *t, TrainEnd *end);
// Scores the current weights on a split (valid: the held-out part of the
// training set). Returns 0 or an exit status.
int trainer_evaluate(Trainer *t, DataSplit split, EvalScores *out);
// --eval-only: both splits, printed and logged.
int trainer_eval_only(Trainer *t);

// Parses a recipe's JSON (recipe_to_json) into r. Returns 0, or -1 with a message.
int trainer_recipe_from_json(Recipe *r, const char *json, char *err, size_t errlen);

#endif
