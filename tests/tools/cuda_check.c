// tests/tools/cuda_check.c — one training step of a network on the cuda
// runtime against the cpu backend, tensor by tensor.
//
//   cuda_check --net FILE.nao [--mock] [--batch N] [--seed S] [--tol T]
//              [--tf32] [--reuse] [--threads N] [--cache DIR] [--quiet]
//
// Same weights, inputs, labels, masks (step 3 of 4, so drop-path keeps
// little) on both: the GPU runs the net built in process with arena reuse off
// (every stored tensor keeps its value), the CPU runs the same training graph
// planned without reuse. --reuse builds both as training does (arena reuse
// on): then only the loss, the gradients, the update and the evaluation's
// loss are compared (intermediate tensors were overwritten). Compared, each by its norm-wise
// relative error |gpu - cpu| / |cpu|: every tensor the GPU stores (each
// kernel's and library step's output), the loss, every parameter's gradient,
// then after one SGD step (momentum, weight decay, clipping) every parameter,
// momentum buffer and BN statistic; then the evaluation graph's logits and
// loss. TF32 is off unless --tf32 (then the bound should be looser: TF32
// keeps 10 bits of mantissa). Exit 0 when everything is within --tol
// (default 1e-4), 1 when not, 2 on bad usage, 3 when the runtime cannot run
// (no GPU, a library missing: the message says which).
//
// --mock runs the device on the CPU (tests/unit/cuda_mock.h), so CI runs the
// very checks tests/gpu/check.sh runs on a GPU (on tests/gpu/tiny.nao).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/emit_cuda.h"
#include "compiler/frontend.h"
#include "compiler/util.h"
#include "runtime/backend_cuda.h"
#include "runtime/cpu_kernels.h"
#include "runtime/exec_cpu.h"
#include "runtime/netbuild.h"
#include "runtime/optim.h"
#include "runtime/param_init.h"
#include "runtime/rng.h"
#include "tests/unit/cuda_mock.h"

typedef struct {
  int mock, batch, tf32, reuse, threads, quiet, verbose;
  unsigned long long seed;
  double tol;
  const char *net, *cache;
} Args;

// Comparisons are collected per family (tensors, gradients, update,
// evaluation) and judged at the end: the error of an entry is |gpu - cpu| /
// |cpu|; for parameter-shaped families (gradients, the update) it is
// |gpu - cpu| / max(|cpu|, 1e-3 |family|), |family| the norm of all the
// family's reference values together. An entry below a thousandth of its
// family is measured against that thousandth: a gradient that is zero in
// exact arithmetic (the bias of a BN whose output feeds another BN) holds
// only rounding noise, and its own norm is no scale for that noise.
typedef struct {
  char name[200];
  double d2, r2;
  size_t n;
} Entry;

typedef struct {
  Entry *v;
  int n, cap;
  double worst;
  char where[200];
  int over, floored;
  int use_floor;  // gradients and the update: near-zero entries against the floor
  const Args *a;
} Tally;

static void add(Tally *t, const char *what, const float *a, const float *b, size_t n) {
  double d = 0, r = 0;
  for (size_t i = 0; i < n; i++) {
    double x = (double)a[i] - (double)b[i];
    d += x * x;
    r += (double)b[i] * (double)b[i];
  }
  if (t->n == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    t->v = xrealloc(t->v, sizeof *t->v * (size_t)t->cap);
  }
  Entry *e = &t->v[t->n++];
  snprintf(e->name, sizeof e->name, "%s", what);
  e->d2 = isfinite(d) ? d : INFINITY;
  e->r2 = r;
  e->n = n;
}

static void add1(Tally *t, const char *what, double gpu, double cpu) {
  float a = (float)gpu, b = (float)cpu;
  add(t, what, &a, &b, 1);
}

