// runtime/data_folder.c — image folders in torchvision's ImageFolder layout
// (ImageNet), and the per-sample pipeline: read, decode, crop/resize, flip,
// colour jitter, normalise.
//
// Layout: DIR/train/<class>/... and DIR/val/<class>/... (or DIR/valid). The
// classes are the train folder's subdirectories sorted by name (byte order,
// as Python sorts str), hidden ones included, exactly as ImageFolder's
// find_classes; val's subdirectories are mapped to them by name. The images
// of a class are found as ImageFolder's make_dataset does: sorted(os.walk(
// class dir, followlinks=True)), each directory's files sorted, keeping names
// that end (case-insensitively) in .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff
// .webp. A class folder without any image is an error, as in torchvision.
//
// The sample pipeline draws its randomness in torchvision's order: the crop
// (from the image's full size, read from its header), the flip, the jitter.
// It then asks the decoder for the smallest DCT scale that keeps the crop at
// least as large as the output, and only the rows and columns the bilinear
// taps touch.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compiler/util.h"
#include "runtime/data_impl.h"

enum { FOLDER_MAX_DEPTH = 32 };

static const char *const image_exts[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};

static int has_image_ext(const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < sizeof image_exts / sizeof image_exts[0]; i++) {
    size_t e = strlen(image_exts[i]);
    if (n >= e && strcasecmp(name + n - e, image_exts[i]) == 0) return 1;
  }
  return 0;
}

// ---------------------------------------------------------------- listing

typedef struct {
  char **v;
  int n, cap;
} Names;

static void names_push(Names *a, const char *s) {
  if (a->n == a->cap) {
    a->cap = a->cap ? 2 * a->cap : 16;
    a->v = xrealloc(a->v, (size_t)a->cap * sizeof *a->v);
  }
  a->v[a->n++] = xstrdup(s);
}

