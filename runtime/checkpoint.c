// runtime/checkpoint.c — saving and loading checkpoints (checkpoint.h).
//
// Saving points the safetensors records straight at the ModelState's flat
// arrays (no copy). Loading validates the whole file against the ParamTable
// first, then copies; the ModelState is only written once nothing can fail.
#include "runtime/checkpoint.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/json.h"
#include "runtime/safetensors.h"

#define MOM_PREFIX "optimizer.momentum."

// ---------------------------------------------------------------- metadata

void ckpt_network_json(const NetSpec *ns, StrBuf *out) {
  JsonWriter w;
  jw_init(&w, out);
  jw_object_begin(&w);
  jw_key(&w, "name"), jw_string(&w, ns->name);
  const DatasetInfo *d = dataset_info(ns->dataset);
  jw_key(&w, "dataset"), jw_string(&w, d ? d->name : "none");
  jw_key(&w, "input");
  jw_array_begin(&w);
  jw_int(&w, ns->in_channels), jw_int(&w, ns->in_height), jw_int(&w, ns->in_width);
  jw_array_end(&w);
  jw_key(&w, "classes"), jw_int(&w, ns->classes);
  jw_key(&w, "stem"), jw_string(&w, stem_name(ns->stem));
  jw_key(&w, "channels"), jw_int(&w, ns->channels);
  jw_key(&w, "layers"), jw_int(&w, ns->layers);
  jw_key(&w, "nodes"), jw_int(&w, ns->nodes);
  jw_key(&w, "aux_weight"), jw_double(&w, ns->aux_weight);
  jw_key(&w, "drop_path_keep"), jw_double(&w, ns->drop_path_keep);
  jw_key(&w, "dropout_keep"), jw_double(&w, ns->dropout_keep);
  jw_object_end(&w);
}