static void judge(Tally *t) {
  double r2 = 0;
  for (int i = 0; i < t->n; i++) r2 += t->v[i].r2;
  double floor = t->use_floor ? 1e-3 * sqrt(r2) : 0.0;
  for (int i = 0; i < t->n; i++) {
    const Entry *e = &t->v[i];
    double ref = sqrt(e->r2);
    if (ref < floor) t->floored++;
    double err = isfinite(e->d2) ? sqrt(e->d2) / (ref > floor ? ref : floor > 0 ? floor : 1e-30) : INFINITY;
    if (!(err <= t->a->tol)) {
      if ((!t->over || t->a->verbose) && !t->a->quiet)
        printf("  %s over the bound: %s: %.3g\n", t->over ? "also" : "first", e->name, err);
      t->over++;
    }
    if (!(err <= t->worst)) {
      t->worst = err;
      snprintf(t->where, sizeof t->where, "%s", e->name);
    }
  }
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int usage(void) {
  fprintf(stderr, "usage: cuda_check --net FILE.nao [--mock] [--batch N] [--seed S] [--tol T] "
                  "[--tf32] [--reuse] [--threads N] [--cache DIR] [--quiet] [--verbose]\n");
  return 2;
}

static int parse(int argc, char **argv, Args *a) {
  memset(a, 0, sizeof *a);
  a->batch = 4;
  a->seed = 1;
  a->tol = 1e-4;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(s, "--mock")) a->mock = 1;
    else if (!strcmp(s, "--tf32")) a->tf32 = 1;
    else if (!strcmp(s, "--reuse")) a->reuse = 1;
    else if (!strcmp(s, "--quiet")) a->quiet = 1;
    else if (!strcmp(s, "--verbose")) a->verbose = 1;
    else if (!strcmp(s, "--net") && v) a->net = argv[++i];
    else if (!strcmp(s, "--cache") && v) a->cache = argv[++i];
    else if (!strcmp(s, "--batch") && v) a->batch = atoi(argv[++i]);
    else if (!strcmp(s, "--threads") && v) a->threads = atoi(argv[++i]);
    else if (!strcmp(s, "--seed") && v) a->seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(s, "--tol") && v) a->tol = atof(argv[++i]);
    else return -1;
  }
  return a->net && a->batch >= 1 && a->tol > 0 ? 0 : -1;
}

// ---------------------------------------------------------------- comparisons

// Every stored tensor of the GPU's program against the CPU's, in the CPU's
// execution order (the first one over the bound is where a bug starts).
static void compare_tensors(Tally *t, CudaRt *rt, const CudaProgram *p, const IrGraph *g,
                            const Plan *plan, CpuExec *ex, int n, const char *prog) {
  size_t cap = 0;
  float *ga = NULL, *ca = NULL;
  char *seen = xcalloc((size_t)g->n_tensors + 1, 1);
  for (int s = 0; s < plan->n_steps; s++) {
    const IrNode *nd = &g->nodes[plan->steps[s]];
    for (int o = 0; o < nd->n_out; o++) {
      int x = nd->out[o];
      if (x < 0 || seen[x]) continue;
      seen[x] = 1;
      const IrTensor *tt = &g->tensors[x];
      if (tt->kind == IR_T_LABELS || p->locs[x].region == LOC_NONE) continue;
      size_t cnt = ir_tensor_numel(tt) * (size_t)(tt->kind == IR_T_ACT ? n : 1);
      if (cnt > cap) {
        cap = cnt;
        ga = xrealloc(ga, sizeof(float) * cap);
        ca = xrealloc(ca, sizeof(float) * cap);
      }
      if (cuda_rt_read_tensor(rt, prog, x, ga)) continue;
      cpu_exec_read(ex, x, n, ca);
      char what[200];
      snprintf(what, sizeof what, "%s tensor %.150s", prog, tt->name);
      add(t, what, ga, ca, cnt);
    }
  }
  free(seen);
  free(ga);
  free(ca);
}

static void compare_params(Tally *t, const ParamTable *pt, const unsigned char *active,
                           const float *gpu, const float *cpu, int trainable, const char *kind) {
  for (int i = 0; i < pt->n; i++) {
    const ParamInfo *pi = &pt->items[i];
    if (pi->trainable != trainable || (active && !active[i])) continue;
    char what[200];
    snprintf(what, sizeof what, "%s of %.150s", kind, pi->name);
    add(t, what, gpu + pi->offset, cpu + pi->offset, pi->numel);
  }
}

// ---------------------------------------------------------------- the check

typedef struct {
  NetBuild nb;
  CudaNetBuild *cb;
  const CudaNet *net;
  CudaRt *rt;
  CpuExec *train, *eval;
  ModelState st;
} Run;

