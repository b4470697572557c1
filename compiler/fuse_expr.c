// compiler/fuse_expr.c — the hash-consed expression pool of fusion (fuse.h).
//
// Nodes are appended, never changed; equal nodes (same kind, operands, tensor
// and constant bits) are one index, so an expression used by several stores of
// a kernel is computed once. Constants fold where the result is exact in IEEE
// arithmetic for finite values (x*1, x+0, const op const).
#include "compiler/fuse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void fx_init(FxPool *p) { memset(p, 0, sizeof *p); }

void fx_free(FxPool *p) {
  free(p->v);
  free(p->hash);
  memset(p, 0, sizeof *p);
}

static uint32_t fbits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static unsigned node_hash(const FxNode *x) {
  uint32_t key[5] = {(uint32_t)x->kind, (uint32_t)x->a, (uint32_t)x->b, (uint32_t)x->t,
                     fbits(x->f)};
  return (unsigned)nao_hash64(key, sizeof key, 0x5eed);
}

static int node_eq(const FxNode *x, const FxNode *y) {
  return x->kind == y->kind && x->a == y->a && x->b == y->b && x->t == y->t &&
         fbits(x->f) == fbits(y->f);
}

static void rehash(FxPool *p, int cap) {
  free(p->hash);
  p->hash = xmalloc(sizeof(int) * (size_t)cap);
  p->hcap = cap;
  for (int i = 0; i < cap; i++) p->hash[i] = -1;
  for (int i = 0; i < p->n; i++) {
    unsigned h = node_hash(&p->v[i]) & (unsigned)(cap - 1);
    while (p->hash[h] >= 0) h = (h + 1) & (unsigned)(cap - 1);
    p->hash[h] = i;
  }
}

static int intern(FxPool *p, const FxNode *x) {
  if (2 * (p->n + 1) > p->hcap) rehash(p, p->hcap ? 2 * p->hcap : 256);
  unsigned h = node_hash(x) & (unsigned)(p->hcap - 1);
  while (p->hash[h] >= 0) {
    if (node_eq(&p->v[p->hash[h]], x)) return p->hash[h];
    h = (h + 1) & (unsigned)(p->hcap - 1);
  }
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 256;
    p->v = xrealloc(p->v, sizeof *p->v * (size_t)p->cap);
  }
  p->v[p->n] = *x;
  p->hash[h] = p->n;
  return p->n++;
}

static int is_const(const FxPool *p, int e, float f) {
  return e >= 0 && p->v[e].kind == FX_CONST && fbits(p->v[e].f) == fbits(f);
}

int fx_node(FxPool *p, FxKind kind, int a, int b, int t, float f) {
  FxNode x = {kind, a, b, t, f};
  return intern(p, &x);
}

int fx_const(FxPool *p, float f) { return fx_node(p, FX_CONST, -1, -1, -1, f); }

int fx_binary(FxPool *p, FxKind kind, int a, int b) {
  int ca = a >= 0 && p->v[a].kind == FX_CONST, cb = b >= 0 && p->v[b].kind == FX_CONST;
  switch (kind) {
    case FX_ADD:
      if (is_const(p, a, 0.0f)) return b;
      if (is_const(p, b, 0.0f)) return a;
      if (ca && cb) return fx_const(p, p->v[a].f + p->v[b].f);
      break;
    case FX_SUB:
      if (is_const(p, b, 0.0f)) return a;
      if (ca && cb) return fx_const(p, p->v[a].f - p->v[b].f);
      break;
    case FX_MUL:
      if (is_const(p, a, 1.0f)) return b;
      if (is_const(p, b, 1.0f)) return a;
      if (ca && cb) return fx_const(p, p->v[a].f * p->v[b].f);
      break;
    case FX_RELU:
      if (ca) return fx_const(p, p->v[a].f > 0.0f ? p->v[a].f : 0.0f);
      break;
    case FX_POS:
      if (is_const(p, b, 0.0f)) return b;
      break;
    default:
      break;
  }
  return fx_node(p, kind, a, b, -1, 0.0f);
}

int fx_uses_tensor(const FxPool *p, int e, int t) {
  if (e < 0) return 0;
  const FxNode *x = &p->v[e];
  switch (x->kind) {
    case FX_LOAD:
    case FX_LOAD_NC:
    case FX_CHAN_T:
    case FX_ONEHOT:
      return x->t == t;
    default:
      return fx_uses_tensor(p, x->a, t) || fx_uses_tensor(p, x->b, t);
  }
}

// Depth-first walk visiting each distinct node once (seen: a small sorted set).
typedef struct {
  int *seen;
  int n, cap;
} Seen;

static int seen_add(Seen *s, int e) {
  int lo = 0, hi = s->n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (s->seen[mid] < e) lo = mid + 1;
    else hi = mid;
  }
  if (lo < s->n && s->seen[lo] == e) return 0;
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 32;
    s->seen = xrealloc(s->seen, sizeof(int) * (size_t)s->cap);
  }
  memmove(&s->seen[lo + 1], &s->seen[lo], sizeof(int) * (size_t)(s->n - lo));
  s->seen[lo] = e;
  s->n++;
  return 1;
}

static void walk(const FxPool *p, int e, Seen *s, void (*fn)(void *, FxKind, int), void *ctx) {
  if (e < 0 || !seen_add(s, e)) return;
  const FxNode *x = &p->v[e];
  if (fn && (x->kind == FX_LOAD || x->kind == FX_LOAD_NC || x->kind == FX_CHAN_T ||
             x->kind == FX_ONEHOT))
    fn(ctx, x->kind, x->t);
  walk(p, x->a, s, fn, ctx);
  walk(p, x->b, s, fn, ctx);
}

int fx_size(const FxPool *p, int e) {
  Seen s = {0};
  walk(p, e, &s, NULL, NULL);
  free(s.seen);
  return s.n;
}

void fx_leaves(const FxPool *p, int e, void (*fn)(void *ctx, FxKind kind, int t), void *ctx) {
  Seen s = {0};
  walk(p, e, &s, fn, ctx);
  free(s.seen);
}

FxVariance fx_variance(const FxPool *p, int e) {
  if (e < 0) return FXV_CHAN;
  const FxNode *x = &p->v[e];
  switch (x->kind) {
    case FX_CONST:
    case FX_CHAN_T:
    case FX_CHAN_P:
    case FX_CHAN_B:
    case FX_INV_N:
      return FXV_CHAN;
    case FX_LOAD_NC:
    case FX_ONEHOT:
      return FXV_SAMPLE;
    case FX_MASK:  // f = 1: one value per sample (drop-path); 0: per element (dropout)
      return x->f != 0.0f ? FXV_SAMPLE : FXV_ELEM;
    case FX_LOAD:
    case FX_RESULT:
      return FXV_ELEM;
    default: {
      FxVariance va = fx_variance(p, x->a), vb = fx_variance(p, x->b);
      return va > vb ? va : vb;
    }
  }
}
