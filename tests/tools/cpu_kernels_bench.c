// tests/tools/cpu_kernels_bench.c — micro-benchmarks of the CPU kernels at the
// shapes of NAONet-A with the CIFAR backbone (F=16: cells of 16, 32 and 64
// channels at 32x32, 16x16 and 8x8), batch 64 by default.
//
//   build/tests/tools/cpu_kernels_bench [--threads N] [--batch N] [--reps N]
//                                       [--mode pool|blas|both] [--algo auto|portable|avx2|winograd]
//                                       [--clock wall|cpu] [--only conv|other]
//
// For each convolution shape: forward, backward data and backward filter, as
// the best of --reps runs (the least disturbed), in ms and GFLOP/s. Mode "pool" is the backend's
// strategy (one task per sample on our pool, single-threaded OpenBLAS); mode
// "blas" runs the samples one after another with OpenBLAS itself using the
// threads; "both" prints both and their ratio. docs/cpu-backend.md records the
// figures. --algo picks the dense convolution path (CpuConvAlgo). Timings on a
// shared machine are noisy: compare within one run; --clock cpu measures the
// process's CPU time instead of wall time (robust to other processes taking
// the cores, meaningful with one thread).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/util.h"
#include "runtime/cpu_kernels.h"

void openblas_set_num_threads(int);

typedef struct {
  const char *name;
  int ci, h, w, co, kh, kw, sh, sw, pt, pl, pb, pr, groups;
} BenchConv;

static const BenchConv convs[] = {
    {"stem 3x3 3->48 @32", 3, 32, 32, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"1x1 48->16 @32", 48, 32, 32, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"3x3 16 @32", 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"1x3 16 @32", 16, 32, 32, 16, 1, 3, 1, 1, 0, 1, 0, 1, 1},
    {"3x1 16 @32", 16, 32, 32, 16, 3, 1, 1, 1, 1, 0, 1, 0, 1},
    {"1x1 16 @32", 16, 32, 32, 16, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"3x3 s2 32 @32", 32, 32, 32, 32, 3, 3, 2, 2, 1, 1, 1, 1, 1},
    {"1x7 s(1,2) 32 @32", 32, 32, 32, 32, 1, 7, 1, 2, 0, 3, 0, 3, 1},
    {"7x1 s(2,1) 32 @32x16", 32, 32, 16, 32, 7, 1, 2, 1, 3, 0, 3, 0, 1},
    {"FR 1x1 s2 48->8 @32", 48, 32, 32, 8, 1, 1, 2, 2, 0, 0, 0, 0, 1},
    {"FR 1x1 s2 crop 48->8 @32", 48, 32, 32, 8, 1, 1, 2, 2, -1, -1, 1, 1, 1},
    {"3x3 32 @16", 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"1x3 32 @16", 32, 16, 16, 32, 1, 3, 1, 1, 0, 1, 0, 1, 1},
    {"1x1 32 @16", 32, 16, 16, 32, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"3x3 64 @8", 64, 8, 8, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1},
    {"1x1 64 @8", 64, 8, 8, 64, 1, 1, 1, 1, 0, 0, 0, 0, 1},
    {"dw 3x3 16 @32 (NAONet-B)", 16, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1, 1, 16},
    {"dw 5x5 32 @16 (NAONet-B)", 32, 16, 16, 32, 5, 5, 1, 1, 2, 2, 2, 2, 32},
};