static int setup(Run *r, const Args *a, char *err, size_t errlen) {
  NetSpec ns;
  if (nao_frontend_file(a->net, &ns, stderr)) {
    snprintf(err, errlen, "the network does not compile");
    return 1;
  }
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.label_smoothing = ns.classes > 100 ? 0.1f : 0.0f;
  o.plan_reuse = a->reuse;
  if (netbuild_create(&ns, &o, &r->nb, err, errlen)) return 1;
  EmitCudaOptions eo;
  emit_cuda_defaults(&eo);
  eo.no_reuse = !a->reuse;
  eo.tf32 = 1;  // as naoc emits it; the runtime turns TF32 off unless --tf32
  r->cb = cuda_net_new(&r->nb.params, a->net, &eo);
  if (cuda_net_add_graph(r->cb, &r->nb.train, "train", err, errlen)) return 1;
  cuda_net_add_update(r->cb);
  if (cuda_net_add_graph(r->cb, &r->nb.eval, "eval", err, errlen)) return 1;
  r->net = cuda_net_get(r->cb);
  CudaRtOptions ro;
  cuda_rt_options_default(&ro);
  ro.tf32 = a->tf32 ? -1 : 0;
  ro.kernel_cache = a->cache;
  ro.conv_search = CUDA_CONV_HEURISTIC;  // the check is about values, not speed
  if (a->mock) {
    CudaMockConfig mc = {.net = r->net, .source = r->net->device_source};
    if (cuda_mock_install(&mc, err, errlen)) return 1;
    ro.cu = cuda_mock_api();
    ro.dnn = cudnn_mock_api();
    ro.blas = cublas_mock_api();
  }
  double t0 = now_s();
  r->rt = cuda_rt_create(r->net, NULL, a->batch, a->batch, &ro, err, errlen);
  if (!r->rt) return 3;
  const CudaRtInfo *in = cuda_rt_info(r->rt);
  printf("device: %s (sm_%d%d, %d SMs), %s; %s; %s\n", in->device_name, in->cc_major, in->cc_minor,
         in->sms, in->nvrtc, in->cudnn[0] ? in->cudnn : "no cuDNN", in->cublas[0] ? in->cublas : "no cuBLAS");
  printf("kernels: %d (%d compiled, %d from the cache) in %.2f s; runtime ready in %.2f s\n",
         r->net->n_kernels, in->units_compiled, in->units_cached, in->compile_seconds, now_s() - t0);
  r->train = cpu_exec_create(&r->nb.train, &r->nb.train_plan, a->batch, a->threads, err, errlen);
  if (!r->train) return 1;
  r->eval = cpu_exec_create(&r->nb.eval, &r->nb.eval_plan, a->batch, a->threads, err, errlen);
  if (!r->eval) return 1;
  model_state_init(&r->st, &r->nb.params);
  Rng rng;
  rng_seed(&rng, a->seed);
  model_state_init_weights(&r->st, &rng);
  // BN statistics away from (0, 1), so that their updates are visible
  for (size_t i = 0; i < r->nb.params.n_buffer; i++) r->st.buffers[i] = (float)(0.5 + 0.5 * rng_uniform(&rng));
  cuda_rt_set_active(r->rt, r->nb.grad_written);
  if (cuda_rt_upload(r->rt, r->st.params, r->st.buffers, NULL, NULL)) {
    snprintf(err, errlen, "%s", cuda_rt_error(r->rt));
    return 1;
  }
  return 0;
}

static void teardown(Run *r) {
  cuda_rt_destroy(r->rt);
  cpu_exec_free(r->train);
  cpu_exec_free(r->eval);
  model_state_free(&r->st);
  cuda_net_free(r->cb);
  netbuild_free(&r->nb);
}

// The arrays of one check; freed together.
typedef struct {
  float *x, *cpu_buf, *cpu_grads, *gg, *gp, *gm, *gb;
  int32_t *y;
  SgdState cs;
  Tally t, tg, tu, te;
  CudaStepOut go, eo;
  float cpu_loss, cpu_eval_loss;
  double cpu_norm;
} Check;

static void check_free(Check *c) {
  free(c->x), free(c->y), free(c->cpu_buf), free(c->cpu_grads);
  free(c->gg), free(c->gp), free(c->gm), free(c->gb);
  free(c->t.v), free(c->tg.v), free(c->tu.v), free(c->te.v);
  sgd_state_free(&c->cs);
}

