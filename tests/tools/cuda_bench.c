// tests/tools/cuda_bench.c — training throughput of a network on the cuda
// runtime, its floor, and NVRTC's compile times (tests/gpu/check.sh).
//
//   cuda_bench --net FILE.nao [--batch 128] [--steps 20] [--warmup 3]
//              [--cache DIR] [--cold] [--label NAME] [--out FILE] [--mock]
//              [--copy-mib 2048] [--gemm 8192]
//   cuda_bench --net FILE.nao --print-seq     the arch's token sequence
//   cuda_bench --net FILE.nao --compile-only sm_90 --cache DIR [--threads N]
//       NVRTC alone, no device: a cold compile in a fresh folder under DIR,
//       then the same from the cache (the compile-time goals)
//
// The network is built as nao-train builds it (arena reuse, TF32 for the
// convolutions as PyTorch allows by default), the batch is synthetic data
// resident in device memory (copied into the input each step, device to
// device), the steps are the backend's: forward, backward and gradient norm,
// a read of loss, norm and logits, then the SGD update (momentum 0.9, weight
// decay, clipping at 5). Warm-up steps run first (step-by-step launch, graph
// capture, cuDNN's algorithm search); then `steps` steps are timed with
// device events: images/s = batch * steps / time.
//
// --cold: first measures NVRTC on an empty cache folder (DIR/cold-PID), then
// the cached start on the same folder, and benchmarks that second runtime.
//
// The floor: FLOPs of the step's convolutions and matrix products (forward,
// backward data, backward filter: 2 per multiply-add) over the measured
// SGEMM rate (TF32 for convolutions, float32 for the linear layers), and
// bytes over the measured copy bandwidth: the input read once, every
// activation the backward pass reads written once and read once, parameters
// read twice, gradients written, SGD reading parameters, gradients, momentum
// and writing parameters and momentum. The larger time is the floor.
//
// Output: readable lines on stdout, and KEY=VALUE lines (prefixed with the
// label) appended to --out for check.sh's table. --mock runs on the mock
// device with small measurement sizes (CI exercises this program).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compiler/emit_cuda.h"
#include "compiler/emit_seq.h"
#include "compiler/frontend.h"
#include "compiler/util.h"
#include "runtime/backend_cuda.h"
#include "runtime/cuda_compile.h"
#include "runtime/kcache.h"
#include "runtime/netbuild.h"
#include "runtime/rng.h"
#include "tests/unit/cuda_mock.h"

typedef struct {
  const char *net, *cache, *label, *out;
  int batch, steps, warmup, cold, mock, gemm, print_seq, compile_only, threads;
  const char *arch;
  size_t copy_mib;
} Args;

static int usage(void) {
  fprintf(stderr, "usage: cuda_bench --net FILE.nao [--batch N] [--steps N] [--warmup N] [--cache DIR] "
                  "[--cold] [--label NAME] [--out FILE] [--mock] [--copy-mib N] [--gemm N] [--print-seq]\n"
                  "       cuda_bench --net FILE.nao --compile-only ARCH --cache DIR [--threads N]\n");
  return 2;
}

static int parse(int argc, char **argv, Args *a) {
  memset(a, 0, sizeof *a);
  a->batch = 128;
  a->steps = 20;
  a->warmup = 3;
  a->label = "bench";
  a->gemm = 8192;
  a->copy_mib = 2048;
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(s, "--cold")) a->cold = 1;
    else if (!strcmp(s, "--print-seq")) a->print_seq = 1;
    else if (!strcmp(s, "--compile-only") && v) a->compile_only = 1, a->arch = argv[++i];
    else if (!strcmp(s, "--threads") && v) a->threads = atoi(argv[++i]);
    else if (!strcmp(s, "--mock")) a->mock = 1;
    else if (!strcmp(s, "--net") && v) a->net = argv[++i];
    else if (!strcmp(s, "--cache") && v) a->cache = argv[++i];
    else if (!strcmp(s, "--label") && v) a->label = argv[++i];
    else if (!strcmp(s, "--out") && v) a->out = argv[++i];
    else if (!strcmp(s, "--batch") && v) a->batch = atoi(argv[++i]);
    else if (!strcmp(s, "--steps") && v) a->steps = atoi(argv[++i]);
    else if (!strcmp(s, "--warmup") && v) a->warmup = atoi(argv[++i]);
    else if (!strcmp(s, "--gemm") && v) a->gemm = atoi(argv[++i]);
    else if (!strcmp(s, "--copy-mib") && v) a->copy_mib = (size_t)atol(argv[++i]);
    else return -1;
  }
  return a->net && a->batch > 0 && a->steps > 0 && a->warmup >= 2 && a->gemm > 0 && a->copy_mib > 0 ? 0 : -1;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

