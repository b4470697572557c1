// runtime/backend_cuda_exec.c — sequences of program steps on the stream:
// argument resolution per batch size, eager launches, CUDA graph capture and
// replay; the training step, evaluation and reads built on them.
//
// Invariants: a SeqBatch's addresses and cuDNN plans depend only on (sequence,
// batch size), so its graph stays valid until the slot is recycled or the
// cuDNN workspace moves (then graphs are dropped and recaptured). Nothing is
// enqueued between cuStreamBeginCapture and cuStreamEndCapture but the
// sequence's own steps; copies from host memory always happen outside graphs.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/backend_cuda_int.h"
#include "runtime/cpu_kernels.h"

#define CU(call, name, what)                                     \
  do {                                                           \
    CuResult r_ = (call);                                        \
    if (r_ != CUAPI_SUCCESS) return rt_fail(rt, r_, name, what); \
  } while (0)

// ---------------------------------------------------------------- building

static void seq_add(Seq *s, int prog, int step, CuDevptr dst, CuDevptr src, size_t bytes) {
  s->ops = xrealloc(s->ops, sizeof *s->ops * (size_t)(s->n_ops + 1));
  s->ops[s->n_ops++] = (SeqOp){prog, step, dst, src, bytes};
}

static void slot_clear(CudaRt *rt, Seq *s, SeqBatch *b) {
  if (b->graph) rt->cu->graph_exec_destroy(b->graph);
  lib_free_batch(rt, s, b);
  free(b->args);
  free(b->lib);
  memset(b, 0, sizeof *b);
}

static void seq_clear(CudaRt *rt, Seq *s) {
  for (int j = 0; j < BATCH_SLOTS; j++) slot_clear(rt, s, &s->slot[j]);
  free(s->ops);
  s->ops = NULL;
  s->n_ops = 0;
}

// The update sequence: saves of the parameters the train graph leaves alone,
// the SGD steps, restores.
static int build_update(CudaRt *rt) {
  Seq *s = &rt->seq[SEQ_UPDATE];
  seq_clear(rt, s);
  if (rt->update_prog < 0) return 0;
  const CudaNet *net = rt->net;
  size_t idle = 0;
  for (int i = 0; rt->active && i < net->n_params; i++)
    if (net->params[i].trainable && !rt->active[i]) idle += net->params[i].numel;
  if (idle && !rt->backup && !(rt->backup = rt_alloc(rt, 2 * idle * sizeof(float),
                                                      "the parameters no gradient reaches")))
    return -1;
  size_t at = 0;
  for (int pass = 0; pass < 3; pass++) {
    if (pass == 1) {
      const CudaProgram *u = rt->progs[rt->update_prog].p;
      for (int k = rt->n_update_pre; k < u->n_steps; k++) seq_add(s, rt->update_prog, k, 0, 0, 0);
      continue;
    }
    at = 0;
    for (int i = 0; idle && i < net->n_params; i++) {
      const ParamInfo *p = &net->params[i];
      if (!p->trainable || rt->active[i]) continue;
      size_t b = p->numel * sizeof(float);
      CuDevptr bp = rt->backup + at * sizeof(float), bm = bp + idle * sizeof(float);
      CuDevptr pp = rt->params + p->offset * sizeof(float), pm = rt->momentum + p->offset * sizeof(float);
      if (pass == 0) {
        seq_add(s, -1, 0, bp, pp, b);
        seq_add(s, -1, 0, bm, pm, b);
      } else {
        seq_add(s, -1, 0, pp, bp, b);
        seq_add(s, -1, 0, pm, bm, b);
      }
      at += p->numel;
    }
  }
  return 0;
}

