// tests/tools/cpu_step_bench.c — one training step of a whole network on the
// CPU backend: forward, backward, gradient clipping and SGD, timed per step.
//
//   build/tests/tools/cpu_step_bench [--arch "TOKENS"] [--channels F] [--layers N]
//       [--batch B] [--threads T] [--steps S] [--warmup W] [--dropout-keep K]
//       [--algo A] [--ab A] [--clock wall|cpu] [--profile] [--top N] [--quiet]
//
// Defaults are issue 3's benchmark: NAONet-A cells (NAO-SPEC.md §1b) with the
// CIFAR-10 backbone, F=16, N=2, batch 64 of 32x32x3, no auxiliary head, no
// drop-path, dropout keep 0.6 (the CIFAR recipe's); SGD lr 0.025, momentum 0.9,
// weight decay 3e-4, gradient clipping at global norm 5 (the recipe's), on
// deterministic random weights (the reference's init rules) and a fixed random
// batch. bench/cpu_step_torch.py is the PyTorch peer of the same network;
// bench/cpu_step.sh runs both.
//
// The graph is built as the trainer builds it: NetSpec -> lower_network(TRAIN,
// loss) -> ir_share_relus -> ir_concat_to_views -> ir_autodiff -> plan_build ->
// cpu_exec_create.
// Output: one "step K ms M loss L" line per timed step, then "median_ms",
// "arena_bytes", "exec_bytes" and "max_rss_kb" (getrusage, the whole process).
// --algo A (auto, portable, avx2, winograd) picks the convolution algorithm
// (CpuConvAlgo); --ab B runs every other timed step with B instead, and
// reports both medians: a paired comparison under the same machine load.
// --profile adds a table of time per IR kind (sum over the timed steps divided
// by their number), thread-CPU time with --clock cpu (meaningful with one
// thread) and wall time otherwise, then the --top N heaviest steps (20).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "compiler/autodiff.h"
#include "compiler/lower.h"
#include "compiler/netspec.h"
#include "compiler/plan.h"
#include "compiler/util.h"
#include "runtime/cpu_kernels.h"
#include "runtime/exec_cpu.h"
#include "runtime/rng.h"

static const char *const naonet_a =
    "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7";

typedef struct {
  const char *arch;
  int channels, layers, batch, threads, steps, warmup;
  double dropout_keep;
  int cpu_clock, profile, quiet, top;
  int algo;  // CpuConvAlgo
  int ab;    // -1, or the CpuConvAlgo every other timed step runs with (--ab)
} Opts;

typedef struct {
  ParamTable pt;
  IrGraph g;
  Plan plan;
  CpuExec *ex;
  float *params, *grads, *momentum, *buffers;
  int top;          // --top
  int batch;
  float *x;         // (batch, 3, 32, 32)
  int32_t *labels;  // (batch)
} Bench;

static _Noreturn void usage(const char *msg) {
  fprintf(stderr,
          "cpu_step_bench: %s\nusage: cpu_step_bench [--arch TOKENS] [--channels F] [--layers N] "
          "[--batch B] [--threads T] [--steps S] [--warmup W] [--dropout-keep K] "
          "[--algo A] [--ab A] [--clock wall|cpu] [--profile] [--top N] [--quiet]\n",
          msg);
  exit(NAO_EXIT_USAGE);
}

static int int_arg(const char *opt, const char *v, int lo, int hi) {
  char *end;
  long x = strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || x < lo || x > hi) {
    fprintf(stderr, "cpu_step_bench: %s wants an integer in [%d, %d], got '%s'\n", opt, lo, hi, v);
    exit(NAO_EXIT_USAGE);
  }
  return (int)x;
}

