// compiler/emit_cuda_kern.c — generating one kernel: slots, loop variables,
// expressions, the epilogue and the reductions (emit_cuda_int.h); naming and
// registering it is emit_cuda_reg.c's.
//
// Text is built from indices only (slot numbers, variable counters), never from
// tensor ids or names, so two groups of the same structure and shapes give the
// same text and share one kernel. Names and served modules go in a comment
// outside the hashed part.
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_cuda_int.h"
#include "compiler/fuse_internal.h"

void kg_init(KGen *k, CudaNetBuild *nb, ProgRec *pr, const FusePlan *fp, const FuseGroup *G) {
  memset(k, 0, sizeof *k);
  k->nb = nb;
  k->pr = pr;
  k->fp = fp;
  k->G = G;
  k->memo = xmalloc(sizeof *k->memo * KG_MAX_MEMO);
  k->indent = 1;
  k->block = nb->opt.block;
}

void kg_free(KGen *k) {
  sb_free(&k->head);
  sb_free(&k->body);
  free(k->memo);
}

static void vline(StrBuf *sb, int indent, const char *fmt, va_list ap) {
  for (int i = 0; i < indent; i++) sb_append(sb, "  ");
  sb_vprintf(sb, fmt, ap);
  sb_append(sb, "\n");
}

void kg_line(KGen *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline(&k->body, k->indent, fmt, ap);
  va_end(ap);
}

void kg_head(KGen *k, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline(&k->head, 1, fmt, ap);
  va_end(ap);
}

int kg_slot(KGen *k, CudaArgKind kind, int id, int write) {
  for (int i = 0; i < k->n_args; i++)
    if (k->args[i].kind == kind && k->args[i].id == id) {
      k->arg_write[i] |= write;
      return i;
    }
  if (k->n_args == NAO_KARGS_MAX) {
    k->overflow = 1;
    return 0;
  }
  k->args[k->n_args] = (CudaArg){kind, id};
  k->arg_write[k->n_args] = write;
  return k->n_args++;
}

const char *kg_ptr(KGen *k, int slot) {
  static const char *const names[NAO_KARGS_MAX] = {
      "p0",  "p1",  "p2",  "p3",  "p4",  "p5",  "p6",  "p7",  "p8",  "p9",  "p10",
      "p11", "p12", "p13", "p14", "p15", "p16", "p17", "p18", "p19", "p20", "p21",
      "p22", "p23", "p24", "p25", "p26", "p27", "p28", "p29", "p30", "p31"};
  (void)k;
  return names[slot];
}

long long kg_ss(const KGen *k, int t) {
  const PlanLoc *l = &k->pr->locs[t];
  return l->region == LOC_ARENA ? (long long)l->sample_stride : 0;
}

int kg_choose_nb(const KGen *k, int channels, long long elems_per_sample) {
  int b = k->nb->opt.plan_batch > 0 ? k->nb->opt.plan_batch : 128;
  long long target = 4096;
  int nb = (int)((target + elems_per_sample - 1) / elems_per_sample);
  if (nb < 1) nb = 1;
  if (nb > b) nb = b;
  int want = 2 * (k->nb->opt.num_sms > 0 ? k->nb->opt.num_sms : 132);
  while (nb > 1 && (long long)channels * ((b + nb - 1) / nb) < want) nb = (nb + 1) / 2;
  return nb;
}

void kg_float(char *buf, size_t n, float f) {
  if (isinf(f)) {
    snprintf(buf, n, "%s", f > 0 ? "__int_as_float(0x7f800000)" : "__int_as_float(0xff800000)");
    return;
  }
  char t[48];
  snprintf(t, sizeof t, "%.9g", (double)f);
  if (!strpbrk(t, ".en")) strcat(t, ".0");
  snprintf(buf, n, "%sf", t);
}

// ---------------------------------------------------------------- loop variables

