// search/st_lite.h — a minimal safetensors reader and writer for the search's
// own files (the controller's weights, parity fixtures).
//
// Stopgap: runtime/safetensors.{h,c} is being written in parallel; once it is
// merged, ctl_io.c should call it and this file can go. It supports what the
// controller needs: dtypes F32, F64, I32, I64, up to 4 dimensions, and the
// string-to-string "__metadata__" map. Files are written atomically
// (sfile.h). Format: 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}}, padded with spaces to 8 bytes, then the
// raw little-endian data.
#ifndef NAO_ST_LITE_H
#define NAO_ST_LITE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { STL_F32, STL_F64, STL_I32, STL_I64 } StlDtype;

enum { STL_MAX_DIMS = 4, STL_NAME_MAX = 128 };

typedef struct {
  char name[STL_NAME_MAX];
  StlDtype dtype;
  int ndim;
  int64_t shape[STL_MAX_DIMS];
  size_t nbytes;
  const void *data;  // writer: the caller's buffer; reader: into the file's buffer, maybe unaligned (memcpy it)
} StlTensor;

typedef struct {
  StlTensor *t;
  int n, cap;
  char **meta;  // key, value, key, value...
  int n_meta;
  char *buf;    // reader: the whole file
} StlFile;

size_t stl_dtype_size(StlDtype d);
const char *stl_dtype_name(StlDtype d);

// Writer: add tensors (data must outlive the save) and metadata, then save.
void stl_add(StlFile *f, const char *name, StlDtype dtype, int ndim, const int64_t *shape, const void *data);
void stl_add_meta(StlFile *f, const char *key, const char *value);
int stl_save(const StlFile *f, const char *path, char *err, size_t errlen);

// Reader: 0, or -1 with "PATH: what is wrong".
int stl_load(StlFile *f, const char *path, char *err, size_t errlen);
const StlTensor *stl_find(const StlFile *f, const char *name);
const char *stl_get_meta(const StlFile *f, const char *key);  // NULL when absent

void stl_free(StlFile *f);

#endif
