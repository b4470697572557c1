// runtime/backend_cpu.c — the cpu backend of backend.h: the NetBuild's plans on
// CpuExec executors, SGD with the optimizer kernels, on the host ModelState in
// place (upload and download have nothing to copy).
//
// Invariants: the train executor exists when the NetBuild has a train graph
// with gradients, the eval executor when it has an eval graph with a loss;
// gradients live in this backend's own flat array (written, never read
// across steps: every active slot is written by each step's backward pass).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/backend.h"
#include "runtime/dist_buckets.h"

typedef struct {
  Backend base;
  const NetBuild *nb;
  ModelState *host;
  CpuExec *train, *eval;
  float *grads;    // (n_trainable)
  float *logits;   // (max batch, classes) scratch for top-k
  int classes;
  Dist *dist;           // world > 1: data parallel (else NULL)
  DistBuckets buckets;  // of the train graph's gradients
  char err[1200];
} CpuBackend;

static const char *cpu_error(const Backend *b) { return ((const CpuBackend *)b)->err; }
static int cpu_noop(Backend *b) {
  (void)b;
  return 0;
}

static int cpu_train_step(Backend *b, const float *images, const int32_t *labels, int n,
                          const RunState *rs, const SgdHyper *h, StepResult *out) {
  CpuBackend *cb = (CpuBackend *)b;
  memset(out, 0, sizeof *out);
  if (!cb->train) {
    snprintf(cb->err, sizeof cb->err, "this network was built without a training graph");
    return BACKEND_ERROR;
  }
  cpu_exec_set_input(cb->train, images, n);
  cpu_exec_set_labels(cb->train, labels, n);
  ModelState *m = cb->host;
  if (cpu_exec_run(cb->train, n, rs, m->params, cb->grads, m->buffers) != 0) {
    snprintf(cb->err, sizeof cb->err, "training step: %s", cpu_exec_error(cb->train));
    return BACKEND_ERROR;
  }
  out->loss = cpu_exec_loss(cb->train);
  cpu_exec_read(cb->train, cb->nb->train.logits, n, cb->logits);
  backend_topk(cb->logits, (size_t)cb->classes, n, cb->classes, labels, &out->top1, &out->top5);
  // Data parallel: every rank's mean gradient, bucket by bucket (no overlap with
  // the backward pass on the CPU: it ran to its end), then every rank's loss
  // and hits, so the norm, the finiteness check and the update agree everywhere.
  if (cb->dist && (dist_buckets_allreduce(cb->dist, &cb->buckets, cb->grads, DIST_MEAN) != 0 ||
                   dist_step_metrics(cb->dist, &out->loss, &out->top1, &out->top5, n, &out->images) != 0)) {
    snprintf(cb->err, sizeof cb->err, "data parallel: %s", dist_error(cb->dist));
    return BACKEND_ERROR;
  }
  ThreadPool *tp = cpu_exec_pool(cb->train);
  out->grad_norm = sgd_grad_norm(&m->sgd, tp, cb->nb->grad_written, cb->grads);
  if (!isfinite(out->loss) || !isfinite(out->grad_norm)) {
    snprintf(cb->err, sizeof cb->err, "the loss (%g) or the gradient norm (%g) is not finite",
             out->loss, out->grad_norm);
    return BACKEND_NONFINITE;
  }
  sgd_step(&m->sgd, tp, cb->nb->grad_written, m->params, cb->grads, h);
  return BACKEND_OK;
}

static int cpu_eval_batch(Backend *b, const float *images, const int32_t *labels, int n,
                          EvalResult *out) {
  CpuBackend *cb = (CpuBackend *)b;
  memset(out, 0, sizeof *out);
  if (!cb->eval) {
    snprintf(cb->err, sizeof cb->err, "this network was built without an evaluation graph");
    return BACKEND_ERROR;
  }
  cpu_exec_set_input(cb->eval, images, n);
  cpu_exec_set_labels(cb->eval, labels, n);
  ModelState *m = cb->host;
  RunState rs = {0, 0, 0, 0};
  if (cpu_exec_run(cb->eval, n, &rs, m->params, NULL, m->buffers) != 0) {
    snprintf(cb->err, sizeof cb->err, "evaluation: %s", cpu_exec_error(cb->eval));
    return BACKEND_ERROR;
  }
  out->loss_sum = (double)cpu_exec_loss(cb->eval) * n;
  cpu_exec_read(cb->eval, cb->nb->eval.logits, n, cb->logits);
  backend_topk(cb->logits, (size_t)cb->classes, n, cb->classes, labels, &out->top1, &out->top5);
  return BACKEND_OK;
}

static void cpu_destroy(Backend *b) {
  CpuBackend *cb = (CpuBackend *)b;
  cpu_exec_free(cb->train);
  cpu_exec_free(cb->eval);
  free(cb->grads);
  free(cb->logits);
  dist_buckets_free(&cb->buckets);
  free(cb);
}

static const BackendOps cpu_ops = {"cpu", cpu_train_step, cpu_eval_batch, cpu_noop, cpu_noop,
                                   cpu_error, cpu_destroy};

Backend *backend_cpu_create(const NetBuild *nb, ModelState *host, const BackendOptions *opt,
                            char *err, size_t errlen) {
  if (opt->gpus > 1) {
    snprintf(err, errlen, "--gpus %d: the cpu backend runs one process (use --threads; for several "
                          "CPU processes run nao-train under mpirun -np N)", opt->gpus);
    return NULL;
  }
  CpuBackend *cb = xcalloc(1, sizeof *cb);
  cb->base.ops = &cpu_ops;
  cb->nb = nb;
  cb->host = host;
  cb->classes = nb->spec.classes;
  int max = opt->max_batch > opt->max_eval_batch ? opt->max_batch : opt->max_eval_batch;
  cb->logits = xmalloc((size_t)(max > 0 ? max : 1) * (size_t)cb->classes * sizeof(float));
  cb->grads = xcalloc(nb->params.n_trainable ? nb->params.n_trainable : 1, sizeof(float));
  char why[400];
  if (nb->has_train && nb->train.n_nodes > nb->train.n_fwd_nodes && opt->max_batch > 0) {
    cb->train = cpu_exec_create(&nb->train, &nb->train_plan, opt->max_batch, opt->threads, why,
                                sizeof why);
    if (!cb->train) {
      snprintf(err, errlen, "cpu backend, training graph: %s", why);
      cpu_destroy(&cb->base);
      return NULL;
    }
  }
  if (cb->train && opt->dist && dist_world(opt->dist) > 1) {
    cb->dist = opt->dist;
    if (dist_buckets_build(&nb->train, &nb->train_plan, nb->grad_written, DIST_BUCKET_CAP_DEFAULT,
                           DIST_BUCKET_FIRST_CAP_DEFAULT, &cb->buckets, why, sizeof why) != 0) {
      snprintf(err, errlen, "cpu backend: %s", why);
      cpu_destroy(&cb->base);
      return NULL;
    }
  }
  if (nb->has_eval && nb->eval.has_loss && opt->max_eval_batch > 0) {
    cb->eval = cpu_exec_create(&nb->eval, &nb->eval_plan, opt->max_eval_batch, opt->threads, why,
                               sizeof why);
    if (!cb->eval) {
      snprintf(err, errlen, "cpu backend, evaluation graph: %s", why);
      cpu_destroy(&cb->base);
      return NULL;
    }
  }
  return &cb->base;
}
