"""Prints the result tables (and writes results.json).

    python run.py            # everything (about 10-15 minutes on 2 cores)
    python run.py --quick    # only old / EWMA / recommended

Protocol: for every variant the threshold (grid 0.5..20 step 0.25) and the quiet period
(0, 20, 50, 100 windows) are chosen to maximise the NAB-style score on the TUNING corpus
(seeds 1000-1499); the same (threshold, quiet) is then applied unchanged to
HELD-OUT A (seeds 50000-50499, looked at during development) and
HELD-OUT B (seeds 90000-90499, evaluated only by this script).
False-alarm rates: fraction of scored windows that raise an alarm (after the quiet
period) on 40 pure Gaussian-noise and 40 pure Poisson-noise series of 5000 windows.
"""
import json
import math
import sys
import time
from multiprocessing import Pool

import numpy as np

import corpus
import detectors as D
import heavy
import scorer
import spike

THR = np.round(np.arange(0.5, 20.01, 0.25), 2)
QUIETS = (0, 20, 50, 100)
SETS = {"tune": corpus.TUNING_SEEDS, "heldA": corpus.HELDOUT_SEEDS, "heldB": range(90000, 90500)}
_CACHE = {}


def get_corpus(name):
    if name not in _CACHE:
        if name in SETS:
            _CACHE[name] = corpus.corpus(SETS[name])
        elif name == "noise_gauss":
            _CACHE[name] = corpus.noise_corpus("gauss", 40, 5000)
        elif name == "noise_poisson":
            _CACHE[name] = corpus.noise_corpus("poisson", 40, 5000)
    return _CACHE[name]


def _part(args):
    name, fn, params, k = args
    c = get_corpus(name)
    f = getattr(D, fn)
    return [f(s["values"], s["t"], s["kind"], **params) for s in c[k::2]]


def scores(pool, name, fn, params):
    c = get_corpus(name)
    parts = pool.map(_part, [(name, fn, params, k) for k in range(2)])
    out = [None] * len(c)
    for k, part in enumerate(parts):
        for j, sc in zip(range(k, len(c), 2), part):
            out[j] = sc
    return out


def preps(name):
    key = "prep_" + name
    if key not in _CACHE:
        _CACHE[key] = [scorer.Prepared(len(s["values"]), s["windows"]) for s in get_corpus(name)]
    return _CACHE[key]


def state_bytes(fn, p, quiet):
    q = 8 if quiet else 0
    if fn in ("old_rust", "ewma"):
        return 24 + q
    if fn == "recommended":
        return 96 + q
    if fn == "surprise":
        return 8 * D.state_f64(p) + q
    k = 8 + 8 * 3                      # n, level, mad, msq
    if p.get("slow_floor", 0) > 0:
        k += 8
    if p.get("floor_q", 0.5) > 0:
        k += 16                        # resolution, previous value
    if p.get("mag", True):
        k += 24
    if p.get("chart", True):
        k += 16
    if p.get("chart2", 0) > 0:
        k += 16
    if p.get("zero_run", False):
        k += 16
    if p.get("seasonal", False):
        k += 8 * 26
    if p.get("tailcal", False):
        k += 16
    if p.get("transform", "log") == "log":
        k += 16
    return k + q


def evaluate(pool, label, fn, params, quiets=QUIETS, fixed=None, clip_sweep=False):
    t0 = time.time()
    res = {"label": label, "fn": fn, "params": params}
    if clip_sweep:
        # old detector: its clip threshold IS its alarm threshold -> re-run per threshold
        grid = [3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 8.0, 10.0]
        best = None
        for th in grid:
            st = scores(pool, "tune", fn, dict(params, threshold=th))
            for q in quiets:
                r = scorer.score_corpus(preps("tune"), st, th, q)
                if best is None or r["score"] > best["score"]:
                    best = r
        params = dict(params, threshold=best["threshold"])
        res["params"] = params
        thr, quiet = best["threshold"], best["quiet"]
        res["tune"] = best
    elif fixed is not None:
        thr, quiet = fixed
        st = scores(pool, "tune", fn, params)
        res["tune"] = scorer.score_corpus(preps("tune"), st, thr, quiet)
    else:
        st = scores(pool, "tune", fn, params)
        best = None
        for q in quiets:
            b = scorer.best_threshold(preps("tune"), st, THR, q)
            if best is None or b["score"] > best["score"]:
                best = b
        thr, quiet = best["threshold"], best["quiet"]
        res["tune"] = best
    for name in ("heldA", "heldB"):
        sh = scores(pool, name, fn, params)
        res[name] = scorer.score_corpus(preps(name), sh, thr, quiet)
    for name in ("noise_gauss", "noise_poisson"):
        sn = scores(pool, name, fn, params)
        res[name] = scorer.false_alarm_rate(sn, thr, quiet)
    res["threshold"], res["quiet"] = thr, quiet
    res["bytes"] = state_bytes(fn, params, quiet)
    res["spike_measure"] = spike.min_spike(fn, params, "measure", thr)
    res["spike_count"] = spike.min_spike(fn, params, "count", thr)
    res["money_fa"] = heavy.clean_family_rate(fn, params, "money", thr, quiet)
    res["secs"] = time.time() - t0
    return res


