// runtime/data_impl.h — what the data_*.c files share behind data.h: the
// DataSource layout and each format's part loader. Not for other modules.
//
// Invariants: a loaded part has n items; in-memory kinds (idx, cifar) hold
// pixels (n, c, h, w) uint8 and labels in [0, classes); folder parts hold one
// path and one label per item; synthetic parts hold nothing (n only).
#ifndef NAO_DATA_IMPL_H
#define NAO_DATA_IMPL_H

#include <stdint.h>

#include "runtime/augment.h"
#include "runtime/data.h"
#include "runtime/image.h"

typedef struct {
  int loaded;
  int n;
  uint8_t *pixels;     // (n, c, h, w) in-memory kinds
  int32_t *labels;     // (n) in-memory and folder kinds
  char *dir;           // folder kinds: the part's folder
  char *paths;         // folder kinds: NUL-separated relative paths
  size_t *path_off;    // (n) offset of each item's path in paths
} DataPart;

struct DataSource {
  DataSourceOptions opt;
  char *dir;
  int classes;
  int c, h, w;         // fixed geometry; 0 for folders (images vary)
  char **class_names;  // folders: (classes) sorted names
  DataPart part[2];    // train, test
};

struct DataScratch {
  uint8_t *file;       // file bytes
  size_t file_cap;
  ImgBuf img;          // decoded pixels
  float *tmp;          // resampling intermediate
  size_t tmp_cap;
  char *path;          // item path
  size_t path_cap;
};

// Loaders fill src->part[part] or fail with "PATH: what is wrong".
int idx_load_part(DataSource *src, int part, char *err, size_t errlen);
int cifar_load_part(DataSource *src, int part, char *err, size_t errlen);
int folder_scan_classes(DataSource *src, char *err, size_t errlen);
int folder_load_part(DataSource *src, int part, char *err, size_t errlen);

void synthetic_sample(const DataSource *src, int part, int32_t item, float *out, int32_t *label);
DataSampleStatus folder_sample(const DataSet *ds, int32_t item, const AugmentSpec *aug, Rng *rng, float *out,
                               int32_t *label, DataScratch *s, char *msg, size_t msglen);

// err = "path: message" with printf formatting; returns -1.
int data_fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
