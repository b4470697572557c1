// runtime/backend_cuda.c — the cuda backend of backend.h on the cuda runtime
// (backend_cuda.h).
//
// The net comes from a generated trainer (net.cu's plan, checked against the
// NetBuild: same parameters, same graphs) or is built here from the
// NetBuild's graphs with naoc's CUDA emitter. A training step is the
// runtime's forward (with the gradient norm), a finiteness check on the host,
// then the update; a step whose loss or norm is not finite changes nothing,
// as on the cpu backend. The host ModelState's momentum flags follow the
// device: after a step every parameter the graph reaches has a buffer.
//
// Environment (for runs without code changes): NAOC_KERNEL_CACHE=DIR|off,
// NAOC_CUDA_TF32=0 (no TF32 anywhere), NAOC_CUDA_GRAPHS=0 (launch step by
// step), NAOC_CUDA_VERBOSE=1.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda.h"
#include "compiler/util.h"
#include "runtime/backend_cuda.h"
#include "runtime/dist_cuda.h"

typedef struct {
  Backend base;
  const NetBuild *nb;
  ModelState *host;
  CudaNetBuild *build;  // the in-process net, NULL for a given one
  const CudaNet *net;
  CudaRt *rt;
  Dist *dist;           // data parallel (world > 1), else NULL
  DistCudaComm *comm;   // its NCCL and gradient buckets (dist_cuda.h)
  char err[4096];
} CudaBackend;

static const char *cb_error(const Backend *b) { return ((const CudaBackend *)b)->err; }

static int rt_err(CudaBackend *cb, const char *what) {
  snprintf(cb->err, sizeof cb->err, "%s: %s", what, cuda_rt_error(cb->rt));
  return BACKEND_ERROR;
}

static int cb_train_step(Backend *b, const float *images, const int32_t *labels, int n,
                         const RunState *rs, const SgdHyper *h, StepResult *out) {
  CudaBackend *cb = (CudaBackend *)b;
  memset(out, 0, sizeof *out);
  CudaStepOut so;
  if (cuda_rt_train_forward(cb->rt, images, labels, n, rs, h, &so)) return rt_err(cb, "training step");
  out->loss = so.loss;
  out->grad_norm = so.grad_norm;  // of the averaged gradients under data parallelism
  backend_topk(so.logits, (size_t)so.classes, n, so.classes, labels, &out->top1, &out->top5);
  if (cb->dist && dist_step_metrics(cb->dist, &out->loss, &out->top1, &out->top5, n, &out->images)) {
    snprintf(cb->err, sizeof cb->err, "data parallel: %s", dist_error(cb->dist));
    return BACKEND_ERROR;
  }
  if (!isfinite(out->loss) || !isfinite(out->grad_norm)) {
    snprintf(cb->err, sizeof cb->err, "the loss (%g) or the gradient norm (%g) is not finite",
             out->loss, out->grad_norm);
    if (cuda_rt_train_undo(cb->rt)) return rt_err(cb, "undoing a non-finite step");
    return BACKEND_NONFINITE;
  }
  if (cuda_rt_train_update(cb->rt, h)) return rt_err(cb, "optimizer step");
  const ParamTable *t = cb->host->table;
  for (int i = 0; i < t->n; i++)
    if (t->items[i].trainable && cb->nb->grad_written[i]) cb->host->sgd.has_buf[i] = 1;
  return BACKEND_OK;
}

static int cb_eval_batch(Backend *b, const float *images, const int32_t *labels, int n,
                         EvalResult *out) {
  CudaBackend *cb = (CudaBackend *)b;
  memset(out, 0, sizeof *out);
  CudaStepOut so;
  if (cuda_rt_eval(cb->rt, images, labels, n, &so)) return rt_err(cb, "evaluation");
  out->loss_sum = (double)so.loss * n;
  backend_topk(so.logits, (size_t)so.classes, n, so.classes, labels, &out->top1, &out->top5);
  return BACKEND_OK;
}

static int cb_upload(Backend *b) {
  CudaBackend *cb = (CudaBackend *)b;
  ModelState *m = cb->host;
  if (cuda_rt_upload(cb->rt, m->params, m->buffers, m->sgd.momentum, m->sgd.has_buf))
    return rt_err(cb, "upload of the model state");
  return BACKEND_OK;
}

static int cb_download(Backend *b) {
  CudaBackend *cb = (CudaBackend *)b;
  ModelState *m = cb->host;
  if (cuda_rt_download(cb->rt, m->params, m->buffers, m->sgd.momentum))
    return rt_err(cb, "download of the model state");
  return BACKEND_OK;
}

static void cb_destroy(Backend *b) {
  CudaBackend *cb = (CudaBackend *)b;
  dist_cuda_comm_free(cb->comm);  // NCCL leaves before the device
  cuda_rt_destroy(cb->rt);
  cuda_net_free(cb->build);
  free(cb);
}

