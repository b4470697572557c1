// tests/unit/test_data_formats.c — the idx (Fashion-MNIST) and CIFAR-10
// binary readers on small files written here: good files (plain and gzip,
// with their pixels and labels read back exactly) and every kind of bad file
// refused with the file's path and what is wrong.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "compiler/util.h"
#include "runtime/augment.h"
#include "runtime/data.h"
#include "tests/unit/data_check.h"

static char *root;
static int case_no;

// A fresh directory for one case.
static char *case_dir(void) {
  char *d = malloc(4096);
  snprintf(d, 4096, "%s/case%d", root, case_no++);
  mkdir(d, 0755);
  return d;
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

// An idx file: magic, dims, then payload_len bytes of payload (pattern or given).
static void write_idx(const char *dir, const char *name, int gz, uint32_t magic, int ndim, const uint32_t *dims,
                      const uint8_t *payload, size_t payload_len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
  size_t hl = 4 + 4 * (size_t)ndim;
  uint8_t *buf = malloc(hl + payload_len + 1);
  put_u32(buf, magic);
  for (int i = 0; i < ndim; i++) put_u32(buf + 4 + 4 * i, dims[i]);
  memcpy(buf + hl, payload, payload_len);
  if (gz) {
    gzFile f = gzopen(path, "wb");
    gzwrite(f, buf, (unsigned)(hl + payload_len));
    gzclose(f);
  } else {
    check_write_file(path, buf, hl + payload_len);
  }
  free(buf);
}

enum { NIMG = 5, PIX = 28 * 28 };
static uint8_t images[NIMG * PIX + 64], labels[NIMG + 8] = {3, 0, 9, 1, 4};

// A Fashion-MNIST train part with the given deviations.
typedef struct {
  int gz;
  uint32_t img_magic, lab_magic;
  uint32_t n_img, rows, cols, n_lab;
  long img_bytes_delta, lab_bytes_delta;  // payload shorter (<0) or longer (>0)
  int bad_label;                          // label 3's value, if >= 0
} IdxCase;

static IdxCase idx_good(void) {
  return (IdxCase){0, 0x803, 0x801, NIMG, 28, 28, NIMG, 0, 0, -1};
}

static char *write_fmnist(const IdxCase *c) {
  char *d = case_dir();
  uint32_t idims[3] = {c->n_img, c->rows, c->cols}, ldims[1] = {c->n_lab};
  uint8_t lab[NIMG + 8];
  memcpy(lab, labels, sizeof lab);
  if (c->bad_label >= 0) lab[3] = (uint8_t)c->bad_label;
  write_idx(d, "train-images-idx3-ubyte", c->gz, c->img_magic, 3, idims, images,
            (size_t)((long)c->n_img * c->rows * c->cols + c->img_bytes_delta));
  write_idx(d, "train-labels-idx1-ubyte", c->gz, c->lab_magic, 1, ldims, lab, (size_t)((long)c->n_lab + c->lab_bytes_delta));
  return d;
}

// Opens the train split of dir; returns rc, message in err.
static int open_fmnist(const char *dir, DataSource **src, DataSet *ds, char *err, size_t errlen) {
  DataSourceOptions o = {.kind = DATA_FASHION_MNIST, .dir = dir};
  *src = NULL;
  if (data_source_open(&o, src, err, errlen) != 0) return -1;
  return data_set_open(*src, DATA_TRAIN, 0, 0, ds, err, errlen);
}

static void idx_bad(IdxCase c, const char *file, const char *what) {
  char *d = write_fmnist(&c);
  DataSource *src;
  DataSet ds;
  char err[1024] = "";
  int rc = open_fmnist(d, &src, &ds, err, sizeof err);
  CHECK_ERR(rc, err, d, file, what);
  if (rc == 0) data_set_close(&ds);
  data_source_close(src);
  free(d);
}

static void test_idx_good(int gz) {
  IdxCase c = idx_good();
  c.gz = gz;
  char *d = write_fmnist(&c);
  DataSource *src;
  DataSet ds;
  char err[1024] = "";
  CHECK(open_fmnist(d, &src, &ds, err, sizeof err) == 0, "good idx (gz %d): %s", gz, err);
  if (src && ds.items) {
    CHECK(ds.n == NIMG && data_source_classes(src) == 10, "n %d", ds.n);
    AugmentSpec a;
    augment_preset(&a, DATA_FASHION_MNIST, 0);
    int ch, h, w;
    CHECK(data_sample_shape(&ds, &a, &ch, &h, &w, err, sizeof err) == 0 && ch == 1 && h == 28 && w == 28, "shape");
    float out[PIX];
    DataScratch *s = data_scratch_new();
    for (int i = 0; i < NIMG; i++) {
      int32_t label = -1;
      data_sample(&ds, i, &a, 1, 2, out, &label, s, err, sizeof err);
      CHECK(label == labels[i], "label %d: %d", i, label);
      int same = 1;
      for (int p = 0; p < PIX; p++)
        same &= out[p] == ((float)images[i * PIX + p] / 255.0f - 0.2860f) / 0.3530f;
      CHECK(same, "pixels of item %d", i);
    }
    data_scratch_free(s);
    data_set_close(&ds);
  }
  data_source_close(src);
  free(d);
}

static void test_idx_bad(void) {
  IdxCase c;
  c = idx_good(), c.img_bytes_delta = -100;
  idx_bad(c, "train-images-idx3-ubyte", "truncated: the header declares 3920 image bytes but the file holds 3820");
  c = idx_good(), c.img_bytes_delta = 7;
  idx_bad(c, "train-images-idx3-ubyte", "oversized");
  c = idx_good(), c.lab_bytes_delta = -2;
  idx_bad(c, "train-labels-idx1-ubyte", "truncated");
  c = idx_good(), c.lab_bytes_delta = 3;
  idx_bad(c, "train-labels-idx1-ubyte", "oversized");
  c = idx_good(), c.img_magic = 0x801;
  idx_bad(c, "train-images-idx3-ubyte", "wrong magic 0x00000801");
  c = idx_good(), c.lab_magic = 0x1234;
  idx_bad(c, "train-labels-idx1-ubyte", "wrong magic 0x00001234");
  c = idx_good(), c.n_lab = 4;
  idx_bad(c, "train-labels-idx1-ubyte", "count mismatch: 4 labels but 5 images");
  c = idx_good(), c.bad_label = 10;
  idx_bad(c, "train-labels-idx1-ubyte", "label 10 of item 3 out of range 0..9");
  c = idx_good(), c.rows = 27, c.n_img = 5;
  idx_bad(c, "train-images-idx3-ubyte", "images are 27x28, expected 28x28");
  c = idx_good(), c.n_img = 0;
  idx_bad(c, "train-images-idx3-ubyte", "image count 0 out of range");
  c = idx_good(), c.gz = 1, c.bad_label = 200;
  idx_bad(c, "train-labels-idx1-ubyte.gz", "label 200");
  // A header cut short, a missing file, a gzip stream cut short, a corrupt one.
  char *d = write_fmnist(&(IdxCase){0, 0x803, 0x801, NIMG, 28, 28, NIMG, 0, 0, -1});
  char path[4096];
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", d);
  check_write_file(path, "\0\0\x08\x03\0\0", 6);
  DataSource *src;
  DataSet ds;
  char err[1024];
  CHECK_ERR(open_fmnist(d, &src, &ds, err, sizeof err), err, path, "shorter than the 16-byte header", NULL);
  data_source_close(src);
  remove(path);
  CHECK_ERR(open_fmnist(d, &src, &ds, err, sizeof err), err, path, "cannot open", NULL);
  data_source_close(src);
  free(d);

  c = idx_good(), c.gz = 1;
  d = write_fmnist(&c);
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", d);
  size_t len;
  const char *ferr;
  char *gz = nao_read_file(path, &len, &ferr);
  check_write_file(path, gz, len / 2);
  CHECK_ERR(open_fmnist(d, &src, &ds, err, sizeof err), err, path, "truncated", NULL);
  data_source_close(src);
  for (size_t i = len / 3; i < len / 3 + 40; i++) gz[i] ^= 0x5a;
  check_write_file(path, gz, len);
  CHECK_ERR(open_fmnist(d, &src, &ds, err, sizeof err), err, path, "gzip", NULL);
  data_source_close(src);
  free(gz);
  free(d);
  // A missing directory.
  DataSourceOptions o = {.kind = DATA_FASHION_MNIST, .dir = "/nonexistent/fmnist"};
  CHECK_ERR(data_source_open(&o, &src, err, sizeof err), err, "/nonexistent/fmnist", "cannot open", NULL);
}

// ---------------------------------------------------------------- CIFAR-10

enum { REC = 3073, NREC = 3 };

// Record r of file f: label (f + r) % 10 (or bad), pixels a pattern of (f, r, i).
static void cifar_file(const char *dir, const char *name, int f, int nrec, int bad_label, long delta) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  uint8_t *buf = calloc(1, (size_t)nrec * REC + 16);
  for (int r = 0; r < nrec; r++) {
    buf[r * REC] = (uint8_t)((f + r) % 10);
    for (int i = 0; i < REC - 1; i++) buf[r * REC + 1 + i] = (uint8_t)(f * 31 + r * 7 + i * 13);
  }
  if (bad_label >= 0) buf[2 * REC] = (uint8_t)bad_label;
  check_write_file(path, buf, (size_t)((long)nrec * REC + delta));
  free(buf);
}

