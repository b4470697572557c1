// tests/unit/test_data_imagenet.c — the ImageNet folder pipeline on folders
// made by tests/tools/make_imagenet_folder (and a few PNGs written here).
//
// Checks: listing (classes, extensions, nesting), batch shapes, the odd
// files (readable ones decoded, unreadable ones skipped with one warning
// each, counted per epoch, replaced so batches stay full), determinism by
// seed across worker counts, the eval transform exactly on images whose
// result is known in closed form (a constant colour; linear ramps, which
// the bilinear filter reproduces), DCT-scaled decoding against full decoding,
// and refusals of broken layouts.
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compiler/util.h"
#include "runtime/image.h"
#include "runtime/loader.h"
#include "tests/unit/data_check.h"

static char *root;

static void make_folder(const char *dir, const char *args) {
  const char *build = getenv("BUILD");
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "%s/tests/tools/make_imagenet_folder %s %s", build && *build ? build : "build", dir, args);
  if (system(cmd) != 0) {
    fprintf(stderr, "failed: %s (build it with make)\n", cmd);
    exit(1);
  }
}

static DataSource *open_folder(const char *dir, char *err, size_t errlen) {
  DataSourceOptions o = {.kind = DATA_IMAGENET, .dir = dir};
  DataSource *src = NULL;
  if (data_source_open(&o, &src, err, errlen) != 0) return NULL;
  return src;
}

typedef struct {
  int count;
  char last[1024];
  int files_named;
} Warnings;

static void collect_warn(void *user, const char *msg) {
  Warnings *w = user;
  w->count++;
  snprintf(w->last, sizeof w->last, "%s", msg);
  if (strstr(msg, "odd_")) w->files_named++;
}