static clockid_t bench_clock = CLOCK_MONOTONIC;  // --clock cpu: CLOCK_PROCESS_CPUTIME_ID

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(bench_clock, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct {
  const CpuConvShape *s;
  ThreadPool *tp;
  int blas_mode;  // run samples one by one, OpenBLAS threaded
  const float *x, *dy, *w;
  float *y, *dx, *dw, *ws;
} Bufs;

static void run_op(Bufs *b, int op) {
  const CpuConvShape *s = b->s;
  size_t xn = (size_t)s->ci * s->h * s->w, yn = (size_t)s->co * s->oh * s->ow;
  if (b->blas_mode && op != 2) {
    CpuConvShape one = *s;
    one.n = 1;
    for (int n = 0; n < s->n; n++) {
      if (op == 0) cpu_conv_fwd(NULL, &one, b->x + n * xn, xn, b->w, b->y + n * yn, yn, 0, b->ws);
      else cpu_conv_bwd_data(NULL, &one, b->dy + n * yn, yn, b->w, b->dx + n * xn, xn, 0, b->ws);
    }
    return;
  }
  ThreadPool *tp = b->blas_mode ? NULL : b->tp;
  if (op == 0) cpu_conv_fwd(tp, s, b->x, xn, b->w, b->y, yn, 0, b->ws);
  else if (op == 1) cpu_conv_bwd_data(tp, s, b->dy, yn, b->w, b->dx, xn, 0, b->ws);
  else cpu_conv_bwd_filter(tp, s, b->x, xn, b->dy, yn, b->dw, 0, b->ws);
}

static double time_op(Bufs *b, int op, int reps) {
  double t[64];
  if (reps > 64) reps = 64;
  run_op(b, op);  // warm up
  for (int r = 0; r < reps; r++) {
    double t0 = now_ms();
    run_op(b, op);
    t[r] = now_ms() - t0;
  }
  qsort(t, (size_t)reps, sizeof t[0], cmp_double);
  return t[0];  // the minimum: the run least disturbed by other processes
}

static void bench_conv(const BenchConv *c, int batch, int threads, int reps, int modes, int algo,
                       ThreadPool *tp, double *total) {
  CpuConvShape s = {batch, c->ci, c->h, c->w, c->co, (c->h + c->pt + c->pb - c->kh) / c->sh + 1,
                    (c->w + c->pl + c->pr - c->kw) / c->sw + 1, c->kh, c->kw, c->sh, c->sw, c->pt,
                    c->pl, c->groups, algo};
  size_t xn = (size_t)batch * c->ci * c->h * c->w, yn = (size_t)batch * c->co * s.oh * s.ow;
  size_t wn = (size_t)c->co * (c->ci / c->groups) * c->kh * c->kw, ws = 0;
  for (int op = 0; op < 3; op++) {
    size_t need = cpu_conv_ws_floats(&s, (CpuConvOp)op, threads);
    ws = need > ws ? need : ws;
  }
  Bufs b = {&s, tp, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  float *x = xcalloc(xn, sizeof(float)), *dy = xcalloc(yn, sizeof(float)), *w = xcalloc(wn, sizeof(float));
  for (size_t i = 0; i < xn; i++) x[i] = (float)(i % 17) * 0.01f;
  for (size_t i = 0; i < yn; i++) dy[i] = (float)(i % 13) * 0.01f;
  for (size_t i = 0; i < wn; i++) w[i] = (float)(i % 7) * 0.01f;
  b.x = x;
  b.dy = dy;
  b.w = w;
  b.y = xmalloc(sizeof(float) * yn);
  b.dx = xmalloc(sizeof(float) * xn);
  b.dw = xmalloc(sizeof(float) * wn);
  b.ws = xmalloc(sizeof(double) * (ws + 1));
  double flop = 2.0 * (double)yn * (double)(c->ci / c->groups) * c->kh * c->kw;
  printf("%-26s", c->name);
  for (int op = 0; op < 3; op++) {
    double ms[2] = {0, 0};
    for (int m = 0; m < 2; m++) {
      if (!(modes & (1 << m))) continue;
      b.blas_mode = m;
      openblas_set_num_threads(m ? threads : 1);
      ms[m] = time_op(&b, op, reps);
    }
    if (modes == 3) {
      printf(" %7.2f %6.1f %7.2f %4.2fx", ms[0], flop / ms[0] * 1e-6, ms[1], ms[1] / ms[0]);
    } else {
      double v = ms[modes == 2];
      printf(" %7.2f %6.1f", v, flop / v * 1e-6);
    }
    total[op] += ms[modes == 2];
  }
  printf("\n");
  openblas_set_num_threads(1);
  free(b.ws);
  free(b.dw);
  free(b.dx);
  free(b.y);
  free(w);
  free(dy);
  free(x);
}

static void bench_other(int batch, ThreadPool *tp, int reps) {
  const int c = 16, h = 32, w = 32;
  size_t numel = (size_t)c * h * w, n = (size_t)batch * numel;
  float *x = xmalloc(sizeof(float) * n), *y = xmalloc(sizeof(float) * n), *dy = xmalloc(sizeof(float) * n);
  float *dx = xmalloc(sizeof(float) * n);
  for (size_t i = 0; i < n; i++) x[i] = dy[i] = (float)(i % 11) * 0.1f - 0.5f;
  float g[16], be[16], mean[16], istd[16], rm[16], rv[16], dg[16], db[16];
  for (int i = 0; i < 16; i++) g[i] = be[i] = rm[i] = rv[i] = 1;
  CpuBnShape bs = {batch, c, h * w, 1e-5f, 0.1f};
  CpuPoolShape avg5 = {batch, c, h, w, h, w, 5, 5, 1, 1, 2, 2, 0, 1};
  CpuPoolShape max3 = {batch, c, h, w, h, w, 3, 3, 1, 1, 1, 1, 1, 0};
  const float *ins[2] = {x, dy};
  const size_t ss[2] = {numel, numel};
  const char *names[] = {"bn train fwd", "bn train bwd", "relu fwd", "relu bwd", "add 2",
                         "avg 5x5 fwd", "avg 5x5 bwd", "max 3x3 fwd", "max 3x3 bwd"};
  printf("\nother kernels, 16 channels at 32x32, batch %d (ms, best of %d)\n", batch, reps);
  for (int k = 0; k < 9; k++) {
    double t[64];
    for (int r = 0; r <= reps; r++) {
      double t0 = now_ms();
      switch (k) {
        case 0: cpu_bn_fwd_train(tp, &bs, x, numel, g, be, y, numel, mean, istd, rm, rv); break;
        case 1: cpu_bn_bwd_train(tp, &bs, x, numel, dy, numel, g, mean, istd, dx, numel, 0, dg, db, 0); break;
        case 2: cpu_relu_fwd(tp, batch, numel, x, numel, y, numel); break;
        case 3: cpu_relu_bwd(tp, batch, numel, x, numel, dy, numel, dx, numel, 0); break;
        case 4: cpu_add(tp, batch, numel, 2, ins, ss, y, numel, 0); break;
        case 5: cpu_pool_fwd(tp, &avg5, x, numel, y, numel); break;
        case 6: cpu_pool_bwd(tp, &avg5, x, numel, dy, numel, dx, numel, 0); break;
        case 7: cpu_pool_fwd(tp, &max3, x, numel, y, numel); break;
        case 8: cpu_pool_bwd(tp, &max3, x, numel, dy, numel, dx, numel, 0); break;
      }
      if (r) t[r - 1] = now_ms() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    printf("  %-14s %7.3f\n", names[k], t[0]);
  }
  free(dx);
  free(dy);
  free(y);
  free(x);
}

static int arg_int(int argc, char **argv, int *i, const char *name) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "cpu_kernels_bench: %s needs a value\n", name);
    exit(NAO_EXIT_USAGE);
  }
  char *end;
  long v = strtol(argv[++*i], &end, 10);
  if (*end || v < 1 || v > 4096) {
    fprintf(stderr, "cpu_kernels_bench: %s: '%s' is not a count in [1, 4096]\n", name, argv[*i]);
    exit(NAO_EXIT_USAGE);
  }
  return (int)v;
}

