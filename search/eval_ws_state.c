// search/eval_ws_state.c — the `ws` evaluator's state as one safetensors file,
// DIR/supernet.safetensors, written atomically (runtime/safetensors.h).
//
// Tensors (F32, C order), as a checkpoint of runtime/checkpoint.h names them:
//   <name>                       every supernet parameter and BN buffer, under
//                                the reference's state_dict names
//   optimizer.momentum.<name>    SGD momentum of <name>, once it exists
// Metadata: format "naoc-supernet/1", step, epochs_done, rng (the sampling
// stream, four hex words), seed, network (the backbone's JSON), and the data
// settings that fix the step count (steps_per_epoch, train_per_epoch,
// total_epochs): a file written under other settings is refused, naming the
// setting. Loading checks everything before it copies anything, so a refused
// file changes nothing.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/checkpoint.h"
#include "runtime/safetensors.h"
#include "search/eval_ws.h"

#define MOM "optimizer.momentum."

static void ws_shape(const ParamInfo *p, int64_t *shape) {
  for (int d = 0; d < p->ndim; d++) shape[d] = p->dims[d];
}

typedef struct {
  char key[32];
  char value[96];
} WsMetaBuf;

static int ws_meta(const Ws *w, WsMetaBuf *mb, StMeta *meta, StrBuf *net) {
  int k = 0;
#define PUT(name, ...) (snprintf(mb[k].key, sizeof mb[k].key, "%s", name), \
                        snprintf(mb[k].value, sizeof mb[k].value, __VA_ARGS__), k++)
  PUT("format", "%s", WS_FORMAT);
  PUT("step", "%lld", w->step);
  PUT("epochs_done", "%d", w->epochs_done);
  PUT("rng", "%016" PRIx64 " %016" PRIx64 " %016" PRIx64 " %016" PRIx64, w->rng.s[0], w->rng.s[1], w->rng.s[2],
      w->rng.s[3]);
  PUT("seed", "%" PRIu64, w->o.seed);
  PUT("steps_per_epoch", "%d", w->steps_per_epoch);
  PUT("train_per_epoch", "%d", w->train_per_epoch);
  PUT("total_epochs", "%d", w->total_epochs);
#undef PUT
  for (int i = 0; i < k; i++) meta[i] = (StMeta){mb[i].key, mb[i].value};
  ckpt_network_json(&w->base, net);
  meta[k++] = (StMeta){"network", net->data};
  return k;
}

int ws_save(Evaluator *ev, const char *dir, char *err, size_t errlen) {
  Ws *w = ev->impl;
  const ParamTable *t = &w->table;
  StTensor *ts = xcalloc((size_t)2 * t->n + 1, sizeof *ts);
  char **names = xcalloc((size_t)t->n + 1, sizeof *names);
  int n = 0;
  for (int i = 0; i < t->n; i++) {
    const ParamInfo *p = &t->items[i];
    float *base = p->trainable ? w->state.params : w->state.buffers;
    StTensor *x = &ts[n++];
    *x = (StTensor){p->name, ST_F32, p->ndim, {0}, base + p->offset, p->numel * sizeof(float)};
    ws_shape(p, x->shape);
    if (!p->trainable || !w->state.sgd.has_buf[i]) continue;
    StrBuf nm = {0};
    sb_printf(&nm, MOM "%s", p->name);
    names[i] = sb_steal(&nm);
    x = &ts[n++];
    *x = (StTensor){names[i], ST_F32, p->ndim, {0}, w->state.sgd.momentum + p->offset, p->numel * sizeof(float)};
    ws_shape(p, x->shape);
  }
  WsMetaBuf mb[8];
  StMeta meta[9];
  StrBuf net = {0}, path = {0};
  int n_meta = ws_meta(w, mb, meta, &net);
  sb_printf(&path, "%s/%s", dir, WS_FILE);
  int rc = st_write(path.data, ts, n, meta, n_meta, err, errlen);
  for (int i = 0; i < t->n; i++) free(names[i]);
  free(names), free(ts);
  sb_free(&net), sb_free(&path);
  return rc;
}

// ---------------------------------------------------------------- loading

// Metadata KEY must equal what this run computes.
static int ws_same(const SafeTensors *st, const char *key, const char *want, char *err, size_t errlen) {
  const char *v = st_meta_get(st, key);
  if (v && !strcmp(v, want)) return 0;
  snprintf(err, errlen, "%s: %s is %s%s%s, this run's is %s (a supernet of other settings)", st_path(st), key,
           v ? "'" : "", v ? v : "missing", v ? "'" : "", want);
  return -1;
}

