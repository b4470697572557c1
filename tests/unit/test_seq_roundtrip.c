// tests/unit/test_seq_roundtrip.c — token sequence -> .nao -> token sequence is exact.
//
// For thousands of random valid sequences (the 5-op vocabulary, the 11-op
// vocabulary and both mixed; B = 1..16; inputs anywhere in 0..b+1) with
// random valid settings (every preset and explicit inputs; reals with all 53
// bits of mantissa), the sequence is read with netspec_parse_arch, written with
// write_nao, checked by the front end, and formatted again with
// netspec_format_arch: the string and every setting must come back exactly.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "compiler/emit_seq.h"
#include "compiler/frontend.h"
#include "compiler/write_nao.h"
#include "tests/unit/check.h"
#include "tests/unit/spec_eq.h"

typedef struct {
  uint64_t s;
} Rng;

static uint64_t rng_next(Rng *r) {  // splitmix64
  uint64_t z = (r->s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static int rng_int(Rng *r, int lo, int hi) { return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1)); }
static double rng_unit(Rng *r) { return (double)(rng_next(r) >> 11) / 9007199254740992.0; }  // [0, 1)

// A random valid arch string: vocab 5 (ops 0-4), 11 (ops 5-15) or 16 (all).
static void random_seq(Rng *r, int b, int vocab, char *out, size_t cap) {
  size_t len = 0;
  out[0] = '\0';
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < b; i++)
      for (int k = 0; k < 2; k++) {
        int in = rng_int(r, 0, i + 1);
        int op = vocab == 5 ? rng_int(r, 0, 4) : vocab == 11 ? rng_int(r, 5, 15) : rng_int(r, 0, 15);
        len += (size_t)snprintf(out + len, cap - len, "%s%d %d", len ? " " : "", in, op);
      }
}

static void random_settings(Rng *r, NetSpec *ns) {
  static const DatasetPreset presets[] = {DATASET_CIFAR10, DATASET_IMAGENET, DATASET_FASHION_MNIST, DATASET_NONE};
  DatasetPreset d = presets[rng_int(r, 0, 3)];
  if (d != DATASET_NONE) {
    netspec_apply_dataset(ns, d);
  } else {  // explicit: multiples of 32 fit both stems
    ns->dataset = DATASET_NONE;
    ns->in_channels = rng_int(r, 1, NAO_MAX_IN_CHANNELS);
    ns->in_height = 32 * rng_int(r, 1, 4);
    ns->in_width = 32 * rng_int(r, 1, 4);
    ns->classes = rng_int(r, 2, 2000);
    ns->stem = rng_int(r, 0, 1) ? STEM_IMAGENET : STEM_CIFAR;
  }
  ns->channels = 2 * rng_int(r, 1, 64);  // even: the imagenet stem needs it
  ns->layers = rng_int(r, 1, 6);
  // The auxiliary head fits the presets; explicit sizes go without it.
  ns->aux_weight = d == DATASET_NONE || rng_int(r, 0, 3) == 0 ? 0.0 : rng_unit(r) * 100.0;
  ns->drop_path_keep = rng_int(r, 0, 3) == 0 ? 1.0 : 1.0 - rng_unit(r);  // (0, 1]
  ns->dropout_keep = 1.0 - rng_unit(r);
  if (rng_int(r, 0, 1)) snprintf(ns->name, sizeof ns->name, "net_%d", rng_int(r, 0, 99999));
}

static int roundtrip(Rng *r, int b, int vocab) {
  char seq[NAO_ARCH_TEXT_MAX], back[NAO_ARCH_TEXT_MAX], err[256], why[200];
  random_seq(r, b, vocab, seq, sizeof seq);
  NetSpec ns;
  netspec_init(&ns);
  random_settings(r, &ns);
  if (netspec_parse_arch(&ns, seq, err, sizeof err) != 0) {
    CHECK(0, "netspec_parse_arch rejected a valid sequence: %s: %s", seq, err);
    return 0;
  }
  StrBuf text = {0}, diags = {0};
  write_nao(&ns, "round trip", &text);
  NetSpec got;
  int rc = nao_frontend_text_sink("rt.nao", text.data, text.len, &got, (DiagSink){NULL, &diags, 0});
  int ok = rc == 0;
  CHECK(ok, "write_nao text does not check:\n%s\n%s", text.data, diags.data ? diags.data : "");
  if (ok) {
    netspec_format_arch(&got, back, sizeof back);
    int same_seq = !strcmp(seq, back);
    CHECK(same_seq, "sequence changed:\n  %s\n  %s", seq, back);
    int same_spec = spec_equal(&ns, &got, why, sizeof why);
    CHECK(same_spec, "settings changed: %s\n%s", why, text.data);
    ok = same_seq && same_spec;
    // And emit_seq prints the same string.
    StrBuf s = {0};
    emit_seq(&got, &s);
    CHECK(s.len == strlen(seq) + 1 && !strncmp(s.data, seq, strlen(seq)) && s.data[s.len - 1] == '\n',
          "emit_seq: %s", s.data);
    sb_free(&s);
  }
  sb_free(&text);
  sb_free(&diags);
  return ok;
}

int main(void) {
  Rng r = {20180917};
  int runs = 0, good = 0;
  static const int vocabs[] = {5, 11, 16};
  for (int rep = 0; rep < 80; rep++)
    for (int b = 1; b <= NAO_MAX_NODES; b++)
      for (int v = 0; v < 3; v++, runs++) good += roundtrip(&r, b, vocabs[v]);
  printf("%d of %d random sequences round-tripped\n", good, runs);
  CHECK(runs >= 3000, "%d runs", runs);
  return check_done("test_seq_roundtrip");
}
