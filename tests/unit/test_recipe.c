// tests/unit/test_recipe.c — presets, option parsing and the learning-rate schedules.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/recipe.h"

static int failures;
#define CHECK(cond)                                                  \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      failures++;                                                    \
    }                                                                \
  } while (0)

static int close_to(double a, double b) { return fabs(a - b) <= 1e-12 * (1 + fabs(b)); }

static void test_presets(void) {
  Recipe r;
  CHECK(recipe_preset(&r, "cifar10") == 0);
  CHECK(r.epochs == 600 && r.batch == 128 && r.cutout == 16 && r.crop_pad == 4);
  CHECK(close_to(r.weight_decay, 3e-4) && close_to(r.lr, 0.025) && r.schedule == SCHED_COSINE);
  CHECK(recipe_preset(&r, "imagenet") == 0);
  CHECK(r.epochs == 250 && r.schedule == SCHED_EXP && close_to(r.label_smoothing, 0.1));
  CHECK(recipe_preset(&r, "no-such") == -1);
}

static void test_schedules(void) {
  Recipe r;
  recipe_preset(&r, "cifar10");
  r.epochs = 10;
  r.lr = 0.1;
  r.lr_min = 0.001;
  CHECK(close_to(recipe_lr_at_epoch(&r, 0), 0.1));
  CHECK(close_to(recipe_lr_at_epoch(&r, 5), (0.1 + 0.001) / 2));
  // Epoch e of E: the curve is symmetric around the midpoint.
  CHECK(close_to(recipe_lr_at_epoch(&r, 2) + recipe_lr_at_epoch(&r, 8), 0.1 + 0.001));
  recipe_preset(&r, "imagenet");
  CHECK(close_to(recipe_lr_at_epoch(&r, 0), 0.1));
  CHECK(close_to(recipe_lr_at_epoch(&r, 3), 0.1 * 0.97 * 0.97 * 0.97));
}

static void test_options(void) {
  Recipe r;
  char err[256];
  recipe_preset(&r, "cifar10");
  CHECK(recipe_set_option(&r, "epochs", "12", err, sizeof err) == 1 && r.epochs == 12);
  CHECK(recipe_set_option(&r, "lr", "0.5", err, sizeof err) == 1 && close_to(r.lr, 0.5));
  CHECK(recipe_set_option(&r, "schedule", "exp", err, sizeof err) == 1 && r.schedule == SCHED_EXP);
  CHECK(recipe_set_option(&r, "nonsense", "1", err, sizeof err) == 0);
  CHECK(recipe_set_option(&r, "epochs", "0", err, sizeof err) == -1 && strstr(err, "--epochs"));
  CHECK(recipe_set_option(&r, "epochs", "2.5", err, sizeof err) == -1 && strstr(err, "integer"));
  CHECK(recipe_set_option(&r, "lr", "abc", err, sizeof err) == -1 && strstr(err, "not a number"));
  CHECK(recipe_set_option(&r, "schedule", "linear", err, sizeof err) == -1);
  CHECK(recipe_set_option(&r, "seed", "-3", err, sizeof err) == -1);
  CHECK(recipe_set_option(&r, "batch", "1e30", err, sizeof err) == -1 && strstr(err, "range"));
}

int main(void) {
  test_presets();
  test_schedules();
  test_options();
  if (failures) fprintf(stderr, "%d checks failed\n", failures);
  return failures != 0;
}
