// runtime/recipe.c — presets, options and learning-rate schedules (recipe.h).
#include "runtime/recipe.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const char *const recipe_preset_names[] = {"cifar10", "imagenet", "fashion-mnist", NULL};

static void base(Recipe *r, const char *name) {
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  r->momentum = 0.9;
  r->grad_clip = 5.0;
  r->aux_weight = -1;
  r->drop_path_keep = -1;
  r->dropout_keep = -1;
  r->augment = 1;
  r->seed = 0;
  r->log_interval = 50;
}

int recipe_preset(Recipe *r, const char *name) {
  if (strcmp(name, "cifar10") == 0) {
    // train_cifar.py with the NAONet scripts: 600 epochs, batch 128, cosine 0.025 -> 0.
    base(r, name);
    r->epochs = 600;
    r->batch = 128;
    r->eval_batch = 500;
    r->lr = 0.025;
    r->lr_min = 0;
    r->schedule = SCHED_COSINE;
    r->weight_decay = 3e-4;
    r->crop_pad = 4;
    r->cutout = 16;
    return 0;
  }
  if (strcmp(name, "imagenet") == 0) {
    // train_imagenet.py, per GPU: batch 128, lr 0.1, x0.97 per epoch, smoothing 0.1.
    base(r, name);
    r->epochs = 250;
    r->batch = 128;
    r->eval_batch = 128;
    r->lr = 0.1;
    r->schedule = SCHED_EXP;
    r->lr_decay = 0.97;
    r->weight_decay = 3e-5;
    r->label_smoothing = 0.1;
    return 0;
  }
  if (strcmp(name, "fashion-mnist") == 0) {
    // Ours (no reference recipe): short cosine run with crop + flip, a validation split.
    base(r, name);
    r->epochs = 10;
    r->batch = 64;
    r->eval_batch = 500;
    r->lr = 0.05;
    r->lr_min = 0;
    r->schedule = SCHED_COSINE;
    r->weight_decay = 3e-4;
    r->crop_pad = 2;
    r->val_size = 5000;
    return 0;
  }
  return -1;
}

double recipe_lr_at_epoch(const Recipe *r, int epoch) {
  switch (r->schedule) {
    case SCHED_COSINE:
      return r->lr_min + (r->lr - r->lr_min) * (1 + cos(M_PI * epoch / r->epochs)) / 2;
    case SCHED_EXP:
      return r->lr * pow(r->lr_decay, epoch);
    case SCHED_CONST:
      break;
  }
  return r->lr;
}

// ---------------------------------------------------------------- options

typedef enum { OPT_INT, OPT_LONG, OPT_DOUBLE, OPT_BOOL, OPT_SCHED, OPT_U64 } OptType;

typedef struct {
  const char *name;
  OptType type;
  size_t offset;
  double lo, hi;       // accepted range (inclusive)
  const char *help;
} RecipeOption;

#define FIELD(f) offsetof(Recipe, f)
static const RecipeOption options[] = {
    {"epochs", OPT_INT, FIELD(epochs), 1, 100000, "training epochs"},
    {"batch", OPT_INT, FIELD(batch), 1, 1 << 20, "batch size per process"},
    {"eval-batch", OPT_INT, FIELD(eval_batch), 1, 1 << 20, "batch size for evaluation"},
    {"lr", OPT_DOUBLE, FIELD(lr), 0, 1e3, "initial learning rate"},
    {"lr-min", OPT_DOUBLE, FIELD(lr_min), 0, 1e3, "final learning rate of the cosine schedule"},
    {"schedule", OPT_SCHED, FIELD(schedule), 0, 0, "cosine | exp | const"},
    {"lr-decay", OPT_DOUBLE, FIELD(lr_decay), 0, 1, "factor per epoch of the exp schedule"},
    {"momentum", OPT_DOUBLE, FIELD(momentum), 0, 1, "SGD momentum"},
    {"weight-decay", OPT_DOUBLE, FIELD(weight_decay), 0, 1, "L2 weight decay (all parameters)"},
    {"grad-clip", OPT_DOUBLE, FIELD(grad_clip), 0, 1e9, "clip the global gradient norm (0: off)"},
    {"label-smoothing", OPT_DOUBLE, FIELD(label_smoothing), 0, 0.999, "label smoothing epsilon"},
    {"aux-weight", OPT_DOUBLE, FIELD(aux_weight), 0, 1e3, "auxiliary loss weight (network's by default)"},
    {"drop-path-keep", OPT_DOUBLE, FIELD(drop_path_keep), 1e-6, 1, "final drop-path keep probability"},
    {"dropout-keep", OPT_DOUBLE, FIELD(dropout_keep), 1e-6, 1, "dropout keep probability before the classifier"},
    {"augment", OPT_BOOL, FIELD(augment), 0, 1, "1: random crop and flip (ImageNet: its transforms); 0: none"},
    {"crop-pad", OPT_INT, FIELD(crop_pad), 0, 64, "zero padding of the random crop"},
    {"cutout", OPT_INT, FIELD(cutout), 0, 1024, "cutout square size (0: off)"},
    {"val-size", OPT_INT, FIELD(val_size), 0, 100000000, "training images held out for validation"},
    {"seed", OPT_U64, FIELD(seed), 0, 0, "random seed"},
    {"log-interval", OPT_INT, FIELD(log_interval), 1, 1000000000, "steps between log records"},
    {"max-steps", OPT_LONG, FIELD(max_steps), 0, 1e15, "stop after this many steps (0: all epochs)"},
};
#undef FIELD