static int ident_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int kg_uses_ident(const char *text, const char *id) {
  size_t n = strlen(id);
  for (const char *p = strstr(text, id); p; p = strstr(p + 1, id)) {
    char before = p == text ? ' ' : p[-1];
    if (ident_char(before) || before == '.' || ident_char(p[n])) continue;
    if (p - text >= 2 && p[-1] == '>' && p[-2] == '-') continue;
    return 1;
  }
  return 0;
}

void kg_insert_vars(KGen *k, size_t mark, const KgVar *vars, int n) {
  char *seg = xstrdup(k->body.data ? k->body.data + mark : "");
  if (k->body.data) {
    k->body.len = mark;
    k->body.data[mark] = '\0';
  }
  int need[16] = {0};
  NAO_ASSERT(n <= 16);
  for (int i = n - 1; i >= 0; i--) {
    need[i] = kg_uses_ident(seg, vars[i].name);
    for (int j = i + 1; j < n && !need[i]; j++)
      if (need[j] && kg_uses_ident(vars[j].def, vars[i].name)) need[i] = 1;
  }
  for (int i = 0; i < n; i++)
    if (need[i]) kg_line(k, "%s", vars[i].def);
  sb_append(&k->body, seg);
  free(seg);
}

// ---------------------------------------------------------------- memo

static KgMemo *memo_find(KGen *k, int node, int lane, int scope) {
  for (int i = 0; i < k->n_memo; i++)
    if (k->memo[i].node == node && k->memo[i].lane == lane && k->memo[i].scope == scope)
      return &k->memo[i];
  return NULL;
}

static void memo_put(KGen *k, int node, int lane, int scope, const char *name) {
  if (k->n_memo == KG_MAX_MEMO) nao_internal("kernel expression memo full");
  KgMemo *m = &k->memo[k->n_memo++];
  m->node = node;
  m->lane = lane;
  m->scope = scope;
  snprintf(m->name, sizeof m->name, "%s", name);
}

void kg_site_begin(KGen *k, FxCtx *x) {
  int n = 0;
  for (int i = 0; i < k->n_memo; i++)
    if (k->memo[i].scope == 0) k->memo[n++] = k->memo[i];
  k->n_memo = n;
  k->site++;
  x->elem_scope = k->site;
  k->n_values = 0;
  k->n_stores = 0;
}

// Two tensors name the same memory: one is a view of the other's whole
// extent, or both are the same slice (autodiff's gradient aliases).
static int same_region(const KGen *k, int a, int b) {
  if (a == b) return 1;
  int ca, cb;
  return fuse_root(k->fp, a, &ca) == fuse_root(k->fp, b, &cb) && ca == cb &&
         k->fp->tensors[a].c == k->fp->tensors[b].c;
}

static int uses_region(const KGen *k, int e, int t) {
  if (e < 0) return 0;
  const FxNode *x = &k->fp->fx.v[e];
  switch (x->kind) {
    case FX_LOAD:
    case FX_LOAD_NC:
    case FX_CHAN_T:
    case FX_ONEHOT:
      return same_region(k, x->t, t);
    default:
      return uses_region(k, x->a, t) || uses_region(k, x->b, t);
  }
}

static void invalidate(KGen *k, int t) {
  int n = 0;
  for (int i = 0; i < k->n_memo; i++) {
    KgMemo *m = &k->memo[i];
    if (m->scope != 0 && uses_region(k, m->node, t)) continue;
    k->memo[n++] = *m;
  }
  k->n_memo = n;
}

// The register value of t's memory at this element, if the kernel set it.
static int value_index(const KGen *k, int t) {
  for (int i = 0; i < k->n_values; i++)
    if (same_region(k, k->value_tensor[i], t)) return i;
  return -1;
}

// ---------------------------------------------------------------- expressions

static void elem_index(KGen *k, FxCtx *x, int t, char *buf, size_t n) {
  const IrTensor *ti = &k->fp->tensors[t];
  long long ss = kg_ss(k, t);
  int hw = ti->h * ti->w;
  if (ss) snprintf(buf, n, "(long long)(%s) * %lld + (%s) * %d + (%s)", x->n, ss, x->c, hw, x->e);
  else snprintf(buf, n, "(%s) * %d + (%s)", x->c, hw, x->e);
}

