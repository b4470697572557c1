// search/eval_full.c — the `full` evaluator (eval.h): each architecture
// trained from scratch for --full-epochs epochs by the training runtime and
// scored by the validation top-1 of its last epoch (a split held out of the
// training set; never the test set: NAO-SPEC O15).
//
// The recipe is the network's dataset's preset (nao-train's) with epochs =
// --full-epochs, val-size = 5000 unless given (the reference's rerank scores
// on 5,000 held-out images), then the --full-recipe overrides. Three ways to
// run the trainings (docs/search.md, "The full evaluator"):
//   in-process   one after the other, in this process, with the runtime's
//                threads ($NAO_THREADS, else the CPUs) (--jobs 1, the default)
//   processes    --jobs N > 1: N nao-train processes at once, CPUs / N threads each
//   job list     --job-list: the commands are written to ROUND/jobs.txt for
//                someone else to run; score answers EVAL_PENDING until every
//                result is there (nao-search collect reads them)
// In every mode a run whose result.json exists is read, not trained again, and
// a run killed midway (a checkpoint, no result) is resumed, so a search killed
// during a round loses at most the epochs since the trainings' checkpoints.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/train_result.h"
#include "runtime/trainer.h"
#include "search/eval_full.h"
#include "search/sfile.h"

// ---------------------------------------------------------------- paths

char *full_run_dir(const char *path, int absolute) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  char *dir = slash ? xstrdup(path) : xstrdup(".");
  if (slash) dir[slash - path] = '\0';
  if (slash == path) dir[0] = '/', dir[1] = '\0';
  char abs[PATH_MAX];
  if (absolute && realpath(dir, abs)) free(dir), dir = xstrdup(abs);
  size_t n = strlen(base);
  if (n > 4 && !strcmp(base + n - 4, ".nao")) n -= 4;
  StrBuf sb = {0};
  sb_printf(&sb, "%s/runs/%.*s", dir, (int)n, base);
  free(dir);
  return sb_steal(&sb);
}

int full_read_score(const Full *f, const EvalItem *it, const char *run, double *acc, char *err, size_t errlen) {
  TrainResult r;
  char why[700];
  int rc = train_result_read(run, &r, why, sizeof why);
  if (rc == 1) return 1;
  if (rc < 0) return snprintf(err, errlen, "full evaluator: arch '%s': %s", it->text, why), -1;
  if (r.recipe_epochs != f->epochs)
    return snprintf(err, errlen, "full evaluator: arch '%s': %s/result.json is from a run of %d epochs, this search "
                    "trains %d (remove the run folder to train it again)", it->text, run, r.recipe_epochs, f->epochs), -1;
  if (r.epochs != f->epochs && !f->max_steps)  // cut short by a --max-steps the search did not ask for
    return snprintf(err, errlen, "full evaluator: arch '%s': %s/result.json is from a run stopped after %d of %d "
                    "epochs (%s at step %lld; remove the run folder to train it again)", it->text, run, r.epochs,
                    f->epochs, r.end, r.steps), -1;
  if (!isfinite(r.valid_top1))
    return snprintf(err, errlen, "full evaluator: arch '%s': %s/result.json has no validation score (a recipe "
                    "with val-size 0?)", it->text, run), -1;
  *acc = r.valid_top1;
  return 0;
}

// ---------------------------------------------------------------- in-process

static int train_in_process(Full *f, const EvalItem *it, const char *run, char *err, size_t errlen) {
  TrainerConfig c;
  trainer_config_default(&c);
  c.net_path = it->path, c.data = f->data, c.out = run;
  c.quiet = 1, c.progress = 0, c.threads = 0;
  for (int k = 0; k < f->n_opts; k++) c.opt_name[k] = f->opt_name[k], c.opt_value[k] = f->opt_value[k];
  c.n_opts = f->n_opts;
  if (f->synth_train > 0)
    c.synthetic_train = f->synth_train, c.synthetic_test = f->synth_test, c.synthetic_given = 1;
  char ckpt[4300];
  snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", run);
  c.resume = sf_exists(ckpt);  // killed midway: continue it (bit for bit)
  Trainer t;
  TrainEnd end = TRAIN_DONE;
  double t0 = progress_now();
  char why[700] = "";
  int rc = trainer_setup(&t, &c, &f->stop);
  if (rc == 0) rc = trainer_train(&t, &end);
  if (rc == 0 && end == TRAIN_INTERRUPTED) rc = NAO_EXIT_INTERNAL;  // nothing sets the flag
  if (rc == 0 && train_result_write(&t, end, progress_now() - t0, why, sizeof why) != 0) rc = NAO_EXIT_INPUT;
  trainer_free(&t);
  if (rc)
    snprintf(err, errlen, "full evaluator: arch '%s' (%s): training failed (status %d%s%s); its run folder: %s "
             "(log %s/log.jsonl)", it->text, it->path, rc, why[0] ? ": " : ", the reason is printed above",
             why, run, run);
  return rc ? -1 : 0;
}

