#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into fuzz/corpus/<target>/ (not committed).

Usage: python3 fuzz/seeds.py   (from the repository root), then, with stable rustc
(cargo-fuzz's `-Z` flags need RUSTC_BOOTSTRAP=1; no sanitizer, libFuzzer coverage only):

    cd fuzz && for t in idx npy png csv safetensors toml_config; do
      RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -O $t -- \
        -runs=1000000 -max_len=4096 -rss_limit_mb=4096 -print_final_stats=1
    done
"""
import gzip
import io
import json
import os
import struct
import zipfile
import zlib

ROOT = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(ROOT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def idx(magic, dims, data):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + data


def npy(descr, shape, data):
    h = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    h += " " * ((64 - (10 + len(h) + 1) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + data


def png(w, h, color=0, channels=1):
    raw = b"".join(b"\x00" + bytes((x * 37 + y) % 256 for x in range(w * channels)) for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def zipped(members):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for n, d in members:
            z.writestr(n, d)
    return b.getvalue()


def safetensors(tensors, meta):
    header, data = {"__metadata__": meta}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


img = idx(0x0803, [2, 3, 3], bytes(range(18)))
put("idx", "images", img)
put("idx", "images.gz", gzip.compress(img))
put("idx", "labels", idx(0x0801, [4], bytes([0, 1, 2, 1])))
put("idx", "f32", idx(0x0D02, [2, 2], struct.pack(">4f", 1, 2, 3, 4)))

put("npy", "f4.npy", npy("<f4", "(2, 2)", struct.pack("<4f", 1, 2, 3, 4)))
put("npy", "b1.npy", npy("|b1", "(1, 2, 2, 2)", bytes([1, 0, 1, 1, 0, 0, 1, 0])))
labels = npy("<i8", "(2, 3)", struct.pack("<6q", 0, 0, 0, 1, 1, 1))
put("npy", "omniglot.npz", zipped([("images.npy", npy("|b1", "(2, 3, 4, 4)", bytes(96))), ("labels.npy", labels)]))

# Omniglot-shaped (964 characters, the loader's own check), 2 drawings of 2x2 pixels.
bg_labels = npy("|u1", "(964, 2)", bytes(min(k // 2, 255) for k in range(964 * 2)))
put("npy", "background.npz", zipped([("labels.npy", bg_labels), ("images.npy", npy("|b1", "(964, 2, 2, 2)", bytes(964 * 8)))]))

put("png", "gray.png", png(4, 3))
put("png", "rgb.png", png(3, 3, color=2, channels=3))
put("png", "rgba.png", png(2, 5, color=6, channels=4))

put("csv", "plain.csv", "1,2,0\n3,4,1\n5,6,0\n")
put("csv", "header.csv", "x,y,label\n1.5,2,cat\n3,-4e2,dog\n")
put("csv", "digits.csv", ",".join(["3"] * 64) + ",7\n")
put("csv", "gz.csv.gz", gzip.compress(b"1,2,0\n3,4,1\n"))

w = struct.pack("<6f", 0.1, -0.2, 0.3, 0.4, 0.5, -0.6)
put("safetensors", "f32.safetensors", safetensors({"layer.w": ("F32", [2, 3], w), "layer.b": ("F32", [2], struct.pack("<2f", 0, 1))}, {"metalearn.order": '["layer.w","layer.b"]'}))
put("safetensors", "f64.safetensors", safetensors({"w": ("F64", [2], struct.pack("<2d", 1, 2))}, {"k": "v"}))

cfg_root = os.path.join(ROOT, "..", "configs")
for dirpath, _, files in os.walk(cfg_root):
    for f in sorted(files):
        if f.endswith(".toml"):
            with open(os.path.join(dirpath, f), "rb") as src:
                put("toml_config", os.path.relpath(os.path.join(dirpath, f), cfg_root).replace("/", "_"), src.read())
