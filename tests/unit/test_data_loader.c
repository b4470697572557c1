// tests/unit/test_data_loader.c — splits, epochs, sharding, determinism and
// the CIFAR augmentation, through the loader.
//
// The CIFAR files are written here with distinct random pixels, so every
// augmented sample can be explained independently: the test searches all 162
// (top, left, flip) crops for the one that reproduces it, and the pixels
// that no crop explains must be exactly a cutout square clipped at the
// borders. Determinism is checked by comparing whole epochs byte for byte
// across worker counts, prefetch depths, restarts and shardings.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/loader.h"
#include "runtime/rng.h"
#include "tests/unit/data_check.h"

enum { REC = 3073, NREC = 20, NTRAIN = 5 * NREC, IMG = 3 * 32 * 32 };

static char *root;
static uint8_t raw[6][NREC][REC];

static void write_cifar(void) {
  Rng r;
  rng_seed(&r, 12345);
  for (int f = 0; f < 6; f++) {
    for (int i = 0; i < NREC; i++) {
      raw[f][i][0] = (uint8_t)rng_below(&r, 10);
      for (int p = 1; p < REC; p++) raw[f][i][p] = (uint8_t)rng_below(&r, 256);
    }
    char path[4096];
    if (f < 5) snprintf(path, sizeof path, "%s/data_batch_%d.bin", root, f + 1);
    else snprintf(path, sizeof path, "%s/test_batch.bin", root);
    check_write_file(path, raw[f], sizeof raw[f]);
  }
}