static void parse_opts(int argc, char **argv, Opts *o) {
  *o = (Opts){naonet_a, 16, 2, 64, 0, 10, 2, 0.6, 0, 0, 0, 20, CPU_CONV_AUTO, -1};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int has = i + 1 < argc;
    if (!strcmp(a, "--profile")) o->profile = 1;
    else if (!strcmp(a, "--quiet")) o->quiet = 1;
    else if (!has) usage("an option is missing its value");
    else if (!strcmp(a, "--arch")) o->arch = argv[++i];
    else if (!strcmp(a, "--channels")) o->channels = int_arg(a, argv[++i], 2, 1024);
    else if (!strcmp(a, "--layers")) o->layers = int_arg(a, argv[++i], 1, 16);
    else if (!strcmp(a, "--batch")) o->batch = int_arg(a, argv[++i], 1, 4096);
    else if (!strcmp(a, "--threads")) o->threads = int_arg(a, argv[++i], 1, 256);
    else if (!strcmp(a, "--steps")) o->steps = int_arg(a, argv[++i], 1, 100000);
    else if (!strcmp(a, "--top")) o->top = int_arg(a, argv[++i], 0, 1000000);
    else if (!strcmp(a, "--warmup")) o->warmup = int_arg(a, argv[++i], 0, 100000);
    else if (!strcmp(a, "--dropout-keep")) {
      char *end;
      o->dropout_keep = strtod(argv[++i], &end);
      if (*end || !(o->dropout_keep > 0.0 && o->dropout_keep <= 1.0))
        usage("--dropout-keep wants a number in (0, 1]");
    } else if (!strcmp(a, "--algo") || !strcmp(a, "--ab")) {
      const char *v = argv[++i];
      int al = !strcmp(v, "auto") ? CPU_CONV_AUTO : !strcmp(v, "portable") ? CPU_CONV_PORTABLE
             : !strcmp(v, "avx2") ? CPU_CONV_AVX2 : !strcmp(v, "winograd") ? CPU_CONV_WINOGRAD : -1;
      if (al < 0) usage("--algo and --ab take auto, portable, avx2 or winograd");
      *(!strcmp(a, "--algo") ? &o->algo : &o->ab) = al;
    } else if (!strcmp(a, "--clock")) {
      const char *v = argv[++i];
      if (strcmp(v, "wall") && strcmp(v, "cpu")) usage("--clock is wall or cpu");
      o->cpu_clock = !strcmp(v, "cpu");
    } else {
      usage("unknown option");
    }
  }
}

// ---------------------------------------------------------------- building

static void fail(const char *what, const char *err) {
  fprintf(stderr, "cpu_step_bench: %s: %s\n", what, err);
  exit(NAO_EXIT_INPUT);
}

static void build(const Opts *o, Bench *b) {
  char err[512];
  NetSpec ns;
  netspec_init(&ns);
  netspec_apply_dataset(&ns, DATASET_CIFAR10);
  ns.channels = o->channels;
  ns.layers = o->layers;
  ns.aux_weight = 0.0;
  ns.drop_path_keep = 1.0;
  ns.dropout_keep = o->dropout_keep;
  if (netspec_parse_arch(&ns, o->arch, err, sizeof err)) fail("--arch", err);
  params_init(&b->pt);
  ir_init(&b->g, &b->pt, IR_MODE_TRAIN);
  LowerOptions lo;
  lower_options_init(&lo, IR_MODE_TRAIN);
  if (lower_network(&ns, &lo, &b->pt, &b->g, err, sizeof err)) fail("lower_network", err);
  if (ir_share_relus(&b->g, err, sizeof err) < 0) fail("ir_share_relus", err);
  if (ir_concat_to_views(&b->g, err, sizeof err) < 0) fail("ir_concat_to_views", err);
  if (ir_autodiff(&b->g, err, sizeof err)) fail("ir_autodiff", err);
  PlanOptions po = {1};
  if (plan_build(&b->g, &po, &b->plan, err, sizeof err)) fail("plan_build", err);
  b->ex = cpu_exec_create(&b->g, &b->plan, o->batch, o->threads, err, sizeof err);
  if (!b->ex) fail("cpu_exec_create", err);
  cpu_exec_set_conv_algo(b->ex, o->algo);
}

// The reference's init rules (params.h) from one seeded stream.
static void init_params(Bench *b, uint64_t seed) {
  const ParamTable *t = &b->pt;
  b->params = xcalloc(t->n_trainable ? t->n_trainable : 1, sizeof(float));
  b->grads = xcalloc(t->n_trainable ? t->n_trainable : 1, sizeof(float));
  b->momentum = xcalloc(t->n_trainable ? t->n_trainable : 1, sizeof(float));
  b->buffers = xcalloc(t->n_buffer ? t->n_buffer : 1, sizeof(float));
  Rng r;
  rng_seed(&r, seed);
  for (int i = 0; i < t->n; i++) {
    const ParamInfo *p = &t->items[i];
    float *v = (p->trainable ? b->params : b->buffers) + p->offset;
    double fan = p->fan_in > 0 ? p->fan_in : 1;
    for (size_t k = 0; k < p->numel; k++) {
      switch (p->init) {
        case PINIT_KAIMING_NORMAL: v[k] = (float)(rng_normal(&r) * sqrt(2.0 / fan)); break;
        case PINIT_LINEAR_BIAS: v[k] = (float)((2.0 * rng_uniform(&r) - 1.0) / sqrt(fan)); break;
        case PINIT_ONES: v[k] = 1.0f; break;
        case PINIT_ZEROS: v[k] = 0.0f; break;
      }
    }
  }
}