static void check_shape(KGen *k, const FxCtx *x, int t, int nc) {
  const IrTensor *ti = &k->fp->tensors[t];
  int ok = nc ? ti->c == x->sc && ti->h == 1 && ti->w == 1
              : ti->c == x->sc && ti->h == x->sh && ti->w == x->sw;
  if (!ok && !k->err[0])
    snprintf(k->err, sizeof k->err, "internal: tensor %s (%d,%d,%d) read in a (%d,%d,%d) space",
             ti->name, ti->c, ti->h, ti->w, x->sc, x->sh, x->sw);
}

static const char *gen_load(KGen *k, FxCtx *x, int e, int t, int lane, int scope) {
  int vi = value_index(k, t);
  if (vi >= 0) return k->value_name[vi][lane];
  int slot = kg_slot(k, CUDA_ARG_TENSOR, t, 0);
  char idx[256], name[16];
  elem_index(k, x, t, idx, sizeof idx);
  snprintf(name, sizeof name, "v%d", k->next_var++);
  if (x->lanes == 4) {
    kg_line(k, "const float4 %s = *(const float4 *)(%s + %s);", name, kg_ptr(k, slot), idx);
    static const char comp[4] = {'x', 'y', 'z', 'w'};
    for (int l = 0; l < 4; l++) {
      char ln[KG_NAME];
      snprintf(ln, sizeof ln, "%s.%c", name, comp[l]);
      memo_put(k, e, l, scope, ln);
    }
  } else {
    kg_line(k, "const float %s = %s[%s];", name, kg_ptr(k, slot), idx);
    memo_put(k, e, lane, scope, name);
  }
  return memo_find(k, e, lane, scope)->name;
}

static int mask_table_of(KGen *k, int slot) {
  for (int i = 0; i < k->n_mask_tables; i++)
    if (k->mask_table[i] == slot) return i;
  if (k->n_mask_tables == 64) return -1;
  k->mask_table[k->n_mask_tables] = slot;
  return k->n_mask_tables++;
}

