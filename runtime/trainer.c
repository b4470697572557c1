// runtime/trainer.c — setting a training run up (trainer.h): the network, the
// recipe, the run folder, the model state (fresh, resumed or given), the data
// and its loaders, the backend and the log. The loop is in train_loop.c.
//
// Everything that can be wrong with the input is found here, before the first
// step, and reported with the file or option and what is wrong.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/frontend.h"
#include "compiler/util.h"
#include "runtime/json.h"
#include "runtime/safetensors.h"
#include "runtime/train_dist.h"
#include "runtime/trainer.h"

enum { INIT_PURPOSE = 0x1417 };  // rng_derive purpose of the init stream

void trainer_config_default(TrainerConfig *c) {
  memset(c, 0, sizeof *c);
  c->workers = -1;
  c->backend = BACKEND_CPU;
  c->gpus = 1;
  c->synthetic_train = 2560;
  c->synthetic_test = 512;
  c->progress = -1;
  c->checkpoint_steps = -1;
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nao-train: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  return code;
}

// ---------------------------------------------------------------- recipe

int trainer_recipe_from_json(Recipe *r, const char *json, char *err, size_t errlen) {
  JsonDoc doc;
  char why[256];
  if (json_parse(json, strlen(json), &doc, why, sizeof why) != 0) {
    snprintf(err, errlen, "the recipe is not valid JSON: %s", why);
    return -1;
  }
  const JsonValue *root = doc.root;
  const JsonValue *preset = json_get(root, "preset");
  int rc = root->kind == JSON_OBJECT && preset && preset->kind == JSON_STRING &&
                   recipe_preset(r, preset->str) == 0 ? 0 : -1;
  if (rc != 0) snprintf(err, errlen, "the recipe names no known preset");
  for (int i = 0; rc == 0 && i < root->n; i++) {
    const char *key = root->keys[i];
    const JsonValue *v = &root->items[i];
    if (!strcmp(key, "preset")) continue;
    char opt[64], val[64];
    snprintf(opt, sizeof opt, "%s", key);
    for (char *c = opt; *c; c++) *c = *c == '_' ? '-' : *c;
    if (v->kind == JSON_STRING) snprintf(val, sizeof val, "%s", v->str);
    else if (v->kind == JSON_NUMBER && v->is_int) snprintf(val, sizeof val, "%lld", (long long)v->integer);
    else if (v->kind == JSON_NUMBER) snprintf(val, sizeof val, "%.17g", v->number);
    else rc = -1, snprintf(err, errlen, "recipe field '%s' has a %s value", key, json_kind_name(v->kind));
    if (rc != 0) break;
    // "keep the network's" is stored as -1, which no option accepts.
    double *keep = !strcmp(key, "aux_weight") ? &r->aux_weight
                   : !strcmp(key, "drop_path_keep") ? &r->drop_path_keep
                   : !strcmp(key, "dropout_keep") ? &r->dropout_keep : NULL;
    if (keep && v->kind == JSON_NUMBER && v->number < 0) {
      *keep = -1;
      continue;
    }
    int got = recipe_set_option(r, opt, val, why, sizeof why);
    if (got <= 0) {
      rc = -1;
      snprintf(err, errlen, "recipe field '%s': %s", key, got == 0 ? "unknown" : why);
    }
  }
  json_free(&doc);
  return rc;
}

static int recipe_option_given(const TrainerConfig *c, const char *name) {
  for (int i = 0; i < c->n_opts; i++)
    if (!strcmp(c->opt_name[i], name)) return 1;
  return 0;
}

static int apply_options(Recipe *r, const TrainerConfig *c) {
  char why[256];
  for (int i = 0; i < c->n_opts; i++) {
    int got = recipe_set_option(r, c->opt_name[i], c->opt_value[i], why, sizeof why);
    if (got == 0)
      return fail(NAO_EXIT_USAGE, "unknown option '--%s' (nao-train --help lists the options)",
                  c->opt_name[i]);
    if (got < 0) return fail(NAO_EXIT_USAGE, "%s", why);
  }
  return 0;
}

static int choose_recipe(Trainer *t) {
  const TrainerConfig *c = &t->cfg;
  const DatasetInfo *d = dataset_info(t->spec.dataset);
  const char *name = c->recipe ? c->recipe : d ? d->name : NULL;
  if (!name)
    return fail(NAO_EXIT_USAGE, "%s names no dataset: choose a recipe with --recipe (cifar10, imagenet or fashion-mnist)",
                c->net_path);
  if (recipe_preset(&t->recipe, name) != 0)
    return fail(NAO_EXIT_USAGE, "--recipe: '%s' is not a recipe (cifar10, imagenet or fashion-mnist)", name);
  return apply_options(&t->recipe, c);
}

