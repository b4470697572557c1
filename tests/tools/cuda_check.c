// tests/tools/cuda_check.c — one training step of a network on the cuda
// runtime against the cpu backend, tensor by tensor.
//
//   cuda_check [--mock] [--net FILE.nao] [--batch N] [--seed S] [--tol T]
//              [--tf32] [--reuse] [--threads N] [--cache DIR] [--quiet]
//
// Same weights, inputs, labels, masks (step 3 of 4, so drop-path keeps
// little) on both: the GPU runs the net built in process with arena reuse off
// (every stored tensor keeps its value: --reuse turns it on), the CPU runs the
// same training graph planned without reuse. Compared, each by its norm-wise
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
// very checks tests/gpu/check.sh runs on a GPU; --net defaults to a small
// network then.
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

static const char *tiny =
    "network tiny {\n"
    "  input 3x32x32; classes 10; stem cifar;\n"
    "  channels 4; layers 1; nodes 2;\n"
    "  aux_weight 0.4; drop_path_keep 0.8; dropout_keep 0.6;\n"
    "}\n"
    "cell normal {\n"
    "  node 2 = sep3x3(0) + conv1x3_3x1(1);\n"
    "  node 3 = identity(2) + avg3x3(0);\n"
    "}\n"
    "cell reduction {\n"
    "  node 2 = identity(0) + conv3x3(0);\n"
    "  node 3 = max2x2(2) + avg2x2(2);\n"
    "}\n";

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
  fprintf(stderr, "usage: cuda_check [--mock] [--net FILE.nao] [--batch N] [--seed S] [--tol T] "
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
  return a->batch >= 1 && a->tol > 0 ? 0 : -1;
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
  int rc = a->net ? nao_frontend_file(a->net, &ns, stderr)
                  : nao_frontend_text("tiny.nao", tiny, strlen(tiny), &ns, stderr);
  if (rc) {
    snprintf(err, errlen, "the network does not compile");
    return 1;
  }
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.label_smoothing = ns.classes > 100 ? 0.1f : 0.0f;
  o.plan_reuse = 0;
  if (netbuild_create(&ns, &o, &r->nb, err, errlen)) return 1;
  EmitCudaOptions eo;
  emit_cuda_defaults(&eo);
  eo.no_reuse = !a->reuse;
  eo.tf32 = 1;  // as naoc emits it; the runtime turns TF32 off unless --tf32
  r->cb = cuda_net_new(&r->nb.params, a->net ? a->net : "tiny.nao", &eo);
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

static int check(Run *r, const Args *a) {
  const ParamTable *pt = &r->nb.params;
  int n = a->batch;
  const IrTensor *xin = &r->nb.train.tensors[r->nb.train.input];
  size_t per = ir_tensor_numel(xin);
  int classes = r->nb.spec.classes;
  float *x = xmalloc(sizeof(float) * per * (size_t)n);
  int32_t *y = xmalloc(sizeof(int32_t) * (size_t)n);
  Rng rng;
  rng_seed(&rng, a->seed + 1);
  for (size_t i = 0; i < per * (size_t)n; i++) x[i] = (float)rng_normal(&rng);
  for (int i = 0; i < n; i++) y[i] = (int32_t)rng_below(&rng, (uint64_t)classes);
  RunState rs = {3, 4, a->seed * 7919, 1};
  SgdHyper h = {0.1, 0.9, 3e-4, 5.0};
  size_t nt = pt->n_trainable, nbuf = pt->n_buffer;
  printf("batch %d, seed %llu, TF32 %s, bound %.1e on |gpu - cpu| / |cpu| per tensor (gradients, parameters: / max(|cpu|, 1e-3 |all gradients|, |all parameters|))\n",
         n, a->seed, a->tf32 ? "on (convolutions)" : "off", a->tol);
  // GPU
  double t0 = now_s();
  CudaStepOut go;
  if (cuda_rt_train_forward(r->rt, x, y, n, &rs, &h, &go)) {
    fprintf(stderr, "cuda_check: GPU forward: %s\n", cuda_rt_error(r->rt));
    return 3;
  }
  double t_gpu = now_s() - t0;
  // CPU
  float *cpu_buf = xmalloc(sizeof(float) * (nbuf + 1));
  memcpy(cpu_buf, r->st.buffers, sizeof(float) * nbuf);
  float *cpu_grads = xcalloc(nt + 1, sizeof(float));
  t0 = now_s();
  cpu_exec_set_input(r->train, x, n);
  cpu_exec_set_labels(r->train, y, n);
  if (cpu_exec_run(r->train, n, &rs, r->st.params, cpu_grads, cpu_buf)) {
    fprintf(stderr, "cuda_check: CPU: %s\n", cpu_exec_error(r->train));
    return 1;
  }
  double t_cpu = now_s() - t0;
  printf("step: GPU %.2f s (first run, eager), CPU %.2f s\n", t_gpu, t_cpu);
  Tally t = {.a = a};
  float cl = cpu_exec_loss(r->train);
  add1(&t, "loss", go.loss, cl);
  compare_tensors(&t, r->rt, cuda_net_program(r->net, "train"), &r->nb.train, &r->nb.train_plan,
                  r->train, n, "train");
  Tally tg = {.a = a, .use_floor = 1};
  float *gg = xmalloc(sizeof(float) * (nt + 1));
  if (cuda_rt_download_grads(r->rt, gg)) return 3;
  compare_params(&tg, pt, r->nb.grad_written, gg, cpu_grads, 1, "gradient");
  SgdState cs;
  sgd_state_init(&cs, pt);
  double cnorm = sgd_grad_norm(&cs, NULL, r->nb.grad_written, cpu_grads);
  add1(&tg, "gradient norm", go.grad_norm, cnorm);
  // the update
  Tally tu = {.a = a, .use_floor = 1};
  if (cuda_rt_train_update(r->rt, &h)) {
    fprintf(stderr, "cuda_check: GPU update: %s\n", cuda_rt_error(r->rt));
    return 3;
  }
  float *gp = xmalloc(sizeof(float) * (nt + 1)), *gm = xmalloc(sizeof(float) * (nt + 1));
  float *gb = xmalloc(sizeof(float) * (nbuf + 1));
  if (cuda_rt_download(r->rt, gp, gb, gm)) return 3;
  sgd_step(&cs, NULL, r->nb.grad_written, r->st.params, cpu_grads, &h);
  compare_params(&tu, pt, r->nb.grad_written, gp, r->st.params, 1, "updated parameter");
  compare_params(&tu, pt, r->nb.grad_written, gm, cs.momentum, 1, "momentum");
  compare_params(&tu, pt, NULL, gb, cpu_buf, 0, "BN statistic");
  // evaluation on the updated weights
  Tally te = {.a = a};
  CudaStepOut eo;
  if (cuda_rt_eval(r->rt, x, y, n, &eo)) {
    fprintf(stderr, "cuda_check: GPU eval: %s\n", cuda_rt_error(r->rt));
    return 3;
  }
  cpu_exec_set_input(r->eval, x, n);
  cpu_exec_set_labels(r->eval, y, n);
  RunState es = {0, 0, 0, 0};
  if (cpu_exec_run(r->eval, n, &es, r->st.params, NULL, cpu_buf)) return 1;
  compare_tensors(&te, r->rt, cuda_net_program(r->net, "eval"), &r->nb.eval, &r->nb.eval_plan,
                  r->eval, n, "eval");
  float el = cpu_exec_loss(r->eval);
  add1(&te, "eval loss", eo.loss, el);
  printf("loss: GPU %.7g, CPU %.7g; gradient norm: GPU %.7g, CPU %.7g; eval loss GPU %.7g, CPU %.7g\n",
         go.loss, cl, go.grad_norm, cnorm, eo.loss, el);
  Tally *all[4] = {&t, &tg, &tu, &te};
  const char *names[4] = {"forward/backward tensors", "gradients", "SGD update", "evaluation"};
  int bad = 0;
  for (int i = 0; i < 4; i++) {
    judge(all[i]);
    printf("%-26s %5d compared, worst %.3g (%s), %d over %.1e: %s\n", names[i], all[i]->n,
           all[i]->worst, all[i]->where, all[i]->over, a->tol, all[i]->over ? "FAIL" : "ok");
    if (all[i]->floored)
      printf("%-26s %5d near zero, measured against the family floor\n", "", all[i]->floored);
    bad |= all[i]->over > 0 || all[i]->n == 0;
    free(all[i]->v);
  }
  sgd_state_free(&cs);
  free(x), free(y), free(cpu_buf), free(cpu_grads), free(gg), free(gp), free(gm), free(gb);
  return bad;
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
