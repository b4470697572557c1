// search/ctl_io.c — the controller's weights as safetensors (runtime/
// safetensors.h) under the reference's state_dict names
// (encoder.embedding.weight, encoder.rnn.*, ...), float32, so a reference
// checkpoint converted with a few lines of Python loads as it is, and ours
// load into the reference. Metadata: format "nao-controller" and the sizes.
// Loading checks every tensor before it copies any: a refused file changes
// nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/safetensors.h"
#include "search/ctl.h"

enum { CTL_META = 8 };

int ctl_save(const Ctl *ctl, const char *path, char *err, size_t errlen) {
  const CtlConfig *c = &ctl->cfg;
  const char *keys[CTL_META - 1] = {"vocab", "length", "encoder_length", "embedding", "hidden", "mlp_layers",
                                    "mlp_hidden"};
  const int vals[CTL_META - 1] = {c->vocab, c->length, c->enc_len, c->emb, c->hidden, c->mlp_layers, c->mlp_hidden};
  char v[CTL_META - 1][24];
  StMeta meta[CTL_META] = {{"format", "nao-controller"}};
  for (int i = 0; i < CTL_META - 1; i++) {
    snprintf(v[i], sizeof v[i], "%d", vals[i]);
    meta[i + 1] = (StMeta){keys[i], v[i]};
  }
  StTensor *t = xcalloc((size_t)ctl->lay.n + 1, sizeof *t);
  for (int i = 0; i < ctl->lay.n; i++) {
    const CtlParam *p = &ctl->lay.p[i];
    t[i] = (StTensor){p->name, ST_F32, p->cols ? 2 : 1, {p->rows, p->cols}, ctl->p + p->off,
                      (size_t)p->rows * (size_t)(p->cols ? p->cols : 1) * sizeof(float)};
  }
  int rc = st_write(path, t, ctl->lay.n, meta, CTL_META, err, errlen);
  free(t);
  return rc;
}

int ctl_load(Ctl *ctl, const char *path, char *err, size_t errlen) {
  SafeTensors *st;
  if (st_open(path, &st, err, errlen) != 0) return -1;
  int rc = 0;
  for (int i = 0; i < ctl->lay.n && rc == 0; i++) {
    const CtlParam *p = &ctl->lay.p[i];
    int64_t shape[2] = {p->rows, p->cols};
    if (!st_find(st, p->name)) rc = -1, snprintf(err, errlen, "%s: no tensor '%s'", path, p->name);
    else if (!st_expect(st, p->name, ST_F32, p->cols ? 2 : 1, shape, err, errlen)) rc = -1;
  }
  for (int i = 0; i < ctl->lay.n && rc == 0; i++) {
    const StTensor *t = st_find(st, ctl->lay.p[i].name);
    memcpy(ctl->p + ctl->lay.p[i].off, t->data, t->nbytes);
  }
  st_close(st);
  return rc;
}
