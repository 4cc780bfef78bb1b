"""Score the detectors on a NAB checkout (github.com/numenta/NAB layout), if one is available.

    python nab_eval.py /path/to/NAB [--all-measures] [--reactor PATH]

--reactor PATH also scores the shipped detector: each NAB file as it is, through
`PATH anomaly backtest` (NAB's `YYYY-MM-DD hh:mm:ss` timestamps, each row a window of
the rows' own spacing, the built-in [anomaly] defaults), its `anomalous` column taken as
the alarms (its own quiet period and escalations: no threshold or quiet period is applied
on top, and no NAB-optimal one is searched).

Uses NAB's own windows (labels/combined_windows.json) and data/<category>/<file>.csv.
Series kind: realTweets/* and realKnownCause/nyc_taxi.csv are counts, everything else a
measure (--all-measures: treat all as measures).  Thresholds are the ones chosen on the
synthetic tuning corpus (no tuning on NAB); the NAB-optimal threshold is printed too,
clearly labelled, because NAB's own leaderboard reports per-detector optimised thresholds.

No NAB data ships with any PyPI package we checked. The script was run on NAB's
realAdExchange and realTweets files copied from the public code index (BENCHMARKS.md) and
on a fake NAB-layout directory (see --selftest). With more than one category present it also
prints each category's scores.
"""
import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys

import numpy as np

import detectors as D
import scorer

DETECTORS = [
    ("old Rust (thr 4, Q 0)", lambda v, k: D.old_rust(v, None, k), 4.0, 0),
    ("EWMA no clip a=0.05 (thr from synthetic)", lambda v, k: D.ewma(v, None, k, alpha=0.05), 4.25, 100),
    ("EWMA no clip a=0.01 (thr from synthetic)", lambda v, k: D.ewma(v, None, k, alpha=0.01), 4.5, 100),
    ("recommended (thr 3, Q 50)", lambda v, k: D.recommended(v, None, k), 3.0, 50),
]


def parse_ts(s):
    s = s.strip()
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            return dt.datetime.strptime(s, fmt)
        except ValueError:
            pass
    raise ValueError(s)


def load(root, all_measures=False):
    with open(os.path.join(root, "labels", "combined_windows.json")) as f:
        labels = json.load(f)
    out = []
    for rel, wins in sorted(labels.items()):
        path = os.path.join(root, "data", rel)
        if not os.path.exists(path):
            continue
        ts, vals = [], []
        with open(path) as f:
            for row in csv.DictReader(f):
                ts.append(parse_ts(row["timestamp"]))
                vals.append(float(row["value"]))
        index = {t: i for i, t in enumerate(ts)}
        windows = [(index[parse_ts(a)], index[parse_ts(b)]) for a, b in wins]
        count = (rel.startswith("realTweets/") or rel.endswith("nyc_taxi.csv")) and not all_measures
        out.append({"name": rel, "path": path, "values": np.array(vals), "windows": windows,
                    "kind": "count" if count else "measure"})
    return out


def reactor_alarms(reactor, series):
    """1 where `reactor anomaly backtest` raised an anomaly on one of the file's rows, else 0
    (windows it filled in between rows, zeros of a count series, are not NAB's: an alarm
    there is counted on the next row)."""
    out = subprocess.run([reactor, "anomaly", "backtest", "--kind", series["kind"],
                          "--input", series["path"]],
                         capture_output=True, text=True, check=True)
    with open(series["path"]) as f:
        stamps = [row["timestamp"].strip() for row in csv.DictReader(f)]
    alarms = np.zeros(len(stamps))
    i, pending = 0, False
    for row in csv.DictReader(io.StringIO(out.stdout)):
        pending = pending or row["anomalous"] == "true"
        if i < len(stamps) and row["timestamp"] == stamps[i]:
            alarms[i], pending, i = float(pending), False, i + 1
    assert i == len(stamps), f"{series['name']}: {i} of {len(stamps)} rows scored"
    return alarms