// The train sequence: a copy of the BN statistics (restored after a
// non-finite step), the train program (with the data-parallel hooks after the
// steps that complete gradient buckets, and their join), then the update
// program's gradient norm.
static void build_train(CudaRt *rt) {
  Seq *s = &rt->seq[SEQ_TRAIN];
  seq_clear(rt, s);
  const CudaProgram *t = rt->progs[rt->train_prog].p;
  if (rt->buffers_prev)
    seq_add(s, SEQ_OP_COPY, 0, rt->buffers_prev, rt->buffers, sizeof(float) * rt->net->n_buffer);
  int b = 0;
  const CudaRtComm *c = &rt->comm;
  for (int k = 0; k < t->n_steps; k++) {
    seq_add(s, rt->train_prog, k, 0, 0, 0);
    for (; rt->has_comm && b < c->n_buckets && c->after_step[b] <= k; b++)
      seq_add(s, SEQ_OP_COMM, b, 0, 0, 0);
  }
  for (; rt->has_comm && b < c->n_buckets; b++) seq_add(s, SEQ_OP_COMM, b, 0, 0, 0);
  if (rt->has_comm) seq_add(s, SEQ_OP_JOIN, 0, 0, 0, 0);
  const CudaProgram *u = rt->progs[rt->update_prog].p;
  rt->n_update_pre = 0;
  while (rt->n_update_pre < u->n_steps) {
    const CudaStep *st = &u->steps[rt->n_update_pre];
    if (st->kind != CUDA_STEP_KERNEL || strcmp(rt->net->kernels[st->kernel].pattern, "gradnorm"))
      break;
    seq_add(s, rt->update_prog, rt->n_update_pre++, 0, 0, 0);
  }
}

int seq_build(CudaRt *rt) {
  if (rt->train_prog >= 0) {
    size_t bb = sizeof(float) * rt->net->n_buffer;
    // the BN statistics before the step, for a step that turns out non-finite
    if (bb && !rt->buffers_prev && !(rt->buffers_prev = rt_alloc(rt, bb, "the BN statistics before a step")))
      return -1;
    build_train(rt);
    if (build_update(rt)) return -1;
  }
  if (rt->eval_prog >= 0) {
    Seq *s = &rt->seq[SEQ_EVAL];
    const CudaProgram *e = rt->progs[rt->eval_prog].p;
    for (int k = 0; k < e->n_steps; k++) seq_add(s, rt->eval_prog, k, 0, 0, 0);
  }
  return 0;
}

void seq_free(CudaRt *rt) {
  if (!rt->cu) return;
  for (int q = 0; q < SEQ_COUNT; q++) seq_clear(rt, &rt->seq[q]);
}

int cuda_rt_set_comm(CudaRt *rt, const CudaRtComm *comm) {
  if (comm) {
    for (int b = 1; b < comm->n_buckets; b++)
      if (comm->after_step[b] < comm->after_step[b - 1]) {
        snprintf(rt->err, sizeof rt->err, "data parallel: bucket %d is placed before bucket %d", b, b - 1);
        return -1;
      }
    rt->comm = *comm;
  }
  rt->has_comm = comm != NULL;
  if (rt->train_prog >= 0) build_train(rt);
  return 0;
}

void cuda_rt_comm_env(CudaRt *rt, const CudaApi **cu, CuStream *stream, CuDevptr *grads,
                      const CudaProgram **train) {
  *cu = rt->cu;
  *stream = rt->stream;
  *grads = rt->grads;
  *train = rt->train_prog >= 0 ? rt->progs[rt->train_prog].p : NULL;
}

void cuda_rt_set_active(CudaRt *rt, const unsigned char *active) {
  free(rt->active);
  rt->active = NULL;
  if (active) {
    rt->active = xmalloc((size_t)rt->net->n_params + 1);
    memcpy(rt->active, active, (size_t)rt->net->n_params);
  }
  if (build_update(rt) && rt->opt.verbose) fprintf(stderr, "naoc: %s\n", rt->err);
}

// ---------------------------------------------------------------- resolution

static CuDevptr resolve(CudaRt *rt, const RtProg *pp, const CudaArg *a, int n) {
  const CudaNet *net = rt->net;
  int pid = a->id >= 0 && a->id < net->n_params;
  switch (a->kind) {
    case CUDA_ARG_TENSOR:
      return a->id >= 0 && a->id < pp->p->n_tensors ? rt_tensor(rt, pp, a->id, n) : 0;
    case CUDA_ARG_PARAM: return pid ? rt->params + 4 * (CuDevptr)net->params[a->id].offset : 0;
    case CUDA_ARG_GRAD: return pid ? rt->grads + 4 * (CuDevptr)net->params[a->id].offset : 0;
    case CUDA_ARG_BUFFER: return pid ? rt->buffers + 4 * (CuDevptr)net->params[a->id].offset : 0;
    case CUDA_ARG_PARAMS_ALL: return rt->params;
    case CUDA_ARG_GRADS_ALL: return rt->grads;
    case CUDA_ARG_MOMENTUM_ALL: return rt->momentum;
    case CUDA_ARG_SCRATCH: return rt->scratch;
    case CUDA_ARG_MASKS:
      return a->id >= 0 && a->id < pp->p->n_masks ? rt->masks + sizeof(NaoMask) * (CuDevptr)a->id : 0;
    case CUDA_ARG_HYPER: return rt->hyper;
  }
  return 0;
}

