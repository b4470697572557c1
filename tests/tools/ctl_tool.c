// tests/tools/ctl_tool.c — helper program for the controller's parity test and
// speed bench (not a test itself).
//
//   ctl_tool fixture OUT.safetensors [--space S] [--batch N] [--seed S]
//            [--lambda X] [--grad-bound B] [--mlp-layers K]
//     Creates a controller (float32), a batch of valid architectures of the
//     space, targets and dropout masks; runs the training forward/backward;
//     two optimiser steps (the gradients of both and the weights after each);
//     the inference step at lambda and the
//     reconstruction (lambda 0). Writes the weights under their state_dict
//     names and everything else under "fx.", "grad.", "grad2.", "step1.",
//     "step2.".
//     tests/py/test_ctl_parity.py recomputes it all with PyTorch.
//
//   ctl_tool bench [--archs 600] [--batch 100] [--epochs 100] [--threads 2]
//            [--space S] [--seed S]
//     Times the controller's training (epochs over `archs` architectures) and
//     one generation step (100 archs, lambda 1); prints one JSON object with
//     the times and the FLOPs of an epoch (counted as the reference computes
//     it: embedding lookups then dense input projections; see
//     docs/search.md).
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/util.h"
#include "search/ctl.h"
#include "search/ctl_net.h"
#include "search/space.h"
#include "runtime/safetensors.h"

typedef struct {
  const char *out, *space;
  int batch, archs, epochs, threads, mlp_layers, ctl_threads;
  unsigned long long seed;
  double lambda, grad_bound;
} Opts;

static void usage(void) {
  fprintf(stderr, "usage: ctl_tool fixture OUT.safetensors [--space S] [--batch N] [--seed S] [--lambda X] "
                  "[--grad-bound B] [--mlp-layers K]\n       ctl_tool bench [--archs N] [--batch N] "
                  "[--epochs N] [--threads N] [--space S] [--seed S]\n");
  exit(2);
}

static void parse(int argc, char **argv, int first, Opts *o) {
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (i + 1 >= argc) usage();
    const char *v = argv[++i];
    if (!strcmp(a, "--space")) o->space = v;
    else if (!strcmp(a, "--batch")) o->batch = atoi(v);
    else if (!strcmp(a, "--archs")) o->archs = atoi(v);
    else if (!strcmp(a, "--epochs")) o->epochs = atoi(v);
    else if (!strcmp(a, "--threads")) o->threads = o->ctl_threads = atoi(v);
    else if (!strcmp(a, "--blas-threads")) o->threads = atoi(v);
    else if (!strcmp(a, "--mlp-layers")) o->mlp_layers = atoi(v);
    else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--lambda")) o->lambda = atof(v);
    else if (!strcmp(a, "--grad-bound")) o->grad_bound = atof(v);
    else usage();
  }
}

static void setup(const Opts *o, SearchSpace *sp, Ctl *ctl, Rng *rng) {
  char err[256];
  if (space_init(sp, o->space, err, sizeof err) != 0) {
    fprintf(stderr, "ctl_tool: %s\n", err);
    exit(2);
  }
  CtlConfig cfg;
  ctl_config_default(&cfg, sp->vocab, sp->length);
  cfg.batch = o->batch;
  cfg.threads = o->ctl_threads;
  if (o->mlp_layers >= 0) cfg.mlp_layers = o->mlp_layers;
  if (o->grad_bound > 0) cfg.grad_bound = o->grad_bound;
  if (ctl_config_check(&cfg, err, sizeof err) != 0) {
    fprintf(stderr, "ctl_tool: %s\n", err);
    exit(2);
  }
  rng_seed(rng, o->seed);
  ctl_create(ctl, &cfg, rng);
}

// ---------------------------------------------------------------- fixture
// The fixture's tensors, gathered for st_write (names copied).
typedef struct {
  StTensor *t;
  int n, cap;
} Fx;

static void fx_add(Fx *f, const char *name, StDtype d, int ndim, const int64_t *shape, const void *data) {
  if (f->n == f->cap) f->cap = f->cap ? 2 * f->cap : 64, f->t = xrealloc(f->t, (size_t)f->cap * sizeof *f->t);
  StTensor *t = &f->t[f->n++];
  memset(t, 0, sizeof *t);
  t->name = xstrdup(name), t->dtype = d, t->ndim = ndim, t->data = data;
  for (int k = 0; k < ndim; k++) t->shape[k] = shape[k];
  t->nbytes = (size_t)st_numel(ndim, shape) * st_dtype_size(d);
}

static void fx_free(Fx *f) {
  for (int i = 0; i < f->n; i++) free((char *)f->t[i].name);
  free(f->t);
}

static void add_f32(Fx *f, const char *name, int ndim, int64_t a, int64_t b, int64_t c, const float *x) {
  int64_t shape[3] = {a, b, c};
  fx_add(f, name, ST_F32, ndim, shape, x);
}

static float *dup_f(const float *x, size_t n) {
  float *y = xmalloc(n * sizeof(float));
  memcpy(y, x, n * sizeof(float));
  return y;
}

