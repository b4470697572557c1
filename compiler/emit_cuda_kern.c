// compiler/emit_cuda_kern.c — generating one kernel: slots, expressions, the
// epilogue and reductions, and registering the result (emit_cuda_int.h).
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

static void invalidate(KGen *k, int t) {
  int n = 0;
  for (int i = 0; i < k->n_memo; i++) {
    KgMemo *m = &k->memo[i];
    if (m->scope != 0 && fx_uses_tensor(&k->fp->fx, m->node, t)) continue;
    k->memo[n++] = *m;
  }
  k->n_memo = n;
}

static int value_index(const KGen *k, int t) {
  for (int i = 0; i < k->n_values; i++)
    if (k->value_tensor[i] == t) return i;
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
  for (int r = 0; r < k->n_red; r++)
    for (int j = 0; j < k->red_n[r]; j++) kg_line(k, "float r%d_%d = 0.0f;", r, j);
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
      if (k->store_tensor[i] == t) return;
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

static void lane_sum(KGen *k, FxCtx *x, int e, int square, char *out, size_t n) {
  char v[4][KG_NAME];
  for (int l = 0; l < x->lanes; l++) {
    const char *s = kg_expr(k, x, e, l);
    if (square) snprintf(v[l], KG_NAME, "%s * %s", s, s);
    else snprintf(v[l], KG_NAME, "%s", s);
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
  char s[512];
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
      lane_sum(k, x, o->in_expr[0], 0, s, sizeof s);
      kg_line(k, "r%d_0 += %s;", r, s);
      lane_sum(k, x, o->in_expr[0], 1, s, sizeof s);
      kg_line(k, "r%d_1 += %s;", r, s);
    } else if ((o->kind == FOP_BNB_REDUCE || o->kind == FOP_BIAS_GRAD) && r >= 0) {
      for (int j = 0; j < red_count(o->kind); j++) {
        lane_sum(k, x, o->in_expr[j], 0, s, sizeof s);
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

// ---------------------------------------------------------------- registration

static const char *op_word(const FusePlan *fp, const FuseOp *o, char *buf, size_t n) {
  const IrNode *nd = &fp->g->nodes[o->node];
  switch (o->kind) {
    case FOP_DEF:
      switch (nd->kind) {
        case IR_BN: return "bnapply";
        case IR_BN_BWD: return "bnbwd";
        case IR_DROPPATH: return "droppath";
        case IR_CONCAT: return "copy";
        case IR_LINEAR: return "bias";
        case IR_CONV_BWD_DATA: return "zero";
        default: return ir_kind_name(nd->kind);
      }
    case FOP_BN_STATS: return "bnstats";
    case FOP_BNB_REDUCE: return "bnbwdsum";
    case FOP_BIAS_GRAD: return "biasgrad";
    case FOP_CONV_DW:
    case FOP_CONV_DW_DATA:
    case FOP_CONV_DW_FILTER: {
      const IrConvAttr *a = fuse_conv_attr(fp->g, nd);
      snprintf(buf, n, "dw%dx%ds%d%s", a->kh, a->kw, a->sh,
               o->kind == FOP_CONV_DW ? "" : o->kind == FOP_CONV_DW_DATA ? "data" : "filter");
      return buf;
    }
    case FOP_POOL:
    case FOP_POOL_BWD: {
      const IrPoolAttr *a = fuse_pool_attr(fp->g, nd);
      snprintf(buf, n, "%s%dx%ds%d%s", a->is_max ? "max" : "avg", a->kh, a->kw, a->sh,
               o->kind == FOP_POOL ? "" : "bwd");
      return buf;
    }
    case FOP_GAP: return "gap";
    case FOP_XENT: return "xent";
    default: return fuse_op_kind_name(o->kind);
  }
}

static void make_tag(KGen *k) {
  if (k->tag[0] || !k->G) return;
  const FuseGroup *G = k->G;
  size_t len = 0;
  for (int i = 0; i < G->n_ops; i++) {
    char buf[48];
    const char *w = op_word(k->fp, &k->fp->ops[G->ops[i]], buf, sizeof buf);
    size_t wl = strlen(w);
    // skip repeated words
    char probe[100];
    snprintf(probe, sizeof probe, "_%s_", w);
    char cur[100];
    snprintf(cur, sizeof cur, "_%s_", k->tag);
    if (strstr(cur, probe)) continue;
    if (len + wl + 1 > 40) break;
    if (len) k->tag[len++] = '_';
    memcpy(k->tag + len, w, wl + 1);
    len += wl;
  }
}

static const char *slot_type(const KGen *k, int i, int *is_float) {
  const CudaArg *a = &k->args[i];
  int w = k->arg_write[i];
  *is_float = 0;
  switch (a->kind) {
    case CUDA_ARG_TENSOR:
      if (k->pr->tensors[a->id].kind == IR_T_LABELS) return "const int *";
      *is_float = 1;
      return w ? "float *" : "const float *";
    case CUDA_ARG_SCRATCH: return "unsigned char *";
    case CUDA_ARG_MASKS: return "const NaoMask *";
    case CUDA_ARG_HYPER: return "const NaoHyper *";
    default:
      *is_float = 1;
      return w ? "float *" : "const float *";
  }
}

static void slot_comment(const KGen *k, int i, char *buf, size_t n) {
  const CudaArg *a = &k->args[i];
  const ParamTable *pt = k->nb->params;
  switch (a->kind) {
    case CUDA_ARG_TENSOR: {
      const IrTensor *t = &k->pr->tensors[a->id];
      if (t->kind == IR_T_ACT || t->kind == IR_T_LABELS)
        snprintf(buf, n, "(N, %d, %d, %d)%s", t->c, t->h, t->w, t->kind == IR_T_LABELS ? " labels" : "");
      else snprintf(buf, n, "[%d] %s", t->c, t->kind == IR_T_STAT ? "per channel" : "scalar");
      break;
    }
    case CUDA_ARG_PARAM:
    case CUDA_ARG_GRAD:
    case CUDA_ARG_BUFFER:
      snprintf(buf, n, "%s [%zu]", a->kind == CUDA_ARG_PARAM ? "parameter" : a->kind == CUDA_ARG_GRAD ? "gradient" : "buffer",
               pt && a->id < pt->n ? pt->items[a->id].numel : (size_t)0);
      break;
    case CUDA_ARG_SCRATCH: snprintf(buf, n, "scratch: counter, partial sums"); break;
    case CUDA_ARG_MASKS: snprintf(buf, n, "mask of this node"); break;
    case CUDA_ARG_HYPER: snprintf(buf, n, "optimizer hyperparameters"); break;
    case CUDA_ARG_PARAMS_ALL: snprintf(buf, n, "all parameters"); break;
    case CUDA_ARG_GRADS_ALL: snprintf(buf, n, "all gradients"); break;
    case CUDA_ARG_MOMENTUM_ALL: snprintf(buf, n, "all momentum buffers"); break;
  }
}

// Two tensor slots of one kernel overlap (a slice and its concatenation):
// __restrict__ would be a lie for them.
static int slots_alias(const KGen *k) {
  if (!k->fp) return 0;
  for (int i = 0; i < k->n_args; i++)
    for (int j = i + 1; j < k->n_args; j++) {
      if (k->args[i].kind != CUDA_ARG_TENSOR || k->args[j].kind != CUDA_ARG_TENSOR) continue;
      int ci, cj;
      int ri = fuse_root(k->fp, k->args[i].id, &ci), rj = fuse_root(k->fp, k->args[j].id, &cj);
      if (ri == rj && ci < cj + k->fp->tensors[k->args[j].id].c &&
          cj < ci + k->fp->tensors[k->args[i].id].c)
        return 1;
    }
  return 0;
}

static void served_names(const KGen *k, StrBuf *out, int *count) {
  const FuseGroup *G = k->G;
  int shown = 0;
  const char *last = NULL;
  for (int i = 0; i < G->n_ops; i++) {
    const IrNode *n = &k->fp->g->nodes[k->fp->ops[G->ops[i]].node];
    if (last && strcmp(last, n->name) == 0) continue;
    last = n->name;
    (*count)++;
    if (shown < 4) sb_printf(out, "%s%s (%s)", shown ? ", " : "", n->name, ir_kind_name(n->kind));
    shown++;
  }
  if (shown > 4) sb_printf(out, ", +%d more", shown - 4);
}

static int find_kernel(const CudaNetBuild *nb, uint64_t h, const KernelRec *want) {
  for (int i = 0; i < nb->n_kernels; i++) {
    const KernelRec *r = &nb->kernels[i];
    if (r->hash == h && r->block == want->block && r->grid_x == want->grid_x &&
        r->grid_nb == want->grid_nb && strcmp(r->pattern, want->pattern) == 0 &&
        strcmp(r->body, want->body) == 0)
      return i;
  }
  return -1;
}

static void build_body(KGen *k, StrBuf *body) {
  int alias = slots_alias(k);
  // At least 2 blocks of 256 threads per multiprocessor: a cap of 128
  // registers. Without the second argument ptxas aims at full occupancy and
  // spills the unrolled 5x5 kernels at 40 registers.
  int min_blocks = 512 / k->block > 0 ? 512 / k->block : 1;
  sb_printf(body, "extern \"C\" __global__ void __launch_bounds__(%d, %d) @NAME@(const NaoArgs a) {\n",
            k->block, min_blocks);
  for (int i = 0; i < k->n_args; i++) {
    int is_float;
    const char *ty = slot_type(k, i, &is_float);
    char com[128];
    slot_comment(k, i, com, sizeof com);
    sb_printf(body, "  %s%sp%d = (%s)a.p[%d];  // %s\n", ty,
              (is_float || k->args[i].kind == CUDA_ARG_TENSOR) && !alias ? "__restrict__ " : "", i,
              ty, i, com);
  }
  sb_append(body, k->head.data ? k->head.data : "");
  sb_append(body, k->body.data ? k->body.data : "");
  sb_append(body, "}\n");
}

int kg_finish(KGen *k, int node) {
  if (k->overflow) {
    snprintf(k->err, sizeof k->err, "a kernel needs more than %d arguments", NAO_KARGS_MAX);
    return -1;
  }
  if (k->err[0]) return -1;
  CudaNetBuild *nb = k->nb;
  make_tag(k);
  StrBuf body = {0};
  build_body(k, &body);
  KernelRec want = {0};
  want.body = body.data;
  want.pattern = (char *)k->pattern;
  want.block = k->block;
  want.grid_x = k->grid_x;
  want.grid_nb = k->grid_nb;
  uint64_t h = nao_hash64(body.data, body.len, 0);
  int idx = find_kernel(nb, h, &want);
  StrBuf served = {0};
  int count = 0;
  if (k->G) served_names(k, &served, &count);
  if (idx < 0) {
    if (nb->n_kernels == nb->cap_kernels) {
      nb->cap_kernels = nb->cap_kernels ? 2 * nb->cap_kernels : 64;
      nb->kernels = xrealloc(nb->kernels, sizeof *nb->kernels * (size_t)nb->cap_kernels);
    }
    idx = nb->n_kernels++;
    KernelRec *r = &nb->kernels[idx];
    memset(r, 0, sizeof *r);
    char name[160];
    if (k->G) snprintf(name, sizeof name, "k%d_%s_c%d_%dx%d", idx, k->tag, k->G->c, k->G->h, k->G->w);
    else snprintf(name, sizeof name, "k%d_%s", idx, k->tag);
    r->name = xstrdup(name);
    r->pattern = xstrdup(k->pattern);
    r->body = sb_steal(&body);
    r->hash = h;
    r->block = k->block;
    r->grid_x = k->grid_x;
    r->grid_nb = k->grid_nb;
    r->smem = k->smem;
    r->n_args = k->n_args;
    r->reduces = k->n_red > 0;
    if (k->n_red) {
      size_t part = (size_t)8 * (size_t)k->red_values * (size_t)k->grid_x;
      r->scratch_fixed = 256 + part;
      r->scratch_per_image = k->grid_nb > 0 ? part : 0;
    }
    r->comment = sb_steal(&served);
    r->n_served = count;
  } else {
    KernelRec *r = &nb->kernels[idx];
    r->n_served += count;
    sb_free(&body);
    sb_free(&served);
  }
  KernelRec *r = &nb->kernels[idx];
  if (r->scratch_fixed > nb->scratch_fixed) nb->scratch_fixed = r->scratch_fixed;
  if (r->scratch_per_image > nb->scratch_per_image) nb->scratch_per_image = r->scratch_per_image;
  int arg0 = k->pr->n_args;
  for (int i = 0; i < k->n_args; i++) prog_add_arg(k->pr, k->args[i].kind, k->args[i].id);
  prog_add_step(k->pr, CUDA_STEP_KERNEL, idx, -1, arg0, k->n_args, node);
  return 0;
}