// The C text of a leaf or operation, before it is bound to a variable.
static void gen_text(KGen *k, FxCtx *x, int e, int lane, char *out, size_t n) {
  const FxNode *nd = &k->fp->fx.v[e];
  char a[KG_NAME + 8] = "", b[KG_NAME + 8] = "", f[48];
  if (nd->a >= 0) snprintf(a, sizeof a, "%s", kg_expr(k, x, nd->a, lane));
  if (nd->b >= 0) snprintf(b, sizeof b, "%s", kg_expr(k, x, nd->b, lane));
  int slot;
  switch (nd->kind) {
    case FX_LOAD_NC:
      check_shape(k, x, nd->t, 1);
      slot = kg_slot(k, CUDA_ARG_TENSOR, nd->t, 0);
      if (kg_ss(k, nd->t))
        snprintf(out, n, "%s[(long long)(%s) * %lld + (%s)]", kg_ptr(k, slot), x->n,
                 kg_ss(k, nd->t), x->c);
      else snprintf(out, n, "%s[%s]", kg_ptr(k, slot), x->c);
      break;
    case FX_CHAN_T:
      slot = kg_slot(k, CUDA_ARG_TENSOR, nd->t, 0);
      if (nd->f != 0.0f) snprintf(out, n, "%s[(%s) + %d]", kg_ptr(k, slot), x->c, (int)nd->f);
      else snprintf(out, n, "%s[%s]", kg_ptr(k, slot), x->c);
      break;
    case FX_CHAN_P:
    case FX_CHAN_B:
      slot = kg_slot(k, nd->kind == FX_CHAN_P ? CUDA_ARG_PARAM : CUDA_ARG_BUFFER, nd->t, 0);
      snprintf(out, n, "%s[%s]", kg_ptr(k, slot), x->c);
      break;
    case FX_MASK: {
      slot = kg_slot(k, CUDA_ARG_MASKS, nd->t, 0);
      if (nd->f != 0.0f) {
        int tab = x->nl ? mask_table_of(k, slot) : -1;
        if (tab >= 0) snprintf(out, n, "s_m%d[%s]", tab, x->nl);
        else snprintf(out, n, "nao_mask(%s, (nao_u64)(%s))", kg_ptr(k, slot), x->n);
      } else {
        long long chw = (long long)x->sc * x->sh * x->sw;
        snprintf(out, n, "nao_mask(%s, (nao_u64)(%s) * %lldull + (nao_u64)((%s) * %d + (%s) + %d))",
                 kg_ptr(k, slot), x->n, chw, x->c, x->sh * x->sw, x->e, lane);
      }
      break;
    }
    case FX_ONEHOT:
      slot = kg_slot(k, CUDA_ARG_TENSOR, nd->t, 0);
      snprintf(out, n, "((%s) == %s[(long long)(%s) * %lld] ? 1.0f : 0.0f)", x->c,
               kg_ptr(k, slot), x->n, kg_ss(k, nd->t));
      break;
    case FX_INV_N: snprintf(out, n, "(1.0f / (float)a.n)"); break;
    case FX_ADD: snprintf(out, n, "%s + %s", a, b); break;
    case FX_SUB: snprintf(out, n, "%s - %s", a, b); break;
    case FX_MUL: snprintf(out, n, "%s * %s", a, b); break;
    case FX_RELU: snprintf(out, n, "fmaxf(%s, 0.0f)", a); break;
    case FX_POS: snprintf(out, n, "(%s > 0.0f ? %s : 0.0f)", a, b); break;
    case FX_INVSTD:
      kg_float(f, sizeof f, nd->f);
      snprintf(out, n, "1.0f / sqrtf(%s + %s)", a, f);
      break;
    default: snprintf(out, n, "0.0f /* ? */"); break;
  }
}

const char *kg_expr(KGen *k, FxCtx *x, int e, int lane) {
  const FxNode *nd = &k->fp->fx.v[e];
  FxVariance var = fx_variance(&k->fp->fx, e);
  int head = var == FXV_CHAN && x->chan_uniform;
  int scope = head ? 0 : x->elem_scope;
  int l = var == FXV_ELEM ? lane : 0;
  KgMemo *m = memo_find(k, e, l, scope);
  if (m) return m->name;
  char name[KG_NAME];
  switch (nd->kind) {
    case FX_CONST:
      kg_float(name, sizeof name, nd->f);
      memo_put(k, e, l, scope, name);
      return memo_find(k, e, l, scope)->name;
    case FX_RESULT:
      memo_put(k, e, l, scope, x->result[lane]);
      return memo_find(k, e, l, scope)->name;
    case FX_LOAD:
      check_shape(k, x, nd->t, 0);
      return gen_load(k, x, e, nd->t, l, scope);
    default:
      break;
  }
  char text[512];
  gen_text(k, x, e, l, text, sizeof text);
  snprintf(name, sizeof name, "%s%d", head ? "h" : "v", k->next_var++);
  if (head) kg_head(k, "const float %s = %s;", name, text);
  else kg_line(k, "const float %s = %s;", name, text);
  memo_put(k, e, l, scope, name);
  return memo_find(k, e, l, scope)->name;
}

// ---------------------------------------------------------------- epilogue

static int is_anchor_kind(FuseOpKind k) {
  return k == FOP_CONV_DW || k == FOP_CONV_DW_DATA || k == FOP_CONV_DW_FILTER || k == FOP_POOL ||
         k == FOP_POOL_BWD || k == FOP_GAP || k == FOP_XENT;
}

static int red_count(FuseOpKind k) {
  switch (k) {
    case FOP_BN_STATS:
    case FOP_BNB_REDUCE: return 2;
    case FOP_BIAS_GRAD: return 1;
    default: return 0;
  }
}

