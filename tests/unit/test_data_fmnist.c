// tests/unit/test_data_fmnist.c — the real Fashion-MNIST from Debian's
// dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist).
//
// Checks the counts (60000 train, 10000 test), the label histograms (6000 and
// 1000 per class), and the pixels: the test decompresses the image files
// itself (zlib, skipping the 16-byte header) and compares the loader's
// normalised samples with its own bytes, sample by sample; the pixel mean and
// standard deviation of the train images must be the dataset's published
// 0.2860 and 0.3530 (the normalisation NAO-SPEC decision O4 uses).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "runtime/augment.h"
#include "runtime/data.h"
#include "tests/unit/data_check.h"

// The raw idx payload of a .gz file, read independently of the loader.
static uint8_t *raw_payload(const char *name, size_t header, size_t n) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", DATA_FASHION_MNIST_DIR, name);
  gzFile f = gzopen(path, "rb");
  if (!f) {
    fprintf(stderr, "%s: cannot open (is dataset-fashion-mnist installed? make deps)\n", path);
    exit(1);
  }
  uint8_t *buf = malloc(header + n);
  size_t got = 0;
  int r;
  while (got < header + n && (r = gzread(f, buf + got, (unsigned)(header + n - got))) > 0) got += (size_t)r;
  gzclose(f);
  CHECK(got == header + n, "%s: %zu bytes", path, got);
  memmove(buf, buf + header, n);
  return buf;
}

static void check_part(DataSource *src, DataSplit split, int n_want, const char *img, const char *lab) {
  DataSet ds;
  char err[1024] = "";
  CHECK(data_set_open(src, split, 0, 0, &ds, err, sizeof err) == 0, "%s", err);
  if (!ds.items) return;
  CHECK(ds.n == n_want, "%s: %d items", data_split_name(split), ds.n);
  if (ds.n != n_want) return;
  uint8_t *pix = raw_payload(img, 16, (size_t)n_want * 784), *labels = raw_payload(lab, 8, (size_t)n_want);
  int hist[10] = {0};
  AugmentSpec a;
  augment_preset(&a, DATA_FASHION_MNIST, 0);
  DataScratch *s = data_scratch_new();
  float out[784];
  int mismatched = 0, label_bad = 0;
  double sum = 0, sum2 = 0;
  for (int i = 0; i < ds.n; i++) {
    int32_t label;
    data_sample(&ds, i, &a, 0, 0, out, &label, s, err, sizeof err);
    if (label < 0 || label > 9 || label != labels[i]) label_bad++;
    else hist[label]++;
    for (int p = 0; p < 784; p++) {
      uint8_t v = pix[(size_t)i * 784 + p];
      if (out[p] != ((float)v / 255.0f - 0.2860f) / 0.3530f) mismatched++;
      sum += v / 255.0;
      sum2 += (v / 255.0) * (v / 255.0);
    }
  }
  CHECK(label_bad == 0, "%d labels differ from the file's", label_bad);
  CHECK(mismatched == 0, "%d pixels differ from the file's", mismatched);
  for (int k = 0; k < 10; k++) CHECK(hist[k] == n_want / 10, "class %d: %d items", k, hist[k]);
  double npx = (double)ds.n * 784, mean = sum / npx, sd = sqrt(sum2 / npx - mean * mean);
  printf("%s: %d images, pixel mean %.5f std %.5f\n", data_split_name(split), ds.n, mean, sd);
  if (split == DATA_TRAIN) {
    CHECK(fabs(mean - 0.2860) < 5e-5, "train pixel mean %.6f, published 0.2860", mean);
    CHECK(fabs(sd - 0.3530) < 5e-5, "train pixel std %.6f, published 0.3530", sd);
  }
  data_scratch_free(s);
  free(pix);
  free(labels);
  data_set_close(&ds);
}

int main(void) {
  DataSourceOptions o = {.kind = DATA_FASHION_MNIST};  // the default directory
  DataSource *src;
  char err[1024];
  if (data_source_open(&o, &src, err, sizeof err) != 0) {
    fprintf(stderr, "%s (is dataset-fashion-mnist installed? make deps)\n", err);
    return 1;
  }
  check_part(src, DATA_TRAIN, 60000, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz");
  check_part(src, DATA_TEST, 10000, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz");
  data_source_close(src);
  return check_report("test_data_fmnist");
}
