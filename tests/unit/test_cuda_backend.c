// tests/unit/test_cuda_backend.c — the cuda backend's host code (runtime/
// backend_cuda*.c) driven through backend.h on the mock device
// (tests/unit/cuda_mock.h): real NVRTC compiles the generated kernels into
// cubins through the kernel cache, the emulator runs them, the cuDNN and
// cuBLAS mocks run the library steps with the CPU kernels. Checked against
// the cpu backend on the same network, weights, data and masks:
//  - losses, gradient norms, top-1/top-5 of several training steps, with a
//    batch size change in between (a new graph) and back (the old graph);
//  - parameters, BN statistics and momentum after the steps, and evaluation;
//  - graphs captured once per batch size and replayed; no mock rule broken
//    (memory ranges, capture rules, descriptors); the TF32 policy;
//  - a non-finite step changes nothing; the memory check refuses a net that
//    does not fit and names the largest batch; the kernel cache serves a
//    second runtime without compiling.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/emit_cuda.h"
#include "compiler/frontend.h"
#include "compiler/util.h"
#include "runtime/backend_cuda.h"
#include "runtime/netbuild.h"
#include "runtime/rng.h"
#include "tests/unit/cuda_mock.h"

static int failures;
static int mock_ready;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      failures++;                                          \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
    }                                                      \
  } while (0)

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

// Norm-wise relative difference |a - b| / |b| (double sums).
static double rel(const float *a, const float *b, size_t n) {
  double d = 0, r = 0;
  for (size_t i = 0; i < n; i++) {
    double x = (double)a[i] - (double)b[i];
    d += x * x;
    r += (double)b[i] * (double)b[i];
  }
  if (!isfinite(d)) return INFINITY;
  return sqrt(d) / (sqrt(r) > 1e-30 ? sqrt(r) : 1e-30);
}

static void random_batch(Rng *rng, float *x, int32_t *y, int n, size_t per, int classes) {
  for (size_t i = 0; i < (size_t)n * per; i++) x[i] = (float)rng_normal(rng);
  for (int i = 0; i < n; i++) y[i] = (int32_t)rng_below(rng, (uint64_t)classes);
}

typedef struct {
  NetBuild nb;
  CudaNetBuild *cb;
  const CudaNet *net;
  ModelState cpu_state, gpu_state;
  Backend *cpu, *gpu;
} Pair;

static int make_pair(Pair *p, const char *cache, int max_batch, int eval_batch) {
  memset(p, 0, sizeof *p);
  NetSpec ns;
  if (nao_frontend_text("tiny.nao", tiny, strlen(tiny), &ns, stderr)) return -1;
  NetBuildOptions o;
  netbuild_options_default(&o);
  o.label_smoothing = 0.1f;
  char err[4096];
  if (netbuild_create(&ns, &o, &p->nb, err, sizeof err)) {
    fprintf(stderr, "netbuild: %s\n", err);
    return -1;
  }
  EmitCudaOptions eo;
  emit_cuda_defaults(&eo);
  p->cb = cuda_net_new(&p->nb.params, "tiny.nao", &eo);
  if (cuda_net_add_graph(p->cb, &p->nb.train, "train", err, sizeof err) ||
      (cuda_net_add_update(p->cb), cuda_net_add_graph(p->cb, &p->nb.eval, "eval", err, sizeof err))) {
    fprintf(stderr, "emit: %s\n", err);
    return -1;
  }
  p->net = cuda_net_get(p->cb);
  if (!mock_ready) {  // one emulator build for the whole test (the device code is the same)
    CudaMockConfig mc = {.net = p->net, .source = p->net->device_source};
    if (cuda_mock_install(&mc, err, sizeof err)) {
      fprintf(stderr, "mock: %s\n", err);
      return -1;
    }
    mock_ready = 1;
  }
  cuda_mock_set_net(p->net);
  model_state_init(&p->cpu_state, &p->nb.params);
  model_state_init(&p->gpu_state, &p->nb.params);
  Rng rng;
  rng_seed(&rng, 11);
  model_state_init_weights(&p->cpu_state, &rng);
  memcpy(p->gpu_state.params, p->cpu_state.params, sizeof(float) * p->nb.params.n_trainable);
  memcpy(p->gpu_state.buffers, p->cpu_state.buffers, sizeof(float) * p->nb.params.n_buffer);
  BackendOptions bo = {.threads = 1, .gpus = 1, .max_batch = max_batch, .max_eval_batch = eval_batch};
  p->cpu = backend_create(BACKEND_CPU, &p->nb, &p->cpu_state, &bo, err, sizeof err);
  if (!p->cpu) {
    fprintf(stderr, "cpu backend: %s\n", err);
    return -1;
  }
  CudaRtOptions ro;
  cuda_rt_options_default(&ro);
  ro.cu = cuda_mock_api();
  ro.dnn = cudnn_mock_api();
  ro.blas = cublas_mock_api();
  ro.kernel_cache = cache;
  ro.compile_threads = 2;
  p->gpu = backend_cuda_create_with(&p->nb, &p->gpu_state, &bo, p->net, NULL, &ro, err, sizeof err);
  if (!p->gpu) {
    fprintf(stderr, "cuda backend: %s\n", err);
    return -1;
  }
  return 0;
}

