// tests/unit/test_checkpoint.c — checkpoints: a saved state loads back exactly
// (parameters, buffers, momentum and which buffers exist, position, RNG,
// recipe); reference-style weights (no metadata, num_batches_tracked counters)
// load in weights mode; another network, a truncated file, a wrong dtype or
// shape, a missing or an unknown tensor are refused with the tensor's name and
// what differs, and a refused load changes nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/netspec.h"
#include "runtime/checkpoint.h"
#include "runtime/netbuild.h"
#include "runtime/safetensors.h"

static int failures;
#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      failures++;                                                                \
    }                                                                            \
  } while (0)
#define CHECK_MSG(cond, msg)                                                     \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: check failed: %s (message: %s)\n", __FILE__, __LINE__, #cond, msg); \
      failures++;                                                                \
    }                                                                            \
  } while (0)

static char dir[256];

static void spec_of(NetSpec *ns, const char *arch, int channels) {
  char err[256];
  netspec_init(ns);
  netspec_apply_dataset(ns, DATASET_FASHION_MNIST);
  ns->channels = channels;
  ns->layers = 1;
  ns->aux_weight = 0.4;
  if (netspec_parse_arch(ns, arch, err, sizeof err) != 0) {
    fprintf(stderr, "arch: %s\n", err);
    exit(1);
  }
}

// A table of the network (no graphs needed) and a random state over it.
static void build(const NetSpec *ns, NetBuild *nb, ModelState *m, uint64_t seed) {
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.train = o.eval = 0;
  char err[512];
  if (netbuild_create(ns, &o, nb, err, sizeof err) != 0) {
    fprintf(stderr, "netbuild: %s\n", err);
    exit(1);
  }
  model_state_init(m, &nb->params);
  Rng r;
  rng_seed(&r, seed);
  model_state_init_weights(m, &r);
  for (size_t i = 0; i < nb->params.n_buffer; i++) m->buffers[i] = (float)rng_normal(&r);
}

static int same_state(const ModelState *a, const ModelState *b, int momentum) {
  const ParamTable *t = a->table;
  int same = !memcmp(a->params, b->params, t->n_trainable * sizeof(float)) &&
             !memcmp(a->buffers, b->buffers, t->n_buffer * sizeof(float));
  if (momentum)
    same = same && !memcmp(a->sgd.momentum, b->sgd.momentum, t->n_trainable * sizeof(float)) &&
           !memcmp(a->sgd.has_buf, b->sgd.has_buf, (size_t)t->n);
  return same;
}

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static const char *ARCH = "0 0 1 3 2 7 0 4  0 2 1 3 2 13 0 4";

static void test_roundtrip(void) {
  NetSpec ns;
  spec_of(&ns, ARCH, 4);
  NetBuild nb;
  ModelState a, b;
  build(&ns, &nb, &a, 1);
  // Momentum for every other trainable entry, so both presence and absence occur.
  Rng r;
  rng_seed(&r, 9);
  for (int i = 0; i < nb.params.n; i++) {
    const ParamInfo *p = &nb.params.items[i];
    if (!p->trainable || i % 2) continue;
    a.sgd.has_buf[i] = 1;
    for (size_t k = 0; k < p->numel; k++) a.sgd.momentum[p->offset + k] = (float)rng_normal(&r);
  }
  Recipe rec;
  recipe_preset(&rec, "fashion-mnist");
  rec.epochs = 7;
  CkptInfo in;
  memset(&in, 0, sizeof in);
  in.step = 1234, in.epoch = 3, in.batch = 17, in.total_steps = 9999;
  in.best_valid_top1 = 0.8125, in.best_epoch = 2, in.seed = 42, in.threads = 2;
  in.rng = (Rng){{1, 2, 3, 0xfedcba9876543210ULL}};
  snprintf(in.data, sizeof in.data, "/some/where");
  snprintf(in.dataset, sizeof in.dataset, "cifar10");
  in.synthetic_train = 10, in.synthetic_test = 20;
  char path[300], err[600];
  path_of(path, sizeof path, "a.safetensors");
  CHECK(ckpt_save(path, &a, &nb.spec, &rec, &in, err, sizeof err) == 0);
  model_state_init(&b, &nb.params);
  CkptInfo out;
  CHECK_MSG(ckpt_load(path, CKPT_FULL, &nb.spec, &b, &out, err, sizeof err) == 0, err);
  CHECK(same_state(&a, &b, 1));
  CHECK(out.step == 1234 && out.epoch == 3 && out.batch == 17 && out.total_steps == 9999);
  CHECK(out.best_valid_top1 == 0.8125 && out.best_epoch == 2 && out.seed == 42);
  CHECK(!memcmp(&out.rng, &in.rng, sizeof out.rng));
  CHECK(!strcmp(out.data, "/some/where") && !strcmp(out.dataset, "cifar10"));
  CHECK(out.synthetic_train == 10 && out.synthetic_test == 20 && out.threads == 2);
  char want[2048];
  recipe_to_json(&rec, want, sizeof want);
  CHECK(!strcmp(out.recipe, want));
  // Weights mode takes parameters and buffers only.
  ModelState c;
  model_state_init(&c, &nb.params);
  CHECK(ckpt_load(path, CKPT_WEIGHTS, &nb.spec, &c, NULL, err, sizeof err) == 0);
  CHECK(same_state(&a, &c, 0));
  int any_buf = 0;
  for (int i = 0; i < nb.params.n; i++) any_buf |= c.sgd.has_buf[i];
  CHECK(!any_buf);
  model_state_free(&a);
  model_state_free(&b);
  model_state_free(&c);
  netbuild_free(&nb);
}

