import numpy as np, sys, json
import detectors as D
def min_spike(fn, p, kind="measure", thr=3.0, seeds=range(5)):
    """smallest single-window spike (in noise sd for measures / in Poisson sd for counts) scoring >= thr."""
    res = []
    for sd in seeds:
        rng = np.random.default_rng(100 + sd)
        if kind == "measure":
            base = 100 + 5 * rng.standard_normal(600); unit = 5.0
        else:
            base = rng.poisson(100, 600).astype(float); unit = 10.0
        found = None
        for k in np.arange(2, 60.1, 0.5):
            v = base.copy(); v[500] = 100 + k * unit
            sc = getattr(D, fn)(v, 3600 * np.arange(len(v)), kind, **p)
            if sc[500] >= thr:
                found = k; break
        res.append(found if found is not None else np.inf)
    return float(np.median(res))
if __name__ == "__main__":
    p = json.loads(sys.argv[1]); fn = sys.argv[2]
    print("measure", min_spike(fn, p), "count", min_spike(fn, p, "count"))
