"""Seeded synthetic labelled corpus of marketing-shaped series.

Each series is a dict:
    name      str
    family    str   (sparse_count, dense_count, money, sentiment, seo, noise_gauss, noise_poisson)
    kind      'count' | 'measure'   (what the detector is told)
    values    np.ndarray float64
    t         np.ndarray int64, window start in seconds (event time)
    period    int, windows per day (for information only; detectors may use t)
    anomalies list of (start_index, type)   -- labelled anomaly starts
    windows   list of (left, right) inclusive index ranges (NAB style, merged)

Anomaly windows follow NAB's labeler: window length = int(0.10 * n / n_anomalies),
centred on the anomaly start, clipped to the series, overlapping windows merged.
Anomalies are placed after the NAB probationary period (15 %, at most 750).

Series families (all generated from one numpy Generator seeded per series):
  sparse_count : negative-binomial counts with tiny rate (mostly 0), weak daily cycle.
  dense_count  : NB counts with a strong daily cycle, slow drift; windows of 1 min, 5 min or 1 h.
  money        : sum of heavy-tailed (lognormal or Pareto) purchase amounts; #purchases NB.
  sentiment    : mean of per-item sentiments in [-1, 1] around a slowly wandering mood.
  seo          : integer score 0..100, mostly constant, rare +-1..3 steps, rare 1-window blips.
  noise_gauss  : pure Gaussian measure, no anomalies.
  noise_poisson: pure Poisson counts, no anomalies.
About 20 % of the non-noise series carry no anomaly either.
"""
import numpy as np

FAMILY_WEIGHTS = [
    ("sparse_count", 0.20),
    ("dense_count", 0.25),
    ("money", 0.18),
    ("sentiment", 0.14),
    ("seo", 0.11),
    ("noise_gauss", 0.06),
    ("noise_poisson", 0.06),
]
WINDOW_SECONDS = [60, 300, 3600]
DAY = 86400


def probation(n):
    return int(min(np.floor(0.15 * n), 0.15 * 5000))