// ---------------------------------------------------------------- the floor

typedef struct {
  double conv_flops, linear_flops, bytes;
} Floor;

static double conv_macs(const IrGraph *g, const IrNode *nd) {
  const IrConvAttr *a = &nd->a.conv;
  int out = nd->kind == IR_CONV_BWD_FILTER ? nd->in[1] : nd->kind == IR_CONV_BWD_DATA ? nd->in[0] : nd->out[0];
  const IrTensor *t = &g->tensors[out];  // the convolution's output (dy for the backward)
  return (double)t->c * t->h * t->w * (double)(a->cin / (a->groups ? a->groups : 1)) * a->kh * a->kw;
}

static void floor_of(const IrGraph *g, const ParamTable *pt, int n, Floor *f) {
  memset(f, 0, sizeof *f);
  char *saved = xcalloc((size_t)g->n_tensors + 1, 1);
  for (int i = 0; i < g->n_nodes; i++) {
    const IrNode *nd = &g->nodes[i];
    switch (nd->kind) {
      case IR_CONV:
      case IR_CONV_BWD_DATA:
      case IR_CONV_BWD_FILTER: f->conv_flops += 2.0 * n * conv_macs(g, nd); break;
      case IR_LINEAR:
      case IR_LINEAR_BWD: {
        const IrTensor *x = &g->tensors[nd->in[0]];
        double d = (double)x->c * x->h * x->w, k = (double)pt->items[nd->param[0]].dims[0];
        f->linear_flops += 2.0 * n * d * k * (nd->kind == IR_LINEAR ? 1 : (nd->n_out > 0 && nd->out[0] >= 0) + 1);
        break;
      }
      default: break;
    }
    if (i < g->n_fwd_nodes) continue;
    for (int k = 0; k < nd->n_in; k++) {  // forward tensors the backward pass reads
      int t = nd->in[k];
      while (t >= 0 && g->tensors[t].view_of >= 0) t = g->tensors[t].view_of;
      if (t >= 0 && g->tensors[t].producer >= 0 && g->tensors[t].producer < g->n_fwd_nodes &&
          g->tensors[t].kind == IR_T_ACT)
        saved[t] = 1;
    }
  }
  const IrTensor *in = &g->tensors[g->input];
  f->bytes = 4.0 * n * in->c * in->h * in->w;
  for (int t = 0; t < g->n_tensors; t++)
    if (saved[t]) f->bytes += 2.0 * 4.0 * n * (double)ir_tensor_numel(&g->tensors[t]);
  f->bytes += 4.0 * (double)pt->n_trainable * (2 + 1 + 3 + 2);
  free(saved);
}

// ---------------------------------------------------------------- runs

typedef struct {
  NetBuild nb;
  CudaNetBuild *cb;
  const CudaNet *net;
} Net;

static int build(Net *m, const char *path, char *err, size_t errlen) {
  NetSpec ns;
  if (nao_frontend_file(path, &ns, stderr)) {
    snprintf(err, errlen, "%s does not compile", path);
    return -1;
  }
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.label_smoothing = ns.classes > 100 ? 0.1f : 0.0f;
  if (netbuild_create(&ns, &o, &m->nb, err, errlen)) return -1;
  EmitCudaOptions eo;
  emit_cuda_defaults(&eo);
  m->cb = cuda_net_new(&m->nb.params, path, &eo);
  if (cuda_net_add_graph(m->cb, &m->nb.train, "train", err, errlen)) return -1;
  cuda_net_add_update(m->cb);
  if (cuda_net_add_graph(m->cb, &m->nb.eval, "eval", err, errlen)) return -1;
  m->net = cuda_net_get(m->cb);
  return 0;
}