static int resolve_op(CudaRt *rt, const Seq *s, SeqBatch *b, int i) {
  const SeqOp *op = &s->ops[i];
  if (op->prog < 0) return 0;
  const RtProg *pp = &rt->progs[op->prog];
  const CudaStep *st = &pp->p->steps[op->step];
  if (st->n_args > NAO_KARGS_MAX || st->arg0 < 0 || st->arg0 + st->n_args > pp->p->n_args ||
      (st->kind != CUDA_STEP_KERNEL && st->n_args != 3) ||
      (st->kind == CUDA_STEP_KERNEL && (st->kernel < 0 || st->kernel >= rt->net->n_kernels))) {
    snprintf(rt->err, sizeof rt->err, "program %s, step %d: malformed step (kind %d, %d arguments)",
             pp->p->name, op->step, (int)st->kind, st->n_args);
    return -1;
  }
  memset(&b->args[i], 0, sizeof b->args[i]);
  b->args[i].n = b->n;
  for (int k = 0; k < st->n_args; k++) {
    const CudaArg *a = &pp->p->args[st->arg0 + k];
    CuDevptr d = resolve(rt, pp, a, b->n);
    if (!d) {
      snprintf(rt->err, sizeof rt->err,
               "program %s, step %d (%s): argument %d (kind %d, id %d) has no device memory",
               pp->p->name, op->step,
               st->kind == CUDA_STEP_KERNEL ? rt->net->kernels[st->kernel].name : "library", k,
               (int)a->kind, a->id);
      return -1;
    }
    if (st->kind == CUDA_STEP_KERNEL) b->args[i].p[k] = (void *)(uintptr_t)d;
    else b->lib[i][k] = d;
  }
  return 0;
}

// The slot of sequence q at batch n, resolved and planned.
static SeqBatch *prepare(CudaRt *rt, int q, int n) {
  Seq *s = &rt->seq[q];
  SeqBatch *b = NULL;
  for (int j = 0; j < BATCH_SLOTS && !b; j++)
    if (s->slot[j].n == n) b = &s->slot[j];
  if (b) {
    b->last_use = ++rt->clock;
    return b;
  }
  b = &s->slot[0];
  for (int j = 1; j < BATCH_SLOTS; j++)
    if (!s->slot[j].n || (b->n && s->slot[j].last_use < b->last_use)) b = &s->slot[j];
  slot_clear(rt, s, b);
  b->n = n;
  b->last_use = ++rt->clock;
  b->args = xcalloc((size_t)s->n_ops + 1, sizeof *b->args);
  b->lib = xcalloc((size_t)s->n_ops + 1, sizeof *b->lib);
  for (int i = 0; i < s->n_ops; i++)
    if (resolve_op(rt, s, b, i)) {
      slot_clear(rt, s, b);
      return NULL;
    }
  int main_batch = (q == SEQ_TRAIN && n == rt->max_batch) || (q == SEQ_EVAL && n == rt->max_eval_batch);
  if (lib_plan_convs(rt, s, b, main_batch)) {
    slot_clear(rt, s, b);
    return NULL;
  }
  return b;
}

// ---------------------------------------------------------------- running

