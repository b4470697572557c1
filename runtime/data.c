// runtime/data.c — dataset sources, splits and the per-sample dispatch
// (data.h). Formats live in data_idx.c, data_cifar.c, data_folder.c and
// data_synthetic.c; transforms in augment.c.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compiler/util.h"
#include "runtime/data_impl.h"

enum { SPLIT_PURPOSE = 0x5b1d };

static const char *const kind_names[DATA_KIND_COUNT] = {"fashion-mnist", "cifar10", "imagenet", "synthetic"};

int data_kind_parse(const char *name) {
  for (int k = 0; k < DATA_KIND_COUNT; k++)
    if (strcmp(name, kind_names[k]) == 0) return k;
  return -1;
}

const char *data_kind_name(DataKind k) { return (unsigned)k < DATA_KIND_COUNT ? kind_names[k] : "?"; }

const char *data_split_name(DataSplit s) {
  return s == DATA_TRAIN ? "train" : s == DATA_VALID ? "valid" : s == DATA_TEST ? "test" : "?";
}

int data_fail(char *err, size_t errlen, const char *path, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  snprintf(err, errlen, "%s: %s", path, what);
  return -1;
}

// ---------------------------------------------------------------- sources

static int check_synthetic(const DataSourceOptions *o, char *err, size_t errlen) {
  if (o->channels < 1 || o->channels > 64 || o->height < 1 || o->height > 8192 || o->width < 1 ||
      o->width > 8192)
    return data_fail(err, errlen, "synthetic", "shape %dx%dx%d out of range", o->channels, o->height, o->width);
  if (o->classes < 1 || o->classes > 1000000)
    return data_fail(err, errlen, "synthetic", "%d classes out of range (1..1000000)", o->classes);
  if (o->train_count < 1 || o->test_count < 0)
    return data_fail(err, errlen, "synthetic", "train count %d / test count %d out of range", o->train_count,
                     o->test_count);
  return 0;
}

const char *data_default_dir(DataKind kind) { return kind == DATA_FASHION_MNIST ? DATA_FASHION_MNIST_DIR : NULL; }

int data_source_open(const DataSourceOptions *opt, DataSource **out, char *err, size_t errlen) {
  *out = NULL;
  if ((unsigned)opt->kind >= DATA_KIND_COUNT) return data_fail(err, errlen, "data", "unknown dataset kind %d", opt->kind);
  const char *dir = opt->dir;
  if (!dir) dir = data_default_dir(opt->kind);
  if (opt->kind == DATA_SYNTHETIC) {
    if (check_synthetic(opt, err, errlen) != 0) return -1;
    dir = "synthetic";
  } else {
    struct stat sb;
    if (!dir) return data_fail(err, errlen, data_kind_name(opt->kind), "no data directory given");
    if (stat(dir, &sb) != 0) return data_fail(err, errlen, dir, "cannot open: %s", strerror(errno));
    if (!S_ISDIR(sb.st_mode)) return data_fail(err, errlen, dir, "not a directory");
  }
  DataSource *src = xcalloc(1, sizeof *src);
  src->opt = *opt;
  src->dir = xstrdup(dir);
  src->opt.dir = src->dir;
  switch (opt->kind) {
    case DATA_FASHION_MNIST: src->c = 1, src->h = 28, src->w = 28, src->classes = 10; break;
    case DATA_CIFAR10: src->c = 3, src->h = 32, src->w = 32, src->classes = 10; break;
    case DATA_SYNTHETIC:
      src->c = opt->channels, src->h = opt->height, src->w = opt->width, src->classes = opt->classes;
      src->part[0] = (DataPart){.loaded = 1, .n = opt->train_count};
      src->part[1] = (DataPart){.loaded = 1, .n = opt->test_count};
      break;
    default:
      if (folder_scan_classes(src, err, errlen) != 0) {
        data_source_close(src);
        return -1;
      }
  }
  *out = src;
  return 0;
}

void data_source_close(DataSource *src) {
  if (!src) return;
  for (int p = 0; p < 2; p++) {
    free(src->part[p].pixels);
    free(src->part[p].labels);
    free(src->part[p].dir);
    free(src->part[p].paths);
    free(src->part[p].path_off);
  }
  for (int k = 0; src->class_names && k < src->classes; k++) free(src->class_names[k]);
  free(src->class_names);
  free(src->dir);
  free(src);
}

DataKind data_source_kind(const DataSource *src) { return src->opt.kind; }
const char *data_source_dir(const DataSource *src) { return src->dir; }
int data_source_classes(const DataSource *src) { return src->classes; }

const char *data_source_class_name(const DataSource *src, int k, char *buf, size_t n) {
  if (src->class_names && k >= 0 && k < src->classes) snprintf(buf, n, "%s", src->class_names[k]);
  else snprintf(buf, n, "%d", k);
  return buf;
}