static void put_meta(StMeta *m, int *n, Arena *a, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void put_meta(StMeta *m, int *n, Arena *a, const char *key, const char *fmt, ...) {
  StrBuf sb = {0};
  va_list ap;
  va_start(ap, fmt);
  sb_vprintf(&sb, fmt, ap);
  va_end(ap);
  m[*n].key = key;
  m[*n].value = arena_strdup(a, sb.data ? sb.data : "");
  (*n)++;
  sb_free(&sb);
}

enum { CKPT_MAX_META = 20 };

static int make_meta(StMeta *m, Arena *a, const NetSpec *ns, const Recipe *r,
                     const CkptInfo *in) {
  int n = 0;
  char arch[NAO_MAX_NODES * 2 * 4 * 4 + 8], recipe[2048];
  netspec_format_arch(ns, arch, sizeof arch);
  recipe_to_json(r, recipe, sizeof recipe);
  StrBuf net = {0};
  ckpt_network_json(ns, &net);
  put_meta(m, &n, a, "format", "%s", CKPT_FORMAT);
  put_meta(m, &n, a, "arch", "%s", arch);
  put_meta(m, &n, a, "network", "%s", net.data);
  put_meta(m, &n, a, "recipe", "%s", recipe);
  put_meta(m, &n, a, "step", "%lld", in->step);
  put_meta(m, &n, a, "epoch", "%d", in->epoch);
  put_meta(m, &n, a, "batch", "%d", in->batch);
  put_meta(m, &n, a, "total_steps", "%lld", in->total_steps);
  put_meta(m, &n, a, "best_valid_top1", "%.17g", in->best_valid_top1);
  put_meta(m, &n, a, "best_epoch", "%d", in->best_epoch);
  put_meta(m, &n, a, "seed", "%" PRIu64, in->seed);
  put_meta(m, &n, a, "rng", "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64,
           in->rng.s[0], in->rng.s[1], in->rng.s[2], in->rng.s[3]);
  put_meta(m, &n, a, "threads", "%d", in->threads);
  put_meta(m, &n, a, "data", "%s", in->data);
  put_meta(m, &n, a, "dataset", "%s", in->dataset);
  put_meta(m, &n, a, "synthetic_size", "%d,%d", in->synthetic_train, in->synthetic_test);
  put_meta(m, &n, a, "checkpoint_steps", "%lld", in->checkpoint_steps);
  put_meta(m, &n, a, "world", "%d", in->world > 0 ? in->world : 1);
  sb_free(&net);
  return n;
}

// ---------------------------------------------------------------- saving

static void tensor_of(StTensor *t, const char *name, const ParamInfo *p, const float *data) {
  memset(t, 0, sizeof *t);
  t->name = name;
  t->dtype = ST_F32;
  t->ndim = p->ndim;
  for (int d = 0; d < p->ndim; d++) t->shape[d] = p->dims[d];
  t->data = data;
  t->nbytes = p->numel * sizeof(float);
}

int ckpt_save(const char *path, const ModelState *m, const NetSpec *ns, const Recipe *r,
              const CkptInfo *info, char *err, size_t errlen) {
  const ParamTable *pt = m->table;
  StTensor *ts = xcalloc((size_t)pt->n * 2 + 1, sizeof *ts);
  Arena names = {0};
  int n = 0;
  for (int i = 0; i < pt->n; i++) {
    const ParamInfo *p = &pt->items[i];
    tensor_of(&ts[n++], p->name, p, (p->trainable ? m->params : m->buffers) + p->offset);
  }
  for (int i = 0; i < pt->n; i++) {
    const ParamInfo *p = &pt->items[i];
    if (!p->trainable || !m->sgd.has_buf[i]) continue;
    StrBuf sb = {0};
    sb_printf(&sb, MOM_PREFIX "%s", p->name);
    tensor_of(&ts[n++], arena_strdup(&names, sb.data), p, m->sgd.momentum + p->offset);
    sb_free(&sb);
  }
  StMeta meta[CKPT_MAX_META];
  int n_meta = make_meta(meta, &names, ns, r, info);
  char why[512];
  int rc = st_write(path, ts, n, meta, n_meta, why, sizeof why);
  if (rc != 0) snprintf(err, errlen, "writing checkpoint %s: %s", path, why);
  arena_free(&names);
  free(ts);
  return rc;
}

// ---------------------------------------------------------------- loading

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

// Every tensor of the file is a parameter, a buffer, a counter to ignore or
// (FULL) the momentum of a trainable parameter.
static int check_extra(const SafeTensors *st, const ParamTable *pt, CkptMode mode, char *err,
                       size_t errlen) {
  for (int i = 0; i < st_count(st); i++) {
    const char *name = st_at(st, i)->name;
    if (params_find(pt, name) >= 0 || ends_with(name, ".num_batches_tracked")) continue;
    if (strncmp(name, MOM_PREFIX, strlen(MOM_PREFIX)) == 0) {
      if (mode == CKPT_WEIGHTS) continue;
      int p = params_find(pt, name + strlen(MOM_PREFIX));
      if (p >= 0 && pt->items[p].trainable) continue;
    }
    snprintf(err, errlen, "%s: tensor '%s' is not part of this network (is it a checkpoint of another one?)",
             st_path(st), name);
    return -1;
  }
  return 0;
}

static const StTensor *expect_entry(const SafeTensors *st, const char *name, const ParamInfo *p,
                                    char *err, size_t errlen) {
  int64_t shape[4];
  for (int d = 0; d < p->ndim; d++) shape[d] = p->dims[d];
  return st_expect(st, name, ST_F32, p->ndim, shape, err, errlen);
}

static int meta_ll(const SafeTensors *st, const char *key, long long *out, char *err,
                   size_t errlen) {
  const char *v = st_meta_get(st, key);
  char *end;
  if (v) *out = strtoll(v, &end, 10);
  if (!v || end == v || *end) {
    snprintf(err, errlen, "%s: metadata '%s' is %s", st_path(st), key,
             v ? "not an integer" : "missing");
    return -1;
  }
  return 0;
}

static int meta_identity(const SafeTensors *st, const NetSpec *ns, char *err, size_t errlen) {
  const char *fmt = st_meta_get(st, "format");
  if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0) {
    snprintf(err, errlen, "%s: not a naoc checkpoint (metadata 'format' is %s%s%s, expected '%s')",
             st_path(st), fmt ? "'" : "", fmt ? fmt : "missing", fmt ? "'" : "", CKPT_FORMAT);
    return -1;
  }
  char arch[NAO_MAX_NODES * 2 * 4 * 4 + 8];
  netspec_format_arch(ns, arch, sizeof arch);
  const char *a = st_meta_get(st, "arch");
  if (!a || strcmp(a, arch) != 0) {
    snprintf(err, errlen, "%s: checkpoint of another network: arch '%s', this network's is '%s'",
             st_path(st), a ? a : "(missing)", arch);
    return -1;
  }
  StrBuf net = {0};
  ckpt_network_json(ns, &net);
  const char *n = st_meta_get(st, "network");
  int same = n && strcmp(n, net.data) == 0;
  if (!same)
    snprintf(err, errlen, "%s: checkpoint of another network: settings %s, this network's are %s",
             st_path(st), n ? n : "(missing)", net.data);
  sb_free(&net);
  return same ? 0 : -1;
}