static int enqueue(CudaRt *rt, const Seq *s, SeqBatch *b) {
  for (int i = 0; i < s->n_ops; i++) {
    const SeqOp *op = &s->ops[i];
    if (op->prog == SEQ_OP_COMM || op->prog == SEQ_OP_JOIN) {
      const CudaRtComm *c = &rt->comm;
      if (op->prog == SEQ_OP_COMM ? c->launch(c->user, op->step, rt->stream) : c->join(c->user, rt->stream)) {
        snprintf(rt->err, sizeof rt->err, "%s", c->error(c->user));
        return -1;
      }
      continue;
    }
    if (op->prog < 0) {
      CU(rt->cu->memcpy_dtod_async(op->dst, op->src, op->bytes, rt->stream), "cuMemcpyDtoDAsync",
         "copying parameters or statistics within a step");
      continue;
    }
    const CudaProgram *p = rt->progs[op->prog].p;
    const CudaStep *st = &p->steps[op->step];
    if (st->kind != CUDA_STEP_KERNEL) {
      if (lib_enqueue(rt, p, st, b->lib[i], b->conv ? &b->conv[i] : NULL, b->n)) return -1;
      continue;
    }
    const CudaKernel *k = &rt->net->kernels[st->kernel];
    unsigned gy = k->grid_nb ? (unsigned)((b->n + k->grid_nb - 1) / k->grid_nb) : 1u;
    void *params[1] = {&b->args[i]};
    CuResult r = rt->cu->launch_kernel(rt->fns[st->kernel], (unsigned)k->grid_x, gy, 1,
                                       (unsigned)k->block, 1, 1, 0, rt->stream, params, NULL);
    if (r != CUAPI_SUCCESS) {
      char what[300];
      snprintf(what, sizeof what, "launching kernel %s (program %s, step %d, batch %d)", k->name,
               p->name, op->step, b->n);
      return rt_fail(rt, r, "cuLaunchKernel", what);
    }
    rt->info.kernel_launches++;
  }
  return 0;
}

// Captures the slot's graph. Returns 0, or -1 (message set) when capture is
// not possible: the caller falls back to launching step by step.
static int capture(CudaRt *rt, const Seq *s, SeqBatch *b, int q) {
  CuResult r = rt->cu->stream_begin_capture(rt->stream, CUAPI_CAPTURE_MODE_GLOBAL);
  if (r != CUAPI_SUCCESS) return rt_fail(rt, r, "cuStreamBeginCapture", "starting a graph capture");
  int rc = enqueue(rt, s, b);
  CuGraph g = NULL;
  r = rt->cu->stream_end_capture(rt->stream, &g);
  if (!rc && r != CUAPI_SUCCESS) rc = rt_fail(rt, r, "cuStreamEndCapture", "ending a graph capture");
  if (!rc) {
    r = rt->cu->graph_instantiate(&b->graph, g, 0);
    if (r != CUAPI_SUCCESS) {
      b->graph = NULL;
      char what[96];
      snprintf(what, sizeof what, "instantiating the graph of sequence %d at batch %d", q, b->n);
      rc = rt_fail(rt, r, "cuGraphInstantiate", what);
    }
  }
  if (g) rt->cu->graph_destroy(g);
  if (!rc) rt->info.captures++;
  return rc;
}

int seq_prepare(CudaRt *rt, int q, int n) { return prepare(rt, q, n) ? 0 : -1; }

int seq_run(CudaRt *rt, int q, int n) {
  Seq *s = &rt->seq[q];
  SeqBatch *b = prepare(rt, q, n);  // made by seq_prepare before the inputs were copied
  if (!b) return -1;
  for (int i = 0; i < s->n_ops; i++)
    if (s->ops[i].prog >= 0) rt->progs[s->ops[i].prog].last_n = n;
  if (rt->opt.graphs && b->runs >= 1 && !b->graph && capture(rt, s, b, q)) {
    fprintf(stderr, "naoc: warning: CUDA graphs are off from now on: %s\n", rt->err);
    rt->opt.graphs = 0;
    rt->err[0] = '\0';
  }
  b->runs++;
  if (b->graph) {
    CU(rt->cu->graph_launch(b->graph, rt->stream), "cuGraphLaunch", "replaying a step's graph");
    rt->info.graph_launches++;
    return 0;
  }
  rt->info.eager_runs++;
  return enqueue(rt, s, b);
}

// ---------------------------------------------------------------- steps

static size_t numel3(const IrTensor *t) { return (size_t)t->c * (size_t)t->h * (size_t)t->w; }

// Copies n samples of a batched tensor between the host (dense) and the
// device (sample stride ss).
static int put_batched(CudaRt *rt, CuDevptr dst, size_t ss, const void *src, size_t per,
                       size_t elem, int n, const char *what) {
  if (ss == per) {
    CU(rt->cu->memcpy_htod_async(dst, src, elem * per * (size_t)n, rt->stream), "cuMemcpyHtoDAsync", what);
    return 0;
  }
  for (int i = 0; i < n; i++)
    CU(rt->cu->memcpy_htod_async(dst + elem * ss * (size_t)i, (const char *)src + elem * per * (size_t)i,
                                 elem * per, rt->stream),
       "cuMemcpyHtoDAsync", what);
  return 0;
}