static char *write_cifar(int sub, int bad_file, int bad_label, long delta, int skip_file) {
  char *d = case_dir(), dir[4096];
  snprintf(dir, sizeof dir, "%s%s", d, sub ? "/cifar-10-batches-bin" : "");
  mkdir(dir, 0755);
  for (int f = 1; f <= 6; f++) {
    if (f == skip_file) continue;
    char name[64];
    if (f <= 5) snprintf(name, sizeof name, "data_batch_%d.bin", f);
    else snprintf(name, sizeof name, "test_batch.bin");
    cifar_file(dir, name, f, NREC, f == bad_file ? bad_label : -1, f == bad_file ? delta : 0);
  }
  return d;
}

static int open_cifar(const char *dir, DataSplit split, DataSource **src, DataSet *ds, char *err, size_t errlen) {
  DataSourceOptions o = {.kind = DATA_CIFAR10, .dir = dir, .cifar_records = NREC};
  *src = NULL;
  if (data_source_open(&o, src, err, errlen) != 0) return -1;
  return data_set_open(*src, split, 0, 0, ds, err, errlen);
}

static void test_cifar_good(int sub) {
  char *d = write_cifar(sub, 0, -1, 0, 0);
  DataSource *src;
  DataSet ds;
  char err[1024] = "";
  CHECK(open_cifar(d, DATA_TRAIN, &src, &ds, err, sizeof err) == 0, "good cifar: %s", err);
  if (!src || !ds.items) return;
  CHECK(ds.n == 5 * NREC, "train n %d", ds.n);
  AugmentSpec a;
  augment_preset(&a, DATA_CIFAR10, 0);
  float *out = malloc(sizeof(float) * 3 * 32 * 32);
  DataScratch *s = data_scratch_new();
  for (int item = 0; item < ds.n; item++) {
    int f = item / NREC + 1, r = item % NREC;
    int32_t label;
    data_sample(&ds, item, &a, 0, 0, out, &label, s, err, sizeof err);
    CHECK(label == (f + r) % 10, "label of item %d", item);
    int same = 1;
    for (int i = 0; i < 3072; i++) {
      int c = i / 1024;
      float want = ((float)(uint8_t)(f * 31 + r * 7 + i * 13) / 255.0f - a.mean[c]) / a.std[c];
      same &= out[i] == want;
    }
    CHECK(same, "pixels of item %d (planar RGB, row-major)", item);
  }
  data_set_close(&ds);
  CHECK(data_set_open(src, DATA_TEST, 0, 0, &ds, err, sizeof err) == 0 && ds.n == NREC, "test part: %s", err);
  int32_t label;
  data_sample(&ds, 1, &a, 0, 0, out, &label, s, err, sizeof err);
  CHECK(label == (6 + 1) % 10, "test label");
  data_set_close(&ds);
  data_scratch_free(s);
  free(out);
  data_source_close(src);
  free(d);
}

