// runtime/cpu_xent.c — label-smoothed softmax cross-entropy and its gradient.
//
// The forward works in double per sample (log-sum-exp around the maximum) and
// sums the batch in sample order, single-threaded: n*k is tiny next to the
// network. It keeps the softmax for the backward, which is then element-wise.
#include <math.h>

#include "runtime/cpu_kernels.h"
#include "runtime/cpu_util.h"

enum { XENT_BWD_BLOCK = 16 };  // samples per backward task

static int xent_check_labels(int n, int k, const int32_t *labels, size_t lab_ss) {
  for (int i = 0; i < n; i++) {
    int32_t y = labels[(size_t)i * lab_ss];
    if (y < 0 || y >= k) return i;
  }
  return -1;
}

int cpu_xent_fwd(int n, int k, const float *logits, size_t lg_ss, const int32_t *labels,
                 size_t lab_ss, float eps, float weight, float *loss, float *softmax,
                 size_t sm_ss) {
  int bad = xent_check_labels(n, k, labels, lab_ss);
  if (bad >= 0) return bad;
  double total = 0.0;
  for (int i = 0; i < n; i++) {
    const float *z = logits + (size_t)i * lg_ss;
    double m = z[0];
    for (int j = 1; j < k; j++) m = z[j] > m ? z[j] : m;
    double se = 0.0, sz = 0.0;
    for (int j = 0; j < k; j++) {
      se += exp((double)z[j] - m);
      sz += (double)z[j];
    }
    const double lse = m + log(se);
    const int32_t y = labels[(size_t)i * lab_ss];
    // -sum_j q_j log p_j with q = (1-eps) onehot + eps/k and log p_j = z_j - lse
    const double logp_y = (double)z[y] - lse, sum_logp = sz - (double)k * lse;
    total += -((1.0 - (double)eps) * logp_y + (double)eps / (double)k * sum_logp);
    if (softmax) {
      float *p = softmax + (size_t)i * sm_ss;
      for (int j = 0; j < k; j++) p[j] = (float)exp((double)z[j] - lse);
    }
  }
  *loss = n > 0 ? (float)((double)weight * total / (double)n) : 0.0f;
  return -1;
}

typedef struct {
  int n, k;
  const float *sm;
  size_t sm_ss;
  const int32_t *labels;
  size_t lab_ss;
  float eps, weight;
  float *dl;
  size_t dl_ss;
  int accumulate;
} XentCtx;

static void xent_bwd_task(void *vctx, int t, int thread) {
  (void)thread;
  const XentCtx *c = vctx;
  const float scale = c->weight / (float)c->n, off = c->eps / (float)c->k;
  const int i1 = cpu_min(c->n, (t + 1) * XENT_BWD_BLOCK);
  for (int i = t * XENT_BWD_BLOCK; i < i1; i++) {
    const float *p = c->sm + (size_t)i * c->sm_ss;
    float *d = c->dl + (size_t)i * c->dl_ss;
    const int32_t y = c->labels[(size_t)i * c->lab_ss];
    for (int j = 0; j < c->k; j++) {
      float q = off + (j == y ? 1.0f - c->eps : 0.0f);
      float g = scale * (p[j] - q);
      d[j] = c->accumulate ? d[j] + g : g;
    }
  }
}

int cpu_xent_bwd(ThreadPool *tp, int n, int k, const float *softmax, size_t sm_ss,
                 const int32_t *labels, size_t lab_ss, float eps, float weight, float *dlogits,
                 size_t dl_ss, int accumulate) {
  int bad = xent_check_labels(n, k, labels, lab_ss);
  if (bad >= 0) return bad;
  XentCtx c = {n, k, softmax, sm_ss, labels, lab_ss, eps, weight, dlogits, dl_ss, accumulate};
  tp_run(tp, (int)cpu_div_up((size_t)n, XENT_BWD_BLOCK), xent_bwd_task, &c);
  return -1;
}