int kg_add_reduction(KGen *k, int op, int count) {
  if (k->n_red == KG_MAX_RED) nao_internal("too many reductions in one kernel");
  k->red_op[k->n_red] = op;
  k->red_n[k->n_red] = count;
  k->red_values += count;
  return k->n_red++;
}

void kg_red_name(char *buf, size_t n, int red, int j) { snprintf(buf, n, "r%d_%d", red, j); }

void kg_epilogue_decls(KGen *k) {
  const FuseGroup *G = k->G;
  for (int i = 0; G && i < G->n_ops; i++) {
    const FuseOp *o = &k->fp->ops[G->ops[i]];
    int c = red_count(o->kind);
    if (c) kg_add_reduction(k, G->ops[i], c);
  }
  // BN statistics accumulate in double: the variance is E[x^2] - E[x]^2, and
  // float sums of squares would lose it when the mean is large against the
  // deviation (a cheap fix on memory-bound kernels: two double adds per value).
  for (int r = 0; r < k->n_red; r++) {
    int dbl = k->red_op[r] >= 0 && k->fp->ops[k->red_op[r]].kind == FOP_BN_STATS;
    for (int j = 0; j < k->red_n[r]; j++)
      kg_line(k, "%s r%d_%d = 0.0%s;", dbl ? "double" : "float", r, j, dbl ? "" : "f");
  }
}

int kg_has_epilogue_work(const KGen *k) {
  const FuseGroup *G = k->G;
  for (int i = 0; i < G->n_ops; i++)
    if (!is_anchor_kind(k->fp->ops[G->ops[i]].kind)) return 1;
  return 0;
}

static void set_names(KGen *k, int t, char names[4][KG_NAME], int lanes) {
  invalidate(k, t);
  int vi = value_index(k, t);
  if (vi < 0) {
    if (k->n_values == KG_MAX_STORES) nao_internal("too many values in one kernel");
    vi = k->n_values++;
    k->value_tensor[vi] = t;
  }
  for (int l = 0; l < lanes; l++) snprintf(k->value_name[vi][l], KG_NAME, "%s", names[l]);
  if (k->fp->stored[t]) {
    for (int i = 0; i < k->n_stores; i++)
      if (same_region(k, k->store_tensor[i], t)) return;
    if (k->n_stores == KG_MAX_STORES) nao_internal("too many stores in one kernel");
    k->store_tensor[k->n_stores++] = t;
  }
}

// The value of t before this op: in a register when the kernel set it, else memory.
static void old_values(KGen *k, FxCtx *x, int t, char olds[4][KG_NAME]) {
  int vi = value_index(k, t);
  if (vi >= 0) {
    for (int l = 0; l < x->lanes; l++) snprintf(olds[l], KG_NAME, "%s", k->value_name[vi][l]);
    return;
  }
  check_shape(k, x, t, 0);
  int slot = kg_slot(k, CUDA_ARG_TENSOR, t, 1);
  char idx[256], name[16];
  elem_index(k, x, t, idx, sizeof idx);
  snprintf(name, sizeof name, "v%d", k->next_var++);
  if (x->lanes == 4) {
    kg_line(k, "const float4 %s = *(const float4 *)(%s + %s);", name, kg_ptr(k, slot), idx);
    static const char comp[4] = {'x', 'y', 'z', 'w'};
    for (int l = 0; l < 4; l++) snprintf(olds[l], KG_NAME, "%s.%c", name, comp[l]);
  } else {
    kg_line(k, "const float %s = %s[%s];", name, kg_ptr(k, slot), idx);
    snprintf(olds[0], KG_NAME, "%s", name);
  }
}

// t = value (or old + value): value given per lane by `names`.
static void store_value(KGen *k, FxCtx *x, int t, int accumulate, char names[4][KG_NAME]) {
  if (accumulate) {
    char olds[4][KG_NAME];
    old_values(k, x, t, olds);
    for (int l = 0; l < x->lanes; l++) {
      const char *old = olds[l];
      char v[KG_NAME];
      snprintf(v, sizeof v, "v%d", k->next_var++);
      kg_line(k, "const float %s = %s + %s;", v, old, names[l]);
      snprintf(names[l], KG_NAME, "%s", v);
    }
  }
  set_names(k, t, names, x->lanes);
}

