// runtime/train_result.h — RUN/result.json: the machine-readable outcome of a
// finished training run (docs/training.md, "result.json").
//
// nao-train writes it once training has ended normally (every epoch, or
// --max-steps), after the final checkpoint; an interrupted, failed or
// --eval-only run writes none, so its presence means "finished". It is
// replaced atomically: a reader sees the whole file or none. Programs that
// schedule trainings (nao-search's full evaluator, job lists) read it back
// with train_result_read instead of parsing log.jsonl.
//
// Accuracies are fractions in [0, 1] from the final epoch's evaluation;
// valid_* are null (NAN here) when the recipe holds no validation split out.
#ifndef NAO_TRAIN_RESULT_H
#define NAO_TRAIN_RESULT_H

#include <stddef.h>

#include "runtime/trainer.h"

enum { TRAIN_RESULT_VERSION = 1 };

typedef struct {
  int version;
  char end[16];                // "done" | "max_steps"
  int epochs;                  // epochs completed
  int recipe_epochs;           // epochs the recipe asked for
  long long steps;
  double valid_top1, valid_top5, valid_loss;  // final epoch; NAN: no validation split
  long long valid_images;
  double best_valid_top1;      // best epoch's (NAN: no validation split)
  int best_epoch;              // 0-based; -1 none
  double test_top1, test_top5, test_loss;
  long long test_images;
  double seconds;              // wall time of this process's training (a resumed run: since the resume)
} TrainResult;

// The result of trainer t, ended as `end`, into RUN/result.json (atomically).
// Returns 0 or -1 with a message naming the file.
int train_result_write(const Trainer *t, TrainEnd end, double seconds, char *err, size_t errlen);
// Reads RUN_DIR/result.json. Returns 0, 1 when there is none (not finished),
// or -1 with a message naming the file and what is wrong.
int train_result_read(const char *run_dir, TrainResult *r, char *err, size_t errlen);

#endif