static Loader *make_loader(const DataSet *ds, int train, int batch, int workers, uint64_t seed, Warnings *w) {
  LoaderOptions o;
  loader_options_default(&o, DATA_IMAGENET, train);
  o.batch = batch, o.workers = workers, o.seed = seed;
  o.warn = collect_warn, o.warn_user = w;
  Loader *ld;
  char err[1024];
  if (loader_open(ds, &o, &ld, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  return ld;
}

// A whole epoch's images and items (caller frees).
static float *run_epoch(Loader *ld, int epoch, int32_t **items, int *n_out) {
  char err[1024];
  int c, h, w, per = loader_samples_per_epoch(ld);
  loader_sample_shape(ld, &c, &h, &w);
  size_t sz = (size_t)c * h * w;
  float *all = malloc(sizeof(float) * sz * (size_t)per);
  *items = malloc(sizeof(int32_t) * (size_t)per);
  loader_start_epoch(ld, epoch, err, sizeof err);
  LoaderBatch *b;
  int n = 0, rc;
  while ((rc = loader_next(ld, &b, err, sizeof err)) == 1) {
    memcpy(all + (size_t)n * sz, b->images, sizeof(float) * sz * (size_t)b->n);
    memcpy(*items + n, b->items, sizeof(int32_t) * (size_t)b->n);
    n += b->n;
    loader_release(ld, b);
  }
  CHECK(rc == 0, "epoch %d ended with: %s", epoch, err);
  *n_out = n;
  return all;
}

// ---------------------------------------------------------------- listing and odd files

static void test_odd_folder(void) {
  char dir[4096], err[1024];
  check_path(dir, root, "odd");
  make_folder(dir, "--classes 3 --train 4 --val 2 --odd --seed 3");
  DataSource *src = open_folder(dir, err, sizeof err);
  CHECK(src != NULL, "%s", err);
  if (!src) return;
  char name[64];
  CHECK(data_source_classes(src) == 3 && !strcmp(data_source_class_name(src, 1, name, sizeof name), "n01441777"),
        "classes");
  DataSet tr, te;
  CHECK(data_set_open(src, DATA_TRAIN, 0, 0, &tr, err, sizeof err) == 0, "%s", err);
  CHECK(data_set_open(src, DATA_TEST, 0, 0, &te, err, sizeof err) == 0, "%s", err);
  CHECK(tr.n == 3 * 4 + 11 && te.n == 6, "items: train %d (12 + 11 odd, notes.txt not listed), val %d", tr.n, te.n);
  int nested = 0, upper = 0, unreadable[64] = {0}, n_unreadable = 0;
  for (int i = 0; i < tr.n; i++) {
    const char *p = data_set_item_path(&tr, i);
    nested += strcmp(p, "n01441777/sub/nested.jpg") == 0 && data_set_label(&tr, i) == 1;
    upper += strstr(p, "odd_upper.JpEg") != NULL;
    CHECK(strstr(p, "notes.txt") == NULL, "notes.txt listed");
    int bad = strstr(p, "truncated") || strstr(p, "empty") || strstr(p, "text") || strstr(p, "bitmap");
    if (bad) unreadable[i] = 1, n_unreadable++;
  }
  CHECK(nested == 1 && upper == 1 && n_unreadable == 4, "nested %d upper %d unreadable %d", nested, upper, n_unreadable);
  // Train transform: full batches of (3, 224, 224), 4 skips per epoch, one
  // warning per file in all, an end-of-epoch report.
  Warnings w = {0};
  Loader *ld = make_loader(&tr, 1, 5, 2, 7, &w);
  int c, h, wd;
  loader_sample_shape(ld, &c, &h, &wd);
  CHECK(c == 3 && h == 224 && wd == 224, "shape %dx%dx%d", c, h, wd);
  int32_t *items;
  int n;
  float *e0 = run_epoch(ld, 0, &items, &n);
  CHECK(n == tr.n, "no sample lost: %d", n);
  for (int i = 0; i < n; i++) CHECK(!unreadable[items[i]], "an unreadable item was delivered");
  LoaderStats st = loader_stats(ld);
  CHECK(st.skipped == 4 && st.samples == tr.n, "skipped %lld", st.skipped);
  CHECK(w.files_named == 4 && w.count == 5 && check_has(w.last, "epoch 0: 4 unreadable images skipped", 0, 0),
        "warnings: %d (%d naming files), last '%s'", w.count, w.files_named, w.last);
  int finite = 1;
  for (size_t i = 0; i < (size_t)n * 3 * 224 * 224; i++) finite &= isfinite(e0[i]) && fabsf(e0[i]) < 3.0f;
  CHECK(finite, "values finite and normalised");
  free(items);
  float *e1 = run_epoch(ld, 1, &items, &n);
  free(items);
  st = loader_stats(ld);
  CHECK(st.skipped == 4 && st.skipped_total == 8 && w.count == 6, "epoch 1: skipped %lld, warnings %d", st.skipped,
        w.count);
  loader_close(ld);
  // The same seed gives the same epoch with any worker count; another seed not.
  Warnings w2 = {0};
  Loader *l0 = make_loader(&tr, 1, 4, 0, 7, &w2), *l3 = make_loader(&tr, 1, 7, 3, 7, &w2),
         *lx = make_loader(&tr, 1, 5, 2, 8, &w2);
  size_t bytes = sizeof(float) * 3 * 224 * 224 * (size_t)tr.n;
  float *a = run_epoch(l0, 1, &items, &n);
  free(items);
  float *b = run_epoch(l3, 1, &items, &n);
  free(items);
  float *x = run_epoch(lx, 1, &items, &n);
  free(items);
  CHECK(!memcmp(a, e1, bytes) && !memcmp(b, e1, bytes), "same seed and epoch, same images (0, 2 and 3 workers)");
  CHECK(memcmp(x, e1, bytes) != 0 && memcmp(e0, e1, bytes) != 0, "other seeds and epochs differ");
  free(a), free(b), free(x), free(e0), free(e1);
  loader_close(l0), loader_close(l3), loader_close(lx);
  // Eval transform on val: (3, 224, 224), no skips.
  Warnings w3 = {0};
  Loader *ev = make_loader(&te, 0, 4, 2, 0, &w3);
  float *v = run_epoch(ev, 0, &items, &n);
  CHECK(n == 6 && w3.count == 0, "val: %d images, %d warnings", n, w3.count);
  free(v), free(items);
  loader_close(ev);
  data_set_close(&tr);
  data_set_close(&te);
  data_source_close(src);
}

// ---------------------------------------------------------------- exact eval transform

static void write_png(const char *path, const uint8_t *rgb, int w, int h) {
  png_image im;
  memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = (png_uint_32)w, im.height = (png_uint_32)h;
  im.format = PNG_FORMAT_RGB;
  if (!png_image_write_to_file(&im, path, 0, rgb, 0, NULL)) {
    fprintf(stderr, "%s: %s\n", path, im.message);
    exit(1);
  }
}

// A one-class folder holding one image under val/.
static DataSet one_image(const char *name, const uint8_t *rgb, int w, int h, DataSource **src) {
  char dir[4096], path[4300], err[1024];
  snprintf(dir, sizeof dir, "%s/%s", root, name);
  mkdir(dir, 0755);
  snprintf(path, sizeof path, "%s/val", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/val/c", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/val/c/img.JPEG", dir);  // a PNG, named like ImageNet's
  write_png(path, rgb, w, h);
  *src = open_folder(dir, err, sizeof err);
  DataSet ds = {0};
  CHECK(*src && data_set_open(*src, DATA_TEST, 0, 0, &ds, err, sizeof err) == 0, "%s", err);
  return ds;
}

static float *eval_sample(const DataSet *ds, AugmentSpec *a) {
  float *out = malloc(sizeof(float) * 3 * 224 * 224);
  DataScratch *s = data_scratch_new();
  int32_t label;
  char msg[1024];
  CHECK(data_sample(ds, 0, a, 0, 0, out, &label, s, msg, sizeof msg) == DATA_SAMPLE_OK && label == 0, "%s", msg);
  data_scratch_free(s);
  return out;
}

static void test_eval_exact(void) {
  AugmentSpec a;
  augment_preset(&a, DATA_IMAGENET, 0);
  DataSource *src;
  // A constant colour: every output pixel is (v / 255 - mean) / std.
  int w = 300, h = 200;
  uint8_t *rgb = malloc((size_t)w * h * 3);
  for (int i = 0; i < w * h; i++) rgb[3 * i] = 200, rgb[3 * i + 1] = 100, rgb[3 * i + 2] = 50;
  DataSet ds = one_image("const", rgb, w, h, &src);
  float *out = eval_sample(&ds, &a);
  double maxerr = 0;
  const double v[3] = {200, 100, 50};
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < 224 * 224; i++)
      maxerr = fmax(maxerr, fabs(out[c * 224 * 224 + i] - (v[c] / 255.0 - a.mean[c]) / a.std[c]));
  CHECK(maxerr < 2e-6, "constant colour: max error %g", maxerr);
  free(out), free(rgb);
  data_set_close(&ds), data_source_close(src);

  // Ramps at 256x256: resize is the identity, the centre crop starts at 16:
  // output (x, y) = ramp(x + 16, y + 16).
  w = h = 256;
  rgb = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = rgb + 3 * (y * w + x);
      p[0] = (uint8_t)x, p[1] = (uint8_t)y, p[2] = (uint8_t)(255 - x);
    }
  ds = one_image("ramp256", rgb, w, h, &src);
  out = eval_sample(&ds, &a);
  maxerr = 0;
  for (int y = 0; y < 224; y++)
    for (int x = 0; x < 224; x++) {
      double want[3] = {x + 16, y + 16, 255 - (x + 16)};
      for (int c = 0; c < 3; c++)
        maxerr = fmax(maxerr, fabs(out[(c * 224 + y) * 224 + x] - (want[c] / 255.0 - a.mean[c]) / a.std[c]));
    }
  CHECK(maxerr < 2e-5, "256x256 ramp: max error %g", maxerr);
  free(out), free(rgb);
  data_set_close(&ds), data_source_close(src);

  // A 510x384 image whose red channel is x / 2 (integer division): the
  // short side 384 -> 256 (scale 1.5), the long side int(256 * 510 / 384) =
  // 340 (scale 1.5), crop offsets round(58) = 58 and 16. Row 100 of the
  // output against the triangle filter of support 1.5 applied by hand.
  w = 510, h = 384;
  rgb = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint8_t *p = rgb + 3 * (y * w + x);
      p[0] = (uint8_t)(x / 2), p[1] = (uint8_t)(y * 2 / 3), p[2] = 7;
    }
  ds = one_image("ramp510", rgb, w, h, &src);
  out = eval_sample(&ds, &a);
  maxerr = 0;
  for (int x = 0; x < 224; x += 5) {
    double center = (x + 58 + 0.5) * 1.5, sum = 0, acc = 0;
    for (int k = (int)(center - 1.5 + 0.5); k < (int)(center + 1.5 + 0.5); k++) {
      double t = fabs((k - center + 0.5) / 1.5), wk = t < 1 ? 1 - t : 0;
      sum += wk, acc += wk * (k / 2);
    }
    double want = (acc / sum / 255.0 - a.mean[0]) / a.std[0];
    maxerr = fmax(maxerr, fabs(out[100 * 224 + x] - want));
  }
  CHECK(maxerr < 2e-5, "510x384 image, red channel: max error %g against a hand-computed triangle filter", maxerr);
  free(out), free(rgb);
  data_set_close(&ds), data_source_close(src);
}