static void free_pair(Pair *p) {
  backend_destroy(p->gpu);
  backend_destroy(p->cpu);
  model_state_free(&p->cpu_state);
  model_state_free(&p->gpu_state);
  cuda_net_free(p->cb);
  netbuild_free(&p->nb);
}

static void compare_states(Pair *p, const char *when) {
  const ParamTable *t = &p->nb.params;
  CHECK(backend_download(p->gpu) == BACKEND_OK, "download: %s", backend_error(p->gpu));
  double e = rel(p->gpu_state.params, p->cpu_state.params, t->n_trainable);
  CHECK(e < 1e-4, "%s: parameters differ by %.3g", when, e);
  e = rel(p->gpu_state.buffers, p->cpu_state.buffers, t->n_buffer);
  CHECK(e < 1e-4, "%s: BN statistics differ by %.3g", when, e);
  e = rel(p->gpu_state.sgd.momentum, p->cpu_state.sgd.momentum, t->n_trainable);
  CHECK(e < 1e-4, "%s: momentum differs by %.3g", when, e);
  if (e >= 1e-4)
    for (int i = 0; i < t->n; i++) {
      const ParamInfo *q = &t->items[i];
      double ei = rel(p->gpu_state.sgd.momentum + q->offset, p->cpu_state.sgd.momentum + q->offset, q->numel);
      if (q->trainable && ei > 1e-4)
        fprintf(stderr, "  momentum of %s: %.3g (cpu %g %g, cuda %g %g)\n", q->name, ei,
                p->cpu_state.sgd.momentum[q->offset], p->cpu_state.sgd.momentum[q->offset + 1],
                p->gpu_state.sgd.momentum[q->offset], p->gpu_state.sgd.momentum[q->offset + 1]);
    }
  for (int i = 0; i < t->n; i++)
    CHECK(p->gpu_state.sgd.has_buf[i] == p->cpu_state.sgd.has_buf[i], "%s: momentum flag of %s", when,
          t->items[i].name);
}

