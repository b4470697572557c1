// search/ctl_net.h — the controller's math, once for float and once for double.
//
// ctl_net_tmpl.h declares every function with CTL_SFX(name) and CTL_REAL; this
// header instantiates it twice: name_f32 on float (what the search runs) and
// name_f64 on double (what the gradient checks run). The definitions are the
// same source (ctl_*.inc) compiled twice, so the checks test the code that runs.
#ifndef NAO_CTL_NET_H
#define NAO_CTL_NET_H

#include <stdint.h>

#include "search/ctl.h"

#define CTL_REAL float
#define CTL_SFX(x) x##_f32
#include "search/ctl_net_tmpl.h"
#undef CTL_REAL
#undef CTL_SFX

#define CTL_REAL double
#define CTL_SFX(x) x##_f64
#include "search/ctl_net_tmpl.h"
#undef CTL_REAL
#undef CTL_SFX

#endif