static void cifar_bad(int file, int bad_label, long delta, int skip, const char *name, const char *what) {
  char *d = write_cifar(0, file, bad_label, delta, skip);
  DataSource *src;
  DataSet ds;
  char err[1024] = "";
  int rc = open_cifar(d, file == 6 || skip == 6 ? DATA_TEST : DATA_TRAIN, &src, &ds, err, sizeof err);
  CHECK_ERR(rc, err, d, name, what);
  if (rc == 0) data_set_close(&ds);
  data_source_close(src);
  free(d);
}

static void test_cifar_bad(void) {
  cifar_bad(2, -1, -1, 0, "data_batch_2.bin", "truncated: 9218 bytes, expected 9219 (3 records of 3073 bytes); not a whole");
  cifar_bad(4, -1, -REC, 0, "data_batch_4.bin", "truncated: 6146 bytes, expected 9219");
  cifar_bad(5, -1, 10, 0, "data_batch_5.bin", "oversized: 9229 bytes");
  cifar_bad(3, 10, 0, 0, "data_batch_3.bin", "record 2: label 10 out of range 0..9");
  cifar_bad(6, 255, 0, 0, "test_batch.bin", "record 2: label 255 out of range");
  cifar_bad(0, -1, 0, 3, "data_batch_3.bin", "cannot open");
  cifar_bad(0, -1, 0, 6, "test_batch.bin", "cannot open");
}

int main(void) {
  root = check_tmpdir("formats");
  for (size_t i = 0; i < sizeof images; i++) images[i] = (uint8_t)(i * 37 + i / 784);
  test_idx_good(0);
  test_idx_good(1);
  test_idx_bad();
  test_cifar_good(0);
  test_cifar_good(1);
  test_cifar_bad();
  check_rmtree(root);
  free(root);
  return check_report("test_data_formats");
}
