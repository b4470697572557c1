// runtime/train_dist.c — data parallelism in the training run (train_dist.h).
//
// Invariants: world 1 never issues a collective here; with world > 1 each
// function issues the same collectives on every rank in the same order.
#include "runtime/train_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/dist_nccl.h"
#include "runtime/launch.h"
#include "runtime/threadpool.h"

static Dist *dist_of(const Trainer *t) { return t->dist; }
static int world_of(const Trainer *t) { return t->dist ? dist_world(t->dist) : 1; }

static int dist_failed(const Trainer *t) {
  progress_clear((Progress *)&t->progress);
  fprintf(stderr, "nao-train: %s\n", dist_error(dist_of(t)));
  return NAO_EXIT_INTERNAL;
}

int train_dist_writer(const Trainer *t) { return !t->dist || dist_rank(t->dist) == 0; }

int train_dist_default_threads(const Dist *d) {
  int cpus = tp_default_threads();
  int per = d ? cpus / dist_local_world(d) : cpus;
  return per > 0 ? per : 1;
}

// ---------------------------------------------------------------- the rule

int train_dist_scale_recipe(Recipe *r, int world, int batch_given, int lr_given, char *note,
                            size_t notelen) {
  note[0] = 0;
  if (world <= 1) return 0;
  int linear = strcmp(r->name, "imagenet") == 0;
  const char *rule = linear ? "the reference's rule for imagenet: batch and lr per GPU"
                            : "the reference's rule: the preset's batch is the global batch";
  if (linear) {
    double lr0 = r->lr;
    if (!lr_given) r->lr = lr0 * world;
    snprintf(note, notelen,
             "%d processes: batch %d per process (%d in all), lr %g%s (%s%s)", world, r->batch,
             r->batch * world, r->lr, lr_given ? " as given" : "", rule,
             lr_given ? "" : "; --lr sets it");
    if (!lr_given) {
      size_t n = strlen(note);
      snprintf(note + n, notelen - n, "; lr = %g x %d", lr0, world);
    }
    return 0;
  }
  if (!batch_given) {
    if (r->batch < world) {
      snprintf(note, notelen, "the %s recipe's batch %d cannot be split over %d processes: pass --batch (per process)",
               r->name, r->batch, world);
      return -1;
    }
    int global = r->batch;
    r->batch = global / world;
    snprintf(note, notelen, "%d processes: batch %d per process (%d in all%s), lr %g (%s; --batch sets the batch per process)",
             world, r->batch, r->batch * world, r->batch * world != global ? ", the preset's rounded down" : "",
             r->lr, rule);
    return 0;
  }
  snprintf(note, notelen, "%d processes: batch %d per process as given (%d in all), lr %g", world,
           r->batch, r->batch * world, r->lr);
  return 0;
}

// ---------------------------------------------------------------- setup

// A hash of everything that must be equal on every rank after setup.
static uint64_t state_hash(const Trainer *t) {
  const ModelState *m = &t->state;
  const ParamTable *pt = m->table;
  uint64_t h = dist_hash(m->params, pt->n_trainable * sizeof(float), 0);
  h = dist_hash(m->buffers, pt->n_buffer * sizeof(float), h);
  h = dist_hash(m->sgd.momentum, pt->n_trainable * sizeof(float), h);
  h = dist_hash(m->sgd.has_buf, (size_t)pt->n, h);
  const CkptInfo *p = &t->pos;
  long long pos[4] = {p->step, p->epoch, p->batch, t->steps_per_epoch};
  h = dist_hash(pos, sizeof pos, h);
  char recipe[2048];
  recipe_to_json(&t->recipe, recipe, sizeof recipe);
  return dist_hash(recipe, strlen(recipe), h);
}

