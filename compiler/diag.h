// compiler/diag.h — diagnostics at a place in a .nao source.
//
// An error prints as
//
//   FILE:LINE:COL: error: message
//      3 |   node 2 = sep3x4(0) + avg3x3(1);
//        |            ^~~~~~
//
// and a note (a related place: where a block opened, where a name was first
// given) the same way with "note:". Messages are lower-case with no final
// period. Tabs of the source line are repeated in the caret line so the caret
// stays aligned whatever the tab width; bytes that cannot be shown (NUL,
// control characters, invalid UTF-8) print as '?'; a very long line is shown
// as a window around the place, with "..." where it was cut.
//
// At most max_errors errors are shown; the next one prints "too many errors"
// and sets `stopped`, after which the scanner ends the input and every further
// error or note is dropped. Notes follow the fate of the error before them.
// A Diag holds no global state: one per compilation.
#ifndef NAO_DIAG_H
#define NAO_DIAG_H

#include <stdio.h>

#include "compiler/source.h"
#include "compiler/util.h"

enum { NAO_DIAG_MAX_ERRORS = 20 };

// Where diagnostics go: a FILE, a StrBuf, both or neither (then only counted).
typedef struct {
  FILE *file;
  StrBuf *buf;
  int max_errors;  // 0: NAO_DIAG_MAX_ERRORS
} DiagSink;

typedef struct {
  NaoSource *src;
  DiagSink sink;
  int n_errors;    // errors reported, shown or not
  int stopped;     // the limit was passed: the compilation should stop
  int note_shown;  // whether notes now are shown (the last error was)
} Diag;

void diag_init(Diag *d, NaoSource *src, DiagSink sink);
void diag_error(Diag *d, NaoLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, NaoLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void diag_verror(Diag *d, NaoLoc loc, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
// An error about the whole file ("FILE: error: message", no line).
void diag_file_error(Diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