// ---------------------------------------------------------------- DCT scaling

static void test_dct_scaling(void) {
  char dir[4096], err[1024];
  check_path(dir, root, "big");
  make_folder(dir, "--classes 2 --train 3 --val 3 --size 1200x900 --noise 2 --seed 5");
  DataSource *src = open_folder(dir, err, sizeof err);
  DataSet ds;
  CHECK(src && data_set_open(src, DATA_TEST, 0, 0, &ds, err, sizeof err) == 0, "%s", err);
  if (!src) return;
  DataScratch *s = data_scratch_new();
  float *full = malloc(sizeof(float) * 3 * 224 * 224), *scaled = malloc(sizeof(float) * 3 * 224 * 224);
  for (int train = 0; train < 2; train++) {
    AugmentSpec a;
    augment_preset(&a, DATA_IMAGENET, train);
    a.jitter[0] = a.jitter[1] = a.jitter[2] = a.jitter[3] = 0;
    double worst = 0;
    for (int item = 0; item < ds.n; item++)
      for (uint64_t key = 0; key < (train ? 6u : 1u); key++) {
        int32_t l;
        a.dct_scale = 0;
        data_sample(&ds, item, &a, 11, key, full, &l, s, err, sizeof err);
        a.dct_scale = 1;
        data_sample(&ds, item, &a, 11, key, scaled, &l, s, err, sizeof err);
        double d = 0;
        for (int i = 0; i < 3 * 224 * 224; i++) d += fabs(full[i] - scaled[i]);
        worst = fmax(worst, d / (3 * 224 * 224));
      }
    // Same crops, a smaller decode: small differences only (a misplaced
    // crop would differ by ~0.5 on these images).
    CHECK(worst < 0.03, "%s: DCT-scaled decode differs by %.4f on average", train ? "train" : "eval", worst);
    printf("DCT scaling, %s transform: mean |difference| at most %.4f (normalised units)\n", train ? "train" : "eval",
           worst);
  }
  free(full), free(scaled);
  data_scratch_free(s);
  data_set_close(&ds);
  data_source_close(src);
}