// ---------------------------------------------------------------- score

static int full_score(Evaluator *ev, const EvalItem *items, int n, double *acc, EvalDoneFn done, void *ctx, char *err,
                      size_t errlen) {
  Full *f = ev->impl;
  int *todo = xmalloc((size_t)(n ? n : 1) * sizeof(int)), m = 0, rc = 0;
  for (int i = 0; rc == 0 && i < n; i++) {  // finished before (a kill, a job list): read back
    char *run = full_run_dir(items[i].path, 0);
    int got = full_read_score(f, &items[i], run, &acc[i], err, errlen);
    if (got < 0) rc = -1;
    else if (got == 0 && done) done(ctx, i, acc[i]);
    else if (got == 1) todo[m++] = i;
    free(run);
  }
  if (rc == 0 && m) {
    char *runs = full_run_dir(items[todo[0]].path, 0);  // ROUND/runs/arch-IIII -> ROUND/runs
    *strrchr(runs, '/') = '\0';
    if (sf_mkdir(runs, err, errlen) != 0) rc = -1;
    free(runs);
  }
  if (rc == 0 && m && f->job_list) rc = full_job_list(f, items, todo, m, err, errlen);
  else if (rc == 0 && m && f->jobs > 1) rc = full_run_processes(f, items, todo, m, acc, done, ctx, err, errlen);
  for (int k = 0; rc == 0 && k < m && !f->job_list && f->jobs <= 1; k++) {
    const EvalItem *it = &items[todo[k]];
    char *run = full_run_dir(it->path, 0);
    rc = train_in_process(f, it, run, err, errlen);
    if (rc == 0 && full_read_score(f, it, run, &acc[todo[k]], err, errlen) != 0) {
      if (!strstr(err, "full evaluator"))
        snprintf(err, errlen, "full evaluator: arch '%s': %s/result.json is missing after training", it->text, run);
      rc = -1;
    }
    if (rc == 0 && done) done(ctx, todo[k], acc[todo[k]]);
    free(run);
  }
  free(todo);
  return rc;
}

// ---------------------------------------------------------------- options

