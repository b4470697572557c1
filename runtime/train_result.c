// runtime/train_result.c — RUN/result.json, written and read (train_result.h).
//
// Format (one JSON object, keys in this order):
//   {"version":1,"network_file":"...","end":"done","epochs":E,"recipe_epochs":E,
//    "steps":S,"valid_top1":x,"valid_top5":x,"valid_loss":x,"valid_images":n,
//    "best_valid_top1":x,"best_epoch":k,"test_top1":x,"test_top5":x,
//    "test_loss":x,"test_images":n,"seconds":x}
// Numbers are written as the shortest text that reads back to the same double.
#include "runtime/train_result.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/atomic_file.h"
#include "runtime/json.h"

int train_result_write(const Trainer *t, TrainEnd end, double seconds, char *err, size_t errlen) {
  StrBuf sb = {0};
  JsonWriter w;
  jw_init(&w, &sb);
  jw_object_begin(&w);
  jw_key(&w, "version"), jw_int(&w, TRAIN_RESULT_VERSION);
  jw_key(&w, "network_file"), jw_string(&w, t->cfg.net_path ? t->cfg.net_path : "");
  jw_key(&w, "end"), jw_string(&w, end == TRAIN_MAX_STEPS ? "max_steps" : "done");
  jw_key(&w, "epochs"), jw_int(&w, t->pos.epoch);
  jw_key(&w, "recipe_epochs"), jw_int(&w, t->recipe.epochs);
  jw_key(&w, "steps"), jw_int(&w, t->pos.step);
  jw_key(&w, "valid_top1"), jw_double(&w, t->has_valid ? t->last_valid.top1 : NAN);
  jw_key(&w, "valid_top5"), jw_double(&w, t->has_valid ? t->last_valid.top5 : NAN);
  jw_key(&w, "valid_loss"), jw_double(&w, t->has_valid ? t->last_valid.loss : NAN);
  jw_key(&w, "valid_images"), jw_int(&w, t->has_valid ? t->last_valid.images : 0);
  jw_key(&w, "best_valid_top1"), jw_double(&w, t->has_valid && t->pos.best_epoch >= 0 ? t->pos.best_valid_top1 : NAN);
  jw_key(&w, "best_epoch"), jw_int(&w, t->has_valid ? t->pos.best_epoch : -1);
  jw_key(&w, "test_top1"), jw_double(&w, t->last_test.top1);
  jw_key(&w, "test_top5"), jw_double(&w, t->last_test.top5);
  jw_key(&w, "test_loss"), jw_double(&w, t->last_test.loss);
  jw_key(&w, "test_images"), jw_int(&w, t->last_test.images);
  jw_key(&w, "seconds"), jw_double(&w, seconds);
  jw_object_end(&w);
  sb_append(&sb, "\n");
  char path[4300];
  snprintf(path, sizeof path, "%s/result.json", t->run_dir);
  int rc = atomic_write_file(path, sb.data, sb.len, err, errlen);
  sb_free(&sb);
  return rc;
}

// ---------------------------------------------------------------- reading

// A number member (null: NAN when nullable). Returns 0 or -1 with a message.
static int get_num(const JsonValue *o, const char *key, int nullable, double *out, const char *path, char *err,
                   size_t errlen) {
  const JsonValue *v = json_get(o, key);
  if (v && v->kind == JSON_NUMBER) return *out = v->number, 0;
  if (v && v->kind == JSON_NULL && nullable) return *out = NAN, 0;
  snprintf(err, errlen, "%s: \"%s\" is %s (expected a number)", path, key, v ? json_kind_name(v->kind) : "missing");
  return -1;
}

int train_result_read(const char *run_dir, TrainResult *r, char *err, size_t errlen) {
  char path[4300];
  snprintf(path, sizeof path, "%s/result.json", run_dir);
  memset(r, 0, sizeof *r);
  size_t len;
  const char *why;
  char *text = nao_read_file(path, &len, &why);
  if (!text) {
    FILE *f = fopen(path, "rb");  // absent (not finished) or unreadable?
    if (!f) return 1;
    fclose(f);
    return snprintf(err, errlen, "%s: cannot read: %s", path, why), -1;
  }
  JsonDoc doc;
  char jerr[256];
  int rc = json_parse(text, len, &doc, jerr, sizeof jerr);
  free(text);
  if (rc != 0) return snprintf(err, errlen, "%s: not valid JSON: %s", path, jerr), -1;
  const JsonValue *o = doc.root, *end = json_get(o, "end");
  double d[14];
  static const char *const keys[14] = {"version", "epochs", "recipe_epochs", "steps", "valid_top1", "valid_top5",
                                       "valid_loss", "valid_images", "best_valid_top1", "best_epoch", "test_top1",
                                       "test_top5", "test_loss", "test_images"};
  rc = o->kind == JSON_OBJECT ? 0 : -1;
  if (rc) snprintf(err, errlen, "%s: not a JSON object", path);
  for (int k = 0; rc == 0 && k < 14; k++) rc = get_num(o, keys[k], k >= 4 && k != 7 && k != 9 && k != 13, &d[k], path, err, errlen);
  if (rc == 0) rc = get_num(o, "seconds", 1, &r->seconds, path, err, errlen);
  if (rc == 0 && (!end || end->kind != JSON_STRING || (strcmp(end->str, "done") && strcmp(end->str, "max_steps"))))
    rc = -1, snprintf(err, errlen, "%s: \"end\" must be \"done\" or \"max_steps\"", path);
  if (rc == 0 && d[0] != TRAIN_RESULT_VERSION)
    rc = -1, snprintf(err, errlen, "%s: version %g (this program reads version %d)", path, d[0], TRAIN_RESULT_VERSION);
  if (rc == 0) {
    r->version = (int)d[0];
    snprintf(r->end, sizeof r->end, "%s", end->str);
    r->epochs = (int)d[1], r->recipe_epochs = (int)d[2], r->steps = (long long)d[3];
    r->valid_top1 = d[4], r->valid_top5 = d[5], r->valid_loss = d[6], r->valid_images = (long long)d[7];
    r->best_valid_top1 = d[8], r->best_epoch = (int)d[9];
    r->test_top1 = d[10], r->test_top5 = d[11], r->test_loss = d[12], r->test_images = (long long)d[13];
  }
  json_free(&doc);
  return rc;
}