// --resume: the checkpoint's data unless other data are named now.
static void resume_data(Trainer *t, const SafeTensors *st) {
  TrainerConfig *c = &t->cfg;
  const char *data = st_meta_get(st, "data"), *kind = st_meta_get(st, "dataset");
  const char *synth = st_meta_get(st, "synthetic_size");
  if (!c->data && data && *data) {
    snprintf(t->resume_data, sizeof t->resume_data, "%s", data);
    c->data = t->resume_data;
    if (!c->dataset && kind && *kind && strcmp(kind, "synthetic")) {
      snprintf(t->resume_dataset, sizeof t->resume_dataset, "%s", kind);
      c->dataset = t->resume_dataset;
    }
  }
  const char *cs = st_meta_get(st, "checkpoint_steps");
  if (c->checkpoint_steps < 0 && cs) c->checkpoint_steps = strtoll(cs, NULL, 10);
  int a, b;
  if (!c->synthetic_given && synth && sscanf(synth, "%d,%d", &a, &b) == 2 && a > 0 && b > 0)
    c->synthetic_train = a, c->synthetic_test = b;
}

// --resume: the checkpoint's recipe, then the options given now.
static int resume_recipe(Trainer *t) {
  SafeTensors *st;
  char err[600];
  if (st_open(t->ckpt_path, &st, err, sizeof err) != 0) return fail(NAO_EXIT_INPUT, "--resume: %s", err);
  const char *json = st_meta_get(st, "recipe");
  resume_data(t, st);
  int rc = 0;
  if (!json) rc = fail(NAO_EXIT_INPUT, "--resume: %s: no recipe in its metadata (not a naoc checkpoint?)", t->ckpt_path);
  else if (trainer_recipe_from_json(&t->recipe, json, err, sizeof err) != 0)
    rc = fail(NAO_EXIT_INPUT, "--resume: %s: %s", t->ckpt_path, err);
  st_close(st);
  if (rc == 0 && t->cfg.n_opts > 0) {
    fprintf(stderr, "nao-train: note: options given with --resume override the checkpoint's recipe\n");
    rc = apply_options(&t->recipe, &t->cfg);
  }
  return rc;
}

// ---------------------------------------------------------------- run folder

static int make_dirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++) {
    if (*p != '/' && *p) continue;
    char c = *p;
    *p = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    if (!c) break;
    *p = c;
  }
  struct stat s;
  return stat(buf, &s) == 0 && S_ISDIR(s.st_mode) ? 0 : (errno = ENOTDIR, -1);
}

static int file_exists(const char *path) {
  struct stat s;
  return stat(path, &s) == 0;
}

static int setup_run_dir(Trainer *t) {
  const TrainerConfig *c = &t->cfg;
  if (c->out) {
    snprintf(t->run_dir, sizeof t->run_dir, "%s", c->out);
  } else {
    const char *base = strrchr(c->net_path, '/');
    base = base ? base + 1 : c->net_path;
    int n = (int)strcspn(base, ".");
    if (t->spec.name[0]) snprintf(t->run_dir, sizeof t->run_dir, "runs/%s", t->spec.name);
    else snprintf(t->run_dir, sizeof t->run_dir, "runs/%.*s", n, base);
  }
  snprintf(t->ckpt_path, sizeof t->ckpt_path, "%s/checkpoint.safetensors", t->run_dir);
  snprintf(t->best_path, sizeof t->best_path, "%s/best.safetensors", t->run_dir);
  snprintf(t->log_path, sizeof t->log_path, "%s/log.jsonl", t->run_dir);
  if (c->eval_only && !c->out) return 0;  // nothing is written
  if (train_dist_writer(t) && make_dirs(t->run_dir) != 0)
    return fail(NAO_EXIT_INPUT, "--out %s: cannot create the run folder: %s", t->run_dir, strerror(errno));
  if (c->resume && !file_exists(t->ckpt_path))
    return fail(NAO_EXIT_INPUT, "--resume: nothing to resume: %s does not exist", t->ckpt_path);
  if (!c->resume && !c->eval_only && file_exists(t->ckpt_path))
    return fail(NAO_EXIT_INPUT,
                "%s already holds a run (checkpoint.safetensors): pass --resume to continue it, or another --out",
                t->run_dir);
  return 0;
}

// ---------------------------------------------------------------- model