void kg_set_value(KGen *k, FxCtx *x, int t, int accumulate) {
  char names[4][KG_NAME];
  for (int l = 0; l < x->lanes; l++) snprintf(names[l], KG_NAME, "%s", x->result[l]);
  store_value(k, x, t, accumulate, names);
}

// The sum over lanes of e (square: of e*e), in double when dbl.
static void lane_sum(KGen *k, FxCtx *x, int e, int square, int dbl, char *out, size_t n) {
  char v[4][3 * KG_NAME];
  for (int l = 0; l < x->lanes; l++) {
    const char *s = kg_expr(k, x, e, l);
    if (dbl && square) snprintf(v[l], sizeof v[l], "(double)%s * (double)%s", s, s);
    else if (dbl) snprintf(v[l], sizeof v[l], "(double)%s", s);
    else if (square) snprintf(v[l], sizeof v[l], "%s * %s", s, s);
    else snprintf(v[l], sizeof v[l], "%s", s);
  }
  if (x->lanes == 4) snprintf(out, n, "(%s + %s) + (%s + %s)", v[0], v[1], v[2], v[3]);
  else snprintf(out, n, "%s", v[0]);
}

static int red_of_op(const KGen *k, int op) {
  for (int r = 0; r < k->n_red; r++)
    if (k->red_op[r] == op) return r;
  return -1;
}

void kg_epilogue(KGen *k, FxCtx *x) {
  const FuseGroup *G = k->G;
  char s[1024];
  for (int i = 0; i < G->n_ops; i++) {
    int opi = G->ops[i];
    const FuseOp *o = &k->fp->ops[opi];
    if (is_anchor_kind(o->kind)) continue;
    int r = red_of_op(k, opi);
    if (o->kind == FOP_DEF) {
      char names[4][KG_NAME];
      for (int l = 0; l < x->lanes; l++) snprintf(names[l], KG_NAME, "%s", kg_expr(k, x, o->expr, l));
      store_value(k, x, o->out, o->accumulate, names);
    } else if (o->kind == FOP_BN_STATS && r >= 0) {
      lane_sum(k, x, o->in_expr[0], 0, 1, s, sizeof s);
      kg_line(k, "r%d_0 += %s;", r, s);
      lane_sum(k, x, o->in_expr[0], 1, 1, s, sizeof s);
      kg_line(k, "r%d_1 += %s;", r, s);
    } else if ((o->kind == FOP_BNB_REDUCE || o->kind == FOP_BIAS_GRAD) && r >= 0) {
      for (int j = 0; j < red_count(o->kind); j++) {
        lane_sum(k, x, o->in_expr[j], 0, 0, s, sizeof s);
        kg_line(k, "r%d_%d += %s;", r, j, s);
      }
    }
  }
}

void kg_flush_stores(KGen *k, FxCtx *x) {
  for (int i = 0; i < k->n_stores; i++) {
    int t = k->store_tensor[i];
    int vi = value_index(k, t);
    int slot = kg_slot(k, CUDA_ARG_TENSOR, t, 1);
    char idx[256];
    elem_index(k, x, t, idx, sizeof idx);
    check_shape(k, x, t, 0);
    if (x->lanes == 4)
      kg_line(k, "*(float4 *)(%s + %s) = make_float4(%s, %s, %s, %s);", kg_ptr(k, slot), idx,
              k->value_name[vi][0], k->value_name[vi][1], k->value_name[vi][2],
              k->value_name[vi][3]);
    else kg_line(k, "%s[%s] = %s;", kg_ptr(k, slot), idx, k->value_name[vi][0]);
  }
}

