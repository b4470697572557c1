// tests/unit/test_dist_cuda.c — data parallelism in the cuda runtime
// (runtime/dist_cuda.h) without a GPU:
//  - placement: the gradient buckets of a real network's training program
//    (the CUDA emitter's, in process) land after the program step that
//    completes them, in order, most of them before the backward pass ends;
//  - a whole data-parallel step on the mock device (tests/unit/cuda_mock.h)
//    with NCCL mocked as a world of 2 whose other rank mirrors this one
//    (tests/unit/nccl_mock.h): the all-reduces run at their hooks on the comm
//    stream, inside the captured CUDA graph as well, the mean of two equal
//    gradients is the gradient, so three steps (eager, captured, replayed)
//    leave parameters, momentum and BN statistics bit-identical to the same
//    steps on one GPU; the step's loss and hits cover both ranks.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda.h"
#include "compiler/frontend.h"
#include "compiler/util.h"
#include "runtime/backend_cuda.h"
#include "runtime/dist_cuda.h"
#include "runtime/netbuild.h"
#include "runtime/rng.h"
#include "tests/unit/check.h"
#include "tests/unit/cuda_mock.h"
#include "tests/unit/nccl_mock.h"

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

static int build(NetBuild *nb, CudaNetBuild **cb, const char *path, const char *text) {
  NetSpec ns;
  int rc = path ? nao_frontend_file(path, &ns, stderr) : nao_frontend_text("tiny.nao", text, strlen(text), &ns, stderr);
  if (rc) return -1;
  NetBuildOptions o;
  netbuild_options_default(&o);
  char err[4096];
  if (netbuild_create(&ns, &o, nb, err, sizeof err)) {
    fprintf(stderr, "netbuild: %s\n", err);
    return -1;
  }
  EmitCudaOptions eo;
  emit_cuda_defaults(&eo);
  *cb = cuda_net_new(&nb->params, path ? path : "tiny.nao", &eo);
  if (cuda_net_add_graph(*cb, &nb->train, "train", err, sizeof err) ||
      (cuda_net_add_update(*cb), cuda_net_add_graph(*cb, &nb->eval, "eval", err, sizeof err))) {
    fprintf(stderr, "emit: %s\n", err);
    return -1;
  }
  return 0;
}

// ---------------------------------------------------------------- placement

static void test_placement(const char *path) {
  NetBuild nb;
  CudaNetBuild *cb;
  if (build(&nb, &cb, path, NULL)) {
    CHECK(0, "building %s", path);
    return;
  }
  const CudaProgram *p = cuda_net_program(cuda_net_get(cb), "train");
  DistBuckets b;
  char err[400];
  CHECK(dist_buckets_build(&nb.train, &nb.train_plan, nb.grad_written, 4 << 20, 1 << 20, &b, err, sizeof err) == 0,
        "%s", err);
  int *after = xcalloc((size_t)b.n + 1, sizeof *after);
  int early = dist_cuda_bucket_steps(&b, &nb.params, p, after);
  for (int k = 0; k < b.n; k++) {
    CHECK(after[k] >= 0 && after[k] < p->n_steps, "%s: bucket %d after step %d of %d", path, k, after[k], p->n_steps);
    if (k) CHECK(after[k] >= after[k - 1], "%s: bucket %d placed before bucket %d", path, k, k - 1);
    // Safe: no later step of the program touches one of the bucket's gradients.
    const DistBucket *bk = &b.b[k];
    for (int s = after[k] + 1; s < p->n_steps; s++) {
      const CudaStep *st = &p->steps[s];
      for (int a = 0; a < st->n_args; a++) {
        const CudaArg *arg = &p->args[st->arg0 + a];
        CHECK(arg->kind != CUDA_ARG_GRADS_ALL, "%s: step %d after bucket %d touches every gradient", path, s, k);
        if (arg->kind != CUDA_ARG_GRAD) continue;
        size_t off = nb.params.items[arg->id].offset;
        for (int r = bk->first_range; r < bk->first_range + bk->n_ranges; r++)
          CHECK(off < b.ranges[r].offset || off >= b.ranges[r].offset + b.ranges[r].count,
                "%s: step %d writes %s after bucket %d was launched (after step %d)", path, s,
                nb.params.items[arg->id].name, k, after[k]);
      }
    }
  }
  CHECK(early >= b.n - 1 && b.n >= 3, "%s: %d of %d buckets before the last step", path, early, b.n);
  printf("%s: %d buckets over %d program steps, launched after steps", path, b.n, p->n_steps);
  for (int k = 0; k < b.n && k < 14; k++) printf(" %d", after[k]);
  printf("%s\n", b.n > 14 ? " ..." : "");
  free(after);
  dist_buckets_free(&b);
  cuda_net_free(cb);
  netbuild_free(&nb);
}

// ---------------------------------------------------------------- a data-parallel step

typedef struct {
  StepResult r[3];
  float *params, *momentum, *buffers;
} RunOut;

