import numpy as np, math, sys, json
import corpus, scorer, detectors as D
def clean_family_rate(fn, p, family, thr=3.0, quiet=50, n=40, seed0=70000):
    c = [corpus.gen_series(seed0 + i, family=family, with_anomalies=False) for i in range(n)]
    sc = [getattr(D, fn)(s["values"], s["t"], s["kind"], **p) for s in c]
    return scorer.false_alarm_rate(sc, thr, quiet)
if __name__ == "__main__":
    B = dict(D.RECOMMENDED)
    for label, p in [("nu=5", {}), ("nu=10", {"nu": 10.0}), ("nu=20", {"nu": 20.0}), ("nu=inf", {"nu": math.inf}),
                     ("nu=5 point", {"point": True})]:
        pp = dict(B, **p)
        r = {f: clean_family_rate("surprise2", pp, f) for f in ("money", "sentiment", "seo", "dense_count", "sparse_count")}
        print(label, " ".join(f"{k} {v*1000:.2f}" for k, v in r.items()), "(alarms per 1000 windows, thr 3, Q 50)", flush=True)