// Forward and backward on both; tensors, loss and gradients compared.
static int check_train(Run *r, const Args *a, Check *c, const RunState *rs, const SgdHyper *h) {
  const ParamTable *pt = &r->nb.params;
  int n = a->batch;
  double t0 = now_s();
  if (cuda_rt_train_forward(r->rt, c->x, c->y, n, rs, h, &c->go)) {
    fprintf(stderr, "cuda_check: GPU forward: %s\n", cuda_rt_error(r->rt));
    return 3;
  }
  double t_gpu = now_s() - t0;
  memcpy(c->cpu_buf, r->st.buffers, sizeof(float) * pt->n_buffer);
  t0 = now_s();
  cpu_exec_set_input(r->train, c->x, n);
  cpu_exec_set_labels(r->train, c->y, n);
  if (cpu_exec_run(r->train, n, rs, r->st.params, c->cpu_grads, c->cpu_buf)) {
    fprintf(stderr, "cuda_check: CPU: %s\n", cpu_exec_error(r->train));
    return 1;
  }
  printf("step: GPU %.2f s (first run, eager), CPU %.2f s\n", t_gpu, now_s() - t0);
  c->cpu_loss = cpu_exec_loss(r->train);
  add1(&c->t, "loss", c->go.loss, c->cpu_loss);
  if (a->reuse)  // tensors that share memory were overwritten: the outputs only
    printf("arena reuse on (as in training): intermediate tensors are not compared\n");
  else
    compare_tensors(&c->t, r->rt, cuda_net_program(r->net, "train"), &r->nb.train,
                    &r->nb.train_plan, r->train, n, "train");
  if (cuda_rt_download_grads(r->rt, c->gg)) return 3;
  compare_params(&c->tg, pt, r->nb.grad_written, c->gg, c->cpu_grads, 1, "gradient");
  c->cpu_norm = sgd_grad_norm(&c->cs, NULL, r->nb.grad_written, c->cpu_grads);
  add1(&c->tg, "gradient norm", c->go.grad_norm, c->cpu_norm);
  return 0;
}

// SGD on both; parameters, momentum, BN statistics compared.
static int check_update(Run *r, Check *c, const SgdHyper *h) {
  const ParamTable *pt = &r->nb.params;
  if (cuda_rt_train_update(r->rt, h)) {
    fprintf(stderr, "cuda_check: GPU update: %s\n", cuda_rt_error(r->rt));
    return 3;
  }
  if (cuda_rt_download(r->rt, c->gp, c->gb, c->gm)) return 3;
  sgd_step(&c->cs, NULL, r->nb.grad_written, r->st.params, c->cpu_grads, h);
  compare_params(&c->tu, pt, r->nb.grad_written, c->gp, r->st.params, 1, "updated parameter");
  compare_params(&c->tu, pt, r->nb.grad_written, c->gm, c->cs.momentum, 1, "momentum");
  compare_params(&c->tu, pt, NULL, c->gb, c->cpu_buf, 0, "BN statistic");
  return 0;
}

// Evaluation of the updated weights on both.
static int check_eval(Run *r, const Args *a, Check *c) {
  int n = a->batch;
  if (cuda_rt_eval(r->rt, c->x, c->y, n, &c->eo)) {
    fprintf(stderr, "cuda_check: GPU eval: %s\n", cuda_rt_error(r->rt));
    return 3;
  }
  cpu_exec_set_input(r->eval, c->x, n);
  cpu_exec_set_labels(r->eval, c->y, n);
  RunState es = {0, 0, 0, 0};
  if (cpu_exec_run(r->eval, n, &es, r->st.params, NULL, c->cpu_buf)) {
    fprintf(stderr, "cuda_check: CPU eval: %s\n", cpu_exec_error(r->eval));
    return 1;
  }
  if (!a->reuse)
    compare_tensors(&c->te, r->rt, cuda_net_program(r->net, "eval"), &r->nb.eval, &r->nb.eval_plan,
                    r->eval, n, "eval");
  c->cpu_eval_loss = cpu_exec_loss(r->eval);
  add1(&c->te, "eval loss", c->eo.loss, c->cpu_eval_loss);
  return 0;
}

