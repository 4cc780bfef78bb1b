"""NAB-compatible scorer (standard profile), following numenta/NAB nab/sweeper.py.

Per series:
  * probationary length = min(floor(0.15 n), 0.15 * 5000); points before it are not scored.
  * inside a window [L, R] (inclusive), a detection at i is worth
        scaledSigmoid(-(R - i + 1) / (R - L + 1)) * A_TP / scaledSigmoid(-1)
    and a window scores the MAX over its detections (= the earliest one), or -A_FN if none.
  * outside windows a detection at i costs
        scaledSigmoid(pos) * A_FP,  pos = 3 before the first window,
                                     pos = |R_prev - i| / (W_prev - 1) after a window
    (scaledSigmoid(x) = 2 / (1 + exp(5 x)) - 1, and -1 for x >= 3).
  * detection = score >= threshold.
Corpus score: raw = sum over series; null = -A_FN * #windows; perfect = A_TP * #windows;
normalised = 100 * (raw - null) / (perfect - null).

An optional quiet period Q (suppression) drops an alarm that comes within Q windows
of the previous *kept* alarm; it is applied to all points (probation included), as a
detector would do online.
"""
import math
import numpy as np

A_TP, A_FP, A_FN = 1.0, 0.11, 1.0


def scaled_sigmoid(x):
    if x >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


MAX_TP = scaled_sigmoid(-1.0)


def probation_length(n):
    return min(math.floor(0.15 * n), 0.15 * 5000)


class Prepared:
    """per-series precomputation of sweep weights."""

    def __init__(self, n, windows):
        self.n = n
        sweep = np.zeros(n)
        win = np.full(n, -1, dtype=np.int64)
        prev_r = prev_w = None
        wi = 0
        i = 0
        windows = list(windows)
        while i < n:
            if wi < len(windows) and i == windows[wi][0]:
                lo, hi = windows[wi]
                w = hi - lo + 1
                for j in range(lo, hi + 1):
                    sweep[j] = scaled_sigmoid(-(hi - j + 1) / w) * A_TP / MAX_TP
                    win[j] = wi
                prev_r, prev_w = hi, w
                wi += 1
                i = hi + 1
                continue
            if prev_r is None:
                pos = 3.0
            else:
                pos = abs(prev_r - i) / float(prev_w - 1) if prev_w > 1 else 3.0
            sweep[i] = scaled_sigmoid(pos) * A_FP
            i += 1
        prob = probation_length(n)
        self.scorable = np.arange(n) >= prob
        self.sweep = sweep
        self.win = win
        # windows that have at least one scorable point
        self.windows = sorted({int(w) for w in win[self.scorable] if w >= 0})
        self.nwin = len(self.windows)


def suppress(idx, quiet):
    if quiet <= 0 or len(idx) == 0:
        return idx
    keep = []
    last = -10**18
    for i in idx:
        if i - last > quiet:
            keep.append(i)
            last = i
    return np.asarray(keep, dtype=np.int64)


def alarms(scores, threshold, quiet=0):
    """alarm indices: score >= threshold, then the quiet period.  quiet < 0 means
    'rising edge': alarm only when the previous window was below threshold, plus a
    quiet period of -quiet windows."""
    s = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    above = s >= threshold
    if quiet < 0:
        prev = np.concatenate(([False], above[:-1]))
        idx = np.flatnonzero(above & ~prev)
        return suppress(idx, -quiet)
    return suppress(np.flatnonzero(above), quiet)


def score_series(prep, scores, threshold, quiet=0):
    """returns (raw, tp_windows, fp_count, fp_cost, nwin)."""
    idx = alarms(scores, threshold, quiet)
    idx = idx[prep.scorable[idx]]
    w = prep.win[idx]
    inwin = w >= 0
    fp_idx = idx[~inwin]
    fp_cost = float(prep.sweep[fp_idx].sum())
    tp_windows = 0
    tp_sum = 0.0
    if inwin.any():
        wids, first = np.unique(w[inwin], return_index=True)
        # earliest detection per window has the max sweep score
        tp_vals = prep.sweep[idx[inwin][first]]
        tp_windows = len(wids)
        tp_sum = float(tp_vals.sum())
    raw = tp_sum - A_FN * (prep.nwin - tp_windows) + fp_cost
    return raw, tp_windows, len(fp_idx), fp_cost, prep.nwin


def score_corpus(preps, score_list, threshold, quiet=0):
    raw = tp = fp = nwin = 0.0
    for p, sc in zip(preps, score_list):
        r, t, f, _, nw = score_series(p, sc, threshold, quiet)
        raw += r
        tp += t
        fp += f
        nwin += nw
    null = -A_FN * nwin
    perfect = A_TP * nwin
    norm = 100.0 * (raw - null) / (perfect - null) if nwin else float("nan")
    recall = tp / nwin if nwin else float("nan")
    precision = tp / (tp + fp) if tp + fp else float("nan")
    return {"score": norm, "raw": raw, "tp": int(tp), "fp": int(fp), "nwin": int(nwin),
            "recall": recall, "precision": precision, "threshold": threshold, "quiet": quiet}


def sweep_thresholds(preps, score_list, thresholds, quiet=0):
    return [score_corpus(preps, score_list, t, quiet) for t in thresholds]


def best_threshold(preps, score_list, thresholds, quiet=0):
    res = sweep_thresholds(preps, score_list, thresholds, quiet)
    return max(res, key=lambda r: r["score"])


def false_alarm_rate(score_list, threshold, quiet=0):
    """fraction of scored windows that alarm (after the optional quiet period)."""
    n_alarms = scored = 0
    for sc in score_list:
        s = np.asarray(sc)
        ok = ~np.isnan(s)
        scored += int(ok.sum())
        n_alarms += len(alarms(s, threshold, quiet))
    return n_alarms / scored if scored else float("nan")


if __name__ == "__main__":
    # self-checks against hand-computed NAB values
    p = Prepared(1000, [(500, 599)])
    assert p.nwin == 1
    # first point of window -> 1.0
    r = score_series(p, np.where(np.arange(1000) == 500, 1.0, 0.0), 0.5)
    assert abs(r[0] - 1.0) < 1e-12, r
    # null
    r = score_series(p, np.zeros(1000), 0.5)
    assert r[0] == -1.0
    # FP before window costs 0.11; in probation free
    r = score_series(p, np.where(np.arange(1000) == 300, 1.0, 0.0), 0.5)
    assert abs(r[0] - (-1.0 - 0.11)) < 1e-12, r
    r = score_series(p, np.where(np.arange(1000) == 100, 1.0, 0.0), 0.5)
    assert r[0] == -1.0
    # FP right after the window is nearly free
    r = score_series(p, np.where(np.arange(1000) == 600, 1.0, 0.0), 0.5)
    print("just after window", r)
    # middle of window
    r = score_series(p, np.where(np.arange(1000) == 550, 1.0, 0.0), 0.5)
    print("middle", r)
    print("ok")
