// search/eval_ws_train.c — the `ws` evaluator's begin_round: supernet training
// (NAO-SPEC §1c, train_search.py's child_train).
//
// Round r trains the supernet until epochs_done = (r + 1) * --ws-epochs. An
// epoch is the first --ws-train-images images (all when 0) of the loader's
// epoch order (a fresh permutation of the training split per epoch, seeded),
// in batches of --ws-batch, the last one partial. Each step samples one
// architecture uniformly from the pool (the evaluator's own seeded stream) and
// runs one backend training step of its graph on the supernet's state:
// forward, cross-entropy, backward, SGD with momentum, weight decay and
// clipping at the global norm. The learning rate is cosine from --ws-lr to
// --ws-lr-min over all rounds' epochs ((rounds + 1) * ws-epochs, per epoch);
// drop-path's keep ramps to --ws-drop-path-keep over all rounds' steps.
//
// Weights the sampled architecture does not use are not touched: no gradient,
// no weight decay, no momentum (optim.h skips the parameters a graph does not
// write). PyTorch's reference differs once a weight has had a gradient:
// zero_grad() leaves a zero gradient, so SGD keeps applying weight decay and
// momentum to it at every step whatever architecture is sampled.
//
// After every epoch the state is saved to the run folder (eval_ws_state.c),
// so a killed run resumes at its last epoch boundary and, on the cpu backend,
// computes bit for bit what an uninterrupted run does: the loader's order, the
// sampling stream, the drop-path masks (keyed by step) and the kernels depend
// on nothing else.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/progress.h"  // progress_now
#include "search/eval_ws.h"

static double ws_lr(const Ws *w, int epoch) {
  const EvalOptions *o = &w->o;
  int e = epoch < w->total_epochs ? epoch : w->total_epochs;
  return o->ws_lr_min + (o->ws_lr - o->ws_lr_min) * (1 + cos(M_PI * e / w->total_epochs)) / 2;
}

typedef struct {
  double loss_sum, seconds;
  long long images, top1;
} WsMeter;

static int ws_step(Ws *w, const EvalItem *pool, int n, const LoaderBatch *b, int take, double lr, WsMeter *m,
                   char *err, size_t errlen) {
  const EvalItem *it = &pool[rng_below(&w->rng, (uint64_t)n)];
  NetSpec ns;
  NetBuild nb;
  Backend *be;
  char why[800];
  if (ws_arch_spec(w, it->tokens, &ns, why, sizeof why) != 0 || ws_build(w, &ns, 1, &nb, &be, why, sizeof why) != 0)
    return snprintf(err, errlen, "supernet step %lld, arch '%s': %s", w->step, it->text, why), -1;
  RunState rs = {w->step, w->total_steps, w->o.seed, 1};
  SgdHyper h = {lr, w->o.ws_momentum, w->o.ws_weight_decay, w->o.ws_grad_clip};
  StepResult r;
  int rc = backend_train_step(be, b->images, b->labels, take, &rs, &h, &r);
  if (rc == 0 && backend_download(be) != 0) rc = BACKEND_ERROR;
  if (rc != 0)
    snprintf(err, errlen, "supernet step %lld, arch '%s': %s%s", w->step, it->text, backend_error(be),
             rc == BACKEND_NONFINITE ? " (training diverged: try a lower --ws-lr)" : "");
  ws_unbuild(&nb, be);
  if (rc != 0) return -1;
  w->step++;
  m->loss_sum += r.loss * take, m->images += take, m->top1 += r.top1;
  return 0;
}

// One epoch: w->steps_per_epoch steps over the epoch's first train_per_epoch images.
static int ws_epoch(Ws *w, int round, const EvalItem *pool, int n, WsMeter *m, char *err, size_t errlen) {
  char why[600];
  const int epoch = w->epochs_done;
  if (loader_start_epoch(w->loader, epoch, why, sizeof why) != 0) return snprintf(err, errlen, "data: %s", why), -1;
  double lr = ws_lr(w, epoch), t0 = progress_now();
  int left = w->train_per_epoch;
  for (int k = 0; k < w->steps_per_epoch; k++) {
    LoaderBatch *b;
    int got = loader_next(w->loader, &b, why, sizeof why);
    if (got != 1) return snprintf(err, errlen, "data: %s", got < 0 ? why : "the epoch ended early"), -1;
    int take = b->n < left ? b->n : left;
    int rc = ws_step(w, pool, n, b, take, lr, m, err, errlen);
    loader_release(w->loader, b);
    if (rc) return -1;
    left -= take;
    m->seconds = progress_now() - t0;
    if (w->o.progress)
      search_progress_update(w->o.progress, "round %d: supernet epoch %d/%d step %d/%d  loss %.4f  %.0f img/s", round,
                      epoch + 1 - round * w->o.ws_epochs, w->o.ws_epochs, k + 1, w->steps_per_epoch,
                      m->loss_sum / (double)m->images, m->seconds > 0 ? (double)m->images / m->seconds : 0.0);
  }
  w->epochs_done++;
  return 0;
}

int ws_begin_round(Evaluator *ev, int round, const EvalItem *pool, int n, char *err, size_t errlen) {
  Ws *w = ev->impl;
  w->round = round;
  ev->note[0] = '\0';
  const int target = (round + 1) * w->o.ws_epochs;
  if (w->epochs_done >= target) {  // trained before a kill
    snprintf(ev->note, sizeof ev->note, "supernet epochs 1-%d of %d trained before the resume (%lld steps)",
             w->epochs_done, w->total_epochs, w->step);
    return 0;
  }
  if (n < 1) return snprintf(err, errlen, "the supernet has no architecture to train on (empty pool)"), -1;
  int first = w->epochs_done;
  while (w->epochs_done < target) {
    WsMeter m = {0, 0, 0, 0};
    if (ws_epoch(w, round, pool, n, &m, err, errlen) != 0) return -1;
    if (w->state_dir[0] && ws_save(ev, w->state_dir, err, errlen) != 0) return -1;
    snprintf(ev->note, sizeof ev->note,
             "supernet epochs %d-%d of %d: %lld steps so far, last epoch loss %.4f, train top-1 %.4f, "
             "%.0f img/s; lr %.5g", first + 1, w->epochs_done, w->total_epochs, w->step,
             m.loss_sum / (double)m.images, (double)m.top1 / (double)m.images,
             m.seconds > 0 ? (double)m.images / m.seconds : 0.0, ws_lr(w, w->epochs_done - 1));
  }
  return 0;
}