def fmt_rate(r):
    return "0" if r == 0 else f"{r:.1e}"


def row(r):
    b = r["heldB"]
    return (f"| {r['label']} | {r['tune']['score']:.1f} | {r['heldA']['score']:.1f} | {b['score']:.1f} | "
            f"{b['precision']:.2f} / {b['recall']:.2f} | {r['threshold']:g} | {r['quiet']} | "
            f"{fmt_rate(r['noise_gauss'])} | {fmt_rate(r['noise_poisson'])} | {fmt_rate(r['money_fa'])} | "
            f"{r['spike_measure']:g} / {r['spike_count']:g} | {r['bytes']} |")


HEADER = ("| variant | tune | held-out A | held-out B | B precision / recall | threshold | quiet | "
          "FA/window Gaussian noise | FA/window Poisson noise | FA/window clean money | "
          "smallest single spike caught, measure / count (sd) | state bytes |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|")

R = D.RECOMMENDED


def experiments(quick):
    ex = [
        ("A0 old Rust detector, as shipped (threshold 4, no quiet period)", "old_rust", {}, dict(fixed=(4.0, 0))),
        ("A1 old Rust detector, threshold (=clip) and quiet period tuned", "old_rust", {}, dict(clip_sweep=True)),
        ("A2 EWMA z, no clipping, alpha 0.05", "ewma", {"alpha": 0.05}, {}),
        ("A3 EWMA z, no clipping, alpha 0.01", "ewma", {"alpha": 0.01}, {}),
        ("R  RECOMMENDED (class Surprise)", "recommended", {}, {}),
        ("R  RECOMMENDED at its default threshold 3, quiet 50", "recommended", {}, dict(fixed=(3.0, 50))),
    ]
    if quick:
        return ex
    P = dict(R)
    build = dict(P, mag=False, chart=False, point=True, zero_run=False, nu=math.inf, u_soft=math.inf,
                 count_model="gauss")
    ex += [
        ("B1 robust EWMA (clip 4 x MAD, slow-MAD & 1% floors, alpha 0.02), single-window -log10 p", "surprise2", build, {}),
        ("B2 B1 + negative-binomial deviance for counts", "surprise2", dict(build, count_model="nb"), {}),
        ("B3 B2 + single-window -> short average vs own long-run (likelihood) path", "surprise2",
         dict(build, count_model="nb", point=False, mag=True), {}),
        ("B4 B3 + signed EWMA chart of z (second time scale)", "surprise2",
         dict(build, count_model="nb", point=False, mag=True, chart=True), {}),
        ("B5 B4 + zero-run path (outages of measures)", "surprise2",
         dict(build, count_model="nb", point=False, mag=True, chart=True, zero_run=True), {}),
        ("B6 B5 + Student-like nu=10 for measures + soft cap 50 (= RECOMMENDED)", "surprise2", dict(P), {}),
        ("L1 RECOMMENDED without clipping", "surprise2", dict(P, clip=None), {}),
        ("L2 RECOMMENDED, clip at 3 x scale", "surprise2", dict(P, clip=3.0), {}),
        ("L3 RECOMMENDED, clip at 6 x scale", "surprise2", dict(P, clip=6.0), {}),
        ("L4 RECOMMENDED without the slow-MAD scale floor", "surprise2", dict(P, slow_floor=0.0), {}),
        ("L5 RECOMMENDED, Poisson instead of NB for counts", "surprise2", dict(P, count_model="poisson"), {}),
        ("L6 RECOMMENDED, Gaussian z for counts (sqrt(mean) floor)", "surprise2", dict(P, count_model="gauss"), {}),
        ("L7 RECOMMENDED without the likelihood (magnitude) path", "surprise2", dict(P, mag=False), {}),
        ("L8 RECOMMENDED without the signed chart", "surprise2", dict(P, chart=False), {}),
        ("L9 RECOMMENDED without the zero-run path", "surprise2", dict(P, zero_run=False), {}),
        ("L10 RECOMMENDED, Gaussian (nu = inf) for measures", "surprise2", dict(P, nu=math.inf), {}),
        ("L10b RECOMMENDED, nu = 5 for measures", "surprise2", dict(P, nu=5.0), {}),
        ("L10c RECOMMENDED, nu = 20 for measures", "surprise2", dict(P, nu=20.0), {}),
        ("L11 RECOMMENDED, no quiet period", "recommended", {}, dict(quiets=(0,))),
        ("L12 RECOMMENDED, one-sided (up only)", "surprise2", dict(P, sided="up"), {}),
        ("L13 RECOMMENDED, one-sided (down only)", "surprise2", dict(P, sided="down"), {}),
        ("L14 RECOMMENDED + 24-slot hour-of-day profile", "surprise2", dict(P, seasonal=True), {}),
        ("L15 RECOMMENDED + second, slower chart (weight 0.02)", "surprise2", dict(P, chart2=0.02), {}),
        ("L16 RECOMMENDED + single-window surprise as a third path", "surprise2", dict(P, point=True), {}),
        ("L17 RECOMMENDED + log(x + c) transform for non-negative measures", "surprise2", dict(P, transform="log"), {}),
        ("L18 RECOMMENDED, level alpha 0.01", "surprise2", dict(P, alpha=0.01), {}),
        ("L19 RECOMMENDED, level alpha 0.05", "surprise2", dict(P, alpha=0.05), {}),
        ("L20 RECOMMENDED, short averages weight 0.2", "surprise2", dict(P, short=0.2), {}),
        ("L21 RECOMMENDED, long-run weight 0.003", "surprise2", dict(P, long=0.003), {}),
        ("L22 alt. calibration: EVT-style tail (exceedance rate + mean excess) of single-window surprise",
         "surprise", {}, {}),
    ]
    return ex