static CudaRt *runtime(const Net *m, const Args *a, const char *cache, char *err, size_t errlen) {
  CudaRtOptions ro;
  cuda_rt_options_default(&ro);
  ro.kernel_cache = cache;
  if (a->mock) {
    ro.cu = cuda_mock_api();
    ro.dnn = cudnn_mock_api();
    ro.blas = cublas_mock_api();
  }
  CudaRt *rt = cuda_rt_create(m->net, NULL, a->batch, a->batch, &ro, err, errlen);
  if (rt) cuda_rt_set_active(rt, m->nb.grad_written);
  return rt;
}

// NVRTC cold and cached, without a device.
static int compile_only(const Net *m, const Args *a) {
  if (!a->cache) {
    fprintf(stderr, "cuda_bench: --compile-only needs --cache DIR\n");
    return 2;
  }
  char dir[1100], err[8192];
  snprintf(dir, sizeof dir, "%s/compile-%ld", a->cache, (long)getpid());
  mkdir(a->cache, 0777);
  KCache cache;
  if (kcache_open(&cache, dir, err, sizeof err)) {
    fprintf(stderr, "cuda_bench: %s\n", err);
    return 1;
  }
  CudaCompileOptions o = {.arch = a->arch, .threads = a->threads, .cache = &cache};
  for (int pass = 0; pass < 2; pass++) {
    CudaCompiled c;
    if (cuda_compile_net(m->net, m->net->device_source, &o, &c, err, sizeof err)) {
      fprintf(stderr, "cuda_bench: %s\n", err);
      cuda_compiled_free(&c);
      return 1;
    }
    printf("%s: NVRTC %d.%d, %s, %s: %d units (%d compiled, %d cached) in %.3f s\n", a->label,
           c.nvrtc_major, c.nvrtc_minor, a->arch, pass ? "cached" : "cold", c.n_units, c.n_compiled,
           c.n_cached, c.seconds);
    cuda_compiled_free(&c);
  }
  return 0;
}

static void emit(FILE *f, const char *label, const char *key, int decimals, double v) {
  if (f) fprintf(f, "%s_%s=%.*f\n", label, key, decimals, v);
}

static int print_seq(const Args *a) {  // the token sequence, for the PyTorch peer
  NetSpec ns;
  if (nao_frontend_file(a->net, &ns, stderr)) return 1;
  StrBuf sb = {0};
  emit_seq(&ns, &sb);
  fputs(sb.data ? sb.data : "", stdout);
  sb_free(&sb);
  return 0;
}

// NVRTC from scratch in a fresh folder under --cache; `cache` becomes it.
static int cold_start(const Net *m, const Args *a, FILE *out, char *cache, size_t n) {
  char err[8192];
  snprintf(cache, n, "%s/cold-%ld", a->cache, (long)getpid());
  mkdir(a->cache, 0777);
  double t0 = now_s();
  CudaRt *rt = runtime(m, a, cache, err, sizeof err);
  if (!rt) {
    fprintf(stderr, "cuda_bench: %s\n", err);
    return 3;
  }
  const CudaRtInfo *in = cuda_rt_info(rt);
  printf("%s: NVRTC cold: %d kernels compiled in %.2f s (%s); runtime ready in %.2f s\n", a->label,
         in->units_compiled, in->compile_seconds, in->nvrtc, now_s() - t0);
  emit(out, a->label, "nvrtc_cold_s", 3, in->compile_seconds);
  cuda_rt_destroy(rt);
  return 0;
}

