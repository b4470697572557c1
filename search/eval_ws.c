// search/eval_ws.c — the `ws` evaluator (eval.h): the NAO-WS weight-sharing
// supernet (NAO-SPEC §1c). Setup (the supernet's state, the data and its
// splits), building one architecture's graphs on the supernet, and scoring.
// Training is in eval_ws_train.c, saving and loading in eval_ws_state.c.
//
// Data: the training set of the backbone's dataset is split (seed --seed) into
// --ws-heldout held-out images, which only scoring sees, and the rest, which
// the supernet trains on. Scoring (decision O7): at each round, --ws-eval-images
// of the held-out images are drawn (seeded by the seed and the round) and
// every architecture of the round is scored on exactly those, in batches of at
// most WS_EVAL_BATCH, the graph in EVAL mode with BN on batch statistics
// (running statistics untouched): top-1 fraction. Scoring changes nothing in
// the supernet, so a score does not depend on what was scored before it.
//
// Graphs are built per use (no cache): lowering and planning take ~6-9 ms per
// architecture and creating its backend ~10-30 ms once the allocator keeps
// freed memory (mallopt below), against a training step of ~250 ms at the
// demo setting; see docs/search.md for the measurements.
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/lower.h"
#include "compiler/util.h"
#include "runtime/augment.h"
#include "search/eval_ws.h"

enum {
  WS_EVAL_BATCH = 500,           // the reference's evaluation batch
  WS_STREAM_INIT = 0x5753494e,   // rng_derive purposes
  WS_STREAM_SAMPLE = 0x57535341,
  WS_STREAM_EVAL = 0x57534556,
};

// ---------------------------------------------------------------- building

int ws_arch_spec(const Ws *w, const int *tokens, NetSpec *ns, char *err, size_t errlen) {
  *ns = w->base;
  if (space_to_netspec(w->o.space, tokens, ns) != 0) {
    snprintf(err, errlen, "the ws evaluator needs a NAO space (nao-small), not %s", w->o.space->name);
    return -1;
  }
  return 0;
}

int ws_build(Ws *w, const NetSpec *ns, int train, NetBuild *nb, Backend **be, char *err, size_t errlen) {
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.ws = 1;
  o.train = train, o.eval = !train;
  o.eval_bn_batch_stats = 1;
  *be = NULL;
  if (netbuild_create(ns, &o, nb, err, errlen) != 0) return -1;
  const ParamTable *t = &nb->params;
  if (t->n != w->table.n || t->n_trainable != w->table.n_trainable || t->n_buffer != w->table.n_buffer)
    nao_internal("eval_ws.c: an architecture's table (%d entries) differs from the supernet's (%d)", t->n,
                 w->table.n);
  BackendOptions bo;
  memset(&bo, 0, sizeof bo);
  bo.threads = w->o.threads;
  bo.gpus = 1;
  bo.max_batch = train ? w->o.ws_batch : 0;
  bo.max_eval_batch = train ? 0 : (w->n_eval < WS_EVAL_BATCH ? w->n_eval : WS_EVAL_BATCH);
  char why[600];
  *be = backend_create(w->backend, nb, &w->state, &bo, why, sizeof why);
  if (!*be) {
    snprintf(err, errlen, "--backend %s: %s", backend_kind_name(w->backend), why);
    netbuild_free(nb);
    return -1;
  }
  if (backend_upload(*be) != 0) {
    snprintf(err, errlen, "backend: uploading the supernet: %s", backend_error(*be));
    ws_unbuild(nb, *be);
    *be = NULL;
    return -1;
  }
  return 0;
}

void ws_unbuild(NetBuild *nb, Backend *be) {
  backend_destroy(be);
  netbuild_free(nb);
}

// ---------------------------------------------------------------- data

