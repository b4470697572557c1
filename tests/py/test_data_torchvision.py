"""tests/py/test_data_torchvision.py — the data pipeline against PIL and torchvision.

Runs build/tests/tools/data_tool (the C pieces as a command) and compares with
what torchvision (Debian's python3-torchvision, with PIL on the same libjpeg)
computes on the same input:

  * image decoding: JPEG (baseline, progressive, grayscale, CMYK), PNG (RGB,
    RGBA) and a PNG named .JPEG decode exactly as PIL's convert("RGB"); DCT
    scaled decoding exactly as PIL's draft() at 1/2, 1/4, 1/8;
  * ImageFolder listing: the same samples, labels and order;
  * bilinear resampling: crop-then-resize (RandomResizedCrop's geometry) and
    resize-then-centre-crop (the eval transform) against PIL's own resampler
    in float mode, flips included;
  * colour jitter: each adjustment and a random order against torchvision's
    tensor functions;
  * RandomResizedCrop.get_params: the same distribution of crops;
  * the whole eval transform on a JPEG against torchvision's transforms;
  * safetensors files written by a small reference writer here (struct +
    json) read by C, and C's files read back here.

Exit status 0 when everything matches.
"""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as TF
from PIL import Image

BUILD = os.environ.get("BUILD", "build")
TOOL = os.path.join(BUILD, "tests", "tools", "data_tool")
MAKE_FOLDER = os.path.join(BUILD, "tests", "tools", "make_imagenet_folder")
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what)


def run(*args):
    r = subprocess.run([TOOL] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("data_tool %s: %s" % (" ".join(map(str, args)), r.stderr.strip()))
    return r.stdout


# ------------------------------------------------------------------ safetensors reference

DTYPES = {"F32": np.float32, "F64": np.float64, "I32": np.int32, "I64": np.int64, "U8": np.uint8,
          "I8": np.int8, "I16": np.int16, "U16": np.uint16, "F16": np.float16, "BOOL": np.bool_}


def st_write(path, tensors, metadata=None, order=None, pad=False):
    """A reference writer: tensors {name: (dtype, shape, raw bytes)}; data in `order`."""
    names = order or list(tensors)
    header, offset = {}, 0
    for name in names:
        dt, shape, raw = tensors[name]
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    # Keys in reverse order, to differ from the data order.
    text = json.dumps(dict(reversed(list(header.items()))))
    if pad:
        text += " " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text.encode())
        for name in names:
            f.write(tensors[name][2])