// Warm-up, then the timed steps on resident synthetic data.
static int timed_steps(CudaRt *rt, const Net *m, const Args *a, double *ms) {
  ModelState st;
  model_state_init(&st, &m->nb.params);
  Rng rng;
  rng_seed(&rng, 1);
  model_state_init_weights(&st, &rng);
  size_t per = ir_tensor_numel(&m->nb.train.tensors[m->nb.train.input]);
  float *x = xmalloc(sizeof(float) * per * (size_t)a->batch);
  int32_t *y = xmalloc(sizeof(int32_t) * (size_t)a->batch);
  for (size_t i = 0; i < per * (size_t)a->batch; i++) x[i] = (float)rng_normal(&rng);
  for (int i = 0; i < a->batch; i++) y[i] = (int32_t)rng_below(&rng, (uint64_t)m->nb.spec.classes);
  int rc = cuda_rt_upload(rt, st.params, st.buffers, NULL, NULL) ||
                   cuda_rt_set_resident_input(rt, x, y, a->batch)
               ? 3
               : 0;
  SgdHyper h = {0.1, 0.9, 3e-5, 5.0};
  RunState rs = {0, 1000000, 7, 1};
  double tw = now_s();
  CudaStepOut so = {0};
  for (int i = 0; i < a->warmup && !rc; i++) {
    rs.step = i;
    if (cuda_rt_train_forward(rt, NULL, NULL, a->batch, &rs, &h, &so) || cuda_rt_train_update(rt, &h)) rc = 3;
    else if (!isfinite(so.loss)) rc = 1;
  }
  if (!rc)
    printf("%s: %d warm-up steps in %.2f s (step by step, graph capture, algorithm search); loss %.4f\n",
           a->label, a->warmup, now_s() - tw, so.loss);
  rs.step = a->warmup;
  if (!rc && cuda_rt_time_steps(rt, a->batch, a->steps, &rs, &h, ms)) rc = 3;
  if (rc) fprintf(stderr, "cuda_bench: %s\n", rc == 3 ? cuda_rt_error(rt) : "the loss is not finite");
  model_state_free(&st);
  free(x);
  free(y);
  return rc;
}

static void report(CudaRt *rt, const Net *m, const Args *a, FILE *out, double ms) {
  const CudaRtInfo *in = cuda_rt_info(rt);
  double ips = a->batch / (ms * 1e-3);
  size_t used = 0, total = 0;
  cuda_rt_mem_used(rt, &used, &total);
  printf("%s: %.2f ms per step of %d images: %.1f images/s; memory: %.2f GiB held by the runtime "
         "(peak), %.2f GiB now, %.2f GiB in use on the device\n",
         a->label, ms, a->batch, ips, in->bytes_peak / 1073741824.0, in->bytes_allocated / 1073741824.0,
         used / 1073741824.0);
  printf("%s: %lld graph launches, %lld captures, %d algorithm searches, %d heuristic choices, "
         "%d cached; cuDNN workspace %.1f MiB\n",
         a->label, in->graph_launches, in->captures, in->conv_searches, in->conv_heuristics,
         in->conv_cached, in->conv_workspace / 1048576.0);
  emit(out, a->label, "ms_per_step", 3, ms);
  emit(out, a->label, "images_per_s", 1, ips);
  emit(out, a->label, "peak_gib", 3, in->bytes_peak / 1073741824.0);
  emit(out, a->label, "held_gib", 3, in->bytes_allocated / 1073741824.0);
  emit(out, a->label, "device_used_gib", 3, used / 1073741824.0);
  Floor f;
  floor_of(&m->nb.train, &m->nb.params, a->batch, &f);
  CudaDeviceRates r;
  if (cuda_rt_measure(rt, a->copy_mib << 20, a->gemm, 5, &r)) {
    fprintf(stderr, "cuda_bench: measuring the device: %s\n", cuda_rt_error(rt));
    return;
  }
  double t_bytes = f.bytes / (r.copy_gbs * 1e9) * 1e3;
  double t_flops = (r.tf32_tflops > 0 ? f.conv_flops / (r.tf32_tflops * 1e12) : 0) +
                   (r.fp32_tflops > 0 ? f.linear_flops / (r.fp32_tflops * 1e12) : 0);
  double fl = t_bytes > t_flops ? t_bytes : t_flops;
  printf("%s: device: copy %.0f GB/s, SGEMM %.1f TFLOP/s float32, %.1f TFLOP/s TF32 (%d^3)\n", a->label,
         r.copy_gbs, r.fp32_tflops, r.tf32_tflops, a->gemm);
  printf("%s: floor: %.1f GFLOP (convolutions %.1f, linear %.2f) -> %.2f ms; %.2f GB -> %.2f ms; "
         "floor %.2f ms = %.1f images/s; measured / floor = %.1f\n",
         a->label, (f.conv_flops + f.linear_flops) / 1e9, f.conv_flops / 1e9, f.linear_flops / 1e9, t_flops,
         f.bytes / 1e9, t_bytes, fl, a->batch / (fl * 1e-3), ms / fl);
  emit(out, a->label, "floor_ms", 3, fl);
  emit(out, a->label, "floor_images_per_s", 1, a->batch / (fl * 1e-3));
  emit(out, a->label, "copy_gbs", 1, r.copy_gbs);
  emit(out, a->label, "sgemm_fp32_tflops", 2, r.fp32_tflops);
  emit(out, a->label, "sgemm_tf32_tflops", 2, r.tf32_tflops);
  emit(out, a->label, "step_gflop", 2, (f.conv_flops + f.linear_flops) / 1e9);
  emit(out, a->label, "step_gb", 3, f.bytes / 1e9);
}