static int ws_open_data(Ws *w, char *err, size_t errlen) {
  const EvalOptions *o = &w->o;
  DataSourceOptions so;
  memset(&so, 0, sizeof so);
  int synthetic = !strcmp(w->data, "synthetic");
  const DatasetInfo *d = dataset_info(w->base.dataset);
  int kind = synthetic ? DATA_SYNTHETIC : data_kind_parse(d ? d->name : "");
  if (kind < 0 || kind == DATA_IMAGENET)
    return snprintf(err, errlen, "--dataset %s: the ws evaluator trains on fashion-mnist or cifar10 (or --data synthetic)",
                    d ? d->name : "?"), -1;
  if (!synthetic && !w->data[0] && !data_default_dir((DataKind)kind))
    return snprintf(err, errlen, "--data: the %s dataset needs its folder (--data DIR)", d->name), -1;
  so.kind = (DataKind)kind;
  so.dir = synthetic || !w->data[0] ? NULL : w->data;
  so.channels = w->base.in_channels, so.height = w->base.in_height, so.width = w->base.in_width;
  so.classes = w->base.classes;
  so.train_count = o->ws_heldout + (o->ws_train_images > 0 ? o->ws_train_images : 2560);
  so.test_count = 16;
  so.seed = o->seed;
  char why[600];
  if (data_source_open(&so, &w->src, why, sizeof why) != 0) return snprintf(err, errlen, "data: %s", why), -1;
  if (data_source_classes(w->src) != w->base.classes)
    return snprintf(err, errlen, "data: %s has %d classes, the network %d", data_source_dir(w->src),
                    data_source_classes(w->src), w->base.classes), -1;
  if (data_set_open(w->src, DATA_TRAIN, o->ws_heldout, o->seed, &w->train_set, why, sizeof why) != 0 ||
      data_set_open(w->src, DATA_VALID, o->ws_heldout, o->seed, &w->heldout_set, why, sizeof why) != 0)
    return snprintf(err, errlen, "data: %s (--ws-heldout %d)", why, o->ws_heldout), -1;
  if (o->ws_eval_images > w->heldout_set.n)
    return snprintf(err, errlen, "--ws-eval-images %d exceeds the %d held-out images (--ws-heldout)", o->ws_eval_images,
                    w->heldout_set.n), -1;
  LoaderOptions lo;
  loader_options_default(&lo, (DataKind)kind, 1);
  lo.batch = o->ws_batch;
  lo.seed = o->seed;
  lo.workers = 1;
  if (loader_open(&w->train_set, &lo, &w->loader, why, sizeof why) != 0) return snprintf(err, errlen, "data: %s", why), -1;
  int c, h, wd;
  loader_sample_shape(w->loader, &c, &h, &wd);
  if (c != w->base.in_channels || h != w->base.in_height || wd != w->base.in_width)
    return snprintf(err, errlen, "data: %s gives %dx%dx%d images, the supernet takes %dx%dx%d", data_source_dir(w->src), c,
                    h, wd, w->base.in_channels, w->base.in_height, w->base.in_width), -1;
  w->train_per_epoch = o->ws_train_images > 0 && o->ws_train_images < w->train_set.n ? o->ws_train_images : w->train_set.n;
  w->steps_per_epoch = (w->train_per_epoch + o->ws_batch - 1) / o->ws_batch;
  w->total_epochs = (o->rounds + 1) * o->ws_epochs;
  w->total_steps = (long long)w->steps_per_epoch * w->total_epochs;
  if (!synthetic) snprintf(w->data, sizeof w->data, "%s", data_source_dir(w->src));
  return 0;
}

// The round's scoring images: n_eval of the held-out set, drawn by (seed, round).
static int ws_eval_images(Ws *w, int round, char *err, size_t errlen) {
  if (w->eval_round == round) return 0;
  const DataSet *ds = &w->heldout_set;
  int *perm = xmalloc((size_t)ds->n * sizeof(int));
  for (int i = 0; i < ds->n; i++) perm[i] = i;
  Rng rng;
  rng_derive(&rng, w->o.seed, WS_STREAM_EVAL + (uint64_t)round);
  rng_shuffle(&rng, perm, ds->n);
  AugmentSpec aug;
  augment_preset(&aug, data_source_kind(w->src), 0);
  int c, h, wd, rc = 0;
  char msg[600];
  if (data_sample_shape(ds, &aug, &c, &h, &wd, msg, sizeof msg) != 0) rc = -1;
  size_t per = (size_t)c * h * wd;
  DataScratch *scratch = data_scratch_new();
  for (int k = 0; rc == 0 && k < w->n_eval; k++)
    if (data_sample(ds, ds->items[perm[k]], &aug, w->o.seed, 0, w->eval_images + (size_t)k * per,
                    &w->eval_labels[k], scratch, msg, sizeof msg) != DATA_SAMPLE_OK)
      rc = -1;
  data_scratch_free(scratch);
  free(perm);
  if (rc) return snprintf(err, errlen, "held-out images: %s", msg), -1;
  w->eval_round = round;
  return 0;
}

// ---------------------------------------------------------------- scoring

static int ws_score_one(Ws *w, const EvalItem *it, double *acc, char *err, size_t errlen) {
  NetSpec ns;
  NetBuild nb;
  Backend *be;
  char why[800];
  if (ws_arch_spec(w, it->tokens, &ns, why, sizeof why) != 0 || ws_build(w, &ns, 0, &nb, &be, why, sizeof why) != 0)
    return snprintf(err, errlen, "arch '%s': %s", it->text, why), -1;
  size_t per = (size_t)ns.in_channels * ns.in_height * ns.in_width;
  long long top1 = 0;
  int rc = 0;
  for (int k = 0; rc == 0 && k < w->n_eval; k += WS_EVAL_BATCH) {
    int n = w->n_eval - k < WS_EVAL_BATCH ? w->n_eval - k : WS_EVAL_BATCH;
    EvalResult r;
    if (backend_eval_batch(be, w->eval_images + (size_t)k * per, w->eval_labels + k, n, &r) != 0) {
      snprintf(err, errlen, "arch '%s': scoring: %s", it->text, backend_error(be));
      rc = -1;
    }
    top1 += r.top1;
  }
  ws_unbuild(&nb, be);
  *acc = (double)top1 / w->n_eval;
  return rc;
}