static int fixture(const Opts *o) {
  SearchSpace sp;
  Ctl ctl;
  Rng rng;
  setup(o, &sp, &ctl, &rng);
  const CtlConfig *c = &ctl.cfg;
  const int n = o->batch, L = c->length, T = c->enc_len, H = c->hidden, V = c->vocab, M = c->mlp_hidden;
  const int NLy = c->mlp_layers ? c->mlp_layers : 1;
  int *tok = xmalloc((size_t)n * L * sizeof(int)), *gen = xmalloc((size_t)n * L * sizeof(int));
  int *rec = xmalloc((size_t)n * L * sizeof(int));
  float *y = xmalloc((size_t)n * sizeof(float)), *masks = xmalloc((size_t)NLy * n * M * sizeof(float));
  for (int i = 0; i < n; i++) space_random(&sp, &rng, tok + (size_t)i * L), y[i] = (float)rng_uniform(&rng);
  for (int i = 0; i < NLy * n * M; i++) masks[i] = rng_uniform(&rng) < 0.9 ? 1 / 0.9f : 0;
  Fx f = {0};
  float *p0 = dup_f(ctl.p, ctl.lay.total);
  for (int i = 0; i < ctl.lay.n; i++) {
    const CtlParam *t = &ctl.lay.p[i];
    add_f32(&f, t->name, t->cols ? 2 : 1, t->rows, t->cols, 0, p0 + t->off);
  }
  int64_t shp[2] = {n, L};
  fx_add(&f, "fx.tokens", ST_I32, 2, shp, tok);
  add_f32(&f, "fx.targets", 1, n, 0, 0, y);
  add_f32(&f, "fx.masks", 3, NLy, n, M, masks);
  // Training forward/backward, then two optimiser steps (the second at the new weights).
  CtlWork_f32 *w = ctl_workspace(&ctl, n);
  float *grads[2], *steps[2];
  double loss[3], gnorm = 0;
  for (int k = 0; k < 2; k++) {
    ctl_forward_f32(c, &ctl.lay, ctl.p, w, n, tok, masks, 1);
    ctl_backward_f32(c, &ctl.lay, ctl.p, w, tok, y, ctl.g);
    if (k == 0) {
      CtlLoss l = ctl_loss_f32(c, w, tok, y);
      loss[0] = l.loss, loss[1] = l.mse, loss[2] = l.nll;
      add_f32(&f, "fx.yhat", 1, n, 0, 0, dup_f(w->yhat, (size_t)n));
      add_f32(&f, "fx.O", 3, T, n, H, dup_f(w->O, (size_t)T * n * H));
      add_f32(&f, "fx.e", 2, n, H, 0, dup_f(w->e, (size_t)n * H));
      add_f32(&f, "fx.logp", 3, L, n, V, dup_f(w->logp, (size_t)L * n * V));
      for (size_t i = 0; i < ctl.lay.total; i++) gnorm += (double)ctl.g[i] * ctl.g[i];
    }
    grads[k] = dup_f(ctl.g, ctl.lay.total);
    ctl_optimizer_step(&ctl);
    steps[k] = dup_f(ctl.p, ctl.lay.total);
  }
  char name[200];
  for (int i = 0; i < ctl.lay.n; i++) {
    const CtlParam *t = &ctl.lay.p[i];
    const char *pre[4] = {"grad.", "grad2.", "step1.", "step2."};
    const float *src[4] = {grads[0], grads[1], steps[0], steps[1]};
    for (int k = 0; k < 4; k++) {
      snprintf(name, sizeof name, "%s%s", pre[k], t->name);
      add_f32(&f, name, t->cols ? 2 : 1, t->rows, t->cols, 0, src[k] + t->off);
    }
  }
  int64_t three = 3, one = 1;
  fx_add(&f, "fx.loss", ST_F64, 1, &three, loss);
  gnorm = sqrt(gnorm);
  fx_add(&f, "fx.grad_norm", ST_F64, 1, &one, &gnorm);
  // The inference step at the initial weights: its gradient, the decoding.
  memcpy(ctl.p, p0, ctl.lay.total * sizeof(float));
  ctl_forward_f32(c, &ctl.lay, ctl.p, w, n, tok, NULL, 0);
  ctl_grad_O_f32(c, &ctl.lay, ctl.p, w);
  add_f32(&f, "fx.gO", 3, T, n, H, dup_f(w->g_O, (size_t)T * n * H));
  float *pred = xmalloc((size_t)n * sizeof(float));
  ctl_generate(&ctl, n, tok, o->lambda, sp.allowed, gen, pred);
  ctl_generate(&ctl, n, tok, 0.0, sp.allowed, rec, NULL);
  fx_add(&f, "fx.gen_tokens", ST_I32, 2, shp, gen);
  fx_add(&f, "fx.rec_tokens", ST_I32, 2, shp, rec);
  add_f32(&f, "fx.gen_pred", 1, n, 0, 0, pred);
  fx_add(&f, "fx.lambda", ST_F64, 1, &one, &o->lambda);
  int64_t allowed[SPACE_MAX_LEN], len = L;
  for (int t = 0; t < L; t++) allowed[t] = (int64_t)sp.allowed[t];
  fx_add(&f, "fx.allowed", ST_I64, 1, &len, allowed);
  char err[512];
  int rc = st_write(o->out, f.t, f.n, NULL, 0, err, sizeof err);
  if (rc) fprintf(stderr, "ctl_tool: %s\n", err);
  for (int i = 0; i < f.n; i++)  // the fx.* copies made here
    if (!strncmp(f.t[i].name, "fx.", 3) && f.t[i].dtype == ST_F32 && strcmp(f.t[i].name, "fx.targets") &&
        strcmp(f.t[i].name, "fx.masks") && strcmp(f.t[i].name, "fx.gen_pred"))
      free((void *)f.t[i].data);
  fx_free(&f);
  free(tok), free(gen), free(rec), free(y), free(masks), free(p0), free(grads[0]), free(grads[1]), free(steps[0]), free(steps[1]);
  free(pred);
  ctl_destroy(&ctl);
  return rc ? 1 : 0;
}

