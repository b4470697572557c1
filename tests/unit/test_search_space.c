// tests/unit/test_search_space.c — the search spaces: allowed tokens per
// position against NAO-SPEC §1b's decoding rule, text form <-> tokens for the
// paper's architectures and NAS-Bench-201 strings, errors on bad text, random
// sampling (always valid, every choice reachable, the reference's ranges),
// the swap augmentation (same architecture), and NetSpec conversion.
#include <stdio.h>
#include <string.h>

#include "compiler/util.h"
#include "search/archmap.h"
#include "search/space.h"
#include "tests/unit/ctl_testutil.h"

// NAONet-B and NAONet-A from NAO-SPEC.md §1b.
static const char *naonet_b = "0 1 0 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2";
static const char *naonet_a = "0 7 1 15 2 8 1 7 0 6 1 7 0 8 4 7 1 5 0 7 0 7 1 13 0 6 0 14 0 9 1 10 0 14 2 6 1 11 0 7";

static SearchSpace make(const char *name) {
  SearchSpace sp;
  char err[200];
  int rc = space_init(&sp, name, err, sizeof err);
  CHECK(rc == 0, "space_init(%s): %s", name, err);
  return sp;
}

static void check_small_rule(void) {
  SearchSpace sp = make("nao-small");
  CHECK(sp.length == 40 && sp.vocab == 12, "nao-small: length %d vocab %d", sp.length, sp.vocab);
  for (int t = 0; t < 40; t++) {  // NAO-SPEC 1b: even t: 1..k+2, k = ((t div 2) mod 10) div 2; odd t: 7..11
    uint64_t want = 0;
    if (t % 2 == 0) {
      int k = ((t / 2) % 10) / 2;
      for (int v = 1; v <= k + 2; v++) want |= 1ULL << v;
    } else {
      for (int v = 7; v <= 11; v++) want |= 1ULL << v;
    }
    CHECK(sp.allowed[t] == want, "nao-small position %d: allowed %#llx, want %#llx", t,
          (unsigned long long)sp.allowed[t], (unsigned long long)want);
  }
  SearchSpace large = make("nao-large");
  CHECK(large.vocab == 18 && large.allowed[1] == 0x3ff80ULL, "nao-large: vocab %d, op slot %#llx", large.vocab,
        (unsigned long long)large.allowed[1]);
  char err[200];
  SearchSpace bad;
  CHECK(space_init(&bad, "nao-medium", err, sizeof err) != 0 && strstr(err, "nao-small, nao-large, nb201"),
        "unknown space message: %s", err);
}

static void check_nao_text(void) {
  SearchSpace small = make("nao-small"), large = make("nao-large");
  int tok[SPACE_MAX_LEN];
  char err[256], text[SPACE_TEXT_MAX];
  CHECK(space_parse(&small, naonet_b, tok, err, sizeof err) == 0, "NAONet-B: %s", err);
  // parse_arch_to_seq: x_in+1, x_op+7, ...: node 2 of the normal cell is "0 1 0 2".
  CHECK(tok[0] == 1 && tok[1] == 8 && tok[2] == 1 && tok[3] == 9, "NAONet-B tokens %d %d %d %d", tok[0], tok[1],
        tok[2], tok[3]);
  CHECK(tok[20] == 2 && tok[21] == 8, "reduction cell starts at token 20: %d %d", tok[20], tok[21]);
  space_format(&small, tok, text, sizeof text);
  CHECK(!strcmp(text, naonet_b), "NAONet-B round trip: %s", text);
  CHECK(space_parse(&large, naonet_a, tok, err, sizeof err) == 0, "NAONet-A: %s", err);
  CHECK(tok[1] == 7 + 7 - 5 && tok[3] == 15 + 2, "NAONet-A op tokens %d %d", tok[1], tok[3]);
  space_format(&large, tok, text, sizeof text);
  CHECK(!strcmp(text, naonet_a), "NAONet-A round trip: %s", text);
  CHECK(space_parse(&small, naonet_a, tok, err, sizeof err) != 0 && strstr(err, "op 7 is not in the nao-small space"),
        "NAONet-A in nao-small: %s", err);
  CHECK(space_parse(&large, naonet_b, tok, err, sizeof err) != 0 && strstr(err, "not in the nao-large space"),
        "NAONet-B in nao-large: %s", err);
  CHECK(space_parse(&small, "0 1 0 2", tok, err, sizeof err) != 0 && strstr(err, "tokens"), "short arch: %s", err);
  CHECK(space_parse(&small, "0 1 3 2 0 1 2 2 1 3 0 2 4 0 1 3 2 1 0 3 1 1 1 0 2 1 2 4 1 0 2 3 3 1 2 2 0 2 0 2", tok, err,
                    sizeof err) != 0 && strstr(err, "input 3"), "input out of range: %s", err);
  CHECK(space_parse(&small, "0 1 0 2 x", tok, err, sizeof err) != 0, "junk accepted");
  NetSpec ns;
  netspec_init(&ns);
  space_parse(&small, naonet_b, tok, err, sizeof err);
  CHECK(space_to_netspec(&small, tok, &ns) == 0, "to netspec");
  netspec_format_arch(&ns, text, sizeof text);
  CHECK(!strcmp(text, naonet_b), "NetSpec of NAONet-B formats as %s", text);
  CHECK(ns.cell[1].node[4].x_in == 0 && ns.cell[1].node[4].x_op == 2, "reduction node 6 = avg3(0)");
}

