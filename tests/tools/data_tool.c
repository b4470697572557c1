// tests/tools/data_tool.c — the data pipeline's pieces as a command, for the
// Python parity tests against PIL and torchvision (tests/py/test_data_*.py).
// Tensors go in and out as safetensors files.
//
//   data_tool decode IMAGE OUT.st [SCALE]    "rgb" U8 (h, w, 3): the whole image
//                                            at DCT scale SCALE/8 (JPEG; default 8)
//   data_tool resize IN.st OUT.st            "rgb" U8 (h, w, 3) and "geom" F64
//       [out_w, out_h, scale_x, off_x, lo_x, hi_x, scale_y, off_y, lo_y, hi_y,
//       mirror] -> "out" F32 (3, out_h, out_w) in [0, 1]
//   data_tool jitter IN.st OUT.st            "img" F32 (3, h, w), "order" I32 (4),
//       "factor" F64 (4), "on" I32 (4) -> "out" F32 (3, h, w)
//   data_tool rrc W H COUNT SEED OUT.st      "crops" I32 (COUNT, 4): x, y, w, h
//   data_tool eval-geom W H RESIZE CROP      prints scale_x off_x scale_y off_y
//   data_tool list DIR train|test            "LABEL PATH" per item, in order
//   data_tool sample DIR train|test ITEM OUT.st [--train] [--no-dct] [--seed S]
//       [--epoch E] -> "out" F32 (3, 224, 224), "label" I32 (1)
//   data_tool stcopy IN.st OUT.st            reads (validating) and rewrites
//
// Exit codes: 0, 1 bad input (message on stderr), 2 bad usage.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/util.h"
#include "runtime/augment.h"
#include "runtime/data.h"
#include "runtime/image.h"
#include "runtime/safetensors.h"

static int fail(const char *msg) {
  fprintf(stderr, "data_tool: %s\n", msg);
  return 1;
}

static int usage(void) {
  fprintf(stderr, "usage: data_tool decode|resize|jitter|rrc|eval-geom|list|sample|stcopy ... (see the source)\n");
  return 2;
}

static int write1(const char *path, const char *name, StDtype dt, int ndim, const int64_t *shape, const void *data) {
  StTensor t = {name, dt, ndim, {0}, data, 0};
  memcpy(t.shape, shape, sizeof(int64_t) * (size_t)ndim);
  t.nbytes = (size_t)st_numel(ndim, shape) * st_dtype_size(dt);
  char err[1024];
  if (st_write(path, &t, 1, NULL, 0, err, sizeof err) != 0) return fail(err);
  return 0;
}

// A plan that only sets the scale and asks for the whole image.
static int decode_plan(void *user, int w, int h, int can, ImgRequest *q) {
  const ImgRequest *want = user;
  q->scale_num = can ? want->scale_num : 8;
  q->x0 = 0, q->y0 = 0, q->w = img_scaled_size(w, q->scale_num), q->h = img_scaled_size(h, q->scale_num);
  return 0;
}

static int cmd_decode(int argc, char **argv) {
  if (argc < 4) return usage();
  size_t n;
  const char *ferr;
  char *data = nao_read_file(argv[2], &n, &ferr);
  if (!data) return fail(ferr);
  ImgBuf im = {0};
  char msg[512];
  int scale = argc > 4 ? atoi(argv[4]) : 8, rc;
  ImgRequest req = {scale, 0, 0, 1 << 20, 1 << 20};
  rc = img_decode((const uint8_t *)data, n, decode_plan, &req, &im, msg, sizeof msg);
  free(data);
  if (rc != 0) return fail(msg);
  uint8_t *packed = xmalloc((size_t)im.w * im.h * 3);
  for (int y = 0; y < im.h; y++) memcpy(packed + (size_t)y * im.w * 3, im.pix + (size_t)y * im.stride, (size_t)im.w * 3);
  int64_t shape[3] = {im.h, im.w, 3};
  rc = write1(argv[3], "rgb", ST_U8, 3, shape, packed);
  free(packed);
  img_buf_free(&im);
  return rc;
}

static const StTensor *need(const SafeTensors *st, const char *name, StDtype dt, char *err) {
  return st_expect(st, name, dt, -1, NULL, err, 1024);
}