// Everything after the net is built: cold start, the benchmark's runtime,
// steps, report.
static int bench(const Net *m, const Args *a, FILE *out) {
  char err[8192], cache[1100] = "";
  if (a->cache) snprintf(cache, sizeof cache, "%s", a->cache);
  if (a->cold) {
    if (!a->cache) {
      fprintf(stderr, "cuda_bench: --cold needs --cache DIR\n");
      return 2;
    }
    int rc = cold_start(m, a, out, cache, sizeof cache);
    if (rc) return rc;
  }
  double t0 = now_s();
  CudaRt *rt = runtime(m, a, cache[0] ? cache : NULL, err, sizeof err);
  if (!rt) {
    fprintf(stderr, "cuda_bench: %s\n", err);
    return 3;
  }
  const CudaRtInfo *in = cuda_rt_info(rt);
  printf("%s: %s, sm_%d%d, %d SMs; %s; %s; %s\n", a->label, in->device_name, in->cc_major,
         in->cc_minor, in->sms, in->nvrtc, in->cudnn, in->cublas);
  printf("%s: kernels: %d from the cache, %d compiled, in %.3f s; modules loaded in %.3f s; runtime "
         "ready in %.2f s\n",
         a->label, in->units_cached, in->units_compiled, in->compile_seconds, in->load_seconds,
         now_s() - t0);
  emit(out, a->label, a->cold ? "nvrtc_cached_s" : "nvrtc_s", 3, in->compile_seconds);
  emit(out, a->label, "module_load_s", 3, in->load_seconds);
  double ms = 0;
  int rc = timed_steps(rt, m, a, &ms);
  if (!rc) report(rt, m, a, out, ms);
  cuda_rt_destroy(rt);
  return rc;
}

int main(int argc, char **argv) {
  Args a;
  if (parse(argc, argv, &a)) return usage();
  if (a.print_seq) return print_seq(&a);
  char err[8192];
  Net m;
  memset(&m, 0, sizeof m);
  int rc = build(&m, a.net, err, sizeof err) ? 1 : 0;
  if (rc) fprintf(stderr, "cuda_bench: %s\n", err);
  FILE *out = NULL;
  if (!rc && a.compile_only) rc = compile_only(&m, &a);
  else if (!rc) {
    out = a.out ? fopen(a.out, "a") : NULL;
    if (a.out && !out) perror(a.out), rc = 1;
    CudaMockConfig mc = {.net = m.net, .source = m.net->device_source};
    if (!rc && a.mock && cuda_mock_install(&mc, err, sizeof err))
      fprintf(stderr, "cuda_bench: %s\n", err), rc = 1;
    if (!rc) rc = bench(&m, &a, out);
    if (a.mock && !rc && cuda_mock_violation()) {
      fprintf(stderr, "cuda_bench: the mock device saw a broken rule: %s\n", cuda_mock_violation());
      rc = 1;
    }
    if (a.mock) cuda_mock_uninstall();
  }
  if (out) fclose(out);
  cuda_net_free(m.cb);
  netbuild_free(&m.nb);
  return rc;
}