// ---------------------------------------------------------------- mutated files

// A random plan: some DCT scale and region, as the pipeline would ask.
static int random_plan(void *user, int w, int h, int can, ImgRequest *q) {
  Rng *r = user;
  q->scale_num = can ? 1 << rng_below(r, 4) : 8;
  int fw = img_scaled_size(w, q->scale_num), fh = img_scaled_size(h, q->scale_num);
  q->x0 = (int)rng_below(r, (uint64_t)fw), q->y0 = (int)rng_below(r, (uint64_t)fh);
  q->w = 1 + (int)rng_below(r, (uint64_t)fw), q->h = 1 + (int)rng_below(r, (uint64_t)fh);
  return 0;
}

// Every readable odd file with random bytes changed, cut or extended: each
// decodes or fails with a message; nothing crashes (run under ASan/UBSan).
static void test_mutations(void) {
  char dir[4096];
  check_path(dir, root, "odd");
  const char *names[] = {"train/n01440764/n01440764_train_00000.JPEG", "train/n01440764/odd_png_named.JPEG",
                         "train/n01441777/odd_cmyk.JPEG", "train/n01442790/odd_gray.JPEG",
                         "train/n01440764/odd_progressive.JPEG", "train/n01441777/odd_rgba.png"};
  Rng r;
  rng_seed(&r, 2024);
  ImgBuf im = {0};
  int ok = 0, failed = 0, no_message = 0;
  for (size_t f = 0; f < sizeof names / sizeof names[0]; f++) {
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", dir, names[f]);
    size_t len;
    const char *ferr;
    uint8_t *orig = (uint8_t *)nao_read_file(path, &len, &ferr);
    CHECK(orig != NULL, "%s: %s", path, orig ? "" : ferr);
    if (!orig) continue;
    uint8_t *buf = malloc(len + 64);
    for (int trial = 0; trial < 60; trial++) {
      memcpy(buf, orig, len);
      size_t n = len;
      int kind = trial % 3;
      if (kind == 0)
        for (int k = 0; k < 1 + trial % 7; k++) buf[rng_below(&r, len)] ^= (uint8_t)(1 + rng_below(&r, 255));
      else if (kind == 1) n = rng_below(&r, len);
      else {
        for (int k = 0; k < 3; k++) buf[8 + rng_below(&r, len < 64 ? 1 : 56)] = (uint8_t)rng_u64(&r);
        memcpy(buf + len, orig, len < 64 ? len : 64), n = len + (len < 64 ? len : 64);
      }
      char msg[512] = "";
      if (img_decode(buf, n, random_plan, &r, &im, msg, sizeof msg) == 0) ok++;
      else failed++, no_message += msg[0] == 0;
    }
    free(buf);
    free(orig);
  }
  CHECK(failed > 0 && ok > 0 && no_message == 0, "mutations: %d decoded, %d refused, %d without a message", ok, failed,
        no_message);
  printf("mutated images: %d decoded, %d refused with a message\n", ok, failed);
  img_buf_free(&im);
}