static const BackendOps cuda_ops = {"cuda", cb_train_step, cb_eval_batch, cb_upload, cb_download,
                                    cb_error, cb_destroy};

CudaRt *backend_cuda_rt(Backend *b) {
  return b && b->ops == &cuda_ops ? ((CudaBackend *)b)->rt : NULL;
}

// ---------------------------------------------------------------- the net

static int build_net(CudaBackend *cb, char *err, size_t errlen) {
  const NetBuild *nb = cb->nb;
  EmitCudaOptions eo;
  emit_cuda_defaults(&eo);
  cb->build = cuda_net_new(&nb->params, nb->spec.name[0] ? nb->spec.name : "network", &eo);
  char why[1000];
  int train = nb->has_train && nb->train.n_nodes > nb->train.n_fwd_nodes;
  if (train && cuda_net_add_graph(cb->build, &nb->train, "train", why, sizeof why)) {
    snprintf(err, errlen, "cuda backend, training graph: %s", why);
    return -1;
  }
  if (train) cuda_net_add_update(cb->build);
  if (nb->has_eval && nb->eval.has_loss &&
      cuda_net_add_graph(cb->build, &nb->eval, "eval", why, sizeof why)) {
    snprintf(err, errlen, "cuda backend, evaluation graph: %s", why);
    return -1;
  }
  cb->net = cuda_net_get(cb->build);
  return 0;
}

static int same_attr(const IrNode *a, const IrNode *b) {
  switch (a->kind) {
    case IR_CONV:
    case IR_CONV_BWD_DATA:
    case IR_CONV_BWD_FILTER: return !memcmp(&a->a.conv, &b->a.conv, sizeof a->a.conv);
    case IR_POOL:
    case IR_POOL_BWD: return !memcmp(&a->a.pool, &b->a.pool, sizeof a->a.pool);
    case IR_BN:
    case IR_BN_BWD: return !memcmp(&a->a.bn, &b->a.bn, sizeof a->a.bn);
    case IR_DROPOUT:
    case IR_DROPPATH:
    case IR_MASK_BWD: return !memcmp(&a->a.drop, &b->a.drop, sizeof a->a.drop);
    case IR_XENT:
    case IR_XENT_BWD: return !memcmp(&a->a.xent, &b->a.xent, sizeof a->a.xent);
    default: return 1;
  }
}

// The program computes the graph: same nodes (kind, name, wiring, flags,
// attributes: the loss's smoothing and weight, keep probabilities...) and
// tensors of the same shapes.
static int same_graph(const CudaProgram *p, const IrGraph *g) {
  if (!p || p->n_nodes != g->n_nodes || p->n_ir_tensors != g->n_tensors) return 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const IrNode *a = &p->nodes[i], *b = &g->nodes[i];
    if (a->kind != b->kind || strcmp(a->name, b->name) || a->n_in != b->n_in || a->n_out != b->n_out ||
        a->n_param != b->n_param || a->accumulate != b->accumulate || !same_attr(a, b))
      return 0;
    for (int k = 0; k < a->n_in; k++)
      if (a->in[k] != b->in[k]) return 0;
    for (int k = 0; k < a->n_out; k++)
      if (a->out[k] != b->out[k]) return 0;
    for (int k = 0; k < a->n_param; k++)
      if (a->param[k] != b->param[k]) return 0;
  }
  for (int t = 0; t < g->n_tensors; t++) {
    const IrTensor *a = &p->tensors[t], *b = &g->tensors[t];
    if (a->kind != b->kind || a->c != b->c || a->h != b->h || a->w != b->w) return 0;
  }
  return 1;
}

// A given net (net.cu) must be the NetBuild's network: same parameters at the
// same offsets, same graphs (the mask keys are node indices).
static int check_net(const CudaNet *net, const NetBuild *nb, char *err, size_t errlen) {
  const ParamTable *t = &nb->params;
  int ok = net->n_params == t->n && net->n_trainable == t->n_trainable && net->n_buffer == t->n_buffer;
  for (int i = 0; ok && i < t->n; i++)
    ok = strcmp(net->params[i].name, t->items[i].name) == 0 &&
         net->params[i].offset == t->items[i].offset && net->params[i].numel == t->items[i].numel &&
         net->params[i].trainable == t->items[i].trainable;
  if (!ok) {
    snprintf(err, errlen, "net.cu (from %s) and the network do not have the same parameters: "
                          "regenerate net.cu from this network",
             net->source);
    return -1;
  }
  if (nb->has_train && nb->train.n_nodes > nb->train.n_fwd_nodes &&
      !same_graph(cuda_net_program(net, "train"), &nb->train)) {
    snprintf(err, errlen, "net.cu (from %s) has another training graph than this network and "
                          "recipe (the recipe's auxiliary weight, drop-path, dropout or label "
                          "smoothing differ from the network's): regenerate net.cu, or train with "
                          "the recipe it was made for",
             net->source);
    return -1;
  }
  if (nb->has_eval && nb->eval.has_loss && !same_graph(cuda_net_program(net, "eval"), &nb->eval)) {
    snprintf(err, errlen, "net.cu (from %s) has another evaluation graph than this network: "
                          "regenerate net.cu",
             net->source);
    return -1;
  }
  return 0;
}