static void check_nb201_text(void) {
  SearchSpace sp = make("nb201");
  int tok[SPACE_MAX_LEN];
  char err[256], text[SPACE_TEXT_MAX];
  const char *s = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|";
  CHECK(sp.length == 12 && sp.vocab == 9, "nb201 length %d vocab %d", sp.length, sp.vocab);
  CHECK(space_parse(&sp, s, tok, err, sizeof err) == 0, "nb201 parse: %s", err);
  int want[12] = {1, 7, 1, 4, 2, 5, 1, 8, 2, 6, 3, 7};
  CHECK(!memcmp(tok, want, sizeof want), "nb201 tokens differ");
  space_format(&sp, tok, text, sizeof text);
  CHECK(!strcmp(text, s), "nb201 round trip: %s", text);
  struct {
    const char *text, *msg;
  } bad[] = {
      {"|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 1: unknown op 'conv'"},
      {"|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "edge 1: source 1 where the cell has 0"},
      {"|none~0||none~0|none~1|+|none~0|none~1|none~2|", "expected '+'"},
      {"|none~0|+|none~0|none~1|+|none~0|none~1|", "unknown op ''"},
      {"|none~0|+|none~0|none~1|+|none~0|none~1|none~2|x", "unexpected text"},
      {"|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'none0'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int rc = space_parse(&sp, bad[i].text, tok, err, sizeof err);
    CHECK(rc != 0 && strstr(err, bad[i].msg), "'%s': want '%s', got '%s'", bad[i].text, bad[i].msg, rc ? err : "ok");
  }
}

static void check_random(const char *name, int distinct_expected) {
  SearchSpace sp = make(name);
  Rng rng;
  rng_seed(&rng, 99);
  int tok[SPACE_MAX_LEN], count[SPACE_MAX_LEN][64] = {{0}};
  char err[200], text[SPACE_TEXT_MAX];
  ArchMap seen;
  archmap_init(&seen, sp.length);
  const int n = 20000;
  for (int i = 0; i < n; i++) {
    space_random(&sp, &rng, tok);
    CHECK(space_check(&sp, tok, err, sizeof err) == 0, "%s random arch invalid: %s", name, err);
    space_format(&sp, tok, text, sizeof text);
    int back[SPACE_MAX_LEN];
    CHECK(space_parse(&sp, text, back, err, sizeof err) == 0 && !memcmp(back, tok, sizeof(int) * sp.length),
          "%s: %s does not round-trip", name, text);
    for (int t = 0; t < sp.length; t++) count[t][tok[t]]++;
    archmap_put(&seen, tok, 1);
  }
  // Every allowed token of every position is drawn, each with about its share.
  for (int t = 0; t < sp.length; t++) {
    int k = __builtin_popcountll(sp.allowed[t]);
    for (int v = 0; v < sp.vocab; v++) {
      if (!(sp.allowed[t] >> v & 1)) continue;
      double share = (double)count[t][v] / n;
      CHECK(fabs(share - 1.0 / k) < 0.03, "%s position %d token %d: share %.3f, want %.3f", name, t, v, share, 1.0 / k);
    }
  }
  if (distinct_expected) CHECK((int)seen.count > distinct_expected, "%s: only %zu distinct", name, seen.count);
  archmap_free(&seen);
}

// Swapping a node's two branches keeps each node's multiset of branches.
static void check_augment(void) {
  SearchSpace sp = make("nao-small"), nb = make("nb201");
  Rng rng;
  rng_seed(&rng, 5);
  int tok[SPACE_MAX_LEN], orig[SPACE_MAX_LEN], changed = 0;
  char err[200];
  for (int i = 0; i < 1000; i++) {
    space_random(&sp, &rng, orig);
    memcpy(tok, orig, sizeof tok);
    space_augment(&sp, tok, &rng);
    CHECK(space_check(&sp, tok, err, sizeof err) == 0, "augmented arch invalid: %s", err);
    int diffs = 0;
    for (int node = 0; node < 10; node++) {
      const int *a = orig + 4 * node, *b = tok + 4 * node;
      int same = !memcmp(a, b, 4 * sizeof(int));
      int swapped = a[0] == b[2] && a[1] == b[3] && a[2] == b[0] && a[3] == b[1];
      CHECK(same || swapped, "node %d changed in a way other than a swap", node);
      diffs += !same;
    }
    CHECK(diffs <= 2, "more than one node per cell swapped (%d)", diffs);
    changed += diffs > 0;
  }
  CHECK(changed > 500, "augmentation changed only %d of 1000 sequences", changed);
  space_random(&nb, &rng, orig);
  memcpy(tok, orig, sizeof tok);
  space_augment(&nb, tok, &rng);
  CHECK(!memcmp(tok, orig, sizeof(int) * nb.length), "nb201 augmentation must leave the cell alone");
}

int main(void) {
  check_small_rule();
  check_nao_text();
  check_nb201_text();
  check_random("nao-small", 19000);
  check_random("nao-large", 19000);
  check_random("nb201", 8000);
  check_augment();
  if (t_failures) fprintf(stderr, "%d checks failed\n", t_failures);
  return t_failures ? 1 : 0;
}