static void log_dist(Trainer *t, const char *note) {
  Dist *d = dist_of(t);
  RunLog *l = &t->log;
  runlog_begin(l, "distributed");
  runlog_int(l, "world", dist_world(d));
  runlog_int(l, "local_world", dist_local_world(d));
  runlog_str(l, "launcher", dist_launch_name(dist_launch(d)));
  runlog_str(l, "communicator", dist_name(d));
  runlog_int(l, "batch_per_process", t->recipe.batch);
  runlog_int(l, "global_batch", (long long)t->recipe.batch * dist_world(d));
  runlog_num(l, "lr", t->recipe.lr);
  runlog_str(l, "rule", note && note[0] ? note : "as the recipe says");
  runlog_num(l, "timeout", dist_timeout(d));
  runlog_end(l);
}

int train_dist_after_setup(Trainer *t, const char *rule_note) {
  if (world_of(t) <= 1) return 0;
  Dist *d = dist_of(t);
  uint64_t h = state_hash(t);
  int rc = dist_check_equal(d, &h, sizeof h, "the model state, position and recipe after setup");
  if (rc < 0) return dist_failed(t);
  if (rc > 0) {
    fprintf(stderr, "nao-train: rank %d: %s: every rank must start from the same checkpoint, "
                    "options and data\n", dist_rank(d), dist_error(d));
    return NAO_EXIT_INPUT;
  }
  if (!train_dist_writer(t)) return 0;
  if (rule_note && rule_note[0] && !t->cfg.quiet) fprintf(stderr, "nao-train: %s\n", rule_note);
  log_dist(t, rule_note);
  return 0;
}

// ---------------------------------------------------------------- the loop

int train_dist_stop(Trainer *t) {
  if (world_of(t) <= 1) {
    if (*t->stop) t->stop_signal = (int)*t->stop;
    return *t->stop != 0;
  }
  if (t->stop_checked && t->stop_checked_step == t->pos.step) return t->stop_agreed;
  double v = (double)*t->stop;
  if (dist_allreduce_f64(dist_of(t), &v, 1, DIST_MAX, "stop agreement") != 0)
    return -dist_failed(t);
  t->stop_checked = 1;
  t->stop_checked_step = t->pos.step;
  t->stop_agreed = v > 0;
  if (v > 0) t->stop_signal = (int)v;
  return t->stop_agreed;
}

int train_dist_before_save(Trainer *t) {
  if (world_of(t) <= 1) return 0;
  Dist *d = dist_of(t);
  const ModelState *m = &t->state;
  int rc = dist_check_equal(d, m->params, m->table->n_trainable * sizeof(float), "the parameters");
  if (rc < 0) return dist_failed(t);
  if (rc > 0) {
    fprintf(stderr, "nao-train: internal error: rank %d at step %lld: %s (the all-reduce gave "
                    "different results?)\n", dist_rank(d), t->pos.step, dist_error(d));
    return NAO_EXIT_INTERNAL;
  }
  return 0;
}

// ---------------------------------------------------------------- evaluation

int train_dist_sync_buffers(Trainer *t) {
  if (world_of(t) <= 1 || t->state.table->n_buffer == 0) return 0;
  if (backend_download(t->backend) != 0) {
    fprintf(stderr, "nao-train: backend: downloading the model: %s\n", backend_error(t->backend));
    return NAO_EXIT_INTERNAL;
  }
  if (dist_broadcast(dist_of(t), t->state.buffers, t->state.table->n_buffer * sizeof(float), 0,
                     "BN statistics from rank 0") != 0)
    return dist_failed(t);
  if (backend_upload(t->backend) != 0) {
    fprintf(stderr, "nao-train: backend: uploading the model: %s\n", backend_error(t->backend));
    return NAO_EXIT_INTERNAL;
  }
  return 0;
}