static void names_free(Names *a) {
  for (int i = 0; i < a->n; i++) free(a->v[i]);
  free(a->v);
  memset(a, 0, sizeof *a);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Entries of path split into directories (following links) and the rest,
// each sorted. Returns -1 with a message when the directory cannot be read.
static int list_dir(const char *path, Names *dirs, Names *files, char *err, size_t errlen) {
  DIR *d = opendir(path);
  if (!d) return data_fail(err, errlen, path, "cannot open directory: %s", strerror(errno));
  struct dirent *e;
  StrBuf full = {0};
  errno = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    int is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
      struct stat st;
      full.len = 0;
      sb_printf(&full, "%s/%s", path, e->d_name);
      is_dir = stat(full.data, &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (is_dir) names_push(dirs, e->d_name);
    else if (files) names_push(files, e->d_name);
  }
  int rc = errno ? data_fail(err, errlen, path, "cannot read directory: %s", strerror(errno)) : 0;
  closedir(d);
  sb_free(&full);
  if (dirs->n > 1) qsort(dirs->v, (size_t)dirs->n, sizeof *dirs->v, cmp_str);
  if (files && files->n > 1) qsort(files->v, (size_t)files->n, sizeof *files->v, cmp_str);
  return rc;
}

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// The folder of a part: DIR/train, or DIR/val (DIR/valid); NULL if absent.
static char *part_dir(const char *dir, int part) {
  const char *names[2][2] = {{"train", NULL}, {"val", "valid"}};
  for (int i = 0; i < 2 && names[part][i]; i++) {
    StrBuf sb = {0};
    sb_printf(&sb, "%s/%s", dir, names[part][i]);
    if (is_dir(sb.data)) return sb_steal(&sb);
    sb_free(&sb);
  }
  return NULL;
}

int folder_scan_classes(DataSource *src, char *err, size_t errlen) {
  char *dir = part_dir(src->dir, 0);
  if (!dir) dir = part_dir(src->dir, 1);
  if (!dir)
    return data_fail(err, errlen, src->dir, "no train/ or val/ folder (expected DIR/train/<class>/<image>)");
  Names classes = {0};
  int rc = list_dir(dir, &classes, NULL, err, errlen);
  if (rc == 0 && classes.n == 0) rc = data_fail(err, errlen, dir, "no class folders");
  if (rc == 0) {
    src->classes = classes.n;
    src->class_names = classes.v;
    src->c = 3;
  } else {
    names_free(&classes);
  }
  free(dir);
  return rc;
}

// ---------------------------------------------------------------- items

typedef struct {
  StrBuf paths;
  size_t *off;
  int32_t *labels;
  int n, cap;
} Items;

static void items_push(Items *it, const char *rel, int label) {
  if (it->n == it->cap) {
    it->cap = it->cap ? 2 * it->cap : 1024;
    it->off = xrealloc(it->off, (size_t)it->cap * sizeof *it->off);
    it->labels = xrealloc(it->labels, (size_t)it->cap * sizeof *it->labels);
  }
  it->off[it->n] = it->paths.len;
  it->labels[it->n] = label;
  it->n++;
  sb_appendn(&it->paths, rel, strlen(rel) + 1);  // keeps the NUL as separator
}

// All directories under rel (itself included), depth-first; sorted later.
static int walk_dirs(const char *base, const char *rel, int depth, Names *roots, char *err, size_t errlen) {
  if (depth > FOLDER_MAX_DEPTH)
    return data_fail(err, errlen, base, "folders nested deeper than %d under %s (a symbolic-link loop?)",
                     FOLDER_MAX_DEPTH, rel);
  names_push(roots, rel);
  StrBuf path = {0};
  sb_printf(&path, "%s/%s", base, rel);
  Names dirs = {0};
  int rc = list_dir(path.data, &dirs, NULL, err, errlen);
  for (int i = 0; i < dirs.n && rc == 0; i++) {
    StrBuf sub = {0};
    sb_printf(&sub, "%s/%s", rel, dirs.v[i]);
    rc = walk_dirs(base, sub.data, depth + 1, roots, err, errlen);
    sb_free(&sub);
  }
  names_free(&dirs);
  sb_free(&path);
  return rc;
}

// The images of one class folder, in make_dataset's order.
static int scan_class(const char *base, const char *cls, int label, Items *it, char *err, size_t errlen) {
  Names roots = {0};
  int rc = walk_dirs(base, cls, 0, &roots, err, errlen), before = it->n;
  if (roots.n > 1) qsort(roots.v, (size_t)roots.n, sizeof *roots.v, cmp_str);
  for (int r = 0; r < roots.n && rc == 0; r++) {
    StrBuf path = {0};
    sb_printf(&path, "%s/%s", base, roots.v[r]);
    Names dirs = {0}, files = {0};
    rc = list_dir(path.data, &dirs, &files, err, errlen);
    for (int f = 0; f < files.n && rc == 0; f++) {
      if (!has_image_ext(files.v[f])) continue;
      StrBuf rel = {0};
      sb_printf(&rel, "%s/%s", roots.v[r], files.v[f]);
      items_push(it, rel.data, label);
      sb_free(&rel);
    }
    names_free(&dirs);
    names_free(&files);
    sb_free(&path);
  }
  names_free(&roots);
  if (rc == 0 && it->n == before)
    rc = data_fail(err, errlen, base, "class folder '%s' holds no image (extensions: .jpg .jpeg .png .ppm .bmp .pgm "
                   ".tif .tiff .webp)", cls);
  return rc;
}

static int class_index(const DataSource *src, const char *name) {
  int lo = 0, hi = src->classes - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(src->class_names[mid], name);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

int folder_load_part(DataSource *src, int part, char *err, size_t errlen) {
  char *dir = part_dir(src->dir, part);
  if (!dir)
    return data_fail(err, errlen, src->dir, "no %s folder", part == 0 ? "train/" : "val/ (or valid/)");
  Names classes = {0};
  Items it = {0};
  int rc = list_dir(dir, &classes, NULL, err, errlen);
  for (int k = 0; k < classes.n && rc == 0; k++) {
    int label = class_index(src, classes.v[k]);
    if (label < 0) rc = data_fail(err, errlen, dir, "class folder '%s' is not among the train classes", classes.v[k]);
    else rc = scan_class(dir, classes.v[k], label, &it, err, errlen);
  }
  if (rc == 0 && it.n == 0) rc = data_fail(err, errlen, dir, "no class folders");
  names_free(&classes);
  DataPart *p = &src->part[part];
  if (rc == 0) {
    p->n = it.n;
    p->dir = dir;
    p->paths = sb_steal(&it.paths);
    p->path_off = it.off;
    p->labels = it.labels;
    return 0;
  }
  free(dir);
  sb_free(&it.paths);
  free(it.off);
  free(it.labels);
  return -1;
}

// ---------------------------------------------------------------- sample pipeline

typedef struct {
  const AugmentSpec *aug;
  Rng *rng;
  int flip;
  AugJitter jit;
  AugTaps tx, ty;
} FolderPlan;

// DCT scales (of 8) tried, smallest first: those libjpeg-turbo has SIMD
// IDCTs for (3/8, 5/8, 6/8, 7/8 use slow generic ones and measured slower
// than decoding at 8/8).
static const int dct_scales[] = {1, 2, 4, 8};

static int pick_scale(int can, const AugmentSpec *a, int w, int h, int need_w, int need_h) {
  if (!can || !a->dct_scale) return 8;
  for (size_t i = 0; i < sizeof dct_scales / sizeof dct_scales[0]; i++)
    if (img_scaled_size(w, dct_scales[i]) >= need_w && img_scaled_size(h, dct_scales[i]) >= need_h)
      return dct_scales[i];
  return 8;
}

// Axis geometry in the scaled image: scale, offset and clip range.
typedef struct {
  double scale, off;
  int lo, hi;
} Axis;

static Axis scaled_axis(double scale, double off, double lo, double hi, double ratio, int full) {
  Axis a = {scale * ratio, off * ratio, (int)floor(lo * ratio + 1e-9), (int)ceil(hi * ratio - 1e-9)};
  if (a.lo < 0) a.lo = 0;
  if (a.hi > full) a.hi = full;
  if (a.hi <= a.lo) a.hi = a.lo + 1;
  return a;
}

static int folder_plan(void *user, int W, int H, int can_scale, ImgRequest *req) {
  FolderPlan *fp = user;
  const AugmentSpec *a = fp->aug;
  int out, s;
  Axis ax, ay;
  if (a->rrc_size > 0) {
    AugCrop c;
    aug_rrc_params(W, H, a->rrc_scale, a->rrc_ratio, fp->rng, &c);
    out = a->rrc_size;
    s = pick_scale(can_scale, a, c.w, c.h, out, out);
    int fw = img_scaled_size(W, s), fh = img_scaled_size(H, s);
    ax = scaled_axis((double)c.w / out, c.x, c.x, c.x + c.w, (double)fw / W, fw);
    ay = scaled_axis((double)c.h / out, c.y, c.y, c.y + c.h, (double)fh / H, fh);
  } else {
    double sx, ox, sy, oy;
    aug_eval_geometry(W, H, a->resize, a->crop, &sx, &ox, &sy, &oy);
    out = a->crop;
    s = pick_scale(can_scale, a, W, H, (int)ceil(W / sx - 1e-6), (int)ceil(H / sy - 1e-6));
    int fw = img_scaled_size(W, s), fh = img_scaled_size(H, s);
    ax = scaled_axis(sx, ox, 0, W, (double)fw / W, fw);
    ay = scaled_axis(sy, oy, 0, H, (double)fh / H, fh);
  }
  fp->flip = a->flip ? rng_uniform(fp->rng) < 0.5 : 0;
  if (a->jitter[0] > 0 || a->jitter[1] > 0 || a->jitter[2] > 0 || a->jitter[3] > 0)
    aug_jitter_params(a->jitter, fp->rng, &fp->jit);
  aug_taps(&fp->tx, out, ax.scale, ax.off, ax.lo, ax.hi, fp->flip);
  aug_taps(&fp->ty, out, ay.scale, ay.off, ay.lo, ay.hi, 0);
  req->scale_num = s;
  req->x0 = fp->tx.lo, req->w = fp->tx.hi - fp->tx.lo;
  req->y0 = fp->ty.lo, req->h = fp->ty.hi - fp->ty.lo;
  return 0;
}

// The whole file into s->file; -1 with errno's message.
static int read_file(const char *path, DataScratch *s, size_t *len, char *msg, size_t msglen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return snprintf(msg, msglen, "%s: cannot open: %s", path, strerror(errno)), -1;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return snprintf(msg, msglen, "%s: not a regular file", path), -1;
  }
  size_t n = (size_t)st.st_size, got = 0;
  if (n + 1 > s->file_cap) {
    free(s->file);
    s->file_cap = n + 1;
    s->file = xmalloc(s->file_cap);
  }
  while (got < n) {
    ssize_t r = read(fd, s->file + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  int e = errno;
  close(fd);
  if (got < n) return snprintf(msg, msglen, "%s: read failed: %s", path, got ? strerror(e) : "file shrank"), -1;
  *len = n;
  return 0;
}

static const char *item_path(const DataPart *p, int32_t item, DataScratch *s) {
  const char *rel = p->paths + p->path_off[item];
  size_t need = strlen(p->dir) + strlen(rel) + 2;
  if (need > s->path_cap) {
    free(s->path);
    s->path = xmalloc(need);
    s->path_cap = need;
  }
  snprintf(s->path, need, "%s/%s", p->dir, rel);
  return s->path;
}

DataSampleStatus folder_sample(const DataSet *ds, int32_t item, const AugmentSpec *aug, Rng *rng, float *out,
                               int32_t *label, DataScratch *s, char *msg, size_t msglen) {
  const DataPart *p = &ds->src->part[ds->part];
  const char *path = item_path(p, item, s);
  size_t len;
  if (read_file(path, s, &len, msg, msglen) != 0) return DATA_SAMPLE_UNREADABLE;
  FolderPlan fp = {.aug = aug, .rng = rng};
  char what[256];
  if (img_decode(s->file, len, folder_plan, &fp, &s->img, what, sizeof what) != 0) {
    snprintf(msg, msglen, "%s: %s", path, what);
    aug_taps_free(&fp.tx);
    aug_taps_free(&fp.ty);
    return DATA_SAMPLE_UNREADABLE;
  }
  const ImgBuf *im = &s->img;
  NAO_ASSERT(im->x0 <= fp.tx.lo && im->x0 + im->w >= fp.tx.hi && im->y0 <= fp.ty.lo && im->y0 + im->h >= fp.ty.hi);
  // (3, out, out) in [0, 1], then the colour, the normalisation, cutout.
  aug_resample(im->pix, im->stride, im->x0, im->y0, &fp.tx, &fp.ty, &s->tmp, &s->tmp_cap, out);
  size_t hw = (size_t)fp.tx.n * fp.ty.n;
  int jitter = aug->jitter[0] > 0 || aug->jitter[1] > 0 || aug->jitter[2] > 0 || aug->jitter[3] > 0;
  aug_jitter_normalize(out, hw, jitter ? &fp.jit : NULL, aug->mean, aug->std);
  if (aug->cutout > 0) aug_cutout(out, 3, fp.ty.n, fp.tx.n, aug->cutout, rng);
  aug_taps_free(&fp.tx);
  aug_taps_free(&fp.ty);
  *label = p->labels[item];
  return DATA_SAMPLE_OK;
}
