"""Speed and memory of the NTU converter on synthetic raw files.

    python -m data_gen.bench [--sizes 200 800] [--workers 2] [--loop-samples 6]

Prints, for each dataset size, the end-to-end conversion time per sample (parse, normalise, write) and
the converting process's peak resident memory, each size run in a fresh child process; then, in this
process and on the same parsed samples, the normalisation time per sample of the vectorised
``normalize`` and of ``normalize_loop`` (the same normalisation as a plain per-joint loop), and their ratio.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from data_gen import ntu_gendata
from data_gen.normalize import normalize, normalize_loop
from data_gen.ntu_reader import read_sample
from data_gen.synthetic import generate_ntu
from data_gen.writer import convert

CHUNK = 64  # samples per chunk: both sizes span several chunks, so their peaks compare like for like


def _child(raw, out, size, workers):
    """Convert the first ``size`` files of ``raw``; print JSON with seconds and peak RSS (MiB)."""
    names = sorted(os.listdir(raw))[:size]
    tasks = ntu_gendata.build_tasks(raw, names, "ntu60", ["xsub", "xview"])
    start = time.perf_counter()
    convert(
        tasks, out, ["xsub", "xview"], {}, num_class=60, dataset="ntu60", workers=workers, chunk=CHUNK, progress=False
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"size": size, "seconds": seconds, "peak_rss_mib": peak}))


def _normalisation_ratio(raw, n_loop, n_vec=128):
    """(vectorised ms/sample, loop ms/sample) on the same parsed samples, padded to 300 frames."""
    names = sorted(os.listdir(raw))[:n_loop]
    data = np.zeros((n_loop, 3, 300, 25, 2), dtype=np.float32)  # n x 3 x 300 x 25 x 2
    for i, name in enumerate(names):
        array, _ = read_sample(os.path.join(raw, name))
        data[i, :, : array.shape[1]] = array
    batch = np.concatenate([data] * int(np.ceil(n_vec / n_loop)))[:n_vec]  # n_vec x 3 x 300 x 25 x 2
    times = []
    for _ in range(5):
        start = time.perf_counter()
        fast = normalize(batch)
        times.append((time.perf_counter() - start) * 1000 / n_vec)
    vec_ms = float(np.median(times))
    start = time.perf_counter()
    slow = normalize_loop(data)
    loop_ms = (time.perf_counter() - start) * 1000 / n_loop
    max_diff = float(np.abs(fast[:n_loop] - slow).max())
    return vec_ms, loop_ms, max_diff


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[200, 800])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loop-samples", type=int, default=6, help="samples timed through the per-joint loop")
    parser.add_argument("--child", nargs=4, metavar=("RAW", "OUT", "SIZE", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        raw, out, size, workers = args.child
        _child(raw, out, int(size), int(workers))
        return
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "raw")
        largest = max(args.sizes)
        subjects = int(np.ceil(largest / (20 * 2 * 2)))
        start = time.perf_counter()
        generate_ntu(raw, classes=20, subjects=subjects, cameras=2, setups=2, seed=0)
        print(f"generated {len(os.listdir(raw))} synthetic NTU files in {time.perf_counter() - start:.1f} s")
        rows = []
        for size in args.sizes:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "data_gen.bench",
                    "--child",
                    raw,
                    os.path.join(tmp, f"out{size}"),
                    str(size),
                    str(args.workers),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        for r in rows:
            print(
                f"convert {r['size']:5d} samples ({args.workers} workers, chunk {CHUNK}): "
                f"{1000 * r['seconds'] / r['size']:7.2f} ms/sample, peak RSS {r['peak_rss_mib']:7.1f} MiB"
            )
        print(
            f"peak RSS ratio {rows[1]['size']}/{rows[0]['size']} samples: "
            f"{rows[1]['peak_rss_mib'] / rows[0]['peak_rss_mib']:.2f} (flat = 1)"
        )
        vec_ms, loop_ms, max_diff = _normalisation_ratio(raw, args.loop_samples)
        print(f"normalise, vectorised: {vec_ms:8.3f} ms/sample (128-sample chunk, median of 5)")
        print(f"normalise, per-joint loop: {loop_ms:8.3f} ms/sample ({args.loop_samples} samples)")
        print(f"speed-up: {loop_ms / vec_ms:.1f}x (max abs difference {max_diff:.2e})")


if __name__ == "__main__":
    main()
