// compiler/settings.c — the settings table and the checks of their values.
#include "compiler/settings.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Same order as NaoSettingId.
static const NaoSettingInfo settings[SET_COUNT] = {
    {SET_DATASET, "dataset", SETV_NAME, 0, 0, 0, "a dataset preset"},
    {SET_INPUT, "input", SETV_SHAPE, 0, 0, 0, "a shape CxHxW"},
    {SET_CLASSES, "classes", SETV_INT, 2, NAO_MAX_CLASSES, 0, "an integer"},
    {SET_STEM, "stem", SETV_NAME, 0, 0, 0, "a stem"},
    {SET_CHANNELS, "channels", SETV_INT, 1, NAO_MAX_CHANNELS, 0, "an integer"},
    {SET_LAYERS, "layers", SETV_INT, 1, NAO_MAX_LAYERS, 0, "an integer"},
    {SET_NODES, "nodes", SETV_INT, 1, NAO_MAX_NODES, 0, "an integer"},
    {SET_AUX_WEIGHT, "aux_weight", SETV_REAL, 0, 100, 0, "a loss weight"},
    {SET_DROP_PATH_KEEP, "drop_path_keep", SETV_REAL, 0, 1, 1, "a keep probability"},
    {SET_DROPOUT_KEEP, "dropout_keep", SETV_REAL, 0, 1, 1, "a keep probability"},
};

const NaoSettingInfo *nao_setting_info(NaoSettingId id) {
  return (unsigned)id < SET_COUNT ? &settings[id] : NULL;
}

const NaoSettingInfo *nao_setting_by_name(const char *name) {
  for (int i = 0; i < SET_COUNT; i++)
    if (strcmp(settings[i].name, name) == 0) return &settings[i];
  return NULL;
}