static int setup_model(Trainer *t) {
  const TrainerConfig *c = &t->cfg;
  const Recipe *r = &t->recipe;
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.train = !c->eval_only;
  o.label_smoothing = (float)r->label_smoothing;
  o.aux_weight = r->aux_weight, o.drop_path_keep = r->drop_path_keep, o.dropout_keep = r->dropout_keep;
  o.train_bn_eval = c->bn_eval;
  char err[600];
  if (netbuild_create(&t->spec, &o, &t->nb, err, sizeof err) != 0)
    return fail(NAO_EXIT_INPUT, "%s: %s", c->net_path, err);
  model_state_init(&t->state, &t->nb.params);
  memset(&t->pos, 0, sizeof t->pos);
  t->pos.seed = r->seed;
  t->pos.best_valid_top1 = -1;
  t->pos.best_epoch = -1;
  rng_derive(&t->pos.rng, r->seed, INIT_PURPOSE);
  int rc = 0;
  if (c->resume) {
    rc = ckpt_load(t->ckpt_path, CKPT_FULL, &t->nb.spec, &t->state, &t->pos, err, sizeof err);
  } else if (c->eval_only || c->init_weights) {
    rc = ckpt_load(c->eval_only ? c->weights : c->init_weights, CKPT_WEIGHTS, &t->nb.spec,
                   &t->state, NULL, err, sizeof err);
  } else {
    model_state_init_weights(&t->state, &t->pos.rng);
  }
  if (rc != 0)
    return fail(NAO_EXIT_INPUT, "%s: %s", c->resume ? "--resume" : c->eval_only ? "--weights" : "--init-weights", err);
  int world = t->dist ? dist_world(t->dist) : 1;
  if (c->resume && (t->pos.world > 0 ? t->pos.world : 1) != world)
    return fail(NAO_EXIT_INPUT,
                "--resume: %s was written by a run of %d process%s, this one has %d: resume it with "
                "%d (mpirun -np %d, or --gpus %d)",
                t->ckpt_path, t->pos.world > 0 ? t->pos.world : 1, t->pos.world > 1 ? "es" : "",
                world, t->pos.world > 0 ? t->pos.world : 1, t->pos.world > 0 ? t->pos.world : 1,
                t->pos.world > 0 ? t->pos.world : 1);
  t->pos.world = world;
  t->pos.seed = r->seed;
  return 0;
}

// ---------------------------------------------------------------- data

static int data_kind_of(Trainer *t, DataKind *kind) {
  const TrainerConfig *c = &t->cfg;
  if (c->data && !strcmp(c->data, "synthetic")) return *kind = DATA_SYNTHETIC, 0;
  const DatasetInfo *d = dataset_info(t->spec.dataset);
  const char *name = c->dataset ? c->dataset : d ? d->name : NULL;
  if (!name)
    return fail(NAO_EXIT_USAGE, "%s names no dataset: pass --dataset (fashion-mnist, cifar10 or imagenet) or --data synthetic",
                c->net_path);
  int k = data_kind_parse(name);
  if (k < 0 || k == DATA_SYNTHETIC)
    return fail(NAO_EXIT_USAGE, "--dataset: '%s' is not a dataset (fashion-mnist, cifar10 or imagenet)", name);
  if (!c->data && !data_default_dir((DataKind)k))
    return fail(NAO_EXIT_USAGE, "--data: the %s dataset needs its folder (--data DIR), or --data synthetic", name);
  *kind = (DataKind)k;
  return 0;
}

static int set_augment(Trainer *t, DataKind kind, AugmentSpec *a) {
  const Recipe *r = &t->recipe;
  augment_preset(a, kind, r->augment);
  if (r->augment && (kind == DATA_FASHION_MNIST || kind == DATA_CIFAR10)) {
    a->pad_crop = r->crop_pad;
    a->cutout = r->cutout;
  }
  char err[300];
  if (augment_check(a, kind, t->spec.in_channels, err, sizeof err) != 0)
    return fail(NAO_EXIT_USAGE, "augmentation: %s", err);
  return 0;
}