static int check_labels(CudaRt *rt, const int32_t *labels, int n, int classes) {
  for (int i = 0; i < n; i++)
    if (labels[i] < 0 || labels[i] >= classes) {
      snprintf(rt->err, sizeof rt->err, "sample %d has label %d, outside [0, %d)", i, (int)labels[i],
               classes);
      return -1;
    }
  return 0;
}

static int put_inputs(CudaRt *rt, const RtProg *pp, const float *images, const int32_t *labels, int n) {
  const CudaProgram *p = pp->p;
  int classes = p->logits >= 0 ? p->tensors[p->logits].c : 1;
  if (p->input >= 0) {
    const IrTensor *t = &p->tensors[p->input];
    size_t ss = p->locs[p->input].sample_stride, per = numel3(t);
    CuDevptr dst = rt_tensor(rt, pp, p->input, n);
    if (images) {
      if (put_batched(rt, dst, ss, images, per, 4, n, "copying the input images to the device")) return -1;
    } else {
      if (rt->resident_n < n) {
        snprintf(rt->err, sizeof rt->err, "no resident input of %d images", n);
        return -1;
      }
      for (int i = 0; i < (ss == per ? 1 : n); i++)
        CU(rt->cu->memcpy_dtod_async(dst + 4 * ss * (size_t)i, rt->resident_x + 4 * per * (size_t)i,
                                     4 * per * (size_t)(ss == per ? n : 1), rt->stream),
           "cuMemcpyDtoDAsync", "copying the resident input");
    }
  }
  if (p->labels >= 0) {
    size_t ss = p->locs[p->labels].sample_stride;
    CuDevptr dst = rt_tensor(rt, pp, p->labels, n);
    if (labels) {
      if (check_labels(rt, labels, n, classes)) return -1;
      if (put_batched(rt, dst, ss ? ss : 1, labels, 1, 4, n, "copying the labels to the device"))
        return -1;
    } else if (ss <= 1) {
      CU(rt->cu->memcpy_dtod_async(dst, rt->resident_y, 4 * (size_t)n, rt->stream),
         "cuMemcpyDtoDAsync", "copying the resident labels");
    } else {
      for (int i = 0; i < n; i++)
        CU(rt->cu->memcpy_dtod_async(dst + 4 * ss * (size_t)i, rt->resident_y + 4 * (size_t)i, 4,
                                     rt->stream),
           "cuMemcpyDtoDAsync", "copying the resident labels");
    }
  }
  return 0;
}

static int put_masks(CudaRt *rt, const CudaProgram *p, const RunState *rs) {
  if (p->n_masks == 0) return 0;
  for (int s = 0; s < p->n_masks; s++) {
    const CudaMaskInfo *m = &p->masks[s];
    float keep = 1.0f;
    if (rs->training)
      keep = m->kind == CUDA_MASK_DROPPATH
                 ? cpu_droppath_keep(m->attr.keep, m->attr.cell, m->attr.n_cells, rs->step, rs->total_steps)
                 : m->attr.keep;
    rt->host_masks[s].key = cpu_mask_key(rs->seed, rs->step, m->node);
    rt->host_masks[s].keep = keep;
    rt->host_masks[s].scale = keep >= 1.0f ? 1.0f : 1.0f / keep;
  }
  CU(rt->cu->memcpy_htod_async(rt->masks, rt->host_masks, sizeof(NaoMask) * (size_t)p->n_masks, rt->stream),
     "cuMemcpyHtoDAsync", "copying the dropout and drop-path masks' keys");
  return 0;
}

static int put_hyper(CudaRt *rt, const SgdHyper *h) {
  NaoHyper nh = {0.0f, 0.0f, 0.0f, 0.0f};
  if (h) {
    nh.lr = (float)h->lr;
    nh.momentum = (float)h->momentum;
    nh.weight_decay = (float)h->weight_decay;
    nh.max_norm = h->grad_clip > 0 ? (float)h->grad_clip : 0.0f;
  }
  CU(rt->cu->memcpy_htod_async(rt->hyper, &nh, sizeof nh, rt->stream), "cuMemcpyHtoDAsync",
     "copying the optimizer's hyperparameters");
  return 0;
}