static int meta_info(const SafeTensors *st, CkptInfo *info, char *err, size_t errlen) {
  long long v[6];
  static const char *const keys[6] = {"step", "epoch", "batch", "total_steps", "best_epoch",
                                      "threads"};
  for (int k = 0; k < 6; k++)
    if (meta_ll(st, keys[k], &v[k], err, errlen) != 0) return -1;
  const char *best = st_meta_get(st, "best_valid_top1"), *rng = st_meta_get(st, "rng");
  const char *seed = st_meta_get(st, "seed");
  memset(info, 0, sizeof *info);
  int ok = best && rng && seed && v[0] >= 0 && v[1] >= 0 && v[1] < (1 << 30) && v[2] >= 0 &&
           v[2] < (1 << 30);
  char *end = NULL;
  if (ok) info->best_valid_top1 = strtod(best, &end), ok = end != best && !*end;
  if (ok) info->seed = strtoull(seed, &end, 10), ok = end != seed && !*end;
  if (ok)
    ok = sscanf(rng, "%16" SCNx64 " %16" SCNx64 " %16" SCNx64 " %16" SCNx64, &info->rng.s[0],
                &info->rng.s[1], &info->rng.s[2], &info->rng.s[3]) == 4;
  if (!ok) {
    snprintf(err, errlen, "%s: metadata (step, epoch, batch, best_valid_top1, seed or rng) is malformed",
             st_path(st));
    return -1;
  }
  info->step = v[0], info->epoch = (int)v[1], info->batch = (int)v[2];
  info->total_steps = v[3], info->best_epoch = (int)v[4], info->threads = (int)v[5];
  const char *recipe = st_meta_get(st, "recipe"), *data = st_meta_get(st, "data");
  const char *kind = st_meta_get(st, "dataset"), *synth = st_meta_get(st, "synthetic_size");
  snprintf(info->recipe, sizeof info->recipe, "%s", recipe ? recipe : "");
  snprintf(info->data, sizeof info->data, "%s", data ? data : "");
  snprintf(info->dataset, sizeof info->dataset, "%s", kind ? kind : "");
  if (!synth || sscanf(synth, "%d,%d", &info->synthetic_train, &info->synthetic_test) != 2)
    info->synthetic_train = info->synthetic_test = 0;
  const char *cs = st_meta_get(st, "checkpoint_steps");
  info->checkpoint_steps = cs ? strtoll(cs, NULL, 10) : 0;
  const char *world = st_meta_get(st, "world");
  info->world = world ? atoi(world) : 0;
  return 0;
}

// Checks every entry (and its momentum in FULL mode); copies when `copy`.
static int entries(const SafeTensors *st, CkptMode mode, ModelState *m, int copy, char *err,
                   size_t errlen) {
  const ParamTable *pt = m->table;
  for (int i = 0; i < pt->n; i++) {
    const ParamInfo *p = &pt->items[i];
    const StTensor *t = expect_entry(st, p->name, p, err, errlen);
    if (!t) return -1;
    if (copy) memcpy((p->trainable ? m->params : m->buffers) + p->offset, t->data, t->nbytes);
    if (mode == CKPT_WEIGHTS || !p->trainable) continue;
    char name[PARAM_NAME_MAX + sizeof MOM_PREFIX];
    snprintf(name, sizeof name, MOM_PREFIX "%s", p->name);
    if (!st_find(st, name)) {
      if (copy) m->sgd.has_buf[i] = 0, memset(m->sgd.momentum + p->offset, 0, t->nbytes);
      continue;
    }
    const StTensor *mt = expect_entry(st, name, p, err, errlen);
    if (!mt) return -1;
    if (copy) m->sgd.has_buf[i] = 1, memcpy(m->sgd.momentum + p->offset, mt->data, mt->nbytes);
  }
  return 0;
}

int ckpt_load(const char *path, CkptMode mode, const NetSpec *ns, ModelState *m, CkptInfo *info,
              char *err, size_t errlen) {
  SafeTensors *st;
  if (st_open(path, &st, err, errlen) != 0) return -1;
  CkptInfo got;
  int rc = check_extra(st, m->table, mode, err, errlen);
  if (rc == 0 && mode == CKPT_FULL) rc = meta_identity(st, ns, err, errlen);
  if (rc == 0 && mode == CKPT_FULL) rc = meta_info(st, &got, err, errlen);
  if (rc == 0) rc = entries(st, mode, m, 0, err, errlen);
  if (rc == 0) {
    entries(st, mode, m, 1, err, errlen);
    if (mode == CKPT_FULL && info) *info = got;
  }
  st_close(st);
  return rc;
}