void kg_fill_mask_tables(KGen *k, const char *n0, const char *nb) {
  for (int i = 0; i < k->n_mask_tables; i++) {
    kg_head(k, "__shared__ float s_m%d[%d];", i, k->table_nb);
    kg_head(k, "for (int i = threadIdx.x; i < %s; i += %d) s_m%d[i] = nao_mask(%s, (nao_u64)(%s + i));",
            nb, k->block, i, kg_ptr(k, k->mask_table[i]), n0);
  }
  if (k->n_mask_tables) kg_head(k, "__syncthreads();");
}

// ---------------------------------------------------------------- reductions

static void finalize_op(KGen *k, int r, const char *cc) {
  if (k->red_op[r] < 0) {
    k->custom_finalize(k, r, cc);
    return;
  }
  const FusePlan *fp = k->fp;
  const FuseOp *o = &fp->ops[k->red_op[r]];
  const IrNode *n = &fp->g->nodes[o->node];
  const FuseGroup *G = k->G;
  char f[48];
  switch (o->kind) {
    case FOP_BN_STATS: {
      const IrBnAttr *a = fuse_bn_attr(fp->g, n);
      int sm = kg_slot(k, CUDA_ARG_TENSOR, o->out, 1), si = kg_slot(k, CUDA_ARG_TENSOR, o->out2, 1);
      kg_line(k, "const double m_ = %s(double)%d;", G->batched ? "(double)a.n * " : "", G->h * G->w);
      kg_line(k, "const double mean = f%d_0 / m_;", r);
      kg_line(k, "const double var = fmax(f%d_1 / m_ - mean * mean, 0.0);", r);
      kg_float(f, sizeof f, a->eps);
      kg_line(k, "%s[%s] = (float)mean;", kg_ptr(k, sm), cc);
      kg_line(k, "%s[%s] = (float)(1.0 / sqrt(var + (double)%s));", kg_ptr(k, si), cc, f);
      if (a->update_running) {
        int rm = kg_slot(k, CUDA_ARG_BUFFER, n->param[2], 1);
        int rv = kg_slot(k, CUDA_ARG_BUFFER, n->param[3], 1);
        kg_float(f, sizeof f, a->momentum);
        kg_line(k, "%s[%s] = (1.0f - %s) * %s[%s] + %s * (float)mean;", kg_ptr(k, rm), cc, f,
                kg_ptr(k, rm), cc, f);
        kg_line(k, "%s[%s] = (1.0f - %s) * %s[%s] + %s * (float)(m_ > 1.0 ? var * m_ / (m_ - 1.0) : var);",
                kg_ptr(k, rv), cc, f, kg_ptr(k, rv), cc, f);
      }
      break;
    }
    case FOP_BNB_REDUCE: {
      int ss = kg_slot(k, CUDA_ARG_TENSOR, o->out, 1);
      kg_line(k, "%s[%s] = (float)f%d_0;", kg_ptr(k, ss), cc, r);
      kg_line(k, "%s[%s + %d] = (float)f%d_1;", kg_ptr(k, ss), cc, G->c, r);
      int gg = kg_slot(k, CUDA_ARG_GRAD, n->param[0], 1), gb = kg_slot(k, CUDA_ARG_GRAD, n->param[1], 1);
      kg_line(k, "%s[%s] %s (float)f%d_1;", kg_ptr(k, gg), cc, o->grad_acc[0] ? "+=" : "=", r);
      kg_line(k, "%s[%s] %s (float)f%d_0;", kg_ptr(k, gb), cc, o->grad_acc[1] ? "+=" : "=", r);
      break;
    }
    case FOP_BIAS_GRAD: {
      int gb = kg_slot(k, CUDA_ARG_GRAD, n->param[1], 1);
      kg_line(k, "%s[%s] %s (float)f%d_0;", kg_ptr(k, gb), cc, o->grad_acc[0] ? "+=" : "=", r);
      break;
    }
    case FOP_CONV_DW_FILTER: {
      int gw = kg_slot(k, CUDA_ARG_GRAD, n->param[0], 1);
      for (int j = 0; j < k->red_n[r]; j++)
        kg_line(k, "%s[%s * %d + %d] %s (float)f%d_%d;", kg_ptr(k, gw), cc, k->red_n[r], j,
                o->grad_acc[0] ? "+=" : "=", r, j);
      break;
    }
    case FOP_XENT: {
      const IrXentAttr *a = fuse_xent_attr(fp->g, n);
      int sl = kg_slot(k, CUDA_ARG_TENSOR, o->out2, 1);
      kg_float(f, sizeof f, a->weight);
      kg_line(k, "%s[0] %s (float)((double)%s * f%d_0 / (double)a.n);", kg_ptr(k, sl),
              o->accumulate ? "+=" : "=", f, r);
      break;
    }
    default:
      nao_internal("no finalize for op kind %d", (int)o->kind);
  }
}