// Reads the loss (and the norm) and the logits of program pp after a run.
static int get_outputs(CudaRt *rt, const RtProg *pp, int n, int with_norm, CudaStepOut *out) {
  const CudaProgram *p = pp->p;
  float *h = rt->host_out;
  size_t off_norm = 0, off_loss = 4, off_logits = 16;
  if (p->loss >= 0)
    CU(rt->cu->memcpy_dtoh_async(h + off_loss, rt_tensor(rt, pp, p->loss, n), 4, rt->stream),
       "cuMemcpyDtoHAsync", "reading the loss");
  if (with_norm) {
    const RtProg *up = &rt->progs[rt->update_prog];
    CU(rt->cu->memcpy_dtoh_async(h + off_norm, rt_tensor(rt, up, 0, n), 4, rt->stream),
       "cuMemcpyDtoHAsync", "reading the gradient norm");
  }
  int classes = p->logits >= 0 ? p->tensors[p->logits].c * p->tensors[p->logits].h * p->tensors[p->logits].w : 0;
  size_t ss = p->logits >= 0 ? p->locs[p->logits].sample_stride : 0;
  if (!ss) ss = (size_t)classes;
  size_t span = classes ? (size_t)(n - 1) * ss + (size_t)classes : 0;
  if (span)
    CU(rt->cu->memcpy_dtoh_async(h + off_logits, rt_tensor(rt, pp, p->logits, n), 4 * span, rt->stream),
       "cuMemcpyDtoHAsync", "reading the logits");
  CU(rt->cu->stream_synchronize(rt->stream), "cuStreamSynchronize", "waiting for the step");
  out->loss = p->loss >= 0 ? h[off_loss] : 0.0f;
  out->grad_norm = with_norm ? h[off_norm] : -1.0f;
  out->classes = classes;
  out->logits = h + off_logits + span;
  for (int i = 0; i < n && classes; i++)
    memmove(out->logits + (size_t)i * (size_t)classes, h + off_logits + (size_t)i * ss,
            sizeof(float) * (size_t)classes);
  return 0;
}

int cuda_rt_train_forward(CudaRt *rt, const float *images, const int32_t *labels, int n,
                          const RunState *rs, const SgdHyper *h, CudaStepOut *out) {
  memset(out, 0, sizeof *out);
  if (rt->train_prog < 0 || n < 1 || n > rt->max_batch) {
    snprintf(rt->err, sizeof rt->err, "training batch %d: the runtime was made for 1..%d", n,
             rt->max_batch);
    return -1;
  }
  const RtProg *pp = &rt->progs[rt->train_prog];
  // Planning first: cuDNN's algorithm search writes into the arena, where the
  // input lives.
  if (seq_prepare(rt, SEQ_TRAIN, n) || put_inputs(rt, pp, images, labels, n) ||
      put_masks(rt, pp->p, rs) || put_hyper(rt, h) || seq_run(rt, SEQ_TRAIN, n))
    return -1;
  // Data parallel: wait for the all-reduces by polling (a dead peer times out)
  // before get_outputs synchronizes.
  if (rt->has_comm && rt->comm.wait(rt->comm.user)) {
    snprintf(rt->err, sizeof rt->err, "%s", rt->comm.error(rt->comm.user));
    return -1;
  }
  return get_outputs(rt, pp, n, rt->n_update_pre > 0, out);
}

int cuda_rt_train_undo(CudaRt *rt) {
  size_t bb = sizeof(float) * rt->net->n_buffer;
  if (bb)
    CU(rt->cu->memcpy_dtod_async(rt->buffers, rt->buffers_prev, bb, rt->stream), "cuMemcpyDtoDAsync",
       "restoring the BN statistics of a non-finite step");
  return 0;
}

int cuda_rt_train_update(CudaRt *rt, const SgdHyper *h) {
  if (rt->update_prog < 0) {
    snprintf(rt->err, sizeof rt->err, "the net has no update program");
    return -1;
  }
  if (put_hyper(rt, h)) return -1;
  return seq_run(rt, SEQ_UPDATE, 1);
}