// Levenshtein distance of short strings (names are at most 64 characters).
static int distance(const char *a, const char *b) {
  enum { MAXLEN = 65 };
  size_t la = strlen(a), lb = strlen(b);
  if (la >= MAXLEN || lb >= MAXLEN) return MAXLEN;
  int row[MAXLEN + 1];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

const char *nao_closest(const char *name, const char *const *cands, int n) {
  const char *best = NULL;
  int best_d = strlen(name) <= 4 ? 2 : 3;  // short names: one edit at most
  for (int i = 0; i < n; i++) {
    int d = distance(name, cands[i]);
    if (d < best_d) best_d = d, best = cands[i];
  }
  return best;
}

const char *nao_setting_suggest(const char *name) {
  const char *names[SET_COUNT];
  for (int i = 0; i < SET_COUNT; i++) names[i] = settings[i].name;
  return nao_closest(name, names, SET_COUNT);
}

// ---------------------------------------------------------------- numbers

int nao_parse_long(const char *text, long *out) {
  const char *p = text;
  int neg = *p == '-';
  if (*p == '-' || *p == '+') p++;
  if (*p < '0' || *p > '9') return -1;
  unsigned long v = 0;
  int over = 0;
  for (; *p >= '0' && *p <= '9'; p++) {
    unsigned d = (unsigned)(*p - '0');
    if (v > (ULONG_MAX - d) / 10) over = 1;
    else v = v * 10 + d;
  }
  if (*p) return -1;
  if (over || v > (unsigned long)LONG_MAX) {
    *out = neg ? LONG_MIN : LONG_MAX;
    return 1;
  }
  *out = neg ? -(long)v : (long)v;
  return 0;
}

// Shows a user's value in a message, cut to 40 characters.
static const char *shown(const char *text, char *buf, size_t cap) {
  size_t n = strlen(text);
  if (n < 40 || cap < 44) return text;
  snprintf(buf, cap, "%.36s...", text);
  return buf;
}

int nao_setting_int(const NaoSettingInfo *s, const char *text, int *out, char *err, size_t errlen) {
  long v;
  char sb[48];
  int rc = nao_parse_long(text, &v);
  if (rc == 0 && v >= (long)s->lo && v <= (long)s->hi) {
    *out = (int)v;
    return 0;
  }
  snprintf(err, errlen, "%s must be an integer from %ld to %ld, not %s", s->name, (long)s->lo,
           (long)s->hi, shown(text, sb, sizeof sb));
  return -1;
}

static int parse_real(const char *text, double *out) {
  if (!*text) return -1;
  errno = 0;
  char *end;
  double v = strtod(text, &end);
  if (*end || end == text) return -1;
  // Only plain decimal numbers: strtod also reads "inf", "nan" and hex.
  for (const char *p = text; *p; p++)
    if (!strchr("0123456789+-.eE", *p)) return -1;
  if (errno == ERANGE || !isfinite(v)) return 1;
  *out = v;
  return 0;
}

int nao_setting_real(const NaoSettingInfo *s, const char *text, double *out, char *err, size_t errlen) {
  double v = 0;
  char sb[48];
  int rc = parse_real(text, &v);
  int ok = rc == 0 && (s->lo_open ? v > s->lo : v >= s->lo) && v <= s->hi;
  if (ok) {
    *out = v == 0 ? 0.0 : v;  // no negative zero
    return 0;
  }
  if (s->id == SET_AUX_WEIGHT)
    snprintf(err, errlen, "aux_weight must be a number from 0 to 100 (0: no auxiliary head), not %s",
             shown(text, sb, sizeof sb));
  else
    snprintf(err, errlen, "%s must be a keep probability greater than 0 and at most 1 (1: off), not %s",
             s->name, shown(text, sb, sizeof sb));
  return -1;
}

int nao_setting_dataset(const char *text, DatasetPreset *out, char *err, size_t errlen) {
  const DatasetInfo *di = dataset_by_name(text);
  if (di) {
    *out = di->id;
    return 0;
  }
  static const char *const names[] = {"cifar10", "imagenet", "fashion-mnist"};
  const char *best = nao_closest(text, names, 3);
  char sb[48];
  if (best)
    snprintf(err, errlen, "unknown dataset '%s'; did you mean '%s'?", shown(text, sb, sizeof sb), best);
  else
    snprintf(err, errlen, "unknown dataset '%s' (the presets are cifar10, imagenet and fashion-mnist; "
             "for other data give input and classes)", shown(text, sb, sizeof sb));
  return -1;
}

int nao_setting_stem(const char *text, StemKind *out, char *err, size_t errlen) {
  if (strcmp(text, "cifar") == 0) *out = STEM_CIFAR;
  else if (strcmp(text, "imagenet") == 0) *out = STEM_IMAGENET;
  else {
    char sb[48];
    snprintf(err, errlen, "stem must be cifar or imagenet, not '%s'", shown(text, sb, sizeof sb));
    return -1;
  }
  return 0;
}

int nao_setting_shape(const char *text, int chw[3], int *bad_part, char *err, size_t errlen) {
  static const char *const part_name[3] = {"channels", "height", "width"};
  static const int part_max[3] = {NAO_MAX_IN_CHANNELS, NAO_MAX_IMAGE, NAO_MAX_IMAGE};
  char buf[80], sb[48];
  *bad_part = -1;
  int n = 0;
  const char *p = text;
  for (;;) {
    const char *x = strchr(p, 'x');
    size_t len = x ? (size_t)(x - p) : strlen(p);
    if (n < 3) {
      snprintf(buf, sizeof buf, "%.*s", (int)(len < 70 ? len : 70), p);
      long v;
      int rc = nao_parse_long(buf, &v);
      if (rc < 0 || buf[0] == '-' || buf[0] == '+') break;  // not CxHxW at all
      if (rc > 0 || v < 1 || v > part_max[n]) {
        *bad_part = n;
        snprintf(err, errlen, "input %s must be from 1 to %d, not %s", part_name[n], part_max[n],
                 shown(buf, sb, sizeof sb));
        return -1;
      }
      chw[n] = (int)v;
    }
    n++;
    if (!x) break;
    p = x + 1;
  }
  if (n == 3) return 0;
  snprintf(err, errlen, "input must be a shape CxHxW (channels x height x width, e.g. 3x32x32), not %s",
           shown(text, sb, sizeof sb));
  return -1;
}

void nao_format_real(double v, char *buf, size_t cap) {
  // Plain decimals where they stay short ("0.4", "100"), else the exponent form.
  if (fabs(v) >= 1e-6 && fabs(v) < 1e15) {
    for (int dec = 0; dec <= 24; dec++) {
      snprintf(buf, cap, "%.*f", dec, v);
      if (strtod(buf, NULL) == v) return;
    }
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, cap, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) return;
  }
}