// One fixed random batch, kept here: the plan may reuse the input's and the
// labels' arena space once their last reader ran, so a trainer copies its
// batch in before every step, and so does train_step.
static void make_batch(Bench *b, int batch, uint64_t seed) {
  const IrTensor *in = &b->g.tensors[b->g.input];
  size_t numel = (size_t)in->c * in->h * in->w * (size_t)batch;
  b->x = xmalloc(numel * sizeof(float));
  b->labels = xmalloc((size_t)batch * sizeof(int32_t));
  Rng r;
  rng_seed(&r, seed);
  for (size_t i = 0; i < numel; i++) b->x[i] = (float)rng_normal(&r);
  for (int n = 0; n < batch; n++) b->labels[n] = (int32_t)rng_below(&r, 10);
}

// ---------------------------------------------------------------- one step

static double now_ms(int cpu_clock) {
  struct timespec ts;
  clock_gettime(cpu_clock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

// Batch in, forward + backward, then clip_grad_norm_(5) and SGD, as the
// reference's loop.
// opt_ms (may be NULL) receives the optimizer's share.
static float train_step(Bench *b, const Opts *o, long long step, double *opt_ms) {
  RunState rs = {step, 0, 12345, 1};
  cpu_exec_set_input(b->ex, b->x, o->batch);
  cpu_exec_set_labels(b->ex, b->labels, o->batch);
  if (cpu_exec_run(b->ex, o->batch, &rs, b->params, b->grads, b->buffers)) {
    fprintf(stderr, "cpu_step_bench: cpu_exec_run: %s\n", cpu_exec_error(b->ex));
    exit(NAO_EXIT_INTERNAL);
  }
  double t0 = opt_ms ? now_ms(o->cpu_clock) : 0.0;
  ThreadPool *tp = cpu_exec_pool(b->ex);
  size_t n = b->pt.n_trainable;
  float coef = cpu_clip_coef(sqrt(cpu_sumsq(tp, b->grads, n)), 5.0f);
  if (coef < 1.0f) cpu_scale(tp, b->grads, n, coef);
  cpu_sgd_step(tp, b->params, b->grads, b->momentum, n, 0.025f, 0.9f, 3e-4f, step == 0);
  if (opt_ms) *opt_ms += now_ms(o->cpu_clock) - t0;
  return cpu_exec_loss(b->ex);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {  // v sorted, n >= 1
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Time per IR kind over the timed steps.
static void print_profile(const Bench *b, const double *step_ms, double opt_ms, int steps) {
  double kind_ms[IR_KIND_COUNT] = {0};
  int kind_n[IR_KIND_COUNT] = {0};
  double total = opt_ms;
  for (int k = 0; k < b->plan.n_steps; k++) {
    IrKind kd = b->g.nodes[b->plan.steps[k]].kind;
    kind_ms[kd] += step_ms[k];
    kind_n[kd]++;
    total += step_ms[k];
  }
  printf("profile (ms per training step, %d steps):\n", steps);
  for (int kd = 0; kd < IR_KIND_COUNT; kd++) {
    if (!kind_n[kd]) continue;
    printf("  %-18s %4d nodes %8.2f ms %5.1f%%\n", ir_kind_name((IrKind)kd), kind_n[kd],
           kind_ms[kd] / steps, 100.0 * kind_ms[kd] / total);
  }
  printf("  %-18s %4s       %8.2f ms %5.1f%%\n", "optimizer", "", opt_ms / steps,
         100.0 * opt_ms / total);
  printf("  %-18s %4d nodes %8.2f ms\n", "total", b->plan.n_steps, total / steps);
  // The heaviest steps, with their shapes.
  int *order = xmalloc(sizeof(int) * (size_t)b->plan.n_steps);
  for (int k = 0; k < b->plan.n_steps; k++) order[k] = k;
  for (int i = 0; i < b->plan.n_steps && i < b->top; i++) {
    int best = i;
    for (int k = i + 1; k < b->plan.n_steps; k++)
      if (step_ms[order[k]] > step_ms[order[best]]) best = k;
    int tmp = order[i];
    order[i] = order[best];
    order[best] = tmp;
    const IrNode *nd = &b->g.nodes[b->plan.steps[order[i]]];
    const IrTensor *t = &b->g.tensors[nd->n_in ? nd->in[0] : nd->out[0]];
    const IrNode *f = nd->fwd >= 0 ? &b->g.nodes[nd->fwd] : nd;
    printf("  %7.2f ms %-16s %-44s in %dx%dx%d", step_ms[order[i]] / steps, ir_kind_name(nd->kind),
           nd->name, t->c, t->h, t->w);
    if (f->kind == IR_CONV) {
      const IrTensor *fy = &b->g.tensors[f->out[0]];
      const double gflop = 2.0 * fy->c * fy->h * fy->w * (f->a.conv.cin / f->a.conv.groups) *
                           f->a.conv.kh * f->a.conv.kw * b->batch * 1e-9;
      printf(" k%dx%d s%dx%d g%d co%d %.1f GFLOP/s", f->a.conv.kh, f->a.conv.kw, f->a.conv.sh,
             f->a.conv.sw, f->a.conv.groups, f->a.conv.cout, gflop / (step_ms[order[i]] / steps * 1e-3));
    }
    if (f->kind == IR_POOL)
      printf(" %s k%dx%d s%d", f->a.pool.is_max ? "max" : "avg", f->a.pool.kh, f->a.pool.kw,
             f->a.pool.sh);
    printf("\n");
  }
  free(order);
}

int main(int argc, char **argv) {
  Opts o;
  parse_opts(argc, argv, &o);
  Bench b;
  memset(&b, 0, sizeof b);
  b.top = o.top;
  b.batch = o.batch;
  build(&o, &b);
  init_params(&b, 1);
  make_batch(&b, o.batch, 2);
  double *prof = NULL, opt_ms = 0.0;
  for (int s = 0; s < o.warmup; s++) train_step(&b, &o, s, NULL);
  if (o.profile) {
    prof = xcalloc((size_t)b.plan.n_steps + 1, sizeof(double));
    cpu_exec_set_profile(b.ex, prof, o.cpu_clock);
  }
  double *ms = xmalloc(sizeof(double) * (size_t)o.steps);
  double *ms_b = xmalloc(sizeof(double) * (size_t)o.steps);
  int n_b = 0;
  for (int s = 0; s < o.steps; s++) {
    const int alt = o.ab >= 0 && s % 2;
    if (o.ab >= 0) cpu_exec_set_conv_algo(b.ex, alt ? o.ab : o.algo);
    double t0 = now_ms(o.cpu_clock);
    float loss = train_step(&b, &o, o.warmup + s, o.profile ? &opt_ms : NULL);
    const double dt = now_ms(o.cpu_clock) - t0;
    if (alt) ms_b[n_b++] = dt;
    else ms[s - n_b] = dt;
    if (!o.quiet)
      printf("step %d%s ms %.3f loss %.6f\n", o.warmup + s, alt ? " (--ab)" : "", dt, (double)loss);
    if (!isfinite(loss)) {
      fprintf(stderr, "cpu_step_bench: loss is not finite at step %d\n", o.warmup + s);
      return NAO_EXIT_INTERNAL;
    }
  }
  if (prof) print_profile(&b, prof, opt_ms, o.steps);
  const int n_a = o.steps - n_b;
  qsort(ms, (size_t)n_a, sizeof(double), cmp_double);
  qsort(ms_b, (size_t)n_b, sizeof(double), cmp_double);
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru)) {
    perror("cpu_step_bench: getrusage");
    return NAO_EXIT_INTERNAL;
  }
  PlanStats st;
  plan_stats(&b.g, &b.plan, &st);
  printf("threads %d batch %d params %zu macs_per_image %lld nodes %d steps_in_plan %d\n",
         tp_threads(cpu_exec_pool(b.ex)), o.batch, b.pt.n_trainable, ir_macs(&b.g, 1), b.g.n_nodes,
         b.plan.n_steps);
  if (n_b)
    printf("ab_median_ms %.3f %.3f ratio %.4f\n", median(ms, n_a), median(ms_b, n_b),
           median(ms_b, n_b) / median(ms, n_a));
  printf("median_ms %.3f\nmin_ms %.3f\narena_bytes %zu\nexec_bytes %zu\nmax_rss_kb %ld\n",
         median(ms, n_a), ms[0],
         st.arena_bytes_per_image * (size_t)o.batch, cpu_exec_bytes(b.ex), ru.ru_maxrss);
  free(ms);
  free(ms_b);
  free(prof);
  cpu_exec_free(b.ex);
  plan_free(&b.plan);
  ir_free(&b.g);
  params_free(&b.pt);
  free(b.params);
  free(b.grads);
  free(b.momentum);
  free(b.buffers);
  free(b.x);
  free(b.labels);
  return 0;
}
