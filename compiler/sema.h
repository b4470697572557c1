// compiler/sema.h — the checks of a .nao file: AST in, NetSpec out.
//
// sema_check reads the syntax tree into a NetSpec and reports, at the place in
// the file, everything that makes it not a network: unknown or repeated
// settings and cells, values out of range, node numbering, node inputs that
// refer to themselves, to later nodes or to nothing, unknown ops, token
// sequences of the wrong length or with ids out of range, and (when the rest
// is clean) every shape error of netspec_layout, placed at the setting that
// causes it. It goes on after an error to report as many as it can, and does
// not report what a syntax error already explains.
//
// NetSpecLocs keeps where every part of the NetSpec was written, so that later
// stages (lowering, the emitters) can point at a setting, a cell, a node or a
// branch. A place is {0, 0} when the part was not written (a default).
#ifndef NAO_SEMA_H
#define NAO_SEMA_H

#include "compiler/ast.h"
#include "compiler/diag.h"
#include "compiler/netspec.h"
#include "compiler/settings.h"

typedef struct {
  NaoLoc network;               // `network NAME` (the header of the block)
  unsigned given;               // bit (1u << NaoSettingId): written in the file
  NaoLoc setting[SET_COUNT];    // the whole setting, `channels 36;`
  NaoLoc value[SET_COUNT];      // its value
  struct {
    NaoLoc cell;                // `cell normal`
    NaoLoc body;                // the node block or the token string
    NaoLoc node[NAO_MAX_NODES]; // a node line, or its 4 tokens in a string
    NaoLoc op[NAO_MAX_NODES][2];    // each branch's op (name or token)
    NaoLoc input[NAO_MAX_NODES][2]; // each branch's input (number or token)
  } cell[2];                    // indexed by CellKind
} NetSpecLocs;

// Checks the file. Returns the number of errors it reported (0: *out is a
// valid network whose layout netspec_layout accepts).
int sema_check(const AstFile *file, Diag *diag, NetSpec *out, NetSpecLocs *locs);

#endif