static int ws_check_meta(const Ws *w, const SafeTensors *st, char *err, size_t errlen) {
  WsMetaBuf mb[8];
  StMeta meta[9];
  StrBuf net = {0};
  int n = ws_meta(w, mb, meta, &net), rc = 0;
  for (int i = 0; rc == 0 && i < n; i++) {
    const char *k = meta[i].key;
    // The position; and the schedule's length, which --rounds may change on --resume.
    if (!strcmp(k, "step") || !strcmp(k, "epochs_done") || !strcmp(k, "rng") || !strcmp(k, "total_epochs")) continue;
    rc = ws_same(st, k, meta[i].value, err, errlen);
  }
  sb_free(&net);
  return rc;
}

static int ws_position(Ws *w, const SafeTensors *st, char *err, size_t errlen) {
  const char *s = st_meta_get(st, "step"), *e = st_meta_get(st, "epochs_done"), *r = st_meta_get(st, "rng");
  long long step;
  int epochs;
  Rng rng;
  if (!s || !e || !r || sscanf(s, "%lld", &step) != 1 || sscanf(e, "%d", &epochs) != 1 ||
      sscanf(r, "%" SCNx64 " %" SCNx64 " %" SCNx64 " %" SCNx64, &rng.s[0], &rng.s[1], &rng.s[2], &rng.s[3]) != 4 ||
      step < 0 || epochs < 0 || step != (long long)epochs * w->steps_per_epoch)
    return snprintf(err, errlen, "%s: bad or missing step / epochs_done / rng metadata", st_path(st)), -1;
  w->step = step, w->epochs_done = epochs, w->rng = rng;
  return 0;
}

// Every tensor checked (and counted) before anything is copied.
static int ws_check_tensors(const Ws *w, const SafeTensors *st, char *err, size_t errlen) {
  const ParamTable *t = &w->table;
  int found = 0;
  for (int i = 0; i < t->n; i++) {
    const ParamInfo *p = &t->items[i];
    int64_t shape[4];
    ws_shape(p, shape);
    if (!st_expect(st, p->name, ST_F32, p->ndim, shape, err, errlen)) return -1;
    found++;
    StrBuf nm = {0};
    sb_printf(&nm, MOM "%s", p->name);
    const StTensor *m = st_find(st, nm.data);
    int bad = m && (!p->trainable || !st_expect(st, nm.data, ST_F32, p->ndim, shape, err, errlen));
    if (m && !p->trainable) snprintf(err, errlen, "%s: momentum for buffer '%s'", st_path(st), p->name);
    sb_free(&nm);
    if (bad) return -1;
    found += m != NULL;
  }
  if (found != st_count(st))
    return snprintf(err, errlen, "%s: %d tensors that are not the supernet's", st_path(st), st_count(st) - found), -1;
  return 0;
}

int ws_load(Evaluator *ev, const char *dir, char *err, size_t errlen) {
  Ws *w = ev->impl;
  StrBuf path = {0};
  sb_printf(&path, "%s/%s", dir, WS_FILE);
  if (access(path.data, F_OK) != 0) return sb_free(&path), 1;
  SafeTensors *st;
  int rc = st_open(path.data, &st, err, errlen);
  sb_free(&path);
  if (rc) return -1;
  const char *fmt = st_meta_get(st, "format");
  if (!fmt || strcmp(fmt, WS_FORMAT))
    rc = -1, snprintf(err, errlen, "%s: not a supernet state (format %s, expected %s)", st_path(st), fmt ? fmt : "missing",
                      WS_FORMAT);
  Ws pos = *w;
  if (rc == 0) rc = ws_check_meta(w, st, err, errlen);
  if (rc == 0) rc = ws_position(&pos, st, err, errlen);
  if (rc == 0) rc = ws_check_tensors(w, st, err, errlen);
  for (int i = 0; rc == 0 && i < w->table.n; i++) {
    const ParamInfo *p = &w->table.items[i];
    float *base = p->trainable ? w->state.params : w->state.buffers;
    memcpy(base + p->offset, st_find(st, p->name)->data, p->numel * sizeof(float));
    if (!p->trainable) continue;
    StrBuf nm = {0};
    sb_printf(&nm, MOM "%s", p->name);
    const StTensor *m = st_find(st, nm.data);
    sb_free(&nm);
    w->state.sgd.has_buf[i] = m != NULL;
    if (m) memcpy(w->state.sgd.momentum + p->offset, m->data, p->numel * sizeof(float));
    else memset(w->state.sgd.momentum + p->offset, 0, p->numel * sizeof(float));
  }
  if (rc == 0) w->step = pos.step, w->epochs_done = pos.epochs_done, w->rng = pos.rng;
  st_close(st);
  return rc;
}