// ---------------------------------------------------------------- bench
static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double cpu_s(void) {  // all threads of the process
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// Multiply-adds x 2 of one training batch of n as the reference computes it
// (dense input projections of the embedded tokens; forward, then backward at
// twice the forward), plus the forward of the generation step.
static double batch_flops(const CtlConfig *c, int n) {
  double H = c->hidden, G = 4 * H, V = c->vocab, L = c->length, T = c->enc_len, M = c->mlp_hidden;
  double enc = T * n * (H * G + H * G);                   // input + recurrent projections
  double mlp = n * (c->mlp_layers ? H * M + (c->mlp_layers - 1) * M * M + M : H);
  double dec = L * n * (H * G + H * G + H * H + 2 * T * H + 2 * H * H + H * V);
  return 2 * 3 * (enc + mlp + dec);
}

static int bench(const Opts *o) {
  SearchSpace sp;
  Ctl ctl;
  Rng rng;
  openblas_set_num_threads(o->threads);
  setup(o, &sp, &ctl, &rng);
  const int L = ctl.cfg.length, n = o->archs;
  int *tok = xmalloc((size_t)n * L * sizeof(int)), *gen = xmalloc((size_t)n * L * sizeof(int));
  float *y = xmalloc((size_t)n * sizeof(float));
  for (int i = 0; i < n; i++) space_random(&sp, &rng, tok + (size_t)i * L), y[i] = (float)rng_uniform(&rng);
  ctl_adam_reset(&ctl);
  ctl_train_epoch(&ctl, n, tok, y, space_augment, &sp, &rng);  // warm-up: workspace, BLAS threads
  double t0 = now_s(), c0 = cpu_s();
  CtlLoss l = {0, 0, 0};
  for (int e = 0; e < o->epochs; e++) l = ctl_train_epoch(&ctl, n, tok, y, space_augment, &sp, &rng);
  double train = now_s() - t0, train_cpu = cpu_s() - c0;
  int ng = n < 100 ? n : 100;
  ctl_generate(&ctl, ng, tok, 1.0, sp.allowed, gen, NULL);
  t0 = now_s(), c0 = cpu_s();
  int reps = 5;
  for (int r = 0; r < reps; r++) ctl_generate(&ctl, ng, tok, 1.0, sp.allowed, gen, NULL);
  double g = (now_s() - t0) / reps, g_cpu = (cpu_s() - c0) / reps;
  double flops = 0;
  for (int s = 0; s < n; s += o->batch) flops += batch_flops(&ctl.cfg, n - s < o->batch ? n - s : o->batch);
  printf("{\"impl\": \"c\", \"archs\": %d, \"batch\": %d, \"epochs\": %d, \"threads\": %d, "
         "\"train_s\": %.4f, \"train_cpu_s\": %.4f, \"epoch_s\": %.5f, \"generate_s\": %.5f, \"generate_cpu_s\": %.5f, \"epoch_gflop\": %.4f, "
         "\"gflops\": %.2f, \"final_loss\": %.6f}\n",
         n, o->batch, o->epochs, o->threads, train, train_cpu, train / o->epochs, g, g_cpu, flops / 1e9,
         flops * o->epochs / train / 1e9, l.loss);
  free(tok), free(gen), free(y);
  ctl_destroy(&ctl);
  return 0;
}

int main(int argc, char **argv) {
  Opts o = {NULL, "nao-small", 100, 600, 100, 2, -1, 2, 1, 1.0, 0};
  if (argc < 2) usage();
  if (!strcmp(argv[1], "fixture")) {
    if (argc < 3) usage();
    o.out = argv[2];
    o.batch = 8;
    parse(argc, argv, 3, &o);
    return fixture(&o);
  }
  if (!strcmp(argv[1], "bench")) {
    parse(argc, argv, 2, &o);
    return bench(&o);
  }
  usage();
}