def by_family(pool, fn, params, name, thr, quiet):
    c = get_corpus(name)
    sc = scores(pool, name, fn, params)
    agg = {}
    for s, x, p in zip(c, sc, preps(name)):
        raw, tp, fp, _, nw = scorer.score_series(p, x, thr, quiet)
        a = agg.setdefault(s["family"], [0, 0, 0, 0.0, 0])
        a[0] += 1; a[1] += nw; a[2] += tp; a[3] += fp; a[4] += raw
    return agg


def main():
    quick = "--quick" in sys.argv
    start = sys.argv[sys.argv.index("--from") + 1] if "--from" in sys.argv else None
    pool = Pool(2)
    results = []
    print(HEADER, flush=True)
    skipping = start is not None
    for label, fn, params, kw in experiments(quick):
        if skipping and label.startswith(start):
            skipping = False
        if skipping:
            continue
        r = evaluate(pool, label, fn, params, **kw)
        results.append(r)
        print(row(r), flush=True)
    # per-family on held-out B: old as shipped vs recommended at its default
    print("\nPer family, held-out B (windows / detected / false alarms / normalised score):")
    print("| family | series | windows | old (thr 4, Q 0): det / FA / score | recommended (thr 3, Q 50): det / FA / score |")
    print("|---|---|---|---|---|")
    fo = by_family(pool, "old_rust", {}, "heldB", 4.0, 0)
    fr = by_family(pool, "recommended", {}, "heldB", 3.0, 50)
    for fam in sorted(fo):
        o, n = fo[fam], fr[fam]
        def ns(a):
            return f"{100 * (a[4] + a[1]) / (2 * a[1]):.1f}" if a[1] else f"(raw {a[4]:.1f})"
        print(f"| {fam} | {o[0]} | {o[1]} | {o[2]} / {o[3]} / {ns(o)} | {n[2]} / {n[3]} / {ns(n)} |")
    # recommended: false alarms vs threshold on noise
    print("\nRecommended detector, false alarms per scored window on pure noise (quiet 0 / quiet 50):")
    print("| threshold | Gaussian, Q0 | Gaussian, Q50 | Poisson, Q0 | Poisson, Q50 | 10^-threshold |")
    print("|---|---|---|---|---|---|")
    sg = scores(pool, "noise_gauss", "recommended", {})
    sp = scores(pool, "noise_poisson", "recommended", {})
    for th in (2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0):
        print(f"| {th:g} | {fmt_rate(scorer.false_alarm_rate(sg, th, 0))} | {fmt_rate(scorer.false_alarm_rate(sg, th, 50))} | "
              f"{fmt_rate(scorer.false_alarm_rate(sp, th, 0))} | {fmt_rate(scorer.false_alarm_rate(sp, th, 50))} | {10 ** -th:.1e} |")
    # recommended: NAB-style score vs threshold (quiet 50)
    print("\nRecommended detector, NAB-style score vs threshold (quiet 50):")
    print("| threshold | tune | held-out A | held-out B | B precision / recall | B false alarms | B false alarms on no-anomaly series per 1000 windows |")
    print("|---|---|---|---|---|---|---|")
    sc = {n: scores(pool, n, "recommended", {}) for n in ("tune", "heldA", "heldB")}
    cB = get_corpus("heldB")
    clean = [i for i, s in enumerate(cB) if not s["windows"]]
    for th in (2.5, 3.0, 3.5, 4.0, 5.0, 6.0):
        r = {n: scorer.score_corpus(preps(n), sc[n], th, 50) for n in sc}
        fa = sum(len(scorer.alarms(sc["heldB"][i], th, 50)) for i in clean)
        nwin = sum(len(cB[i]["values"]) for i in clean)
        print(f"| {th:g} | {r['tune']['score']:.1f} | {r['heldA']['score']:.1f} | {r['heldB']['score']:.1f} | "
              f"{r['heldB']['precision']:.2f} / {r['heldB']['recall']:.2f} | {r['heldB']['fp']} | {1000 * fa / nwin:.2f} |")
    with open("results.json" if not quick else "results_quick.json", "w") as f:
        json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
