// search/ctl_io.c — the controller's weights as safetensors under the
// reference's state_dict names (encoder.embedding.weight, encoder.rnn.*, ...),
// float32, so a reference checkpoint converted with a few lines of Python
// loads as it is, and ours load into the reference.
//
// Uses the stopgap st_lite.{h,c}; switch to runtime/safetensors once merged.
#include <stdio.h>
#include <string.h>

#include "search/ctl.h"
#include "search/st_lite.h"

int ctl_save(const Ctl *ctl, const char *path, char *err, size_t errlen) {
  StlFile f = {0};
  const CtlConfig *c = &ctl->cfg;
  char v[64];
  stl_add_meta(&f, "format", "nao-controller");
#define META(key, fmt, val) (snprintf(v, sizeof v, fmt, val), stl_add_meta(&f, key, v))
  META("vocab", "%d", c->vocab);
  META("length", "%d", c->length);
  META("encoder_length", "%d", c->enc_len);
  META("embedding", "%d", c->emb);
  META("hidden", "%d", c->hidden);
  META("mlp_layers", "%d", c->mlp_layers);
  META("mlp_hidden", "%d", c->mlp_hidden);
#undef META
  for (int i = 0; i < ctl->lay.n; i++) {
    const CtlParam *p = &ctl->lay.p[i];
    int64_t shape[2] = {p->rows, p->cols};
    stl_add(&f, p->name, STL_F32, p->cols ? 2 : 1, shape, ctl->p + p->off);
  }
  int rc = stl_save(&f, path, err, errlen);
  stl_free(&f);
  return rc;
}

int ctl_load(Ctl *ctl, const char *path, char *err, size_t errlen) {
  StlFile f;
  if (stl_load(&f, path, err, errlen) != 0) return -1;
  int rc = 0;
  for (int i = 0; i < ctl->lay.n && rc == 0; i++) {
    const CtlParam *p = &ctl->lay.p[i];
    const StlTensor *t = stl_find(&f, p->name);
    int ndim = p->cols ? 2 : 1;
    if (!t) {
      rc = -1, snprintf(err, errlen, "%s: no tensor '%s'", path, p->name);
    } else if (t->dtype != STL_F32 || t->ndim != ndim || t->shape[0] != p->rows || (ndim == 2 && t->shape[1] != p->cols)) {
      rc = -1;
      snprintf(err, errlen, "%s: tensor '%s' is %s with %d dims [%lld, %lld]; expected F32 [%d%s%.0d]", path,
               p->name, stl_dtype_name(t->dtype), t->ndim, (long long)t->shape[0],
               (long long)(t->ndim > 1 ? t->shape[1] : 0), p->rows, ndim == 2 ? ", " : "", p->cols);
    } else {
      memcpy(ctl->p + p->off, t->data, t->nbytes);
    }
  }
  stl_free(&f);
  return rc;
}