static int verdict(Check *c, const Args *a) {
  printf("loss: GPU %.7g, CPU %.7g; gradient norm: GPU %.7g, CPU %.7g; eval loss GPU %.7g, CPU %.7g\n",
         c->go.loss, c->cpu_loss, c->go.grad_norm, c->cpu_norm, c->eo.loss, c->cpu_eval_loss);
  Tally *all[4] = {&c->t, &c->tg, &c->tu, &c->te};
  const char *names[4] = {"forward/backward tensors", "gradients", "SGD update", "evaluation"};
  int bad = 0;
  for (int i = 0; i < 4; i++) {
    judge(all[i]);
    printf("%-26s %5d compared, worst %.3g (%s), %d over %.1e: %s\n", names[i], all[i]->n,
           all[i]->worst, all[i]->where[0] ? all[i]->where : "-", all[i]->over, a->tol,
           all[i]->over ? "FAIL" : "ok");
    if (all[i]->floored)
      printf("%-26s %5d near zero, measured against the family floor\n", "", all[i]->floored);
    bad |= all[i]->over > 0 || all[i]->n == 0;
  }
  return bad;
}

static int check(Run *r, const Args *a) {
  const ParamTable *pt = &r->nb.params;
  int n = a->batch;
  size_t per = ir_tensor_numel(&r->nb.train.tensors[r->nb.train.input]);
  size_t nt = pt->n_trainable, nbuf = pt->n_buffer;
  Check c;
  memset(&c, 0, sizeof c);
  c.t.a = c.tg.a = c.tu.a = c.te.a = a;
  c.tg.use_floor = c.tu.use_floor = 1;
  c.x = xmalloc(sizeof(float) * per * (size_t)n);
  c.y = xmalloc(sizeof(int32_t) * (size_t)n);
  c.cpu_buf = xmalloc(sizeof(float) * (nbuf + 1));
  c.gb = xmalloc(sizeof(float) * (nbuf + 1));
  c.cpu_grads = xcalloc(nt + 1, sizeof(float));
  c.gg = xmalloc(sizeof(float) * (nt + 1));
  c.gp = xmalloc(sizeof(float) * (nt + 1));
  c.gm = xmalloc(sizeof(float) * (nt + 1));
  sgd_state_init(&c.cs, pt);
  Rng rng;
  rng_seed(&rng, a->seed + 1);
  for (size_t i = 0; i < per * (size_t)n; i++) c.x[i] = (float)rng_normal(&rng);
  for (int i = 0; i < n; i++) c.y[i] = (int32_t)rng_below(&rng, (uint64_t)r->nb.spec.classes);
  RunState rs = {3, 4, a->seed * 7919, 1};  // step 3 of 4: drop-path keeps little
  SgdHyper h = {0.1, 0.9, 3e-4, 5.0};
  printf("batch %d, seed %llu, TF32 %s, bound %.1e on |gpu - cpu| / |cpu| per tensor (gradients, "
         "parameters: / max(|cpu|, 1e-3 |all gradients|, |all parameters|))\n",
         n, a->seed, a->tf32 ? "on (convolutions)" : "off", a->tol);
  int rc = check_train(r, a, &c, &rs, &h);
  if (!rc) rc = check_update(r, &c, &h);
  if (!rc) rc = check_eval(r, a, &c);
  if (!rc) rc = verdict(&c, a);
  check_free(&c);
  return rc;
}

int main(int argc, char **argv) {
  Args a;
  if (parse(argc, argv, &a)) return usage();
  Run r;
  memset(&r, 0, sizeof r);
  char err[8192];
  int rc = setup(&r, &a, err, sizeof err);
  if (rc) fprintf(stderr, "cuda_check: %s\n", err);
  if (!rc) rc = check(&r, &a);
  if (!rc && a.mock && cuda_mock_violation()) {
    fprintf(stderr, "cuda_check: the mock device saw a broken rule: %s\n", cuda_mock_violation());
    rc = 1;
  }
  teardown(&r);
  if (a.mock) cuda_mock_uninstall();
  printf("%s\n", rc == 0 ? "PASS" : rc == 3 ? "CANNOT RUN" : "FAIL");
  return rc;
}
