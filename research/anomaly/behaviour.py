"""Concrete behaviour of the recommended detector on corner cases (printed for RESULTS.md)."""
import numpy as np
import detectors as D

def run(vals, kind):
    d = D.Surprise(kind == "count")
    out = []
    for x in vals:
        sc, an = d.observe(float(x))
        out.append((sc, an))
    return d, out

def show(title, vals, kind, idx):
    d, out = run(vals, kind)
    parts = []
    for i in idx:
        sc, an = out[i]
        parts.append(f"w{i}={'None' if sc is None else f'{sc:.2f}'}{'*' if an else ''}")
    print(f"- {title}: " + ", ".join(parts))
    return out

rng = np.random.default_rng(3)
print("(* = alarm at threshold 3 with the 50-window quiet period)")
show("all-zero count series, 500 windows", [0]*500, "count", [9, 10, 11, 100, 499])
out = show("all-zero count series then one event (x=1) at w500, then zeros", [0]*500 + [1] + [0]*20, "count", [500, 501, 510])
show("all-zero count series then x=3 at w500", [0]*500 + [3] + [0]*5, "count", [500, 501])
show("all-zero count series then x=20 at w500", [0]*500 + [20] + [0]*5, "count", [500, 501, 505])
show("all-zero measure series then 5.0 at w500", [0.0]*500 + [5.0] + [0.0]*5, "measure", [10, 100, 499, 500, 501])
v = list(100 + 5 * rng.standard_normal(500)) + [0.0] * 300
show("measure 100 +- 5 that stops at w500 and stays 0", v, "measure", [500, 501, 510, 550, 600, 700, 799])
show("constant measure 50.0, then 50.5 at w500", [50.0]*500 + [50.5] + [50.0]*5, "measure", [499, 500, 501])
show("constant measure 50.0, then 45 at w500", [50.0]*500 + [45.0] + [50.0]*5, "measure", [500, 501])
show("constant measure 50.0, then a level shift to 40 from w500", [50.0]*500 + [40.0]*300, "measure", [500, 501, 510, 550, 600, 700, 799])
v = list(rng.poisson(100, 500)) + list(rng.poisson(300, 300))
out = show("Poisson(100) counts, level shift to Poisson(300) at w500", v, "count", [499, 500, 501, 520, 550, 600, 700, 799])
sc = np.array([o[0] if o[0] is not None else np.nan for o in out])
print(f"  windows >= 3 after the shift: first {np.flatnonzero(sc[500:] >= 3)[:1]}, last {np.flatnonzero(sc[500:] >= 3)[-1:]} (relative to w500)")
v = list(100 + 5 * rng.standard_normal(500)) + [200.0] + list(100 + 5 * rng.standard_normal(20))
show("Gaussian 100 +- 5, spike 200 at w500", v, "measure", [499, 500, 501, 505, 515])
v = list(100 + 5 * rng.standard_normal(500)) + [0.0] * 10 + list(100 + 5 * rng.standard_normal(20))
show("Gaussian 100 +- 5, outage (0) for 10 windows from w500", v, "measure", [500, 501, 505, 509, 511])
v = list(rng.poisson(1000, 500)) + [0] * 10 + list(rng.poisson(1000, 20))
show("Poisson(1000) counts, outage (0) for 10 windows from w500", v, "count", [500, 501, 505, 511])
v = list(rng.poisson(0.05, 2000)) + [4] + list(rng.poisson(0.05, 10))
show("sparse Poisson(0.05) counts, then x=4 at w2000", v, "count", [2000, 2001])
v = np.clip(rng.normal(0.2, 0.1, 800), -1, 1); v[500:] -= 0.3
show("sentiment 0.2 +- 0.1, drops by 0.3 from w500", v, "measure", [500, 501, 503, 505, 510])
v = np.round(np.clip(rng.normal(72, 0.3, 800), 0, 100)); v[500:] -= 20
show("SEO score ~72 (integer), drops by 20 from w500", v, "measure", [499, 500, 501, 505])
big = [1e6] + [0] * 5
show("all-zero count series then x=1e6 at w500", [0]*500 + big, "count", [500, 501, 505])