int cuda_rt_eval(CudaRt *rt, const float *images, const int32_t *labels, int n, CudaStepOut *out) {
  memset(out, 0, sizeof *out);
  if (rt->eval_prog < 0 || n < 1 || n > rt->max_eval_batch) {
    snprintf(rt->err, sizeof rt->err, "evaluation batch %d: the runtime was made for 1..%d", n,
             rt->max_eval_batch);
    return -1;
  }
  const RtProg *pp = &rt->progs[rt->eval_prog];
  if (seq_prepare(rt, SEQ_EVAL, n) || put_inputs(rt, pp, images, labels, n) ||
      seq_run(rt, SEQ_EVAL, n))
    return -1;
  return get_outputs(rt, pp, n, 0, out);
}

int cuda_rt_set_resident_input(CudaRt *rt, const float *images, const int32_t *labels, int n) {
  const RtProg *pp = &rt->progs[rt->train_prog >= 0 ? rt->train_prog : rt->eval_prog];
  const CudaProgram *p = pp->p;
  size_t per = p->input >= 0 ? numel3(&p->tensors[p->input]) : 0;
  int classes = p->logits >= 0 ? p->tensors[p->logits].c : 1;
  if (labels && check_labels(rt, labels, n, classes)) return -1;
  if (rt->resident_n < n) {
    if (rt->resident_x) rt_free(rt, rt->resident_x);
    if (rt->resident_y) rt_free(rt, rt->resident_y);
    rt->resident_n = 0;
    if (!(rt->resident_x = rt_alloc(rt, 4 * per * (size_t)n, "the resident input")) ||
        !(rt->resident_y = rt_alloc(rt, 4 * (size_t)n, "the resident labels")))
      return -1;
  }
  rt->resident_n = n;
  if (rt_put(rt, rt->resident_x, images, 4 * per * (size_t)n, "copying the resident input")) return -1;
  return labels ? rt_put(rt, rt->resident_y, labels, 4 * (size_t)n, "copying the resident labels") : 0;
}

int cuda_rt_read_tensor(CudaRt *rt, const char *prog, int t, float *out) {
  const RtProg *pp = NULL;
  for (int i = 0; i < rt->n_progs; i++)
    if (strcmp(rt->progs[i].p->name, prog) == 0) pp = &rt->progs[i];
  if (!pp || t < 0 || t >= pp->p->n_tensors || !pp->last_n) {
    snprintf(rt->err, sizeof rt->err, "no tensor %d of a program %s that ran", t, prog);
    return -1;
  }
  const IrTensor *x = &pp->p->tensors[t];
  CuDevptr d = rt_tensor(rt, pp, t, pp->last_n);
  if (!d) return -1;
  CU(rt->cu->stream_synchronize(rt->stream), "cuStreamSynchronize", "waiting before a read");
  size_t per = numel3(x);
  int n = x->kind == IR_T_ACT || x->kind == IR_T_LABELS ? pp->last_n : 1;
  size_t ss = pp->p->locs[t].sample_stride;
  if (n == 1 || ss == per) return rt_get(rt, out, d, 4 * per * (size_t)n, "reading a tensor");
  for (int i = 0; i < n; i++)
    if (rt_get(rt, out + per * (size_t)i, d + 4 * ss * (size_t)i, 4 * per, "reading a tensor")) return -1;
  return 0;
}

int cuda_rt_time_steps(CudaRt *rt, int n, int steps, const RunState *rs, const SgdHyper *h,
                       double *ms_per_step) {
  RunState r = *rs;
  CudaStepOut out;
  CU(rt->cu->event_record(rt->ev0, rt->stream), "cuEventRecord", "timing the steps");
  for (int i = 0; i < steps; i++) {
    r.step = rs->step + i;
    if (cuda_rt_train_forward(rt, NULL, NULL, n, &r, h, &out) || cuda_rt_train_update(rt, h)) return -1;
  }
  CU(rt->cu->event_record(rt->ev1, rt->stream), "cuEventRecord", "timing the steps");
  CU(rt->cu->event_synchronize(rt->ev1), "cuEventSynchronize", "timing the steps");
  float ms = 0;
  CU(rt->cu->event_elapsed_time(&ms, rt->ev0, rt->ev1), "cuEventElapsedTime", "timing the steps");
  *ms_per_step = steps > 0 ? (double)ms / steps : 0.0;
  return 0;
}