static int parse_number(const char *val, double *out) {
  char *end;
  errno = 0;
  double v = strtod(val, &end);
  if (errno || end == val || *end || !isfinite(v)) return -1;
  *out = v;
  return 0;
}

static int set_typed(Recipe *r, const RecipeOption *o, const char *val, char *err, size_t errlen) {
  void *field = (char *)r + o->offset;
  if (o->type == OPT_SCHED) {
    LrSchedule s;
    if (strcmp(val, "cosine") == 0) s = SCHED_COSINE;
    else if (strcmp(val, "exp") == 0) s = SCHED_EXP;
    else if (strcmp(val, "const") == 0) s = SCHED_CONST;
    else {
      snprintf(err, errlen, "--%s: '%s' is not a schedule (cosine, exp or const)", o->name, val);
      return -1;
    }
    *(LrSchedule *)field = s;
    return 1;
  }
  if (o->type == OPT_U64) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(val, &end, 10);
    if (errno || end == val || *end || val[0] == '-') {
      snprintf(err, errlen, "--%s: '%s' is not a non-negative integer", o->name, val);
      return -1;
    }
    *(unsigned long long *)field = v;
    return 1;
  }
  double v;
  if (parse_number(val, &v) != 0) {
    snprintf(err, errlen, "--%s: '%s' is not a number", o->name, val);
    return -1;
  }
  int integral = o->type != OPT_DOUBLE;
  if (integral && v != floor(v)) {
    snprintf(err, errlen, "--%s: '%s' is not an integer", o->name, val);
    return -1;
  }
  if (v < o->lo || v > o->hi) {
    snprintf(err, errlen, "--%s: %s is out of range (%g to %g)", o->name, val, o->lo, o->hi);
    return -1;
  }
  switch (o->type) {
    case OPT_INT:
    case OPT_BOOL: *(int *)field = (int)v; break;
    case OPT_LONG: *(long *)field = (long)v; break;
    case OPT_DOUBLE: *(double *)field = v; break;
    default: break;
  }
  return 1;
}

int recipe_set_option(Recipe *r, const char *opt, const char *val, char *err, size_t errlen) {
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    if (strcmp(options[i].name, opt) == 0) return set_typed(r, &options[i], val, err, errlen);
  return 0;
}

void recipe_print_help(FILE *out) {
  for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
    fprintf(out, "  --%-18s %s\n", options[i].name, options[i].help);
}

void recipe_to_json(const Recipe *r, char *out, size_t outlen) {
  static const char *const sched[] = {"cosine", "exp", "const"};
  snprintf(out, outlen,
           "{\"preset\":\"%s\",\"epochs\":%d,\"batch\":%d,\"eval_batch\":%d,\"lr\":%.17g,"
           "\"lr_min\":%.17g,\"schedule\":\"%s\",\"lr_decay\":%.17g,\"momentum\":%.17g,"
           "\"weight_decay\":%.17g,\"grad_clip\":%.17g,\"label_smoothing\":%.17g,"
           "\"aux_weight\":%.17g,\"drop_path_keep\":%.17g,\"dropout_keep\":%.17g,\"augment\":%d,"
           "\"crop_pad\":%d,\"cutout\":%d,\"val_size\":%d,\"seed\":%llu,\"max_steps\":%ld,"
           "\"log_interval\":%d}",
           r->name, r->epochs, r->batch, r->eval_batch, r->lr, r->lr_min, sched[r->schedule],
           r->lr_decay, r->momentum, r->weight_decay, r->grad_clip, r->label_smoothing,
           r->aux_weight, r->drop_path_keep, r->dropout_keep, r->augment, r->crop_pad, r->cutout,
           r->val_size, r->seed, r->max_steps, r->log_interval);
}
