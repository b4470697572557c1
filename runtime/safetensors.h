// runtime/safetensors.h — read and write safetensors files (checkpoints,
// nao-run's tensors, parity fixtures).
//
// Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON {"NAME": {"dtype": "F32", "shape": [..],
// "data_offsets": [BEGIN, END]}, ..., "__metadata__": {"KEY": "VALUE"}}, then
// the data; offsets are relative to the data's start, little-endian, C order.
//
// Reading validates everything before handing out a tensor: header length
// against the file size, JSON syntax, every field's type, known dtypes,
// duplicate names, shape * dtype size == END - BEGIN (without overflow), and
// that the tensors' byte ranges tile the data exactly (sorted, contiguous,
// no overlap, no gap, nothing after the last). A refusal names the path, the
// tensor and what differs. The data is read into memory aligned to 64 bytes;
// every tensor's pointer is aligned to its element size (a tensor whose file
// offset is not, which other writers allow, is copied to aligned memory).
//
// Writing is atomic (atomic_file.h): the destination holds the old or the new
// complete file, whatever happens to the writer. Tensors are laid out by
// decreasing element size (stable), after a header padded with spaces to a
// multiple of 8 bytes, so every tensor is naturally aligned.
#ifndef NAO_SAFETENSORS_H
#define NAO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

enum {
  ST_MAX_DIMS = 8,
  ST_MAX_HEADER = 100 * 1000 * 1000,  // the reference library's limit
};

typedef enum {
  ST_BOOL = 0, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16,
  ST_I32, ST_U32, ST_F32, ST_F64, ST_I64, ST_U64,
  ST_DTYPE_COUNT
} StDtype;

typedef struct {
  const char *name;
  StDtype dtype;
  int ndim;                       // 0: a scalar (one element)
  int64_t shape[ST_MAX_DIMS];
  const void *data;               // little-endian, C order; nbytes bytes
  size_t nbytes;
} StTensor;

typedef struct {
  const char *key, *value;
} StMeta;

typedef struct SafeTensors SafeTensors;

const char *st_dtype_name(StDtype d);     // "F32"
size_t st_dtype_size(StDtype d);          // bytes per element
int st_dtype_parse(const char *name, StDtype *out);  // 0, or -1 when unknown
// Elements of a shape; -1 when the product overflows int64.
int64_t st_numel(int ndim, const int64_t *shape);
// "[2, 3]" into buf.
const char *st_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);

// ---------------------------------------------------------------- reading

int st_open(const char *path, SafeTensors **out, char *err, size_t errlen);
void st_close(SafeTensors *st);
const char *st_path(const SafeTensors *st);
int st_count(const SafeTensors *st);              // tensors, in header order
const StTensor *st_at(const SafeTensors *st, int i);
const StTensor *st_find(const SafeTensors *st, const char *name);  // NULL if absent
int st_meta_count(const SafeTensors *st);
const StMeta *st_meta_at(const SafeTensors *st, int i);
const char *st_meta_get(const SafeTensors *st, const char *key);  // NULL if absent

// The tensor NAME, which must exist with this dtype and shape; ndim < 0 skips
// the shape check. Returns NULL with "PATH: tensor 'NAME': what differs".
const StTensor *st_expect(const SafeTensors *st, const char *name, StDtype dtype, int ndim,
                          const int64_t *shape, char *err, size_t errlen);

// ---------------------------------------------------------------- writing

// Checks the tensors (names non-empty, unique, not "__metadata__"; shapes
// non-negative; nbytes == numel * element size) and writes them atomically.
int st_write(const char *path, const StTensor *tensors, int n, const StMeta *meta, int n_meta,
             char *err, size_t errlen);
// The same file in memory: *out (malloc'd) holds *len bytes.
int st_serialize(const StTensor *tensors, int n, const StMeta *meta, int n_meta, char **out,
                 size_t *len, char *err, size_t errlen);

#endif
