// tests/fuzz/fuzz_frontend.c — libFuzzer harness for the front end.
//
// For any input: nao_frontend_text returns 0 or 1 (never crashes, never
// another code), a rejected input has at least one diagnostic and at most the
// error limit plus "too many errors"; an accepted one passes netspec_layout,
// and its canonical text (write_nao) checks back to the same NetSpec, which
// the views (seq, dot) print without trouble. Violations abort(), which
// libFuzzer reports with the input.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit_dot.h"
#include "compiler/emit_seq.h"
#include "compiler/frontend.h"
#include "compiler/write_nao.h"
#include "tests/unit/spec_eq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Error headers: lines that start with the file name and say "error" (the
// echoed source lines start with spaces, whatever text they hold).
static int count_errors(const StrBuf *d) {
  int n = 0;
  for (const char *p = d->data; p && *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    if (!strncmp(p, "fuzz.nao:", 9)) {
      const char *e = strstr(p, ": error: ");
      if (e && e < p + len) n++;
    }
    p = nl ? nl + 1 : NULL;
  }
  return n;
}

static void accepted(const NetSpec *ns) {
  NetLayout *layout = malloc(sizeof *layout);
  char err[512];
  if (!layout || netspec_layout(ns, layout, err, sizeof err) != LAYOUT_OK) abort();
  free(layout);
  StrBuf text = {0}, d = {0}, view = {0};
  write_nao(ns, "fuzz", &text);
  NetSpec back;
  char why[200];
  if (nao_frontend_text_sink("canon.nao", text.data, text.len, &back, (DiagSink){NULL, &d, 0}) != 0) abort();
  if (!spec_equal(ns, &back, why, sizeof why)) abort();
  emit_seq(ns, &view);
  emit_dot(ns, &view);
  sb_free(&text);
  sb_free(&d);
  sb_free(&view);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  NetSpec ns;
  StrBuf d = {0};
  int rc = nao_frontend_text_sink("fuzz.nao", (const char *)data, size, &ns, (DiagSink){NULL, &d, 0});
  if (rc == NAO_EXIT_OK) {
    if (d.len) abort();  // no warnings exist: success is silent
    accepted(&ns);
  } else if (rc == NAO_EXIT_INPUT) {
    int n = count_errors(&d);
    if (n < 1 || n > NAO_DIAG_MAX_ERRORS + 1) abort();
  } else {
    abort();
  }
  sb_free(&d);
  return 0;
}