// Writes the state as the reference would after conversion: state_dict names,
// num_batches_tracked counters (I64 scalars), no metadata; `mutate` may alter
// the records (dtype, shape, extra or missing names).
typedef void (*Mutate)(StTensor *t, int *n, void *scratch);

static void write_reference(const char *path, const ModelState *m, Mutate mutate) {
  const ParamTable *pt = m->table;
  StTensor *ts = calloc((size_t)pt->n * 2 + 4, sizeof *ts);
  char (*names)[PARAM_NAME_MAX + 32] = calloc((size_t)pt->n + 4, sizeof *names);
  static const int64_t tracked = 5;
  static double wide[4096];
  int n = 0;
  for (int i = 0; i < pt->n; i++) {
    const ParamInfo *p = &pt->items[i];
    StTensor *t = &ts[n++];
    t->name = p->name;
    t->dtype = ST_F32;
    t->ndim = p->ndim;
    for (int d = 0; d < p->ndim; d++) t->shape[d] = p->dims[d];
    t->data = (p->trainable ? m->params : m->buffers) + p->offset;
    t->nbytes = p->numel * 4;
    size_t len = strlen(p->name);
    if (len > 12 && !strcmp(p->name + len - 12, "running_mean")) {
      snprintf(names[i], sizeof names[i], "%.*snum_batches_tracked", (int)(len - 12), p->name);
      ts[n++] = (StTensor){names[i], ST_I64, 0, {0}, &tracked, 8};
    }
  }
  if (mutate) mutate(ts, &n, wide);
  char err[600];
  if (st_write(path, ts, n, NULL, 0, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  free(ts);
  free(names);
}

static int find(StTensor *t, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (!strcmp(t[i].name, name)) return i;
  return -1;
}

static const char *VICTIM = "cells.0.ops.1.x_op.ops.1.weight";  // conv3x3 of node 3 in cell 0

static void to_f64(StTensor *t, int *n, void *scratch) {
  int i = find(t, *n, VICTIM);
  double *w = scratch;
  for (size_t k = 0; k < t[i].nbytes / 4; k++) w[k] = ((const float *)t[i].data)[k];
  t[i].dtype = ST_F64;
  t[i].nbytes *= 2;
  t[i].data = w;
}
static void reshape(StTensor *t, int *n, void *scratch) {
  (void)scratch;
  int i = find(t, *n, VICTIM);
  t[i].ndim = 2;
  t[i].shape[0] = t[i].shape[0] * t[i].shape[1];
  t[i].shape[1] = t[i].shape[2] * t[i].shape[3];
}
static void drop(StTensor *t, int *n, void *scratch) {
  (void)scratch;
  int i = find(t, *n, VICTIM);
  t[i] = t[--*n];
}
static void extra(StTensor *t, int *n, void *scratch) {
  (void)scratch;
  t[*n] = t[0];
  t[*n].name = "cells.9.ops.0.x_op.ops.1.weight";
  (*n)++;
}

static void expect_refused(const char *path, const ModelState *m0, CkptMode mode, const NetSpec *ns,
                           const char *needle1, const char *needle2) {
  ModelState m;
  model_state_init(&m, m0->table);
  memcpy(m.params, m0->params, m0->table->n_trainable * 4);
  memcpy(m.buffers, m0->buffers, m0->table->n_buffer * 4);
  char err[600] = "";
  CkptInfo info;
  CHECK(ckpt_load(path, mode, ns, &m, &info, err, sizeof err) != 0);
  CHECK_MSG(strstr(err, needle1) != NULL, err);
  CHECK_MSG(!needle2 || strstr(err, needle2) != NULL, err);
  CHECK_MSG(strstr(err, path) != NULL, err);
  CHECK(same_state(&m, m0, 0));  // nothing copied
  model_state_free(&m);
}

static void test_reference_and_refusals(void) {
  NetSpec ns;
  spec_of(&ns, ARCH, 4);
  NetBuild nb, nb2;
  ModelState a, b;
  build(&ns, &nb, &a, 2);
  build(&ns, &nb2, &b, 3);  // another state over a second table of the same network
  char path[300], err[600];
  path_of(path, sizeof path, "ref.safetensors");
  write_reference(path, &a, NULL);
  ModelState c;
  model_state_init(&c, &nb.params);
  CHECK_MSG(ckpt_load(path, CKPT_WEIGHTS, &ns, &c, NULL, err, sizeof err) == 0, err);
  CHECK(same_state(&a, &c, 0));
  // A reference file is not a resumable checkpoint.
  expect_refused(path, &b, CKPT_FULL, &ns, "not a naoc checkpoint", NULL);
  Mutate muts[] = {to_f64, reshape, drop, extra};
  const char *want[][2] = {{VICTIM, "dtype is F64, expected F32"},
                           {VICTIM, "shape is [16, 9], expected [4, 4, 3, 3]"},
                           {VICTIM, "missing"},
                           {"cells.9.ops.0.x_op.ops.1.weight", "not part of this network"}};
  for (int k = 0; k < 4; k++) {
    write_reference(path, &a, muts[k]);
    expect_refused(path, &b, CKPT_WEIGHTS, &ns, want[k][0], want[k][1]);
  }
  // Truncated: every cut of a real checkpoint is refused.
  char full[300], cut[300];
  path_of(full, sizeof full, "full.safetensors");
  path_of(cut, sizeof cut, "cut.safetensors");
  Recipe rec;
  recipe_preset(&rec, "fashion-mnist");
  CkptInfo in;
  memset(&in, 0, sizeof in);
  in.step = 5, in.batch = 5, in.best_valid_top1 = -1, in.best_epoch = -1;
  CHECK(ckpt_save(full, &a, &ns, &rec, &in, err, sizeof err) == 0);
  FILE *f = fopen(full, "rb");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  char *bytes = malloc((size_t)size);
  fseek(f, 0, SEEK_SET);
  CHECK(fread(bytes, 1, (size_t)size, f) == (size_t)size);
  fclose(f);
  long cuts[] = {0, 4, 8, 100, size / 2, size - 1};
  for (int k = 0; k < 6; k++) {
    f = fopen(cut, "wb");
    fwrite(bytes, 1, (size_t)cuts[k], f);
    fclose(f);
    expect_refused(cut, &b, CKPT_WEIGHTS, &ns, cut, NULL);
  }
  free(bytes);
  model_state_free(&a);
  model_state_free(&b);
  model_state_free(&c);
  netbuild_free(&nb);
  netbuild_free(&nb2);
}

// Checkpoints of other networks: other arch (FULL names the arch; WEIGHTS the
// first tensor that differs), other width (a shape).
static void test_other_network(void) {
  NetSpec ns, other_arch, wide;
  spec_of(&ns, ARCH, 4);
  spec_of(&other_arch, "0 0 1 3 2 6 0 4  0 2 1 3 2 13 0 4", 4);  // node 3 x: conv1x1
  spec_of(&wide, ARCH, 6);
  NetBuild nb, nb2, nb3;
  ModelState a, o, w;
  build(&ns, &nb, &a, 4);
  build(&other_arch, &nb2, &o, 5);
  build(&wide, &nb3, &w, 6);
  Recipe rec;
  recipe_preset(&rec, "fashion-mnist");
  CkptInfo in;
  memset(&in, 0, sizeof in);
  in.best_valid_top1 = -1, in.best_epoch = -1;
  char p1[300], p2[300], err[600];
  path_of(p1, sizeof p1, "other-arch.safetensors");
  path_of(p2, sizeof p2, "wide.safetensors");
  CHECK(ckpt_save(p1, &o, &other_arch, &rec, &in, err, sizeof err) == 0);
  CHECK(ckpt_save(p2, &w, &wide, &rec, &in, err, sizeof err) == 0);
  expect_refused(p1, &a, CKPT_FULL, &ns, "checkpoint of another network: arch", NULL);
  expect_refused(p1, &a, CKPT_WEIGHTS, &ns, VICTIM, "shape is [4, 4, 1, 1], expected [4, 4, 3, 3]");
  expect_refused(p2, &a, CKPT_FULL, &ns, "checkpoint of another network: settings", NULL);
  expect_refused(p2, &a, CKPT_WEIGHTS, &ns, "stem.0.weight", "shape is [18, 1, 3, 3], expected [12, 1, 3, 3]");
  model_state_free(&a);
  model_state_free(&o);
  model_state_free(&w);
  netbuild_free(&nb);
  netbuild_free(&nb2);
  netbuild_free(&nb3);
}

int main(void) {
  snprintf(dir, sizeof dir, "%s/naoc-ckpt-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_roundtrip();
  test_reference_and_refusals();
  test_other_network();
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
