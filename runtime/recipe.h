// runtime/recipe.h — training recipes: every hyperparameter of a run, with the
// reference implementation's recipes as presets (NAO-SPEC.md §1d).
//
// A Recipe starts from a preset (by name, or the one matching the network's
// dataset) and every field can then be overridden by a command-line option.
// The same table of options serves nao-train and the generated trainers, so
// they accept the same flags; `recipe_print_help` lists them.
#ifndef NAO_RECIPE_H
#define NAO_RECIPE_H

#include <stdio.h>

typedef enum { SCHED_COSINE = 0, SCHED_EXP = 1, SCHED_CONST = 2 } LrSchedule;

typedef struct {
  char name[32];            // preset it started from: "cifar10", "imagenet", "fashion-mnist"
  int epochs;
  int batch;                // per process (per GPU)
  int eval_batch;
  double lr;                // initial learning rate (per process batch; see lr_scale)
  double lr_min;            // cosine floor
  LrSchedule schedule;
  double lr_decay;          // exponential: lr_e = lr * decay^e
  double momentum;
  double weight_decay;
  double grad_clip;         // global L2 norm; 0: off
  double label_smoothing;
  // Network settings a run may override (negative: keep the network's).
  double aux_weight;
  double drop_path_keep;
  double dropout_keep;
  // Data.
  int augment;              // random crop/flip (and the ImageNet transforms)
  int crop_pad;             // zero padding of the random crop (CIFAR: 4)
  int cutout;               // cutout square size, 0: off
  int val_size;             // images held out of the training set for validation
  unsigned long long seed;
  int log_interval;         // steps between log records
  long max_steps;           // stop after this many steps (0: run all epochs)
} Recipe;

// Fills r with a named preset. Returns 0, or -1 when the name is unknown.
int recipe_preset(Recipe *r, const char *name);
// The preset names, NULL-terminated, for messages.
extern const char *const recipe_preset_names[];

// Learning rate of epoch e (0-based) of `epochs`: the closed forms of NAO-SPEC §1d
// (cosine: lr_min + (lr - lr_min)(1 + cos(pi e / E)) / 2; exponential: lr * decay^e).
double recipe_lr_at_epoch(const Recipe *r, int epoch);

// Applies option `opt` (without leading dashes) with value `val` when it is a
// recipe option. Returns 1 when taken, 0 when the option is not a recipe option,
// -1 when the value is invalid (a message naming the option and the accepted
// values is written to err).
int recipe_set_option(Recipe *r, const char *opt, const char *val, char *err, size_t errlen);
void recipe_print_help(FILE *out);
// One JSON object with every field (for logs and checkpoints' metadata).
void recipe_to_json(const Recipe *r, char *out, size_t outlen);

#endif