static int open_loader(Trainer *t, DataKind kind, DataSet *ds, int train, Loader **out) {
  const Recipe *r = &t->recipe;
  LoaderOptions o;
  loader_options_default(&o, kind, train);
  o.batch = train ? r->batch : r->eval_batch;
  o.seed = r->seed;
  o.workers = t->cfg.workers >= 0 ? t->cfg.workers : kind == DATA_IMAGENET ? -1 : 1;
  if (t->dist) o.rank = dist_rank(t->dist), o.world = dist_world(t->dist);  // this rank's shard
  if (!train) o.pad_shards = 0, o.shuffle = 0;
  if (set_augment(t, kind, &o.aug) != 0) return NAO_EXIT_USAGE;
  if (!train) augment_preset(&o.aug, kind, 0);
  char err[600];
  if (loader_open(ds, &o, out, err, sizeof err) != 0) return fail(NAO_EXIT_INPUT, "data: %s", err);
  int c, h, w;
  loader_sample_shape(*out, &c, &h, &w);
  const NetSpec *ns = &t->spec;
  if (c != ns->in_channels || h != ns->in_height || w != ns->in_width)
    return fail(NAO_EXIT_INPUT, "data: %s gives %dx%dx%d images, the network takes %dx%dx%d",
                data_source_dir(t->src), c, h, w, ns->in_channels, ns->in_height, ns->in_width);
  return 0;
}

static int setup_data(Trainer *t) {
  const TrainerConfig *c = &t->cfg;
  const Recipe *r = &t->recipe;
  DataKind kind = DATA_SYNTHETIC;
  int rc = data_kind_of(t, &kind);
  if (rc) return rc;
  DataSourceOptions so;
  memset(&so, 0, sizeof so);
  so.kind = kind;
  so.dir = kind == DATA_SYNTHETIC ? NULL : c->data;
  so.channels = t->spec.in_channels, so.height = t->spec.in_height, so.width = t->spec.in_width;
  so.classes = t->spec.classes;
  so.train_count = c->synthetic_train, so.test_count = c->synthetic_test;
  so.seed = r->seed;
  char err[600];
  if (data_source_open(&so, &t->src, err, sizeof err) != 0) return fail(NAO_EXIT_INPUT, "data: %s", err);
  if (data_source_classes(t->src) != t->spec.classes)
    return fail(NAO_EXIT_INPUT, "data: %s has %d classes, the network %d", data_source_dir(t->src),
                data_source_classes(t->src), t->spec.classes);
  uint64_t split_seed = r->seed;
  if (data_set_open(t->src, DATA_TRAIN, r->val_size, split_seed, &t->train_set, err, sizeof err) != 0 ||
      (r->val_size > 0 && data_set_open(t->src, DATA_VALID, r->val_size, split_seed, &t->valid_set, err, sizeof err) != 0) ||
      data_set_open(t->src, DATA_TEST, 0, split_seed, &t->test_set, err, sizeof err) != 0)
    return fail(NAO_EXIT_INPUT, "data: %s (--val-size %d)", err, r->val_size);
  t->has_valid = r->val_size > 0;
  if (!c->eval_only && (rc = open_loader(t, kind, &t->train_set, 1, &t->train_loader)) != 0) return rc;
  if (t->has_valid && (rc = open_loader(t, kind, &t->valid_set, 0, &t->valid_loader)) != 0) return rc;
  if ((rc = open_loader(t, kind, &t->test_set, 0, &t->test_loader)) != 0) return rc;
  snprintf(t->pos.data, sizeof t->pos.data, "%s", kind == DATA_SYNTHETIC ? "synthetic" : data_source_dir(t->src));
  snprintf(t->pos.dataset, sizeof t->pos.dataset, "%s", data_kind_name(kind));
  t->pos.synthetic_train = c->synthetic_train, t->pos.synthetic_test = c->synthetic_test;
  t->pos.checkpoint_steps = c->checkpoint_steps;
  if (t->train_loader) {
    t->steps_per_epoch = loader_batches_per_epoch(t->train_loader);
    if (t->pos.batch > t->steps_per_epoch)
      return fail(NAO_EXIT_INPUT,
                  "--resume: the checkpoint is at batch %d of epoch %d, but the data give %d batches an "
                  "epoch (resume with the run's data and batch size)",
                  t->pos.batch, t->pos.epoch + 1, t->steps_per_epoch);
    // T of the drop-path schedule: the whole run's steps. --max-steps only stops
    // the run early, so that a run cut there and resumed equals one not cut.
    t->total_steps = (long long)t->steps_per_epoch * r->epochs;
  }
  return 0;
}

// ---------------------------------------------------------------- backend and log

static int setup_backend(Trainer *t) {
  BackendOptions o;
  memset(&o, 0, sizeof o);
  o.threads = t->cfg.threads;
  o.gpus = t->cfg.gpus;
  o.dist = t->dist;
  o.max_batch = t->cfg.eval_only ? 0 : t->recipe.batch;
  o.max_eval_batch = t->recipe.eval_batch;
  o.cuda_net = t->cfg.cuda_net;
  o.cuda_source = t->cfg.cuda_source;
  o.kernel_cache = t->cfg.kernel_cache;
  char err[600];
  t->backend = backend_create(t->cfg.backend, &t->nb, &t->state, &o, err, sizeof err);
  if (!t->backend) return fail(NAO_EXIT_INPUT, "--backend %s: %s", backend_kind_name(t->cfg.backend), err);
  if (backend_upload(t->backend) != 0)
    return fail(NAO_EXIT_INTERNAL, "backend: uploading the model: %s", backend_error(t->backend));
  return 0;
}