static char *dup_n(const char *s, size_t n) {
  char *d = xmalloc(n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

// --full-recipe "name=value,...": each checked against the recipe options.
static int parse_recipe(Full *f, const char *spec, char *err, size_t errlen) {
  Recipe scratch;
  char why[256];
  recipe_preset(&scratch, "cifar10");
  for (const char *p = spec; p && *p;) {
    const char *comma = strchr(p, ','), *end = comma ? comma : p + strlen(p);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (!eq || eq == p)
      return snprintf(err, errlen, "--full-recipe: '%.*s' is not name=value", (int)(end - p), p), -1;
    char *name = dup_n(p, (size_t)(eq - p)), *value = dup_n(eq + 1, (size_t)(end - eq - 1));
    int got = recipe_set_option(&scratch, name, value, why, sizeof why);
    int bad = got <= 0 || !strcmp(name, "epochs") || (!strcmp(name, "val-size") && scratch.val_size == 0);
    if (bad) {
      if (got == 0) snprintf(err, errlen, "--full-recipe: '%s' is not a recipe option (nao-train --help lists them)", name);
      else if (got < 0) snprintf(err, errlen, "--full-recipe: %s", why);
      else if (!strcmp(name, "epochs")) snprintf(err, errlen, "--full-recipe: give the epochs with --full-epochs");
      else snprintf(err, errlen, "--full-recipe: val-size=0 leaves no validation split to score on");
      free(name), free(value);
      return -1;
    }
    if (!strcmp(name, "max-steps") && scratch.max_steps > 0) f->max_steps = 1;
    int k = 1;  // a val-size given replaces the default's slot
    if (strcmp(name, "val-size")) k = f->n_opts++;
    if (k >= FULL_MAX_OPTS) return free(name), free(value), snprintf(err, errlen, "--full-recipe: too many options"), -1;
    free(f->opt_name[k]), free(f->opt_value[k]);
    f->opt_name[k] = name, f->opt_value[k] = value;
    p = comma ? comma + 1 : end;
  }
  return 0;
}

// nao-train: --nao-train PATH, else beside this program (/proc/self/exe).
static int find_nao_train(Full *f, const char *given, char *err, size_t errlen) {
  char self[PATH_MAX], abs[PATH_MAX];
  StrBuf sb = {0};
  if (given && *given) {
    sb_append(&sb, given);
  } else {
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) return snprintf(err, errlen, "full evaluator: cannot find this program (/proc/self/exe: %s): give "
                                "--nao-train PATH", strerror(errno)), -1;
    self[k] = '\0';
    *strrchr(self, '/') = '\0';
    sb_printf(&sb, "%s/nao-train", self);
  }
  int ok = realpath(sb.data, abs) && access(abs, X_OK) == 0;
  if (!ok)
    snprintf(err, errlen, "full evaluator: %s: no nao-train program there (%s)%s", sb.data, strerror(errno),
             given && *given ? "" : ": give --nao-train PATH");
  else f->nao_train = xstrdup(abs);
  sb_free(&sb);
  return ok ? 0 : -1;
}

static void full_destroy(Evaluator *ev) {
  Full *f = ev->impl;
  if (!f) return;
  for (int k = 0; k < f->n_opts; k++) free(f->opt_name[k]), free(f->opt_value[k]);
  free(f->out), free(f->data), free(f->data_abs), free(f->nao_train), free(f);
  ev->impl = NULL;
}

static int full_setup(Full *f, const EvalOptions *o, char *err, size_t errlen) {
  if (o->space->vocab != 12 && o->space->vocab != 18)  // nb201 cells are not NAO networks
    return snprintf(err, errlen, "the full evaluator trains NAO networks: --space nao-small or nao-large, not %s",
                    o->space->name), -1;
  if (o->jobs < 1 || o->jobs > 64) return snprintf(err, errlen, "--jobs %d: 1 to 64", o->jobs), -1;
  char num[32];
  snprintf(num, sizeof num, "%d", o->full_epochs);
  f->opt_name[0] = xstrdup("epochs"), f->opt_value[0] = xstrdup(num);
  snprintf(num, sizeof num, "%d", FULL_DEFAULT_VAL_SIZE);
  f->opt_name[1] = xstrdup("val-size"), f->opt_value[1] = xstrdup(num);
  f->n_opts = 2;
  if (parse_recipe(f, o->full_recipe, err, errlen) != 0) return -1;
  const char *syn = o->full_synthetic;
  char tail;
  if (syn && *syn && (sscanf(syn, "%d,%d%c", &f->synth_train, &f->synth_test, &tail) != 2 || f->synth_train < 1 ||
                      f->synth_test < 1))
    return snprintf(err, errlen, "--full-synthetic-size: TRAIN,TEST image counts (e.g. 2560,512), not '%s'", syn), -1;
  // Checked now rather than by the first training: a search that cannot train
  // anything should not start (nor leave a run folder).
  const DatasetInfo *d = o->backbone ? dataset_info(o->backbone->dataset) : NULL;
  const int kind = d ? data_kind_parse(d->name) : -1;
  if ((!o->full_data || !*o->full_data) && kind >= 0 && !data_default_dir((DataKind)kind))
    return snprintf(err, errlen, "--data: the %s dataset needs its folder (--data DIR or --full-data DIR), or "
                    "--data synthetic", d->name), -1;
  if (o->full_data && *o->full_data && strcmp(o->full_data, "synthetic") && access(o->full_data, R_OK | X_OK) != 0)
    return snprintf(err, errlen, "--data %s: %s", o->full_data, strerror(errno)), -1;
  if (o->full_data && *o->full_data) {
    char abs[PATH_MAX];
    f->data = xstrdup(o->full_data);
    f->data_abs = xstrdup(!strcmp(o->full_data, "synthetic") || !realpath(o->full_data, abs) ? o->full_data : abs);
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  f->threads_per_job = cpus / o->jobs > 1 ? (int)(cpus / o->jobs) : 1;
  if ((o->jobs > 1 || o->job_list) && find_nao_train(f, o->nao_train, err, errlen) != 0) return -1;
  return 0;
}

int eval_full_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen) {
  if (o->full_epochs < 1) return snprintf(err, errlen, "--full-epochs %d: at least 1", o->full_epochs), -1;
  Full *f = xcalloc(1, sizeof *f);
  f->sp = o->space, f->epochs = o->full_epochs, f->jobs = o->jobs, f->timeout = o->timeout_s;
  f->job_list = o->job_list, f->collect = o->collect;
  f->out = xstrdup(o->out ? o->out : "OUT");
  ev->kind = "full", ev->impl = f, ev->score = full_score, ev->destroy = full_destroy;
  if (full_setup(f, o, err, errlen) != 0) {
    full_destroy(ev);
    return -1;
  }
  return 0;
}