int train_dist_reduce_eval(Trainer *t, double *loss_sum, long long *top1, long long *top5,
                           long long *images) {
  if (world_of(t) <= 1) return 0;
  double v[4] = {*loss_sum, (double)*top1, (double)*top5, (double)*images};
  if (dist_allreduce_f64(dist_of(t), v, 4, DIST_SUM, "evaluation sums") != 0) return dist_failed(t);
  *loss_sum = v[0];
  *top1 = (long long)v[1], *top5 = (long long)v[2], *images = (long long)v[3];
  return 0;
}

// ---------------------------------------------------------------- start and finish

static int start_launcher(char **argv, const TrainerConfig *cfg, double timeout) {
  if (cfg->backend != BACKEND_CUDA) {
    fprintf(stderr, "nao-train: --gpus %d: needs --backend cuda (for several CPU processes run "
                    "nao-train under mpirun -np N)\n", cfg->gpus);
    return NAO_EXIT_USAGE;
  }
  char self[4096], err[1200];
  unsigned char id[DIST_NCCL_ID_BYTES];
  if (launch_self_path(self, sizeof self, err, sizeof err) != 0 ||
      dist_nccl_unique_id(id, err, sizeof err) != 0) {
    fprintf(stderr, "nao-train: --gpus %d: %s\n", cfg->gpus, err);
    return NAO_EXIT_INPUT;
  }
  int argc = 0;
  while (argv[argc]) argc++;
  char **av = xcalloc((size_t)argc + 1, sizeof *av);
  av[0] = self;
  for (int i = 1; i < argc; i++) av[i] = argv[i];
  LaunchOptions o;
  memset(&o, 0, sizeof o);
  o.n = cfg->gpus;
  o.argv = av;
  o.timeout = timeout;
  o.nccl_id = id;
  o.prog = "nao-train";
  LaunchResult r;
  int rc = launch_run(&o, &r);
  free(av);
  if (rc != 0) {
    fprintf(stderr, "nao-train: --gpus %d: %s\n", cfg->gpus, r.why);
    return NAO_EXIT_INTERNAL;
  }
  return r.status;
}

int train_dist_start(char **argv, const TrainerConfig *cfg, volatile sig_atomic_t *stop,
                     Dist **dist) {
  *dist = NULL;
  DistEnv env;
  char err[1200];
  if (dist_env_detect(NULL, NULL, &env, err, sizeof err) != 0) {
    fprintf(stderr, "nao-train: %s\n", err);
    return NAO_EXIT_USAGE;
  }
  double timeout = cfg->dist_timeout > 0 ? cfg->dist_timeout : env.timeout > 0 ? env.timeout : 600;
  if (env.launch == DIST_LAUNCH_NONE && cfg->gpus > 1) return start_launcher(argv, cfg, timeout);
  if (env.launch == DIST_LAUNCH_LOCAL && env.world != cfg->gpus) {
    fprintf(stderr, "nao-train: started by nao-train --gpus %d but given --gpus %d\n", env.world, cfg->gpus);
    return NAO_EXIT_USAGE;
  }
  if ((env.launch == DIST_LAUNCH_MPIRUN || env.launch == DIST_LAUNCH_PMI) && cfg->gpus > 1) {
    fprintf(stderr, "nao-train: --gpus %d under %s: the MPI launcher starts the processes, one per "
                    "GPU (e.g. mpirun -np %d nao-train ... without --gpus)\n",
            cfg->gpus, dist_launch_name(env.launch), cfg->gpus);
    return NAO_EXIT_USAGE;
  }
  DistOptions o;
  dist_options_default(&o);
  o.timeout = timeout;
  o.stop = stop;
  Dist *d = dist_open(&env, &o, err, sizeof err);
  if (!d) {
    fprintf(stderr, "nao-train: %s\n", err);
    return NAO_EXIT_INPUT;
  }
  *dist = d;
  return -1;
}

int train_dist_finish(Dist *d, int rc, int interrupted) {
  if (d && dist_world(d) > 1 && rc != 0 && !interrupted) dist_abort(d, rc);
  dist_close(d);
  return rc;
}