static void log_start(Trainer *t) {
  RunLog *l = &t->log;
  char recipe[2048], arch[NAO_MAX_NODES * 32 + 8];
  recipe_to_json(&t->recipe, recipe, sizeof recipe);
  netspec_format_arch(&t->nb.spec, arch, sizeof arch);
  StrBuf net = {0};
  ckpt_network_json(&t->nb.spec, &net);
  runlog_begin(l, t->cfg.resume ? "resume" : "start");
  runlog_str(l, "network_file", t->cfg.net_path);
  runlog_raw(l, "network", net.data);
  runlog_str(l, "arch", arch);
  runlog_raw(l, "recipe", recipe);
  runlog_str(l, "backend", backend_kind_name(t->cfg.backend));
  runlog_int(l, "threads", t->cfg.threads > 0 ? t->cfg.threads : tp_default_threads());
  runlog_str(l, "data", data_source_dir(t->src));
  runlog_int(l, "train_images", t->train_set.n);
  runlog_int(l, "valid_images", t->has_valid ? t->valid_set.n : 0);
  runlog_int(l, "test_images", t->test_set.n);
  runlog_int(l, "params", (long long)params_count(&t->nb.params, 1));
  runlog_int(l, "steps_per_epoch", t->steps_per_epoch);
  runlog_int(l, "total_steps", t->total_steps);
  runlog_int(l, "step", t->pos.step);
  runlog_end(l);
  sb_free(&net);
}

int trainer_setup(Trainer *t, const TrainerConfig *cfg, volatile sig_atomic_t *stop) {
  memset(t, 0, sizeof *t);
  t->cfg = *cfg;
  t->stop = stop;
  t->dist = cfg->dist;
  if (!train_dist_writer(t)) t->cfg.quiet = 1, t->cfg.progress = 0;  // rank 0 speaks for all
  if (t->cfg.threads <= 0 && t->dist && dist_local_world(t->dist) > 1)
    t->cfg.threads = train_dist_default_threads(t->dist);  // the node's CPUs shared
  int rc = cfg->net_text ? nao_frontend_text(cfg->net_path, cfg->net_text, strlen(cfg->net_text),
                                             &t->spec, stderr)
                         : nao_frontend_file(cfg->net_path, &t->spec, stderr);
  if (rc) return rc;
  if (cfg->eval_only && !cfg->weights) return fail(NAO_EXIT_USAGE, "--eval-only needs --weights W.safetensors");
  if ((rc = choose_recipe(t)) || (rc = setup_run_dir(t))) return rc;
  if (cfg->resume && (rc = resume_recipe(t))) return rc;
  char rule[400] = "";
  if (!cfg->resume && !cfg->eval_only && t->dist &&
      train_dist_scale_recipe(&t->recipe, dist_world(t->dist), recipe_option_given(cfg, "batch"),
                              recipe_option_given(cfg, "lr"), rule, sizeof rule) != 0)
    return fail(NAO_EXIT_USAGE, "%s", rule);
  if (t->cfg.checkpoint_steps < 0) t->cfg.checkpoint_steps = 0;
  if ((rc = setup_model(t)) || (rc = setup_data(t)) || (rc = setup_backend(t))) return rc;
  char err[600];
  int want_log = (!cfg->eval_only || cfg->out) && train_dist_writer(t);
  if (runlog_open(&t->log, want_log ? t->log_path : NULL, err, sizeof err) != 0)
    return fail(NAO_EXIT_INPUT, "%s", err);
  progress_init(&t->progress, stderr, t->cfg.progress);
  if (!cfg->eval_only) log_start(t);
  return train_dist_after_setup(t, rule);
}

void trainer_free(Trainer *t) {
  backend_destroy(t->backend);
  loader_close(t->train_loader);
  loader_close(t->valid_loader);
  loader_close(t->test_loader);
  if (t->train_set.items) data_set_close(&t->train_set);
  if (t->valid_set.items) data_set_close(&t->valid_set);
  if (t->test_set.items) data_set_close(&t->test_set);
  data_source_close(t->src);
  if (t->state.table) model_state_free(&t->state);
  netbuild_free(&t->nb);
  runlog_close(&t->log);
  memset(t, 0, sizeof *t);
}