int main(int argc, char **argv) {
  int threads = tp_default_threads(), batch = 64, reps = 7, modes = 1, only = 3, algo = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads")) threads = arg_int(argc, argv, &i, "--threads");
    else if (!strcmp(argv[i], "--batch")) batch = arg_int(argc, argv, &i, "--batch");
    else if (!strcmp(argv[i], "--reps")) reps = arg_int(argc, argv, &i, "--reps");
    else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
      const char *m = argv[++i];
      modes = !strcmp(m, "pool") ? 1 : !strcmp(m, "blas") ? 2 : !strcmp(m, "both") ? 3 : 0;
      if (!modes) {
        fprintf(stderr, "cpu_kernels_bench: --mode: '%s' is not pool, blas or both\n", m);
        return NAO_EXIT_USAGE;
      }
    } else if (!strcmp(argv[i], "--clock") && i + 1 < argc) {
      const char *k = argv[++i];
      if (!strcmp(k, "cpu")) bench_clock = CLOCK_PROCESS_CPUTIME_ID;
      else if (strcmp(k, "wall")) {
        fprintf(stderr, "cpu_kernels_bench: --clock: '%s' is not wall or cpu\n", k);
        return NAO_EXIT_USAGE;
      }
    } else if (!strcmp(argv[i], "--algo") && i + 1 < argc) {
      const char *a = argv[++i];
      algo = !strcmp(a, "auto") ? CPU_CONV_AUTO : !strcmp(a, "portable") ? CPU_CONV_PORTABLE
           : !strcmp(a, "avx2") ? CPU_CONV_AVX2 : !strcmp(a, "winograd") ? CPU_CONV_WINOGRAD : -1;
      if (algo < 0) {
        fprintf(stderr, "cpu_kernels_bench: --algo: '%s' is not auto, portable or avx2\n", a);
        return NAO_EXIT_USAGE;
      }
    } else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
      const char *o = argv[++i];
      only = !strcmp(o, "conv") ? 1 : !strcmp(o, "other") ? 2 : 0;
      if (!only) {
        fprintf(stderr, "cpu_kernels_bench: --only: '%s' is not conv or other\n", o);
        return NAO_EXIT_USAGE;
      }
    } else {
      fprintf(stderr, "usage: cpu_kernels_bench [--threads N] [--batch N] [--reps N] "
                      "[--mode pool|blas|both] [--algo auto|portable|avx2|winograd] [--clock wall|cpu] "
                      "[--only conv|other]\n");
      return NAO_EXIT_USAGE;
    }
  }
  ThreadPool *tp = tp_create(threads);
  cpu_blas_single_thread();
  if (only & 1) {
    printf("convolutions, batch %d, %d threads, best of %d (ms, GFLOP/s)%s\n", batch, threads, reps,
           modes == 3 ? "; pool mode, then blas mode and its time / pool time" : "");
    printf("%-26s %-*s %-*s %-*s\n", "shape", modes == 3 ? 29 : 14, "forward", modes == 3 ? 29 : 14,
           "bwd data", modes == 3 ? 29 : 14, "bwd filter");
    double total[3] = {0, 0, 0};
    for (size_t k = 0; k < sizeof convs / sizeof convs[0]; k++)
      bench_conv(&convs[k], batch, threads, reps, modes, algo, tp, total);
    printf("%-26s %7.2f        %7.2f        %7.2f   (ms, %s mode)\n", "sum", total[0], total[1],
           total[2], modes == 2 ? "blas" : "pool");
  }
  if (only & 2) bench_other(batch, tp, reps);
  tp_destroy(tp);
  return 0;
}
