// runtime/backend.h — what the trainer asks of a device: run training steps
// and evaluation batches of a NetBuild's graphs on a ModelState.
//
// A backend is created from a NetBuild (its train and eval graphs and plans,
// which outlive it) and the host ModelState. It owns the device copies it
// needs; the trainer calls `upload` after changing the host state (init,
// checkpoint load) and `download` before reading it (checkpoint, nao-run).
// The cpu backend works on the host arrays in place: both are no-ops there.
//
// A training step is the whole update: forward and backward of the train
// graph on one batch, then sgd_step (optim.h) on the parameters the graph
// writes (NetBuild.grad_written): clipping, weight decay, momentum. Under data
// parallelism (BackendOptions.dist) the gradients are averaged over the ranks
// between the two, so the norm, the clipping and the update are the same on
// every rank, and the loss and hits are those of all ranks' batches. A step
// whose loss or gradient norm is not finite changes nothing and returns
// BACKEND_NONFINITE. Results must not depend on thread counts; the cpu
// backend's are bit-identical on any (docs/cpu-backend.md).
//
// Adding a backend: implement BackendOps in runtime/backend_<name>.c with a
// creator declared below and add it to backend_create's switch.
#ifndef NAO_BACKEND_H
#define NAO_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/dist.h"
#include "runtime/exec_cpu.h"  // RunState: step, total steps, seed, training
#include "runtime/model_state.h"
#include "runtime/netbuild.h"
#include "runtime/optim.h"

typedef enum { BACKEND_CPU = 0, BACKEND_CUDA, BACKEND_KIND_COUNT } BackendKind;

int backend_kind_parse(const char *name);  // -1 when unknown
const char *backend_kind_name(BackendKind k);

typedef struct {
  int threads;         // cpu: threads of the pool (<= 0: tp_default_threads)
  int gpus;            // cuda: devices (data parallel); cpu: must be 1
  int max_batch;       // largest training batch
  int max_eval_batch;  // largest evaluation batch
  // cuda (runtime/backend_cuda.h): a prepared net (a generated trainer's
  // net.cu plan, a const CudaNet *) and its NVRTC source; NULL: built from the
  // NetBuild in process. The kernel cache folder; NULL: $NAOC_KERNEL_CACHE,
  // else the default ($XDG_CACHE_HOME/naoc or ~/.cache/naoc); "off": none.
  const void *cuda_net;
  const char *cuda_source;
  const char *kernel_cache;
  Dist *dist;          // data parallel over dist's ranks (NULL or world 1: alone): the
                       //   gradients are averaged over the ranks (dist_buckets.h) before the
                       //   norm and the update, and StepResult covers every rank's batch
} BackendOptions;

typedef struct {
  double loss;       // the graph's loss: CE (+ aux weight * aux CE), smoothed as built
  double grad_norm;  // global L2 norm before clipping
  int top1, top5;    // samples whose label is the best / among the 5 best logits
  long long images;  // the samples these cover: every rank's under data parallelism, else 0
                     //   (the batch given)
} StepResult;

typedef struct {
  double loss_sum;   // sum over the batch of the plain cross-entropy
  int top1, top5;
} EvalResult;

enum { BACKEND_OK = 0, BACKEND_ERROR = -1, BACKEND_NONFINITE = -2 };

typedef struct Backend Backend;
typedef struct {
  const char *name;
  int (*train_step)(Backend *b, const float *images, const int32_t *labels, int n,
                    const RunState *rs, const SgdHyper *h, StepResult *out);
  int (*eval_batch)(Backend *b, const float *images, const int32_t *labels, int n,
                    EvalResult *out);
  int (*upload)(Backend *b);    // host ModelState -> device
  int (*download)(Backend *b);  // device -> host ModelState
  const char *(*error)(const Backend *b);
  void (*destroy)(Backend *b);
} BackendOps;

struct Backend {
  const BackendOps *ops;  // implementations embed Backend as their first member
};

// Creates a backend of `kind`; NULL with a message when it is unavailable or
// cannot run the graphs (the cuda one says why: not built, no device).
Backend *backend_create(BackendKind kind, const NetBuild *nb, ModelState *host,
                        const BackendOptions *opt, char *err, size_t errlen);
void backend_destroy(Backend *b);  // NULL is fine

static inline int backend_train_step(Backend *b, const float *images, const int32_t *labels, int n,
                                     const RunState *rs, const SgdHyper *h, StepResult *out) {
  return b->ops->train_step(b, images, labels, n, rs, h, out);
}
static inline int backend_eval_batch(Backend *b, const float *images, const int32_t *labels, int n,
                                     EvalResult *out) {
  return b->ops->eval_batch(b, images, labels, n, out);
}
static inline int backend_upload(Backend *b) { return b->ops->upload(b); }
static inline int backend_download(Backend *b) { return b->ops->download(b); }
static inline const char *backend_error(const Backend *b) { return b->ops->error(b); }

// The creators.
Backend *backend_cpu_create(const NetBuild *nb, ModelState *host, const BackendOptions *opt,
                            char *err, size_t errlen);
Backend *backend_cuda_create(const NetBuild *nb, ModelState *host, const BackendOptions *opt,
                             char *err, size_t errlen);

// Top-1 / top-5 hits of n rows of k logits (row stride ld) against labels: a
// sample counts for top-j when fewer than j logits are strictly larger than
// its label's (k < 5: top-5 counts every sample).
void backend_topk(const float *logits, size_t ld, int n, int k, const int32_t *labels, int *top1,
                  int *top5);

#endif
