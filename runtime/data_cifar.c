// runtime/data_cifar.c — the CIFAR-10 binary format.
//
// Each file is a sequence of 3073-byte records: a label byte (0..9), then
// 1024 red, 1024 green and 1024 blue bytes (row-major 32x32 planes), which is
// already (c, h, w). The train part is data_batch_1..5.bin, the test part
// test_batch.bin, in DIR or DIR/cifar-10-batches-bin. Every file must hold
// exactly the expected number of records (10000; an option for tests): a
// short, long or ragged file is refused with its size and the expected one,
// and a label outside 0..9 with its record number.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compiler/util.h"
#include "runtime/data_impl.h"

enum { CIFAR_RECORD = 1 + 3 * 32 * 32 };

// The directory holding the batches: DIR, or DIR/cifar-10-batches-bin.
static char *cifar_dir(const char *dir, const char *probe) {
  StrBuf sb = {0};
  struct stat st;
  sb_printf(&sb, "%s/%s", dir, probe);
  int here = stat(sb.data, &st) == 0;
  sb.len = 0;
  if (here) sb_printf(&sb, "%s", dir);
  else {
    sb_printf(&sb, "%s/cifar-10-batches-bin", dir);
    if (stat(sb.data, &st) != 0) {  // neither: report the files where they were asked for
      sb.len = 0;
      sb_printf(&sb, "%s", dir);
    }
  }
  return sb_steal(&sb);
}

static int cifar_file(const DataSource *src, const char *path, int records, uint8_t *pixels, int32_t *labels,
                      char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) return data_fail(err, errlen, path, "cannot open: %s", strerror(errno));
  struct stat st;
  long long want = (long long)records * CIFAR_RECORD;
  int rc = 0;
  if (fstat(fileno(f), &st) != 0) rc = data_fail(err, errlen, path, "fstat: %s", strerror(errno));
  else if (st.st_size != want)
    rc = data_fail(err, errlen, path, "%s: %lld bytes, expected %lld (%d records of %d bytes)%s",
                   st.st_size < want ? "truncated" : "oversized", (long long)st.st_size, want, records,
                   CIFAR_RECORD, st.st_size % CIFAR_RECORD ? "; not a whole number of records" : "");
  uint8_t rec[CIFAR_RECORD];
  for (int i = 0; rc == 0 && i < records; i++) {
    if (fread(rec, 1, CIFAR_RECORD, f) != CIFAR_RECORD) {
      rc = data_fail(err, errlen, path, "read failed at record %d: %s", i, ferror(f) ? strerror(errno) : "end of file");
      break;
    }
    if (rec[0] >= src->classes)
      rc = data_fail(err, errlen, path, "record %d: label %d out of range 0..%d", i, rec[0], src->classes - 1);
    labels[i] = rec[0];
    memcpy(pixels + (size_t)i * (CIFAR_RECORD - 1), rec + 1, CIFAR_RECORD - 1);
  }
  fclose(f);
  return rc;
}

int cifar_load_part(DataSource *src, int part, char *err, size_t errlen) {
  int records = src->opt.cifar_records > 0 ? src->opt.cifar_records : 10000;
  int files = part == 0 ? 5 : 1;
  if ((long long)records * files > 100000000)
    return data_fail(err, errlen, src->dir, "%d records per file is too many", records);
  char *dir = cifar_dir(src->dir, part == 0 ? "data_batch_1.bin" : "test_batch.bin");
  DataPart *p = &src->part[part];
  p->n = records * files;
  p->pixels = xmalloc((size_t)p->n * (CIFAR_RECORD - 1));
  p->labels = xmalloc((size_t)p->n * sizeof *p->labels);
  int rc = 0;
  for (int k = 0; k < files && rc == 0; k++) {
    char path[4096];
    if (part == 0) snprintf(path, sizeof path, "%s/data_batch_%d.bin", dir, k + 1);
    else snprintf(path, sizeof path, "%s/test_batch.bin", dir);
    size_t at = (size_t)k * records;
    rc = cifar_file(src, path, records, p->pixels + at * (CIFAR_RECORD - 1), p->labels + at, err, errlen);
  }
  free(dir);
  if (rc != 0) {
    free(p->pixels);
    free(p->labels);
    p->pixels = NULL;
    p->labels = NULL;
    p->n = 0;
  }
  return rc;
}