// ---------------------------------------------------------------- refusals

static void test_refusals(void) {
  char dir[4096], path[4300], err[1024];
  check_path(dir, root, "empty");
  mkdir(dir, 0755);
  CHECK(open_folder(dir, err, sizeof err) == NULL && check_has(err, dir, "no train/ or val/ folder", 0), "%s", err);
  snprintf(path, sizeof path, "%s/train", dir);
  mkdir(path, 0755);
  CHECK(open_folder(dir, err, sizeof err) == NULL && check_has(err, "no class folders", 0, 0), "%s", err);
  snprintf(path, sizeof path, "%s/train/a", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/train/a/readme.txt", dir);
  check_write_file(path, "x", 1);
  DataSource *src = open_folder(dir, err, sizeof err);
  DataSet ds;
  CHECK(src && data_set_open(src, DATA_TRAIN, 0, 0, &ds, err, sizeof err) != 0 &&
            check_has(err, "class folder 'a' holds no image", 0, 0), "%s", err);
  data_source_close(src);
  // Every file unreadable: the loader reports it instead of looping.
  snprintf(path, sizeof path, "%s/train/a/x.jpg", dir);
  check_write_file(path, "garbage", 7);
  snprintf(path, sizeof path, "%s/train/a/y.png", dir);
  check_write_file(path, "\x89PNG\r\n\x1a\n....", 12);
  src = open_folder(dir, err, sizeof err);
  CHECK(src && data_set_open(src, DATA_TRAIN, 0, 0, &ds, err, sizeof err) == 0, "%s", err);
  Warnings w = {0};
  Loader *ld = make_loader(&ds, 1, 2, 1, 0, &w);
  LoaderBatch *b;
  loader_start_epoch(ld, 0, err, sizeof err);
  CHECK(loader_next(ld, &b, err, sizeof err) == -1 && check_has(err, "none of the 2 images", 0, 0), "%s", err);
  CHECK(w.count == 2, "one warning per unreadable file: %d", w.count);
  loader_close(ld);
  data_set_close(&ds);
  // val/ with a class train/ does not have.
  snprintf(path, sizeof path, "%s/val", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/val/zebra", dir);
  mkdir(path, 0755);
  CHECK(data_set_open(src, DATA_TEST, 0, 0, &ds, err, sizeof err) != 0 &&
            check_has(err, "class folder 'zebra' is not among the train classes", 0, 0), "%s", err);
  data_source_close(src);
  // An eval spec without an output size.
  src = open_folder(dir, err, sizeof err);
  data_set_open(src, DATA_TRAIN, 0, 0, &ds, err, sizeof err);
  LoaderOptions o;
  loader_options_default(&o, DATA_IMAGENET, 0);
  o.aug.crop = 0;
  CHECK(loader_open(&ds, &o, &ld, err, sizeof err) != 0 && check_has(err, "crop", 0, 0), "%s", err);
  data_set_close(&ds);
  data_source_close(src);
}

int main(void) {
  root = check_tmpdir("imagenet");
  test_odd_folder();
  test_eval_exact();
  test_dct_scaling();
  test_mutations();
  test_refusals();
  check_rmtree(root);
  free(root);
  return check_report("test_data_imagenet");
}