static void env_options(CudaRtOptions *o) {
  const char *v = getenv("NAOC_CUDA_TF32");
  if (v && strcmp(v, "0") == 0) o->tf32 = 0;
  v = getenv("NAOC_CUDA_GRAPHS");
  if (v && strcmp(v, "0") == 0) o->graphs = 0;
  v = getenv("NAOC_CUDA_VERBOSE");
  if (v && strcmp(v, "1") == 0) o->verbose = 1;
}

// Data parallel: NCCL on this device, the gradient buckets' all-reduces
// hooked into the train sequence (runtime/dist_cuda.h).
static int attach_dist(CudaBackend *cb, Dist *d, char *err, size_t errlen) {
  const CudaApi *cu;
  CuStream stream;
  CuDevptr grads;
  const CudaProgram *train;
  cuda_rt_comm_env(cb->rt, &cu, &stream, &grads, &train);
  cb->comm = dist_cuda_comm_create(d, cu, stream, grads, cb->nb, train, NULL, err, errlen);
  if (!cb->comm) return -1;
  cb->dist = d;
  if (!train) return 0;  // evaluation only: NCCL for the host collectives, no buckets
  CudaRtComm c = {cb->comm, dist_cuda_n_buckets(cb->comm), dist_cuda_after_steps(cb->comm),
                  dist_cuda_launch, dist_cuda_join, dist_cuda_wait, dist_cuda_error};
  if (cuda_rt_set_comm(cb->rt, &c)) {
    snprintf(err, errlen, "%s", cuda_rt_error(cb->rt));
    return -1;
  }
  return 0;
}

Backend *backend_cuda_create_with(const NetBuild *nb, ModelState *host, const BackendOptions *opt,
                                  const CudaNet *net, const char *source,
                                  const CudaRtOptions *rto, char *err, size_t errlen) {
  int dp = opt->dist && dist_world(opt->dist) > 1;
  if (opt->gpus > 1 && !dp) {
    snprintf(err, errlen, "--gpus %d: the cuda backend drives one GPU per process (nao-train "
                          "--gpus N starts one process per GPU)", opt->gpus);
    return NULL;
  }
  CudaBackend *cb = xcalloc(1, sizeof *cb);
  cb->base.ops = &cuda_ops;
  cb->nb = nb;
  cb->host = host;
  CudaRtOptions ro;
  if (rto) ro = *rto;
  else {
    cuda_rt_options_default(&ro);
    env_options(&ro);
    ro.kernel_cache = opt->kernel_cache;
  }
  if (dp && !rto) {  // one GPU per process: the process's rank on this node
    const char *dev = getenv("NAO_DIST_DEVICE");
    ro.device = dev && *dev ? atoi(dev) : dist_local_rank(opt->dist);
  }
  int rc = net ? check_net(net, nb, err, errlen) : build_net(cb, err, errlen);
  if (net) cb->net = net;
  int train = nb->has_train && nb->train.n_nodes > nb->train.n_fwd_nodes;
  int eval = nb->has_eval && nb->eval.has_loss;
  if (!rc) {
    char why[4096];
    cb->rt = cuda_rt_create(cb->net, source, train ? opt->max_batch : 0, eval ? opt->max_eval_batch : 0,
                            &ro, why, sizeof why);
    if (!cb->rt) {
      snprintf(err, errlen, "%s", why);
      rc = -1;
    }
  }
  if (!rc) {
    cuda_rt_set_active(cb->rt, nb->grad_written);
    if (cb_upload(&cb->base) != BACKEND_OK) {
      snprintf(err, errlen, "%s", cb->err);
      rc = -1;
    }
  }
  if (!rc && dp) rc = attach_dist(cb, opt->dist, err, errlen);
  if (rc) {
    cb_destroy(&cb->base);
    return NULL;
  }
  return &cb->base;
}

Backend *backend_cuda_create(const NetBuild *nb, ModelState *host, const BackendOptions *opt,
                             char *err, size_t errlen) {
  return backend_cuda_create_with(nb, host, opt, (const CudaNet *)opt->cuda_net, opt->cuda_source,
                                  NULL, err, errlen);
}