// ---------------------------------------------------------------- splits

static int load_part(DataSource *src, int part, char *err, size_t errlen) {
  if (src->part[part].loaded) return 0;
  int rc;
  switch (src->opt.kind) {
    case DATA_FASHION_MNIST: rc = idx_load_part(src, part, err, errlen); break;
    case DATA_CIFAR10: rc = cifar_load_part(src, part, err, errlen); break;
    default: rc = folder_load_part(src, part, err, errlen); break;
  }
  if (rc == 0) src->part[part].loaded = 1;
  return rc;
}

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

int data_set_open(DataSource *src, DataSplit split, int valid_size, uint64_t split_seed, DataSet *out,
                  char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  int part = split == DATA_TEST ? 1 : 0;
  if (load_part(src, part, err, errlen) != 0) return -1;
  int n = src->part[part].n;
  if (n < 1) return data_fail(err, errlen, src->dir, "the %s part holds no items", part ? "test" : "train");
  if (split != DATA_TEST && (valid_size < 0 || valid_size >= n || (split == DATA_VALID && valid_size == 0)))
    return data_fail(err, errlen, src->dir, "validation size %d out of range: the train part holds %d items (1..%d)",
                     valid_size, n, n - 1);
  int32_t *perm = xmalloc((size_t)n * sizeof *perm);
  for (int i = 0; i < n; i++) perm[i] = i;
  if (split != DATA_TEST && valid_size > 0) {
    Rng r;
    rng_derive(&r, split_seed, SPLIT_PURPOSE);
    rng_shuffle(&r, perm, n);
  }
  int first = split == DATA_VALID ? n - valid_size : 0;
  int count = split == DATA_TEST ? n : split == DATA_VALID ? valid_size : n - valid_size;
  out->src = src;
  out->split = split;
  out->part = part;
  out->n = count;
  out->items = xmalloc((size_t)count * sizeof *out->items);
  memcpy(out->items, perm + first, (size_t)count * sizeof *out->items);
  qsort(out->items, (size_t)count, sizeof *out->items, cmp_i32);
  free(perm);
  return 0;
}

void data_set_close(DataSet *ds) {
  free(ds->items);
  memset(ds, 0, sizeof *ds);
}

const char *data_set_item_path(const DataSet *ds, int32_t item) {
  const DataPart *p = &ds->src->part[ds->part];
  return p->paths ? p->paths + p->path_off[item] : "";
}

int32_t data_set_label(const DataSet *ds, int32_t item) {
  const DataPart *p = &ds->src->part[ds->part];
  if (p->labels) return p->labels[item];
  int32_t label = 0;
  synthetic_sample(ds->src, ds->part, item, NULL, &label);
  return label;
}

// ---------------------------------------------------------------- samples

DataScratch *data_scratch_new(void) { return xcalloc(1, sizeof(DataScratch)); }

void data_scratch_free(DataScratch *s) {
  if (!s) return;
  free(s->file);
  img_buf_free(&s->img);
  free(s->tmp);
  free(s->path);
  free(s);
}

int data_sample_shape(const DataSet *ds, const AugmentSpec *aug, int *c, int *h, int *w, char *err, size_t errlen) {
  const DataSource *src = ds->src;
  char what[256];
  int channels = src->opt.kind == DATA_IMAGENET ? 3 : src->c;
  if (augment_check(aug, src->opt.kind, channels, what, sizeof what) != 0)
    return data_fail(err, errlen, src->dir, "augmentation: %s", what);
  if (src->opt.kind == DATA_IMAGENET) {
    int side = aug->rrc_size > 0 ? aug->rrc_size : aug->crop;
    *c = 3, *h = side, *w = side;
    return 0;
  }
  *c = src->c, *h = src->h, *w = src->w;
  return 0;
}

DataSampleStatus data_sample(const DataSet *ds, int32_t item, const AugmentSpec *aug, uint64_t seed, uint64_t key,
                             float *out, int32_t *label, DataScratch *scratch, char *msg, size_t msglen) {
  const DataSource *src = ds->src;
  const DataPart *p = &src->part[ds->part];
  Rng r;
  rng_derive(&r, seed, key);
  switch (src->opt.kind) {
    case DATA_SYNTHETIC:
      synthetic_sample(src, ds->part, item, out, label);
      return DATA_SAMPLE_OK;
    case DATA_IMAGENET:
      return folder_sample(ds, item, aug, &r, out, label, scratch, msg, msglen);
    default: {
      size_t size = (size_t)src->c * src->h * src->w;
      aug_small(p->pixels + size * (size_t)item, src->c, src->h, src->w, aug, &r, out);
      *label = p->labels[item];
      return DATA_SAMPLE_OK;
    }
  }
}