static int cmd_resize(int argc, char **argv) {
  if (argc < 4) return usage();
  SafeTensors *st;
  char err[1024];
  if (st_open(argv[2], &st, err, sizeof err) != 0) return fail(err);
  const StTensor *rgb = need(st, "rgb", ST_U8, err), *geom = rgb ? need(st, "geom", ST_F64, err) : NULL;
  if (!rgb || !geom || rgb->ndim != 3 || geom->nbytes != 11 * sizeof(double)) {
    st_close(st);
    return fail(rgb && geom ? "bad shapes" : err);
  }
  const double *g = geom->data;
  int ow = (int)g[0], oh = (int)g[1];
  AugTaps tx, ty;
  aug_taps(&tx, ow, g[2], g[3], (int)g[4], (int)g[5], (int)g[10]);
  aug_taps(&ty, oh, g[6], g[7], (int)g[8], (int)g[9], 0);
  float *out = xmalloc(sizeof(float) * 3 * (size_t)ow * oh), *tmp = NULL;
  size_t cap = 0;
  aug_resample(rgb->data, (size_t)rgb->shape[1] * 3, 0, 0, &tx, &ty, &tmp, &cap, out);
  int64_t shape[3] = {3, oh, ow};
  int rc = write1(argv[3], "out", ST_F32, 3, shape, out);
  free(out), free(tmp);
  aug_taps_free(&tx), aug_taps_free(&ty);
  st_close(st);
  return rc;
}

static int cmd_jitter(int argc, char **argv) {
  if (argc < 4) return usage();
  SafeTensors *st;
  char err[1024];
  if (st_open(argv[2], &st, err, sizeof err) != 0) return fail(err);
  const StTensor *img = need(st, "img", ST_F32, err), *order = need(st, "order", ST_I32, err),
                 *factor = need(st, "factor", ST_F64, err), *on = need(st, "on", ST_I32, err);
  if (!img || !order || !factor || !on || img->ndim != 3 || img->shape[0] != 3) {
    st_close(st);
    return fail(err);
  }
  AugJitter j;
  for (int i = 0; i < 4; i++) {
    j.order[i] = ((const int32_t *)order->data)[i];
    j.factor[i] = ((const double *)factor->data)[i];
    j.on[i] = ((const int32_t *)on->data)[i];
  }
  size_t hw = (size_t)img->shape[1] * img->shape[2];
  float *out = xmalloc(img->nbytes);
  memcpy(out, img->data, img->nbytes);
  aug_jitter_apply(out, hw, &j);
  int rc = write1(argv[3], "out", ST_F32, 3, img->shape, out);
  free(out);
  st_close(st);
  return rc;
}

static int cmd_rrc(int argc, char **argv) {
  if (argc < 7) return usage();
  int w = atoi(argv[2]), h = atoi(argv[3]), n = atoi(argv[4]);
  if (w < 1 || h < 1 || n < 1) return usage();
  Rng r;
  rng_seed(&r, strtoull(argv[5], NULL, 10));
  double scale[2] = {0.08, 1.0}, ratio[2] = {3.0 / 4.0, 4.0 / 3.0};
  int32_t *c = xmalloc(sizeof(int32_t) * 4 * (size_t)n);
  for (int i = 0; i < n; i++) {
    AugCrop a;
    aug_rrc_params(w, h, scale, ratio, &r, &a);
    c[4 * i] = a.x, c[4 * i + 1] = a.y, c[4 * i + 2] = a.w, c[4 * i + 3] = a.h;
  }
  int64_t shape[2] = {n, 4};
  int rc = write1(argv[6], "crops", ST_I32, 2, shape, c);
  free(c);
  return rc;
}

static int cmd_eval_geom(int argc, char **argv) {
  if (argc < 6) return usage();
  double sx, ox, sy, oy;
  aug_eval_geometry(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), &sx, &ox, &sy, &oy);
  printf("%.17g %.17g %.17g %.17g\n", sx, ox, sy, oy);
  return 0;
}