static void test_training(const char *cache) {
  Pair p;
  if (make_pair(&p, cache, 4, 6)) {
    failures++;
    free_pair(&p);
    return;
  }
  const CudaRtInfo *info = cuda_rt_info(backend_cuda_rt(p.gpu));
  CHECK(info->units_compiled == p.net->n_kernels && info->units_cached == 0,
        "cold cache: %d compiled, %d cached of %d kernels", info->units_compiled, info->units_cached,
        p.net->n_kernels);
  Rng rng;
  rng_seed(&rng, 5);
  size_t per = 3 * 32 * 32;
  float *x = xmalloc(sizeof(float) * per * 6);
  int32_t y[6];
  // batch 4 runs eager, then is captured; 3 runs eager; 4 replays its graph
  const int batches[] = {4, 4, 3, 4};
  enum { STEPS = sizeof batches / sizeof batches[0] };
  SgdHyper h = {0.05, 0.9, 3e-4, 5.0};
  const ParamTable *pt = &p.nb.params;
  for (int s = 0; s < STEPS; s++) {
    int n = batches[s];
    random_batch(&rng, x, y, n, per, 10);
    RunState rs = {s, 4, 1234, 1};  // drop-path keeps little at the last steps
    // Each step starts from the cpu backend's state (uploaded): the step's
    // results are compared, not the drift of two float32 trainings.
    memcpy(p.gpu_state.params, p.cpu_state.params, sizeof(float) * pt->n_trainable);
    memcpy(p.gpu_state.buffers, p.cpu_state.buffers, sizeof(float) * pt->n_buffer);
    memcpy(p.gpu_state.sgd.momentum, p.cpu_state.sgd.momentum, sizeof(float) * pt->n_trainable);
    memcpy(p.gpu_state.sgd.has_buf, p.cpu_state.sgd.has_buf, (size_t)pt->n);
    CHECK(backend_upload(p.gpu) == BACKEND_OK, "upload: %s", backend_error(p.gpu));
    StepResult a, b;
    int ra = backend_train_step(p.cpu, x, y, n, &rs, &h, &a);
    int rb = backend_train_step(p.gpu, x, y, n, &rs, &h, &b);
    CHECK(ra == BACKEND_OK && rb == BACKEND_OK, "step %d: cpu %d, cuda %d (%s)", s, ra, rb,
          backend_error(p.gpu));
    CHECK(fabs(a.loss - b.loss) <= 1e-4 * fabs(a.loss), "step %d: loss %.7g (cpu) vs %.7g (cuda)", s,
          a.loss, b.loss);
    CHECK(fabs(a.grad_norm - b.grad_norm) <= 1e-4 * a.grad_norm, "step %d: norm %.7g vs %.7g", s,
          a.grad_norm, b.grad_norm);
    CHECK(a.top1 == b.top1 && a.top5 == b.top5, "step %d: top-1 %d/%d, top-5 %d/%d", s, a.top1,
          b.top1, a.top5, b.top5);
    char when[32];
    snprintf(when, sizeof when, "step %d", s);
    compare_states(&p, when);
  }
  const CudaMockStats *ms = cuda_mock_stats();
  // train@4: eager, captured, replayed; train@3: eager; update (batch
  // independent): eager, captured, replayed twice
  CHECK(ms->captures == 2, "%lld captures (train@4 and update expected)", ms->captures);
  CHECK(info->captures == 2 && info->graph_launches == 5 && info->eager_runs == 3,
        "runtime: %lld captures, %lld graph launches, %lld eager runs (2, 5, 3 expected)",
        info->captures, info->graph_launches, info->eager_runs);
  CHECK(ms->capture_violations == 0, "%lld capture violations", ms->capture_violations);
  CHECK(ms->conv_tf32 > 0 && ms->conv_fma == 0, "convolutions: %lld TF32, %lld FMA", ms->conv_tf32,
        ms->conv_fma);
  CHECK(ms->gemm_plain > 0, "no GEMM in plain float32 (the linear layers)");
  CHECK(ms->finds > 0, "no cuDNN algorithm search for the main batch");
  // evaluation
  for (int n = 6; n >= 6; n--) {
    random_batch(&rng, x, y, n, per, 10);
    EvalResult ea, eb;
    CHECK(backend_eval_batch(p.cpu, x, y, n, &ea) == BACKEND_OK, "cpu eval");
    CHECK(backend_eval_batch(p.gpu, x, y, n, &eb) == BACKEND_OK, "cuda eval: %s", backend_error(p.gpu));
    CHECK(fabs(ea.loss_sum - eb.loss_sum) <= 1e-4 * fabs(ea.loss_sum), "eval %d: loss %.7g vs %.7g", n,
          ea.loss_sum, eb.loss_sum);
    CHECK(ea.top1 == eb.top1 && ea.top5 == eb.top5, "eval %d: top-1 %d vs %d", n, ea.top1, eb.top1);
  }
  // a non-finite step changes nothing: parameters, momentum, BN statistics
  // stay bit for bit (the cpu backend, whose BN statistics take the NaN, is
  // not the reference here)
  CHECK(backend_download(p.gpu) == BACKEND_OK, "download");
  float *keep = xmalloc(sizeof(float) * (2 * pt->n_trainable + pt->n_buffer + 1));
  memcpy(keep, p.gpu_state.params, sizeof(float) * pt->n_trainable);
  memcpy(keep + pt->n_trainable, p.gpu_state.sgd.momentum, sizeof(float) * pt->n_trainable);
  memcpy(keep + 2 * pt->n_trainable, p.gpu_state.buffers, sizeof(float) * pt->n_buffer);
  x[7] = NAN;
  RunState rs = {3, 4, 1234, 1};
  StepResult r;
  CHECK(backend_train_step(p.gpu, x, y, 4, &rs, &h, &r) == BACKEND_NONFINITE,
        "a NaN input gave no BACKEND_NONFINITE");
  CHECK(backend_download(p.gpu) == BACKEND_OK, "download");
  CHECK(!memcmp(keep, p.gpu_state.params, sizeof(float) * pt->n_trainable) &&
            !memcmp(keep + pt->n_trainable, p.gpu_state.sgd.momentum, sizeof(float) * pt->n_trainable) &&
            !memcmp(keep + 2 * pt->n_trainable, p.gpu_state.buffers, sizeof(float) * pt->n_buffer),
        "a non-finite step changed the model state");
  free(keep);
  // a label out of range is bad input, caught before the device reads it
  x[7] = 0;
  y[1] = 10;
  CHECK(backend_train_step(p.gpu, x, y, 4, &rs, &h, &r) == BACKEND_ERROR &&
            strstr(backend_error(p.gpu), "label 10"),
        "label 10 of 10 classes: %s", backend_error(p.gpu));
  CHECK(cuda_mock_violation() == NULL, "mock: %s", cuda_mock_violation());
  free(x);
  free_pair(&p);
}

