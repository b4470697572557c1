"""bench/imagenet_pipeline_torch.py — the torchvision peer of the C loader's benchmark.

    /usr/bin/python3 bench/imagenet_pipeline_torch.py DIR [--workers W] [--batch B] [--images N]

The reference's ImageNet training input (NAO_V1/train_imagenet.py): ImageFolder
over DIR/train with RandomResizedCrop(224), RandomHorizontalFlip,
ColorJitter(0.4, 0.4, 0.4, 0.2), ToTensor, Normalize, through a shuffling
DataLoader with W worker processes (pin_memory off: there is no GPU here).
Times N images after the first batch, within one epoch, the consumer doing
nothing, as tests/tools/loader_bench does for the C loader. Prints one line:
"images_per_sec X ... cpu_ms_per_image Y ..." where Y counts the CPU time of
the main process and of the worker processes over the same window.
"""
import argparse
import os
import time

import torch
import torchvision.datasets as dset
import torchvision.transforms as transforms


def cpu_seconds(pids):
    """utime + stime of the given processes, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / tick


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--images", type=int, default=896)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(1)
    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    tf = transforms.Compose([
        transforms.RandomResizedCrop(224),
        transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.2),
        transforms.ToTensor(),
        normalize,
    ])
    data = dset.ImageFolder(a.dir + "/train", tf)
    if a.images > len(data) - a.batch:
        raise SystemExit("--images must leave one batch of the %d images for the warm-up" % len(data))
    loader = torch.utils.data.DataLoader(data, batch_size=a.batch, shuffle=True, num_workers=a.workers)
    it = iter(loader)
    next(it)  # the first batch: worker start-up, not timed
    pids = [os.getpid()] + [w.pid for w in getattr(it, "_workers", [])]
    t0, c0, got = time.perf_counter(), cpu_seconds(pids), 0
    while got < a.images:
        images, labels = next(it)
        got += images.shape[0]
    dt, dc = time.perf_counter() - t0, cpu_seconds(pids) - c0
    print("images_per_sec %.1f images %d seconds %.3f cpu_ms_per_image %.2f workers %d batch %d" % (
        got / dt, got, dt, dc * 1e3 / got, a.workers, a.batch))
    del it


if __name__ == "__main__":
    main()