static int open_split(const char *dir, const char *split, DataSource **src, DataSet *ds) {
  DataSourceOptions o = {.kind = DATA_IMAGENET, .dir = dir};
  char err[1024];
  if (data_source_open(&o, src, err, sizeof err) != 0) return fail(err);
  if (data_set_open(*src, strcmp(split, "test") ? DATA_TRAIN : DATA_TEST, 0, 0, ds, err, sizeof err) != 0) {
    data_source_close(*src);
    return fail(err);
  }
  return 0;
}

static int cmd_list(int argc, char **argv) {
  if (argc < 4) return usage();
  DataSource *src;
  DataSet ds;
  if (open_split(argv[2], argv[3], &src, &ds) != 0) return 1;
  for (int i = 0; i < ds.n; i++) printf("%d %s\n", data_set_label(&ds, ds.items[i]), data_set_item_path(&ds, ds.items[i]));
  data_set_close(&ds);
  data_source_close(src);
  return 0;
}

static int cmd_sample(int argc, char **argv) {
  if (argc < 6) return usage();
  int train = 0, dct = 1;
  uint64_t seed = 0, epoch = 0;
  for (int i = 6; i < argc; i++) {
    if (!strcmp(argv[i], "--train")) train = 1;
    else if (!strcmp(argv[i], "--no-dct")) dct = 0;
    else if (!strcmp(argv[i], "--seed") && i + 1 < argc) seed = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--epoch") && i + 1 < argc) epoch = strtoull(argv[++i], NULL, 10);
    else return usage();
  }
  DataSource *src;
  DataSet ds;
  if (open_split(argv[2], argv[3], &src, &ds) != 0) return 1;
  AugmentSpec a;
  augment_preset(&a, DATA_IMAGENET, train);
  a.dct_scale = dct;
  int item = atoi(argv[4]), rc = 1;
  float *out = xmalloc(sizeof(float) * 3 * 224 * 224);
  int32_t label;
  char msg[1024];
  DataScratch *s = data_scratch_new();
  if (item < 0 || item >= ds.n) fail("item out of range");
  else if (data_sample(&ds, ds.items[item], &a, seed, epoch << 32 | (uint32_t)ds.items[item], out, &label, s, msg,
                       sizeof msg) != DATA_SAMPLE_OK)
    fail(msg);
  else {
    StTensor t[2] = {{"out", ST_F32, 3, {3, 224, 224}, out, sizeof(float) * 3 * 224 * 224},
                     {"label", ST_I32, 1, {1}, &label, 4}};
    rc = st_write(argv[5], t, 2, NULL, 0, msg, sizeof msg) ? fail(msg) : 0;
  }
  data_scratch_free(s);
  free(out);
  data_set_close(&ds);
  data_source_close(src);
  return rc;
}

static int cmd_stcopy(int argc, char **argv) {
  if (argc < 4) return usage();
  SafeTensors *st;
  char err[1024];
  if (st_open(argv[2], &st, err, sizeof err) != 0) return fail(err);
  int n = st_count(st), m = st_meta_count(st);
  StTensor *t = xcalloc((size_t)n + 1, sizeof *t);
  StMeta *meta = xcalloc((size_t)m + 1, sizeof *meta);
  for (int i = 0; i < n; i++) t[i] = *st_at(st, i);
  for (int i = 0; i < m; i++) meta[i] = *st_meta_at(st, i);
  int rc = st_write(argv[3], t, n, meta, m, err, sizeof err) ? fail(err) : 0;
  free(t), free(meta);
  st_close(st);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *c = argv[1];
  if (!strcmp(c, "decode")) return cmd_decode(argc, argv);
  if (!strcmp(c, "resize")) return cmd_resize(argc, argv);
  if (!strcmp(c, "jitter")) return cmd_jitter(argc, argv);
  if (!strcmp(c, "rrc")) return cmd_rrc(argc, argv);
  if (!strcmp(c, "eval-geom")) return cmd_eval_geom(argc, argv);
  if (!strcmp(c, "list")) return cmd_list(argc, argv);
  if (!strcmp(c, "sample")) return cmd_sample(argc, argv);
  if (!strcmp(c, "stcopy")) return cmd_stcopy(argc, argv);
  return usage();
}