static DataSource *open_cifar(void) {
  DataSourceOptions o = {.kind = DATA_CIFAR10, .dir = root, .cifar_records = NREC};
  DataSource *src;
  char err[1024];
  if (data_source_open(&o, &src, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  return src;
}

// One whole epoch: images, labels and items in delivery order.
typedef struct {
  int n;
  float *img;
  int32_t *label, *item;
  int batches, last_n;
} Epoch;

static Epoch run_epoch(Loader *ld, int epoch) {
  char err[1024];
  Epoch e = {0};
  int per = loader_samples_per_epoch(ld);
  e.img = malloc(sizeof(float) * IMG * (size_t)(per + 1));
  e.label = malloc(sizeof(int32_t) * (size_t)(per + 1));
  e.item = malloc(sizeof(int32_t) * (size_t)(per + 1));
  CHECK(loader_start_epoch(ld, epoch, err, sizeof err) == 0, "%s", err);
  LoaderBatch *b;
  int rc;
  while ((rc = loader_next(ld, &b, err, sizeof err)) == 1) {
    CHECK(b->index == e.batches && b->epoch == epoch, "batch order");
    CHECK(e.n + b->n <= per, "too many samples");
    if (e.n + b->n > per) break;
    memcpy(e.img + (size_t)e.n * IMG, b->images, sizeof(float) * IMG * (size_t)b->n);
    memcpy(e.label + e.n, b->labels, sizeof(int32_t) * (size_t)b->n);
    memcpy(e.item + e.n, b->items, sizeof(int32_t) * (size_t)b->n);
    e.n += b->n;
    e.last_n = b->n;
    e.batches++;
    loader_release(ld, b);
  }
  CHECK(rc == 0, "end of epoch: %s", rc ? err : "");
  CHECK(e.n == per, "%d samples of %d", e.n, per);
  return e;
}

static void epoch_free(Epoch *e) {
  free(e->img);
  free(e->label);
  free(e->item);
}

static int epoch_equal(const Epoch *a, const Epoch *b) {
  return a->n == b->n && !memcmp(a->img, b->img, sizeof(float) * IMG * (size_t)a->n) &&
         !memcmp(a->label, b->label, sizeof(int32_t) * (size_t)a->n) &&
         !memcmp(a->item, b->item, sizeof(int32_t) * (size_t)a->n);
}

static Loader *make_loader(const DataSet *ds, int batch, int workers, int prefetch, int rank, int world, int pad) {
  LoaderOptions o;
  loader_options_default(&o, DATA_CIFAR10, 1);
  o.batch = batch, o.workers = workers, o.prefetch = prefetch;
  o.rank = rank, o.world = world, o.pad_shards = pad;
  o.seed = 99;
  Loader *ld;
  char err[1024];
  if (loader_open(ds, &o, &ld, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  return ld;
}

// ---------------------------------------------------------------- splits

static void test_splits(DataSource *src) {
  DataSet tr, va, tr2, va2;
  char err[1024];
  CHECK(data_set_open(src, DATA_TRAIN, 15, 7, &tr, err, sizeof err) == 0, "%s", err);
  CHECK(data_set_open(src, DATA_VALID, 15, 7, &va, err, sizeof err) == 0, "%s", err);
  CHECK(tr.n == NTRAIN - 15 && va.n == 15, "sizes %d %d", tr.n, va.n);
  int seen[NTRAIN] = {0};
  for (int i = 0; i < tr.n; i++) seen[tr.items[i]]++;
  for (int i = 0; i < va.n; i++) seen[va.items[i]] += 2;
  int ok = 1;
  for (int i = 0; i < NTRAIN; i++) ok &= seen[i] == 1 || seen[i] == 2;
  CHECK(ok, "train and valid are disjoint and cover the train part");
  for (int i = 1; i < va.n; i++) CHECK(va.items[i] > va.items[i - 1], "valid items increasing");
  data_set_open(src, DATA_VALID, 15, 7, &va2, err, sizeof err);
  CHECK(!memcmp(va.items, va2.items, sizeof(int32_t) * 15), "same seed, same split");
  data_set_close(&va2);
  data_set_open(src, DATA_VALID, 15, 8, &va2, err, sizeof err);
  CHECK(memcmp(va.items, va2.items, sizeof(int32_t) * 15) != 0, "another seed, another split");
  data_set_close(&va2);
  CHECK_ERR(data_set_open(src, DATA_VALID, 0, 7, &tr2, err, sizeof err), err, root, "validation size 0", NULL);
  CHECK_ERR(data_set_open(src, DATA_TRAIN, NTRAIN, 7, &tr2, err, sizeof err), err, "validation size 100 out of range",
            NULL, NULL);
  // The labels a split reports are the file's.
  for (int i = 0; i < va.n; i++) {
    int it = va.items[i];
    CHECK(data_set_label(&va, it) == raw[it / NREC][it % NREC][0], "label of item %d", it);
  }
  data_set_close(&tr);
  data_set_close(&va);
}

// ---------------------------------------------------------------- augmentation

// Finds the crop that explains sample `out` of item; checks the cutout.
// Returns top * 9 + left + 81 * flip, or -1.
static int explain(const float *out, int item, const AugmentSpec *a, int *cut_area) {
  const uint8_t *px = raw[item / NREC][item % NREC] + 1;
  for (int cand = 0; cand < 162; cand++) {
    int top = cand % 81 / 9, left = cand % 9, flip = cand / 81;
    int y1 = 32, y2 = -1, x1 = 32, x2 = -1, bad = 0, zeros = 0;
    for (int c = 0; c < 3 && !bad; c++)
      for (int y = 0; y < 32 && !bad; y++)
        for (int x = 0; x < 32; x++) {
          int sy = y + top - 4, sx = (flip ? 31 - x : x) + left - 4;
          float v = sy < 0 || sy > 31 || sx < 0 || sx > 31 ? 0.0f : px[c * 1024 + sy * 32 + sx] / 255.0f;
          float want = (v - a->mean[c]) / a->std[c], got = out[c * 1024 + y * 32 + x];
          if (got == want) continue;
          if (got != 0.0f) { bad = 1; break; }
          zeros++;
          if (y < y1) y1 = y;
          if (y >= y2) y2 = y + 1;
          if (x < x1) x1 = x;
          if (x >= x2) x2 = x + 1;
        }
    if (bad) continue;
    // The zeros: one rectangle in every channel, of a 16-square clipped at borders.
    int w = x2 - x1, h = y2 - y1;
    if (zeros == 0 || zeros != 3 * w * h) return -1;
    int okx = (w == 16) || (w < 16 && (x1 == 0 || x2 == 32) && w >= 8);
    int oky = (h == 16) || (h < 16 && (y1 == 0 || y2 == 32) && h >= 8);
    if (!okx || !oky) return -1;
    *cut_area = w * h;
    return cand;
  }
  return -1;
}

static void test_augmentation(DataSource *src) {
  DataSet ds;
  char err[1024];
  data_set_open(src, DATA_TRAIN, 0, 0, &ds, err, sizeof err);
  Loader *ld = make_loader(&ds, 32, 2, 2, 0, 1, 1);
  AugmentSpec spec;
  augment_preset(&spec, DATA_CIFAR10, 1);
  int hist_off[2][9] = {{0}}, flips = 0, total = 0, unexplained = 0, full_cut = 0;
  for (int epoch = 0; epoch < 20; epoch++) {
    Epoch e = run_epoch(ld, epoch);
    for (int i = 0; i < e.n; i++) {
      int area = 0, cand = explain(e.img + (size_t)i * IMG, e.item[i], &spec, &area);
      if (cand < 0) {
        unexplained++;
        continue;
      }
      hist_off[0][cand % 81 / 9]++;
      hist_off[1][cand % 9]++;
      flips += cand / 81;
      full_cut += area == 256;
      total++;
      CHECK(e.label[i] == raw[e.item[i] / NREC][e.item[i] % NREC][0], "label follows the item");
    }
    epoch_free(&e);
  }
  CHECK(unexplained == 0, "%d samples are not a padded crop + flip + cutout of their item", unexplained);
  // 2000 samples: each offset ~222, flips ~1000, full cutout squares
  // P = (17/32)^2 = 0.28 -> ~564.
  for (int k = 0; k < 9; k++)
    CHECK(hist_off[0][k] > 150 && hist_off[0][k] < 300 && hist_off[1][k] > 150 && hist_off[1][k] < 300,
          "offset %d: %d/%d times", k, hist_off[0][k], hist_off[1][k]);
  CHECK(flips > 880 && flips < 1120, "%d flips of %d", flips, total);
  CHECK(full_cut > 470 && full_cut < 660, "%d unclipped cutouts of %d", full_cut, total);
  loader_close(ld);
  data_set_close(&ds);
}

// ---------------------------------------------------------------- epochs and determinism

static void test_epochs(DataSource *src) {
  DataSet ds;
  char err[1024];
  data_set_open(src, DATA_TRAIN, 0, 0, &ds, err, sizeof err);
  Loader *ref = make_loader(&ds, 16, 0, 2, 0, 1, 1);
  CHECK(loader_batches_per_epoch(ref) == 7 && loader_samples_per_epoch(ref) == NTRAIN, "7 batches");
  Epoch e0 = run_epoch(ref, 0), e1 = run_epoch(ref, 1), e0b = run_epoch(ref, 0);
  CHECK(e0.batches == 7 && e0.last_n == 4, "last batch kept, partial: %d batches, last %d", e0.batches, e0.last_n);
  int seen[NTRAIN] = {0}, perm = 1;
  for (int i = 0; i < e0.n; i++) seen[e0.item[i]]++;
  for (int i = 0; i < NTRAIN; i++) perm &= seen[i] == 1;
  CHECK(perm, "an epoch visits every item once");
  CHECK(memcmp(e0.item, e1.item, sizeof(int32_t) * NTRAIN) != 0, "epochs are shuffled differently");
  CHECK(epoch_equal(&e0, &e0b), "an epoch repeats exactly");
  // Worker counts and prefetch depths change nothing.
  int configs[][2] = {{1, 2}, {2, 2}, {3, 4}, {4, 3}};
  for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
    Loader *ld = make_loader(&ds, 16, configs[c][0], configs[c][1], 0, 1, 1);
    Epoch x = run_epoch(ld, 1);
    CHECK(epoch_equal(&x, &e1), "workers %d prefetch %d: epoch differs", configs[c][0], configs[c][1]);
    epoch_free(&x);
    loader_close(ld);
  }
  // drop_last drops the partial batch.
  LoaderOptions o;
  loader_options_default(&o, DATA_CIFAR10, 1);
  o.batch = 16, o.drop_last = 1, o.workers = 1, o.seed = 99;
  Loader *dl;
  loader_open(&ds, &o, &dl, err, sizeof err);
  CHECK(loader_batches_per_epoch(dl) == 6 && loader_samples_per_epoch(dl) == 96, "drop_last");
  Epoch d = run_epoch(dl, 0);
  CHECK(d.n == 96 && !memcmp(d.img, e0.img, sizeof(float) * IMG * 96), "drop_last keeps the full batches");
  epoch_free(&d);
  loader_close(dl);
  epoch_free(&e0);
  epoch_free(&e1);
  epoch_free(&e0b);
  loader_close(ref);
  data_set_close(&ds);
}

static void test_restart_and_holding(DataSource *src) {
  DataSet ds;
  char err[1024];
  data_set_open(src, DATA_TRAIN, 0, 0, &ds, err, sizeof err);
  Loader *ref = make_loader(&ds, 10, 0, 2, 0, 1, 1);
  Epoch want = run_epoch(ref, 3);
  Loader *ld = make_loader(&ds, 10, 2, 2, 0, 1, 1);
  LoaderBatch *a, *b, *c;
  CHECK(loader_next(ld, &a, err, sizeof err) == -1 && check_has(err, "before loader_start_epoch", 0, 0), "%s", err);
  loader_start_epoch(ld, 3, err, sizeof err);
  CHECK(loader_next(ld, &a, err, sizeof err) == 1 && loader_next(ld, &b, err, sizeof err) == 1, "two batches");
  CHECK(loader_next(ld, &c, err, sizeof err) == -1 && check_has(err, "slots are held", 0, 0), "holding: %s", err);
  loader_release(ld, a);
  CHECK(loader_next(ld, &c, err, sizeof err) == 1 && c->index == 2, "after a release");
  CHECK(!memcmp(c->images, want.img + 20 * IMG, sizeof(float) * IMG * 10), "third batch");
  // Restart in the middle of the epoch, with batches held: the same epoch again.
  Epoch again = run_epoch(ld, 3);
  CHECK(epoch_equal(&again, &want), "restarted epoch equals a fresh one");
  epoch_free(&again);
  // Resuming at batch 7 gives the epoch's batches 7, 8, 9 and nothing else.
  CHECK(loader_start_epoch_at(ld, 3, 7, err, sizeof err) == 0, "%s", err);
  int k = 7, same = 1, rc;
  while ((rc = loader_next(ld, &c, err, sizeof err)) == 1) {
    same &= c->index == k && !memcmp(c->images, want.img + (size_t)k * 10 * IMG, sizeof(float) * IMG * (size_t)c->n) &&
            !memcmp(c->labels, want.label + k * 10, sizeof(int32_t) * (size_t)c->n);
    k++;
    loader_release(ld, c);
  }
  CHECK(rc == 0 && same && k == 10, "resumed epoch: batches 7..%d, same %d", k - 1, same);
  CHECK_ERR(loader_start_epoch_at(ld, 3, 11, err, sizeof err), err, "batch 11 out of range", NULL, NULL);
  epoch_free(&want);
  loader_close(ld);
  loader_close(ref);
  data_set_close(&ds);
}

static void test_sharding(DataSource *src) {
  DataSet ds;
  char err[1024];
  data_set_open(src, DATA_TRAIN, 0, 0, &ds, err, sizeof err);
  Loader *one = make_loader(&ds, 7, 1, 2, 0, 1, 1);
  Epoch all = run_epoch(one, 5);
  for (int pad = 1; pad >= 0; pad--) {
    Epoch r[3];
    int total = 0;
    for (int k = 0; k < 3; k++) {
      Loader *ld = make_loader(&ds, 7, 2, 2, k, 3, pad);
      r[k] = run_epoch(ld, 5);
      total += r[k].n;
      loader_close(ld);
    }
    CHECK(pad ? r[0].n == 34 && r[1].n == 34 && r[2].n == 34 : r[0].n == 34 && r[1].n == 33 && r[2].n == 33,
          "shard sizes %d %d %d (pad %d)", r[0].n, r[1].n, r[2].n, pad);
    // Interleaving the ranks gives the one-process order (wrapped when padded),
    // and every sample is the very same tensor as there.
    int ok = 1;
    for (int g = 0; g < total; g++) {
      const Epoch *e = &r[g % 3];
      int k = g / 3, a = g % NTRAIN;
      ok &= e->item[k] == all.item[a] && e->label[k] == all.label[a] &&
            !memcmp(e->img + (size_t)k * IMG, all.img + (size_t)a * IMG, sizeof(float) * IMG);
    }
    CHECK(ok, "shards of one shuffled order (pad %d)", pad);
    for (int k = 0; k < 3; k++) epoch_free(&r[k]);
  }
  epoch_free(&all);
  loader_close(one);
  data_set_close(&ds);
}

// ---------------------------------------------------------------- memory provider, synthetic

typedef struct {
  int allocs, frees;
  size_t bytes;
} Provider;

static void *prov_alloc(void *user, size_t n) {
  Provider *p = user;
  p->allocs++;
  p->bytes += n;
  return malloc(n);
}

static void prov_free(void *user, void *q, size_t n) {
  Provider *p = user;
  p->frees++;
  p->bytes -= n;
  free(q);
}

static void test_provider_and_synthetic(void) {
  DataSourceOptions so = {.kind = DATA_SYNTHETIC, .channels = 3, .height = 8, .width = 5, .classes = 7,
                          .train_count = 50, .test_count = 10, .seed = 4};
  DataSource *src;
  char err[1024];
  CHECK(data_source_open(&so, &src, err, sizeof err) == 0, "%s", err);
  DataSet ds;
  data_set_open(src, DATA_TRAIN, 0, 0, &ds, err, sizeof err);
  Provider prov = {0};
  LoaderOptions o;
  loader_options_default(&o, DATA_SYNTHETIC, 1);
  o.batch = 20, o.workers = 2, o.prefetch = 3;
  o.alloc = prov_alloc, o.free_fn = prov_free, o.alloc_user = &prov;
  Loader *ld;
  CHECK(loader_open(&ds, &o, &ld, err, sizeof err) == 0, "%s", err);
  CHECK(prov.allocs == 6 && prov.bytes == 3 * (20 * 120 * 4 + 20 * 4), "provider: %d allocs, %zu bytes", prov.allocs,
        prov.bytes);
  loader_start_epoch(ld, 0, err, sizeof err);
  LoaderBatch *b;
  double sum = 0, sum2 = 0;
  int n = 0, in_range = 1;
  while (loader_next(ld, &b, err, sizeof err) == 1) {
    for (int i = 0; i < b->n * 120; i++) sum += b->images[i], sum2 += (double)b->images[i] * b->images[i];
    for (int i = 0; i < b->n; i++) in_range &= b->labels[i] >= 0 && b->labels[i] < 7 &&
                                               b->labels[i] == data_set_label(&ds, b->items[i]);
    n += b->n;
    loader_release(ld, b);
  }
  CHECK(n == 50 && in_range, "synthetic labels");
  double mean = sum / (n * 120), var = sum2 / (n * 120) - mean * mean;
  CHECK(mean > -0.1 && mean < 0.1 && var > 0.9 && var < 1.1, "synthetic mean %.3f var %.3f", mean, var);
  loader_close(ld);
  CHECK(prov.frees == 6 && prov.bytes == 0, "provider frees");
  // The same seed gives the same item; another seed another one.
  DataScratch *s = data_scratch_new();
  float x[120], y[120];
  int32_t lx, ly;
  data_sample(&ds, 3, &o.aug, 0, 0, x, &lx, s, err, sizeof err);
  data_sample(&ds, 3, &o.aug, 1, 1, y, &ly, s, err, sizeof err);
  CHECK(!memcmp(x, y, sizeof x) && lx == ly, "synthetic items are fixed by the source seed");
  DataSource *src2;
  so.seed = 5;
  data_source_open(&so, &src2, err, sizeof err);
  DataSet ds2;
  data_set_open(src2, DATA_TRAIN, 0, 0, &ds2, err, sizeof err);
  data_sample(&ds2, 3, &o.aug, 0, 0, y, &ly, s, err, sizeof err);
  CHECK(memcmp(x, y, sizeof x) != 0, "another seed, other data");
  data_scratch_free(s);
  data_set_close(&ds2);
  data_source_close(src2);
  data_set_close(&ds);
  // Bad options are refused.
  so.classes = 0;
  CHECK_ERR(data_source_open(&so, &src2, err, sizeof err), err, "synthetic", "0 classes", NULL);
  data_source_close(src);
}

int main(void) {
  root = check_tmpdir("loader");
  write_cifar();
  DataSource *src = open_cifar();
  test_splits(src);
  test_augmentation(src);
  test_epochs(src);
  test_restart_and_holding(src);
  test_sharding(src);
  test_provider_and_synthetic();
  data_source_close(src);
  check_rmtree(root);
  free(root);
  return check_report("test_data_loader");
}