// Three training steps of the cuda backend on the mock (d: data parallel).
static int run_steps(NetBuild *nb, const CudaNet *net, Dist *d, const char *cache, RunOut *out) {
  ModelState st;
  model_state_init(&st, &nb->params);
  Rng rng;
  rng_seed(&rng, 5);
  model_state_init_weights(&st, &rng);
  BackendOptions bo = {.threads = 1, .gpus = d ? 2 : 1, .max_batch = 4, .max_eval_batch = 4, .dist = d};
  CudaRtOptions ro;
  cuda_rt_options_default(&ro);
  ro.cu = cuda_mock_api();
  ro.dnn = cudnn_mock_api();
  ro.blas = cublas_mock_api();
  ro.kernel_cache = cache;
  ro.compile_threads = 2;
  char err[4096];
  Backend *b = backend_cuda_create_with(nb, &st, &bo, net, NULL, &ro, err, sizeof err);
  if (!b) {
    fprintf(stderr, "cuda backend: %s\n", err);
    model_state_free(&st);
    return -1;
  }
  size_t per = (size_t)nb->spec.in_channels * (size_t)nb->spec.in_height * (size_t)nb->spec.in_width;
  float *x = xmalloc(4 * per * sizeof *x);
  int32_t y[4];
  rng_seed(&rng, 9);
  int rc = 0;
  for (int s = 0; s < 3 && !rc; s++) {
    for (size_t i = 0; i < 4 * per; i++) x[i] = (float)rng_normal(&rng);
    for (int i = 0; i < 4; i++) y[i] = (int32_t)rng_below(&rng, 10);
    RunState rs = {s, 30, 7, 1};
    SgdHyper h = {0.05, 0.9, 3e-4, 5.0};
    rc = backend_train_step(b, x, y, 4, &rs, &h, &out->r[s]);
    if (rc) fprintf(stderr, "step %d: %s\n", s, backend_error(b));
  }
  if (!rc) rc = backend_download(b);
  out->params = xmalloc(nb->params.n_trainable * sizeof(float));
  out->momentum = xmalloc(nb->params.n_trainable * sizeof(float));
  out->buffers = xmalloc((nb->params.n_buffer + 1) * sizeof(float));
  memcpy(out->params, st.params, nb->params.n_trainable * sizeof(float));
  memcpy(out->momentum, st.sgd.momentum, nb->params.n_trainable * sizeof(float));
  memcpy(out->buffers, st.buffers, nb->params.n_buffer * sizeof(float));
  backend_destroy(b);
  free(x);
  model_state_free(&st);
  return rc;
}

static void test_step(void) {
  NetBuild nb;
  CudaNetBuild *cb;
  if (build(&nb, &cb, NULL, tiny)) {
    CHECK(0, "building the tiny net");
    return;
  }
  const CudaNet *net = cuda_net_get(cb);
  char err[4096], cache[] = "/tmp/naoc-test-dist-cuda.XXXXXX";
  CHECK(mkdtemp(cache) != NULL, "mkdtemp");
  CudaMockConfig mc = {.net = net, .source = net->device_source};
  if (cuda_mock_install(&mc, err, sizeof err)) {
    CHECK(0, "mock: %s", err);
    return;
  }
  RunOut one, two;
  int rc1 = run_steps(&nb, net, NULL, cache, &one);
  CHECK(rc1 == 0, "one GPU");
  NcclMockConfig nc = {2, 0, -1, 0, 1, 1};
  nccl_mock_reset(&nc);
  DistEnv e;
  memset(&e, 0, sizeof e);
  e.launch = DIST_LAUNCH_LOCAL;
  e.rank = 0, e.world = 2, e.local_rank = 0, e.local_world = 2, e.heartbeat_fd = -1, e.has_nccl_id = 1;
  DistOptions o;
  dist_options_default(&o);
  o.timeout = 30;
  o.nccl_api = nccl_mock_api();
  Dist *d = dist_open(&e, &o, err, sizeof err);
  long long captures0 = cuda_mock_stats()->captures, replays0 = cuda_mock_stats()->graph_launches;
  int rc2 = run_steps(&nb, net, d, cache, &two);
  CHECK(rc2 == 0, "two GPUs (one mirrored)");
  const CudaMockStats *ms = cuda_mock_stats();
  NcclMockStats ns = nccl_mock_stats();
  CHECK(cuda_mock_violation() == NULL, "mock rule broken: %s", cuda_mock_violation());
  CHECK(ms->captures > captures0 && ms->graph_launches > replays0, "no captured step with the hooks (%lld, %lld)",
        ms->captures - captures0, ms->graph_launches - replays0);
  CHECK(ns.inits == 1 && ns.collectives >= 6 && ns.destroys == 1, "NCCL: %d inits, %lld collectives, %d destroys",
        ns.inits, ns.collectives, ns.destroys);
  if (rc1 == 0 && rc2 == 0) {
    size_t np = nb.params.n_trainable;
    CHECK(!memcmp(one.params, two.params, np * sizeof(float)), "parameters differ");
    CHECK(!memcmp(one.momentum, two.momentum, np * sizeof(float)), "momentum differs");
    CHECK(!memcmp(one.buffers, two.buffers, nb.params.n_buffer * sizeof(float)), "BN statistics differ");
    for (int s = 0; s < 3; s++) {
      CHECK(one.r[s].loss == two.r[s].loss && one.r[s].grad_norm == two.r[s].grad_norm,
            "step %d: loss %g/%g norm %g/%g", s, one.r[s].loss, two.r[s].loss, one.r[s].grad_norm,
            two.r[s].grad_norm);
      CHECK(two.r[s].images == 8 && two.r[s].top1 == 2 * one.r[s].top1, "step %d: %lld images, top1 %d vs %d",
            s, two.r[s].images, two.r[s].top1, one.r[s].top1);
    }
    printf("a data-parallel step on the mock: %lld NCCL operations in 3 steps, %lld graph replays\n",
           ns.collectives, ms->graph_launches - replays0);
  }
  dist_close(d);
  free(one.params), free(one.momentum), free(one.buffers);
  free(two.params), free(two.momentum), free(two.buffers);
  char rm[300];
  snprintf(rm, sizeof rm, "rm -rf %s", cache);
  if (system(rm) != 0) fprintf(stderr, "could not remove %s\n", cache);
  cuda_net_free(cb);
  netbuild_free(&nb);
}

int main(void) {
  test_placement("generated/naonet-b-cifar10.nao");
  test_step();
  return check_done("test_dist_cuda");
}