void kg_reduce_tail(KGen *k, const char *chan_count) {
  // chan_count "1": one set of values for the whole grid (blocks in x and y)
  int whole = strcmp(chan_count, "1") == 0;
  if (!k->n_red) return;
  int R = k->red_values;
  int sc = kg_slot(k, CUDA_ARG_SCRATCH, 0, 1);
  kg_line(k, "__shared__ double s_red[32];");
  kg_line(k, "__shared__ unsigned int s_last;");
  for (int r = 0; r < k->n_red; r++)
    for (int j = 0; j < k->red_n[r]; j++)
      kg_line(k, "const double q%d_%d = nao_block_sum((double)r%d_%d, s_red);", r, j, r, j);
  kg_line(k, "double *part = (double *)(%s + 256);", kg_ptr(k, sc));
  kg_line(k, "if (threadIdx.x == 0) {");
  k->indent++;
  kg_line(k, "double *pp = part + ((long long)blockIdx.y * gridDim.x + blockIdx.x) * %d;", R);
  int v = 0;
  for (int r = 0; r < k->n_red; r++)
    for (int j = 0; j < k->red_n[r]; j++) kg_line(k, "pp[%d] = q%d_%d;", v++, r, j);
  kg_line(k, "__threadfence();");
  kg_line(k, "s_last = atomicAdd((unsigned int *)%s, 1u) == gridDim.x * gridDim.y - 1u;", kg_ptr(k, sc));
  k->indent--;
  kg_line(k, "}");
  kg_line(k, "__syncthreads();");
  kg_line(k, "if (!s_last) return;");
  kg_line(k, "__threadfence();");
  kg_line(k, "// The last block: sum the partials of every channel in block order.");
  kg_line(k, "for (int cc = threadIdx.x; cc < %s; cc += %d) {", chan_count, k->block);
  k->indent++;
  for (int r = 0; r < k->n_red; r++)
    for (int j = 0; j < k->red_n[r]; j++) kg_line(k, "double f%d_%d = 0.0;", r, j);
  if (whole) kg_line(k, "for (int b = 0; b < (int)(gridDim.x * gridDim.y); b++) {");
  else kg_line(k, "for (int b = 0; b < (int)gridDim.y; b++) {");
  k->indent++;
  if (whole) kg_line(k, "const volatile double *pp = part + (long long)b * %d;", R);
  else kg_line(k, "const volatile double *pp = part + ((long long)b * gridDim.x + cc) * %d;", R);
  v = 0;
  for (int r = 0; r < k->n_red; r++)
    for (int j = 0; j < k->red_n[r]; j++) kg_line(k, "f%d_%d += pp[%d];", r, j, v++);
  k->indent--;
  kg_line(k, "}");
  for (int r = 0; r < k->n_red; r++) {
    kg_line(k, "{");
    k->indent++;
    finalize_op(k, r, "cc");
    k->indent--;
    kg_line(k, "}");
  }
  k->indent--;
  kg_line(k, "}");
  kg_line(k, "if (threadIdx.x == 0) *(volatile unsigned int *)%s = 0u;", kg_ptr(k, sc));
}