def main(root, all_measures=False, reactor=None):
    data = load(root, all_measures)
    preps = [scorer.Prepared(len(s["values"]), s["windows"]) for s in data]
    print(f"{len(data)} series, {sum(p.nwin for p in preps)} windows")
    thr_grid = np.round(np.arange(0.5, 20.01, 0.25), 2)
    scores = {}
    for label, fn, thr, q in DETECTORS:
        sc = scores[label] = [fn(s["values"], s["kind"]) for s in data]
        r = scorer.score_corpus(preps, sc, thr, q)
        best = max((scorer.best_threshold(preps, sc, thr_grid, qq) for qq in (0, 20, 50, 100)),
                   key=lambda b: b["score"])
        print(f"{label:45s} score {r['score']:6.1f}  P {r['precision']:.2f} R {r['recall']:.2f} FP {r['fp']:5d}"
              f"   | NAB-optimal (thr {best['threshold']}, Q {best['quiet']}): {best['score']:.1f}")
    if reactor:
        sc = [reactor_alarms(reactor, s) for s in data]
        r = scorer.score_corpus(preps, sc, 0.5, 0)
        label = "shipped (reactor anomaly backtest)"
        print(f"{label:45s} score {r['score']:6.1f}  P {r['precision']:.2f} R {r['recall']:.2f} FP {r['fp']:5d}")
    categories = sorted({s["name"].split("/")[0] for s in data})
    if len(categories) > 1:
        print("\nper category (fixed thresholds above):")
        for cat in categories:
            pick = [i for i, s in enumerate(data) if s["name"].startswith(cat + "/")]
            sub = [preps[i] for i in pick]
            line = f"  {cat:18s} {len(pick):2d} series {sum(p.nwin for p in sub):3d} windows |"
            for label, _, thr, q in DETECTORS:
                r = scorer.score_corpus(sub, [scores[label][i] for i in pick], thr, q)
                line += f" {label.split(' (')[0]} {r['score']:.1f} |"
            if reactor:
                r = scorer.score_corpus(sub, [sc[i] for i in pick], 0.5, 0)
                line += f" shipped {r['score']:.1f} (P {r['precision']:.2f} R {r['recall']:.2f} FP {r['fp']})"
            print(line)


def selftest(tmp="/tmp/fake_nab", reactor=None):
    rng = np.random.default_rng(0)
    os.makedirs(os.path.join(tmp, "data", "realTweets"), exist_ok=True)
    os.makedirs(os.path.join(tmp, "data", "realAdExchange"), exist_ok=True)
    os.makedirs(os.path.join(tmp, "labels"), exist_ok=True)
    t0 = dt.datetime(2015, 1, 1)
    labels = {}
    for rel, gen in (("realTweets/a.csv", lambda n: rng.poisson(20, n).astype(float)),
                     ("realAdExchange/b.csv", lambda n: rng.normal(1.0, 0.1, n))):
        n = 2000
        v = gen(n)
        v[1500:1510] *= 4
        ts = [t0 + dt.timedelta(minutes=5 * i) for i in range(n)]
        with open(os.path.join(tmp, "data", rel), "w") as f:
            f.write("timestamp,value\n")
            for t, x in zip(ts, v):
                f.write(f"{t:%Y-%m-%d %H:%M:%S},{x}\n")
        labels[rel] = [[f"{ts[1400]:%Y-%m-%d %H:%M:%S}.000000", f"{ts[1600]:%Y-%m-%d %H:%M:%S}.000000"]]
    with open(os.path.join(tmp, "labels", "combined_windows.json"), "w") as f:
        json.dump(labels, f)
    main(tmp, reactor=reactor)


if __name__ == "__main__":
    reactor = sys.argv[sys.argv.index("--reactor") + 1] if "--reactor" in sys.argv else None
    if "--selftest" in sys.argv:
        selftest(reactor=reactor)
    else:
        main(sys.argv[1], "--all-measures" in sys.argv, reactor)