static void test_cache_and_memory(const char *cache) {
  Pair p;
  if (make_pair(&p, cache, 4, 6)) {
    failures++;
    free_pair(&p);
    return;
  }
  const CudaRtInfo *info = cuda_rt_info(backend_cuda_rt(p.gpu));
  CHECK(info->units_cached == p.net->n_kernels && info->units_compiled == 0,
        "warm cache: %d cached, %d compiled of %d", info->units_cached, info->units_compiled,
        p.net->n_kernels);
  const CudaMemCheck *mc = cuda_rt_memcheck(backend_cuda_rt(p.gpu));
  CHECK(mc->need_bytes > mc->fixed_bytes && mc->per_image_bytes > 0, "memory check figures");
  size_t need = mc->need_bytes, per = mc->per_image_bytes;
  backend_destroy(p.gpu);
  p.gpu = NULL;
  // a device of 1 GiB: a huge batch does not fit; the message says how much
  // is needed and the largest batch that fits; that batch fits, one more not
  (void)need;
  (void)per;
  cuda_mock_set_free((size_t)1 << 30);
  CudaRtOptions ro;
  cuda_rt_options_default(&ro);
  ro.cu = cuda_mock_api();
  ro.dnn = cudnn_mock_api();
  ro.blas = cublas_mock_api();
  ro.kernel_cache = cache;
  char err[4096];
  BackendOptions bo = {.threads = 1, .gpus = 1, .max_batch = 100000, .max_eval_batch = 6};
  Backend *b = backend_cuda_create_with(&p.nb, &p.gpu_state, &bo, p.net, NULL, &ro, err, sizeof err);
  CHECK(!b, "a batch of 100000 fitted in 1 GiB");
  const char *at = strstr(err, "largest training batch that fits is ");
  long largest = at ? strtol(at + strlen("largest training batch that fits is "), NULL, 10) : -1;
  CHECK(strstr(err, "does not fit") && strstr(err, "batch 100000 needs") && largest > 4 &&
            largest < 100000,
        "memory message: %s", err);
  backend_destroy(b);
  if (largest > 0) {
    bo.max_batch = (int)largest;
    b = backend_cuda_create_with(&p.nb, &p.gpu_state, &bo, p.net, NULL, &ro, err, sizeof err);
    CHECK(b, "the largest batch said to fit (%ld) does not: %s", largest, err);
    backend_destroy(b);
    bo.max_batch = (int)largest + 1;
    b = backend_cuda_create_with(&p.nb, &p.gpu_state, &bo, p.net, NULL, &ro, err, sizeof err);
    CHECK(!b && strstr(err, "does not fit"), "one more than the largest batch (%ld) fits", largest);
    backend_destroy(b);
  }
  cuda_mock_set_free((size_t)12 << 30);
  CHECK(cuda_mock_violation() == NULL, "mock: %s", cuda_mock_violation());
  free_pair(&p);
}

int main(void) {
  char cache[] = "/tmp/naoc-kcache-test-XXXXXX";
  if (!mkdtemp(cache)) {
    perror("mkdtemp");
    return 1;
  }
  test_training(cache);
  test_cache_and_memory(cache);
  cuda_mock_uninstall();
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", cache);
  if (failures) {
    fprintf(stderr, "%d failures\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}