def nab_windows(n, starts):
    if not starts:
        return []
    wl = int(0.10 * n / len(starts))
    wins = []
    for a in sorted(starts):
        lo = max(a - wl // 2, 0)
        hi = min(a + wl // 2, n - 1)
        if wins and lo <= wins[-1][1]:
            wins[-1] = (wins[-1][0], max(wins[-1][1], hi))
        else:
            wins.append((lo, hi))
    return wins


def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _daily(rng, t, amp):
    phase = rng.uniform(0, 2 * np.pi)
    x = 2 * np.pi * (t % DAY) / DAY + phase
    # a skewed daily shape: sharper peak than a sinusoid
    s = np.sin(x) + 0.35 * np.sin(2 * x + rng.uniform(0, 2 * np.pi))
    s = s / np.max(np.abs(s))
    return np.exp(amp * s)


def _place_anomalies(rng, n, k, min_len):
    """k anomaly starts after probation, spread so each has room for min_len."""
    lo = probation(n) + 20
    hi = n - 30
    if hi - lo < k * (min_len + 40):
        k = max(1, (hi - lo) // (min_len + 40))
    # split [lo, hi) into k segments, place one anomaly in the first 60 % of each
    edges = np.linspace(lo, hi, k + 1).astype(int)
    starts = []
    for i in range(k):
        a, b = edges[i], edges[i + 1]
        span = max(1, int(0.6 * (b - a)))
        starts.append(int(a + rng.integers(0, span)))
    return starts


def _pick(rng, choices, used):
    """choose an anomaly type; a persistent level shift at most once per series."""
    ok = [c for c in choices if not (c.startswith("shift") and used)]
    typ = str(rng.choice(ok))
    if typ.startswith("shift"):
        used.append(typ)
    return typ


def _nb(rng, mu, shape):
    """negative binomial with mean mu and gamma shape `shape` (var = mu + mu^2/shape)."""
    mu = np.maximum(mu, 0.0)
    if np.isinf(shape):
        return rng.poisson(mu).astype(float)
    lam = rng.gamma(shape, 1.0, size=np.shape(mu)) * mu / shape
    return rng.poisson(lam).astype(float)


def gen_series(seed, family=None, with_anomalies=None):
    rng = np.random.default_rng(seed)
    if family is None:
        names = [f for f, _ in FAMILY_WEIGHTS]
        w = np.array([p for _, p in FAMILY_WEIGHTS])
        family = names[rng.choice(len(names), p=w / w.sum())]
    n = int(rng.integers(1000, 5001))
    noise_family = family.startswith("noise")
    if with_anomalies is None:
        with_anomalies = (not noise_family) and rng.random() > 0.2
    k = int(rng.integers(1, 4)) if with_anomalies else 0
    wsec = int(rng.choice(WINDOW_SECONDS))
    if family in ("sparse_count", "money") and rng.random() < 0.5:
        wsec = int(rng.choice([300, 3600]))
    t0 = int(rng.integers(0, 365)) * DAY + int(rng.integers(0, DAY // wsec)) * wsec
    t = t0 + wsec * np.arange(n, dtype=np.int64)
    starts = _place_anomalies(rng, n, k, 60) if k else []
    types = []
    used = []
    kind = "count"

    if family == "sparse_count":
        base = _loguniform(rng, 0.02, 1.0)
        shape = _loguniform(rng, 0.3, 5.0)
        amp = rng.uniform(0.0, 0.8)
        mu = base * _daily(rng, t, amp)
        add = np.zeros(n)
        mult = np.ones(n)
        for s in starts:
            choices = ["burst", "shift_up"] + (["outage"] if base >= 0.3 else [])
            typ = _pick(rng, choices, used)
            types.append(typ)
            if typ == "burst":
                d = int(rng.integers(1, 4))
                add[s:s + d] += max(6.0, 10 * base) * rng.uniform(1, 3)
            elif typ == "shift_up":
                mult[s:] *= rng.uniform(4, 12)
            else:
                d = int(rng.integers(int(8 / base), int(20 / base) + 1))
                mult[s:s + d] = 0.0
        values = _nb(rng, mu * mult, shape) + rng.poisson(add)
        values[mult == 0] = 0.0

    elif family == "dense_count":
        base = _loguniform(rng, 5, 2000)
        shape = _loguniform(rng, 5, 300)
        amp = rng.uniform(0.2, 1.0)
        drift = np.cumsum(rng.normal(0, 0.002, n))
        mu = base * _daily(rng, t, amp) * np.exp(drift - drift.mean())
        mult = np.ones(n)
        shape_arr = np.full(n, shape)
        for s in starts:
            typ = _pick(rng, ["spike", "dip", "shift_down", "shift_up", "outage", "variance"], used)
            types.append(typ)
            if typ == "spike":
                d = int(rng.integers(1, 8))
                mult[s:s + d] *= rng.uniform(2, 5)
            elif typ == "dip":
                d = int(rng.integers(5, 50))
                mult[s:s + d] *= rng.uniform(0.1, 0.5)
            elif typ == "shift_down":
                mult[s:] *= rng.uniform(0.3, 0.6)
            elif typ == "shift_up":
                mult[s:] *= rng.uniform(1.8, 3.0)
            elif typ == "outage":
                d = int(rng.integers(10, 100))
                mult[s:s + d] = 0.0
            else:
                d = int(rng.integers(100, 300))
                shape_arr[s:s + d] = shape / rng.uniform(20, 60)
        lam = rng.gamma(shape_arr, 1.0) * mu * mult / shape_arr
        values = rng.poisson(lam).astype(float)

    elif family == "money":
        kind = "measure"
        rate = _loguniform(rng, 0.5, 40)
        shape = _loguniform(rng, 2, 50)
        amp = rng.uniform(0.0, 0.9)
        price = _loguniform(rng, 5, 200)
        pareto = rng.random() < 0.4
        alpha = rng.uniform(1.6, 3.0)
        sig = rng.uniform(0.5, 1.4)
        mu = rate * _daily(rng, t, amp)
        mult = np.ones(n)
        pmult = np.ones(n)
        for s in starts:
            typ = _pick(rng, ["spike", "outage", "shift_down", "shift_up", "price_bug"], used)
            types.append(typ)
            if typ == "spike":
                d = int(rng.integers(1, 5))
                mult[s:s + d] *= rng.uniform(4, 10)
            elif typ == "outage":
                d = int(rng.integers(int(max(10, 10 / rate)), int(max(30, 40 / rate)) + 1))
                mult[s:s + d] = 0.0
            elif typ == "shift_down":
                mult[s:] *= rng.uniform(0.25, 0.5)
            elif typ == "shift_up":
                mult[s:] *= rng.uniform(2.0, 4.0)
            else:
                d = int(rng.integers(3, 30))
                pmult[s:s + d] *= rng.choice([0.01, 0.1, 10.0])
        cnt = _nb(rng, mu * mult, shape).astype(int)
        values = np.zeros(n)
        tot = int(cnt.sum())
        if pareto:
            amounts = price * (alpha - 1) / alpha * (1 + rng.pareto(alpha, tot))
        else:
            amounts = price * np.exp(rng.normal(-0.5 * sig * sig, sig, tot))
        idx = np.repeat(np.arange(n), cnt)
        np.add.at(values, idx, amounts)
        values = np.round(values * pmult, 2)

    elif family == "sentiment":
        kind = "measure"
        mood0 = rng.uniform(-0.2, 0.5)
        item_sd = rng.uniform(0.3, 0.6)
        vol = _loguniform(rng, 5, 200)
        amp = rng.uniform(0.0, 0.8)
        ar = np.zeros(n)
        e = rng.normal(0, 0.01, n)
        for i in range(1, n):
            ar[i] = 0.995 * ar[i - 1] + e[i]
        mood = mood0 + ar
        sd = np.full(n, item_sd)
        for s in starts:
            typ = _pick(rng, ["crisis", "shift_down", "spike_neg", "variance"], used)
            types.append(typ)
            if typ == "crisis":
                d = int(rng.integers(30, 300))
                mood[s:s + d] -= rng.uniform(0.25, 0.6)
            elif typ == "shift_down":
                mood[s:] -= rng.uniform(0.2, 0.5)
            elif typ == "spike_neg":
                d = int(rng.integers(1, 5))
                mood[s:s + d] = -0.7
            else:
                d = int(rng.integers(100, 300))
                sd[s:s + d] = 0.95
        nitems = np.maximum(1, _nb(rng, vol * _daily(rng, t, amp), 20.0))
        # mean of nitems clipped normals ~ normal with sd/sqrt(n), clipped to [-1, 1]
        values = np.clip(rng.normal(mood, sd / np.sqrt(nitems)), -1, 1)
        values = np.round(values, 4)

    elif family == "seo":
        kind = "measure"
        level = float(rng.integers(30, 96))
        steps = np.where(rng.random(n) < rng.uniform(0.002, 0.01),
                         rng.choice([-3, -2, -1, 1, 2, 3], n), 0)
        lv = level + np.cumsum(steps)
        blip = np.where(rng.random(n) < rng.uniform(0.0, 0.02), rng.choice([-1, 1], n), 0)
        off = np.zeros(n)
        for s in starts:
            typ = _pick(rng, ["drop", "shift_down", "shift_up", "zero"], used)
            types.append(typ)
            if typ == "drop":
                d = int(rng.integers(20, 200))
                off[s:s + d] -= rng.uniform(10, 40)
            elif typ == "shift_down":
                off[s:] -= rng.uniform(8, 30)
            elif typ == "shift_up":
                off[s:] += rng.uniform(8, 20)
            else:
                d = int(rng.integers(5, 60))
                off[s:s + d] = -1000
        values = np.clip(np.round(lv + blip + off), 0, 100)

    elif family == "noise_gauss":
        kind = "measure"
        mean = _loguniform(rng, 0.1, 1000) * rng.choice([-1, 1])
        sd = abs(mean) * _loguniform(rng, 0.01, 1.0)
        values = rng.normal(mean, sd, n)

    elif family == "noise_poisson":
        values = rng.poisson(_loguniform(rng, 0.05, 500), n).astype(float)

    else:
        raise ValueError(family)

    return {
        "name": f"{family}-{seed}",
        "family": family,
        "kind": kind,
        "values": values.astype(float),
        "t": t,
        "period": DAY // wsec,
        "anomalies": list(zip(starts, types)),
        "windows": nab_windows(n, starts),
        "meta": {k: (float(v) if isinstance(v, (int, float, np.floating, np.integer, bool, np.bool_)) else None)
                 for k, v in locals().items()
                 if k in ("base", "shape", "amp", "wsec", "rate", "price", "pareto", "alpha", "sig",
                          "mood0", "item_sd", "vol", "level", "mean", "sd")},
    }


def corpus(seeds):
    return [gen_series(int(s)) for s in seeds]


TUNING_SEEDS = range(1000, 1500)      # 500 series
HELDOUT_SEEDS = range(50000, 50500)   # 500 series


def noise_corpus(kind, n_series=40, n=5000, seed=7):
    """pure noise series used for false-alarm rates (no anomalies)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_series):
        t = 3600 * np.arange(n, dtype=np.int64)
        if kind == "gauss":
            mean = _loguniform(rng, 0.1, 1000) * rng.choice([-1, 1])
            sd = abs(mean) * _loguniform(rng, 0.01, 1.0)
            v = rng.normal(mean, sd, n)
            k = "measure"
        else:
            v = rng.poisson(_loguniform(rng, 0.05, 500), n).astype(float)
            k = "count"
        out.append({"name": f"noise_{kind}_{i}", "family": "noise_" + kind, "kind": k,
                    "values": v, "t": t, "period": 24, "anomalies": [], "windows": []})
    return out


if __name__ == "__main__":
    import collections
    c = corpus(TUNING_SEEDS)
    print(collections.Counter(s["family"] for s in c))
    print("points", sum(len(s["values"]) for s in c), "windows", sum(len(s["windows"]) for s in c))
    print(collections.Counter(t for s in c for _, t in s["anomalies"]))