static int ws_score(Evaluator *ev, const EvalItem *items, int n, double *acc, EvalDoneFn done, void *ctx, char *err,
                    size_t errlen) {
  Ws *w = ev->impl;
  if (ws_eval_images(w, w->round < 0 ? 0 : w->round, err, errlen) != 0) return -1;
  for (int i = 0; i < n; i++) {
    if (ws_score_one(w, &items[i], &acc[i], err, errlen) != 0) return -1;
    if (done) done(ctx, i, acc[i]);
  }
  return 0;
}

// ---------------------------------------------------------------- setup

static void ws_destroy(Evaluator *ev) {
  Ws *w = ev->impl;
  if (!w) return;
  loader_close(w->loader);
  if (w->train_set.items) data_set_close(&w->train_set);
  if (w->heldout_set.items) data_set_close(&w->heldout_set);
  data_source_close(w->src);
  if (w->state.table) model_state_free(&w->state);
  params_free(&w->table);
  free(w->eval_images), free(w->eval_labels);
  free(w);
  ev->impl = NULL;
}

static int ws_check_options(const EvalOptions *o, char *err, size_t errlen) {
  if (!o->backbone) return snprintf(err, errlen, "the ws evaluator needs the backbone settings"), -1;
  if (o->space->kind != SPACE_NAO_SMALL)
    return snprintf(err, errlen, "--evaluator ws: the supernet has the 5-op space only (--space nao-small, not %s)",
                    o->space->name), -1;
  if (o->ws_epochs < 1 || o->ws_batch < 1 || o->ws_eval_images < 1 || o->ws_heldout < 1)
    return snprintf(err, errlen, "--ws-epochs, --ws-batch, --ws-eval-images and --ws-heldout must be >= 1"), -1;
  if (!(o->ws_drop_path_keep > 0 && o->ws_drop_path_keep <= 1))
    return snprintf(err, errlen, "--ws-drop-path-keep %g is out of range (0, 1]", o->ws_drop_path_keep), -1;
  return 0;
}

static void ws_set_base(Ws *w) {
  w->base = *w->o.backbone;
  w->base.aux_weight = 0;  // the reference's search: no auxiliary head, no dropout
  w->base.dropout_keep = 1;
  w->base.drop_path_keep = w->o.ws_drop_path_keep;
  w->base.nodes = w->o.space->nodes;
  for (int c = 0; c < 2; c++) {
    memset(&w->base.cell[c], 0, sizeof w->base.cell[c]);
    w->base.cell[c].n_nodes = w->o.space->nodes;
  }
}

int eval_ws_create(Evaluator *ev, const EvalOptions *o, char *err, size_t errlen) {
  if (ws_check_options(o, err, errlen) != 0) return -1;
  int kind = backend_kind_parse(o->backend && *o->backend ? o->backend : "cpu");
  if (kind < 0) return snprintf(err, errlen, "--backend: unknown backend '%s' (cpu, cuda)", o->backend), -1;
  // Every step frees and allocates a backend's arena (hundreds of MB): keep
  // freed memory in the heap instead of returning it to the system, so the
  // next allocation does not page-fault it in again (glibc; 4x faster setup).
  // A hint: when glibc refuses it (0), setup is only slower, so it is not an error.
  int mmap_ok = mallopt(M_MMAP_THRESHOLD, 1 << 30), trim_ok = mallopt(M_TRIM_THRESHOLD, -1);
  if (!mmap_ok || !trim_ok)
    fprintf(stderr, "nao-search: note: mallopt refused; supernet steps will set up more slowly\n");
  Ws *w = xcalloc(1, sizeof *w);
  w->o = *o;
  w->backend = (BackendKind)kind;
  w->round = w->eval_round = -1;
  snprintf(w->data, sizeof w->data, "%s", o->data ? o->data : "");
  snprintf(w->state_dir, sizeof w->state_dir, "%s", o->state_dir ? o->state_dir : "");
  w->o.data = w->data, w->o.state_dir = w->state_dir, w->o.backend = backend_kind_name(w->backend);
  ev->kind = "ws", ev->stateful = 1, ev->impl = w;
  ev->begin_round = ws_begin_round, ev->score = ws_score, ev->save = ws_save, ev->load = ws_load;
  ev->destroy = ws_destroy;
  ws_set_base(w);
  params_init(&w->table);
  char why[600];
  if (lower_ws_declare_params(&w->base, &w->table, why, sizeof why) != 0) {
    snprintf(err, errlen, "the supernet: %s", why);
    ws_destroy(ev);
    return -1;
  }
  model_state_init(&w->state, &w->table);
  Rng init;
  rng_derive(&init, o->seed, WS_STREAM_INIT);
  model_state_init_weights(&w->state, &init);
  rng_derive(&w->rng, o->seed, WS_STREAM_SAMPLE);
  if (ws_open_data(w, err, errlen) != 0) {
    ws_destroy(ev);
    return -1;
  }
  w->n_eval = o->ws_eval_images;
  size_t per = (size_t)w->base.in_channels * w->base.in_height * w->base.in_width;
  w->eval_images = xmalloc((size_t)w->n_eval * per * sizeof(float));
  w->eval_labels = xmalloc((size_t)w->n_eval * sizeof(int32_t));
  return 0;
}
