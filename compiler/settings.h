// compiler/settings.h — the settings of a network block: names, types, ranges.
//
// One table describes every setting the language knows; sema checks a file's
// settings against it and naoc --from-seq checks its options against it, so a
// value is judged by the same rule (and the same message) wherever it comes
// from. docs/language.md lists the same table.
//
// Value checks write a message that says what is wrong and what would be
// right ("channels must be an integer from 1 to 8192, not 0") and return -1;
// 0 when the value is good.
#ifndef NAO_SETTINGS_H
#define NAO_SETTINGS_H

#include <stddef.h>

#include "compiler/netspec.h"

typedef enum {
  SET_DATASET,
  SET_INPUT,
  SET_CLASSES,
  SET_STEM,
  SET_CHANNELS,
  SET_LAYERS,
  SET_NODES,
  SET_AUX_WEIGHT,
  SET_DROP_PATH_KEEP,
  SET_DROPOUT_KEEP,
  SET_COUNT
} NaoSettingId;

typedef enum {
  SETV_NAME,   // an identifier from a fixed list (dataset, stem)
  SETV_SHAPE,  // CxHxW
  SETV_INT,    // an integer in [lo, hi]
  SETV_REAL,   // a real in [lo, hi], or (lo, hi] when lo_open
} NaoSettingType;

typedef struct {
  NaoSettingId id;
  const char *name;
  NaoSettingType type;
  double lo, hi;
  int lo_open;
  const char *what;  // the value's meaning in messages ("a keep probability")
} NaoSettingInfo;

const NaoSettingInfo *nao_setting_info(NaoSettingId id);
const NaoSettingInfo *nao_setting_by_name(const char *name);  // NULL when unknown
// The known setting name closest to `name`, or NULL when none is close.
const char *nao_setting_suggest(const char *name);
// The candidate closest to `name` by edit distance when it is close (at most
// two edits; one for names of up to 4 characters), else NULL.
const char *nao_closest(const char *name, const char *const *cands, int n);

// Integers: digits with an optional sign. 10^20 and the like are out of range,
// not undefined behaviour.
int nao_setting_int(const NaoSettingInfo *s, const char *text, int *out, char *err, size_t errlen);
int nao_setting_real(const NaoSettingInfo *s, const char *text, double *out, char *err, size_t errlen);
// dataset: a preset name; stem: cifar or imagenet.
int nao_setting_dataset(const char *text, DatasetPreset *out, char *err, size_t errlen);
int nao_setting_stem(const char *text, StemKind *out, char *err, size_t errlen);
// input: CxHxW. On error, *bad_part is the 0-based part that is wrong (-1: the
// whole value), so a caller can point at it.
int nao_setting_shape(const char *text, int chw[3], int *bad_part, char *err, size_t errlen);

// Parses a whole integer written as digits with an optional sign. Returns 0 and
// the value, 1 when it does not fit a long (then *out is LONG_MIN/LONG_MAX), or
// -1 when the text is not such an integer.
int nao_parse_long(const char *text, long *out);

// Shortest decimal text that reads back as exactly `v` ("0.4", not
// "0.40000000000000002"). buf needs 32 bytes.
void nao_format_real(double v, char *buf, size_t cap);

#endif