def st_read(path):
    """A reference reader that checks the format's rules."""
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode())
    meta = header.pop("__metadata__", {})
    body = data[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    at = 0
    for b, e, k in spans:
        assert b == at, "hole or overlap at %s" % k
        at = e
    assert at == len(body), "data size"
    out = {k: (v["dtype"], tuple(v["shape"]), body[v["data_offsets"][0]:v["data_offsets"][1]]) for k, v in header.items()}
    return out, meta, n


def test_safetensors(tmp):
    rng = np.random.default_rng(1)
    tensors = {
        "w": ("F32", (2, 3), rng.standard_normal((2, 3)).astype(np.float32).tobytes()),
        "step": ("I64", (), np.array(123456789012, np.int64).tobytes()),
        "empty": ("U8", (0,), b""),
        "bn.running_var": ("F64", (5,), rng.random(5).tobytes()),
        "half": ("BF16", (3,), bytes([0x80, 0x3F, 0x00, 0x40, 0x40, 0xC0])),
        "u8": ("U8", (7,), bytes(range(7))),
        "lbl": ("I32", (4,), np.array([3, -1, 7, 0], np.int32).tobytes()),
    }
    meta = {"format": "pt", "epoch": "12", "note": "é \"quoted\""}
    src, dst = os.path.join(tmp, "py.safetensors"), os.path.join(tmp, "c.safetensors")
    st_write(src, tensors, meta, order=["u8", "w", "step", "empty", "half", "bn.running_var", "lbl"])
    run("stcopy", src, dst)
    got, got_meta, n = st_read(dst)
    check(got == tensors, "safetensors: tensors survive a C read and write")
    check(got_meta == meta, "safetensors: metadata survives")
    check((8 + n) % 8 == 0, "safetensors: C pads the header to 8 bytes")
    # C's file holds the tensors by decreasing element size: all aligned.
    body_start = 8 + n
    header = json.loads(open(dst, "rb").read()[8:8 + n])
    for k, v in header.items():
        if k != "__metadata__":
            size = np.dtype(DTYPES.get(v["dtype"], np.uint16)).itemsize
            check((body_start + v["data_offsets"][0]) % size == 0, "safetensors: %s aligned" % k)
    # A corrupt file is refused with its path and the tensor.
    tensors["w"] = ("F32", (2, 4), tensors["w"][2])
    st_write(src, tensors, meta)
    r = subprocess.run([TOOL, "stcopy", src, dst], capture_output=True, text=True)
    check(r.returncode == 1 and src in r.stderr and "'w'" in r.stderr and "needs 32" in r.stderr,
          "safetensors: misshapen tensor refused: %s" % r.stderr.strip())


# ------------------------------------------------------------------ decoding and listing

def decode(path, scale=8):
    out = os.path.join(TMP, "dec.safetensors")
    run("decode", path, out, scale)
    t, _, _ = st_read(out)
    dt, shape, raw = t["rgb"]
    return np.frombuffer(raw, np.uint8).reshape(shape)


def test_decode_and_list(folder):
    train = os.path.join(folder, "train")
    ds = torchvision.datasets.ImageFolder(train)
    ours = [l.split(" ", 1) for l in run("list", folder, "train").splitlines()]
    theirs = [(str(t), os.path.relpath(p, train)) for p, t in ds.samples]
    check([tuple(x) for x in ours] == theirs, "ImageFolder: same samples, labels and order")
    manifest = dict(l.split() for l in open(os.path.join(folder, "manifest.txt")))
    decoded = 0
    for path, _ in ds.samples:
        rel = os.path.relpath(path, folder)
        if manifest.get(rel) == "unreadable":
            r = subprocess.run([TOOL, "decode", path, os.path.join(TMP, "x.st")], capture_output=True, text=True)
            check(r.returncode == 1, "unreadable %s refused" % rel)
            continue
        pil = np.asarray(Image.open(path).convert("RGB"))
        mine = decode(path)
        same = pil.shape == mine.shape and np.array_equal(pil, mine)
        check(same, "decode %s equals PIL's convert('RGB') (max diff %s)" % (
            rel, np.abs(pil.astype(int) - mine).max() if pil.shape == mine.shape else "shape"))
        decoded += 1
    check(decoded >= 19, "decoded %d images" % decoded)
    # DCT scaling equals PIL's draft mode.
    for path, _ in ds.samples[:4]:
        for s in (2, 4, 8):
            im = Image.open(path)
            w, h = im.size
            im.draft("RGB", (w // s, h // s))
            pil = np.asarray(im.convert("RGB"))
            mine = decode(path, 8 // s)
            check(pil.shape == mine.shape and np.array_equal(pil, mine),
                  "DCT scale 1/%d of %s equals PIL's draft" % (s, os.path.basename(path)))


# ------------------------------------------------------------------ resampling

def resize_c(rgb, out_w, out_h, sx, ox, lox, hix, sy, oy, loy, hiy, mirror):
    src, dst = os.path.join(TMP, "rs_in.st"), os.path.join(TMP, "rs_out.st")
    geom = np.array([out_w, out_h, sx, ox, lox, hix, sy, oy, loy, hiy, mirror], np.float64)
    st_write(src, {"rgb": ("U8", rgb.shape, rgb.tobytes()), "geom": ("F64", (11,), geom.tobytes())})
    run("resize", src, dst)
    t, _, _ = st_read(dst)
    return np.frombuffer(t["out"][2], np.float32).reshape(3, out_h, out_w)


def pil_float(rgb, fn):
    """fn applied to each channel as a PIL float image; (3, h, w) / 255."""
    return np.stack([np.asarray(fn(Image.fromarray(rgb[:, :, c].astype(np.float32), "F"))) for c in range(3)]) / 255.0


def test_resample():
    rng = np.random.default_rng(7)
    worst = 0.0
    for trial in range(12):
        h, w = int(rng.integers(20, 300)), int(rng.integers(20, 300))
        rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        # Crop then resize, as RandomResizedCrop does, to a random size.
        cw, ch = int(rng.integers(1, w + 1)), int(rng.integers(1, h + 1))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        ow, oh = int(rng.integers(1, 260)), int(rng.integers(1, 260))
        mirror = trial % 2
        ref = pil_float(rgb, lambda im: im.crop((x, y, x + cw, y + ch)).resize((ow, oh), Image.BILINEAR))
        if mirror:
            ref = ref[:, :, ::-1]
        mine = resize_c(rgb, ow, oh, cw / ow, x, x, x + cw, ch / oh, y, y, y + ch, mirror)
        worst = max(worst, float(np.abs(ref - mine).max()))
        # Resize the whole image, then centre-crop (the eval transform).
        size = int(rng.integers(8, 300))
        crop = int(rng.integers(1, size + 1))
        geom = [float(v) for v in run("eval-geom", w, h, size, crop).split()]
        new = TF._compute_resized_output_size((h, w), [size])  # (new_h, new_w)
        top, left = int(round((new[0] - crop) / 2.0)), int(round((new[1] - crop) / 2.0))
        ref = pil_float(rgb, lambda im: im.resize((new[1], new[0]), Image.BILINEAR).crop(
            (left, top, left + crop, top + crop)))
        mine = resize_c(rgb, crop, crop, geom[0], geom[1], 0, w, geom[2], geom[3], 0, h, 0)
        worst = max(worst, float(np.abs(ref - mine).max()))
    print("resampling: max |C - PIL| = %.2e (of 1.0)" % worst)
    check(worst < 2e-5, "bilinear resampling equals PIL's (max diff %.2e)" % worst)


# ------------------------------------------------------------------ colour jitter

def jitter_c(img, order, factor, on):
    src, dst = os.path.join(TMP, "j_in.st"), os.path.join(TMP, "j_out.st")
    st_write(src, {"img": ("F32", img.shape, img.astype(np.float32).tobytes()),
                   "order": ("I32", (4,), np.array(order, np.int32).tobytes()),
                   "factor": ("F64", (4,), np.array(factor, np.float64).tobytes()),
                   "on": ("I32", (4,), np.array(on, np.int32).tobytes())})
    run("jitter", src, dst)
    t, _, _ = st_read(dst)
    return np.frombuffer(t["out"][2], np.float32).reshape(img.shape)


def jitter_torch(img, order, factor, on):
    x = torch.from_numpy(img.copy())
    fns = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    for k in order:
        if on[k]:
            x = fns[k](x, factor[k])
    return x.numpy()


def test_jitter():
    rng = np.random.default_rng(3)
    worst = 0.0
    img = rng.random((3, 37, 53), dtype=np.float32)
    img[:, 0, :5] = 0.5  # grey pixels (hue undefined)
    img[:, 1, :5] = [[1.0], [0.0], [0.0]]  # pure primaries
    for k, f in [(0, 1.3), (0, 0.6), (1, 1.4), (1, 0.6), (2, 1.4), (2, 0.0), (3, 0.2), (3, -0.2), (3, 0.5)]:
        on = [0, 0, 0, 0]
        on[k] = 1
        factor = [1.0, 1.0, 1.0, 0.0]
        factor[k] = f
        d = np.abs(jitter_c(img, [0, 1, 2, 3], factor, on) - jitter_torch(img, [0, 1, 2, 3], factor, on)).max()
        check(d < 1e-5, "jitter op %d factor %g equals torchvision (max diff %.2e)" % (k, f, d))
        worst = max(worst, float(d))
    for trial in range(6):
        order = list(rng.permutation(4))
        factor = [rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4), rng.uniform(0.6, 1.4), rng.uniform(-0.2, 0.2)]
        d = np.abs(jitter_c(img, order, factor, [1] * 4) - jitter_torch(img, order, factor, [1] * 4)).max()
        check(d < 1e-5, "jitter in order %s equals torchvision (max diff %.2e)" % (order, d))
        worst = max(worst, float(d))
    print("colour jitter: max |C - torchvision| = %.2e" % worst)


# ------------------------------------------------------------------ RandomResizedCrop

def test_rrc_distribution():
    torch.manual_seed(0)
    for (w, h) in [(500, 375), (90, 60), (1000, 100)]:
        n = 6000
        out = os.path.join(TMP, "rrc.st")
        run("rrc", w, h, n, 5, out)
        t, _, _ = st_read(out)
        ours = np.frombuffer(t["crops"][2], np.int32).reshape(n, 4)  # x, y, w, h
        img = torch.zeros(1, h, w)
        theirs = np.array([T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)])
        theirs = theirs[:, [1, 0, 3, 2]]  # (i, j, h, w) -> (x, y, w, h)
        for name, a, b in [("area", ours[:, 2] * ours[:, 3], theirs[:, 2] * theirs[:, 3]),
                           ("aspect", ours[:, 2] / ours[:, 3], theirs[:, 2] / theirs[:, 3]),
                           ("x", ours[:, 0], theirs[:, 0]), ("y", ours[:, 1], theirs[:, 1])]:
            qa, qb = np.quantile(a, [0.1, 0.5, 0.9]), np.quantile(b, [0.1, 0.5, 0.9])
            spread = np.quantile(b, 0.9) - np.quantile(b, 0.1) + 1e-9
            ok = np.all(np.abs(qa - qb) <= 0.06 * spread + 1)
            check(ok, "RRC %dx%d %s quantiles %s vs torchvision %s" % (w, h, name, qa, qb))
        check(np.all(ours[:, 0] + ours[:, 2] <= w) and np.all(ours[:, 1] + ours[:, 3] <= h) and np.all(ours >= 0),
              "RRC crops inside %dx%d" % (w, h))
        fb_ours = np.mean((ours[:, 2] == w) & (ours[:, 3] == h))
        fb_theirs = np.mean((theirs[:, 2] == w) & (theirs[:, 3] == h))
        check(abs(fb_ours - fb_theirs) < 0.02, "RRC whole-image rate %.3f vs %.3f" % (fb_ours, fb_theirs))


# ------------------------------------------------------------------ whole eval transform

def test_eval_transform(folder):
    tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    ds = torchvision.datasets.ImageFolder(os.path.join(folder, "val"), transform=tf)
    out = os.path.join(TMP, "s.st")
    for dct in (False, True):
        worst_max, worst_mean = 0.0, 0.0
        for i in range(len(ds)):
            ref, label = ds[i]
            run("sample", folder, "test", i, out, *([] if dct else ["--no-dct"]))
            t, _, _ = st_read(out)
            mine = np.frombuffer(t["out"][2], np.float32).reshape(3, 224, 224)
            check(int(np.frombuffer(t["label"][2], np.int32)[0]) == label, "eval label of item %d" % i)
            d = np.abs(mine - ref.numpy())
            worst_max, worst_mean = max(worst_max, float(d.max())), max(worst_mean, float(d.mean()))
        print("eval transform vs torchvision (%s DCT scaling): max |diff| %.4f, mean %.5f" % (
            "with" if dct else "without", worst_max, worst_mean))
        if not dct:  # PIL rounds to uint8 after each pass: about 1/255 / std
            check(worst_max < 0.03 and worst_mean < 0.006, "eval transform equals torchvision's up to uint8 rounding")
        else:
            check(worst_mean < 0.03, "eval transform with DCT scaling stays close to torchvision's")


def main():
    global TMP
    for tool in (TOOL, MAKE_FOLDER):
        if not os.access(tool, os.X_OK):
            print("missing %s (run make)" % tool)
            return 1
    with tempfile.TemporaryDirectory(prefix="naoc-tv.") as tmp:
        TMP = tmp
        folder = os.path.join(tmp, "inet")
        subprocess.run([MAKE_FOLDER, folder, "--classes", "3", "--train", "4", "--val", "3", "--odd", "--seed", "9"],
                       check=True)
        test_safetensors(tmp)
        test_decode_and_list(folder)
        test_resample()
        test_jitter()
        test_rrc_distribution()
        test_eval_transform(folder)
    if FAILURES:
        print("%d failures" % len(FAILURES))
        return 1
    print("test_data_torchvision: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
