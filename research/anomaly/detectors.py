"""Streaming detectors.  Each detector is a function
    run(values, t, kind, **params) -> np.ndarray of scores (nan while warming up)
where larger score = more anomalous (one-sided alarm: score >= threshold).

  old_rust      exact port of /work/main/src/aggregate/anomaly.rs (Baseline::observe),
                returns |score| (the Rust flag is |score| >= threshold).
  ewma          the same EWMA without clipping (alpha configurable), |z|.
  surprise      the configurable candidate family (see surprise() docstring).

STATE_F64 gives the per-series state size of each variant, in 8-byte fields.
"""
import math
import numpy as np

LN10 = math.log(10.0)
SQRT2 = math.sqrt(2.0)
LOG10_SQRT_2PI = 0.5 * math.log10(2.0 * math.pi)


# ---------------------------------------------------------------------------
# helpers (each is a few lines of Rust)

def log10_sf(z):
    """-log10 of the standard normal upper tail Q(z) = P(Z >= z).  Never inf:
    erfc for z < 20, the asymptotic series beyond (relative error < 1e-6)."""
    if z < 20.0:
        return -math.log10(0.5 * math.erfc(z / SQRT2))
    z2 = z * z
    # ln Q(z) = -z^2/2 - ln z - ln sqrt(2 pi) + ln(1 - 1/z^2 + 3/z^4 - 15/z^6)
    corr = 1.0 - 1.0 / z2 + 3.0 / (z2 * z2) - 15.0 / (z2 * z2 * z2)
    return (0.5 * z2) / LN10 + math.log10(z) + LOG10_SQRT_2PI - math.log10(corr)


def log10_gamma_sf(x, mean, var):
    """-log10 P(X >= x) for X ~ Gamma with the given mean and variance,
    via the Wilson-Hilferty cube-root normal approximation."""
    if x <= mean:
        return 0.0
    k = mean * mean / var
    c = 1.0 / (9.0 * k)
    zw = ((x / mean) ** (1.0 / 3.0) - (1.0 - c)) / math.sqrt(c)
    return log10_sf(zw)


def nb_deviance_z(k, mu, r):
    """signed root of the negative-binomial deviance of count k given mean mu and
    size r (r = inf -> Poisson).  ~N(0,1) under the model."""
    if k > 0:
        a = k * math.log(k / mu)
    else:
        a = 0.0
    if r == math.inf:
        d = 2.0 * (a - (k - mu))
    else:
        d = 2.0 * (a - (k + r) * math.log((k + r) / (mu + r)))
    if d < 0.0:
        d = 0.0
    z = math.sqrt(d)
    return z if k >= mu else -z


# ---------------------------------------------------------------------------
# old detector: exact port

def old_rust(values, t=None, kind="count", alpha=0.05, warm_up=10, threshold=4.0):
    windows = 0
    mean = 0.0
    var = 0.0
    out = np.full(len(values), np.nan)
    wu = max(warm_up, 1)
    for i, value in enumerate(values):
        scored = windows >= warm_up
        anomalous = False
        if scored:
            if kind == "count":
                floor_var = max(abs(mean), 1.0)
            else:
                floor_var = max((0.01 * abs(mean)) ** 2, 1e-18)
            scale = math.sqrt(max(var, floor_var))
            score = (value - mean) / scale
            anomalous = abs(score) >= threshold
            out[i] = abs(score)
        inp = mean + math.copysign(threshold, score) * scale if anomalous else value
        windows += 1
        if windows <= wu:
            n = float(windows)
            delta = inp - mean
            mean += delta / n
            var += (delta * (inp - mean) - var) / n
        else:
            diff = inp - mean
            inc = alpha * diff
            mean += inc
            var = (1.0 - alpha) * (var + diff * inc)
    return out


def ewma(values, t=None, kind="count", alpha=0.05, warm_up=10):
    """old_rust without clipping (threshold only decides the flag)."""
    return old_rust(values, t, kind, alpha, warm_up, threshold=math.inf)


# ---------------------------------------------------------------------------
# the candidate family

def surprise(values, t, kind, *,
             alpha=0.02,            # level EWMA weight
             alpha_scale=None,      # scale EWMA weight (default = alpha)
             warm_up=10,
             scale="mad",           # 'var' (EW variance) | 'mad' (EW mean |residual|)
             clip=4.0,              # winsorise the residual fed to level/scale at clip*scale (None: no clipping)
             floor="learned",       # 'old' (Poisson / 1% of mean) | 'learned'
             count_model="nb",      # 'gauss' | 'poisson' | 'nb'
             calib="tail",          # None | 'tail' | 'likelihood'
             calib_alpha=0.005,     # memory of the windows-above-tau rate
             tail_alpha=0.05,       # memory of the mean excess (per exceedance)
             tau=1.0,               # calibration exceedance level (raw -log10 p)
             excess_cap=4.0,        # cap on an excess fed to the mean excess, in units of it
             lik_short=0.2, lik_long=0.002, lik_cap=10.0, lik_norm=False,
             l2_cap=4.0,            # lik2: winsorise ubar at M + l2_cap*sqrt(V) in the long-run update
             sided="two",           # 'two' | 'up' | 'down'
             seasonal=False,        # 24-slot hour-of-day profile
             season_gamma=0.05,
             slow=0.0,              # >0: also an EWMA-of-z chart with this weight (multi-scale)
             reanchor=0,            # >0: after this many consecutive |z|>clip same-sign windows, jump the level
             ):
    """Per window:  predict (level, scale) -> raw surprise u = -log10 p of the window
    under the predictive model -> optional calibration against the series' own history
    of surprises -> score.  Then fold the window into the state."""
    if alpha_scale is None:
        alpha_scale = alpha
    n = len(values)
    out = np.full(n, np.nan)
    is_count = kind == "count"
    # state
    cnt = 0
    m = 0.0          # level (deseasonalised if seasonal)
    s = 0.0          # scale: mean |resid| (mad) or variance (var)
    v = 0.0          # EW variance of the residual (counts: dispersion)
    slow_mad = 0.0   # slow EW mean |resid| (floor)
    res_q = 0.0      # resolution: EW mean of nonzero |x - x_prev|
    x_prev = 0.0
    # calibration state
    rate = 10.0 ** (-tau)
    excess = 1.0 / LN10
    lmean = 1.0 / LN10
    lvar = 1.0 / (LN10 * LN10)
    lshort = 1.0 / LN10
    # lik2
    ubar = 1.0 / LN10
    M = 1.0 / LN10
    V = M * M * lik_short / (2.0 - lik_short)
    # slow chart
    zbar = 0.0
    zvar = 1.0
    # reanchor
    run = 0
    fast = 0.0
    # seasonal
    prof = [1.0] * 24 if is_count else [0.0] * 24
    err_s = 0.0
    err_n = 0.0
    alpha_slow = alpha / 10.0

    for i in range(n):
        x = values[i]
        h = int((t[i] % 86400) // 3600) if seasonal else 0
        # ---- prediction
        if seasonal and cnt >= warm_up:
            use_season = err_s < err_n
        else:
            use_season = False
        if is_count:
            f = prof[h] if use_season else 1.0
            mu = m * f
        else:
            mu = m + (prof[h] if use_season else 0.0)

        if cnt >= warm_up:
            # ---- raw surprise
            if is_count and count_model != "gauss":
                mu_c = max(mu, 0.5 * alpha)
                if count_model == "poisson":
                    r = math.inf
                else:
                    vv = v if v > mu_c else mu_c
                    over = vv - mu_c
                    r = mu_c * mu_c / over if over > 1e-12 * mu_c else math.inf
                z = nb_deviance_z(x, mu_c, r)
                sd = math.sqrt(max(v, mu_c))
            else:
                if scale == "mad":
                    sd = 1.2533 * s
                else:
                    sd = math.sqrt(s)
                if floor == "old":
                    if is_count:
                        fl = math.sqrt(max(abs(m), 1.0))
                    else:
                        fl = max(0.01 * abs(m), 1e-9)
                else:
                    fl = max(1.2533 * slow_mad * 0.5, res_q * 0.5,
                             1e-9 * max(abs(m), 1.0))
                    if is_count:
                        fl = max(fl, math.sqrt(max(mu, 0.5 * alpha)))
                sd = max(sd, fl)
                z = (x - mu) / sd
            if sided == "two":
                u = log10_sf(abs(z)) - math.log10(2.0)
                u = max(u, 0.0)
            elif sided == "up":
                u = log10_sf(z)
            else:
                u = log10_sf(-z)
            # ---- multi-scale chart on z
            if slow > 0.0:
                zc = max(-clip, min(clip, z)) if clip else z
                zbar_new = (1 - slow) * zbar + slow * zc
                zs = zbar_new / math.sqrt(max(zvar, 1e-6) * slow / (2 - slow))
                if sided == "two":
                    u2 = max(log10_sf(abs(zs)) - math.log10(2.0), 0.0)
                elif sided == "up":
                    u2 = log10_sf(zs)
                else:
                    u2 = log10_sf(-zs)
                u = max(u, u2) - math.log10(2.0)
                u = max(u, 0.0)
            # ---- calibration
            if calib == "tail":
                if u > tau:
                    sc = -math.log10(rate) + (u - tau) / (excess * LN10)
                else:
                    sc = u * (-math.log10(rate)) / tau
            elif calib == "likelihood":
                lshort_new = (1 - lik_short) * lshort + lik_short * u
                lv = max(lvar, 1e-4)
                if lik_norm:
                    lv *= lik_short / (2.0 - lik_short)
                zz = (lshort_new - lmean) / math.sqrt(lv)
                sc = log10_sf(zz)
            elif calib == "lik2":
                ubar_new = (1 - lik_short) * ubar + lik_short * u
                sc = log10_gamma_sf(ubar_new, M, V)
            else:
                sc = u if (count_model != "zabs") else abs(z)
            out[i] = sc
        else:
            z = 0.0
            u = 0.0

        # ---- update
        cnt += 1
        resid = x - mu
        if cnt <= warm_up:
            # equal weights while warming up
            a = 1.0 / cnt
            a_s = a
        else:
            a = alpha
            a_s = alpha_scale
        # clipped residual for level / scale (relative to robust scale)
        if cnt > warm_up and clip:
            if is_count:
                lim = clip * math.sqrt(max(v, mu, 0.5 * alpha))
            else:
                lim = clip * (1.2533 * s if scale == "mad" else math.sqrt(s))
                lim = max(lim, clip * (max(1.2533 * slow_mad * 0.5, res_q * 0.5)) if floor == "learned" else 0.0)
            rc = max(-lim, min(lim, resid)) if lim > 0 else resid
        else:
            rc = resid
        # reanchor on a persistent level shift
        if reanchor:
            fast = x if cnt == 1 else fast + 0.3 * (x - fast)
            if cnt > warm_up and abs(z) > clip and (run == 0 or (z > 0) == (run > 0)):
                run = run + 1 if z > 0 else run - 1
            else:
                run = 0
            if abs(run) >= reanchor:
                if is_count:
                    m = fast / (prof[h] if use_season else 1.0)
                else:
                    m = fast - (prof[h] if use_season else 0.0)
                s = s * 2.0
                v = v * 2.0
                run = 0
                rc = 0.0
        # level
        if is_count:
            f = prof[h] if use_season else 1.0
            m += a * rc / f if f > 1e-9 else 0.0
            if m < 0.0:
                m = 0.0
        else:
            m += a * rc
        # scale
        if scale == "mad":
            s += a_s * (abs(rc) - s)
        else:
            s += a_s * (rc * rc - s)
        v += a_s * (rc * rc - v)
        slow_mad += (1.0 / cnt if cnt <= warm_up else alpha_slow) * (abs(rc) - slow_mad)
        dx = abs(x - x_prev) if cnt > 1 else 0.0
        if dx > 0.0:
            res_q = dx if res_q == 0.0 else res_q + 0.02 * (dx - res_q)
        x_prev = x
        # seasonal profile & model choice
        if seasonal:
            if is_count:
                base = m
                if base > 1e-9:
                    prof[h] += season_gamma * (x / base - prof[h])
                pred_s = base * prof[h]
            else:
                prof[h] += season_gamma * ((x - m) - prof[h])
                pred_s = m + prof[h]
            err_s += 0.01 * (abs(x - pred_s) - err_s)
            err_n += 0.01 * (abs(x - m) - err_n)
        # slow chart
        if slow > 0.0 and cnt > warm_up:
            zc = max(-clip, min(clip, z)) if clip else z
            zbar = (1 - slow) * zbar + slow * zc
            zvar += 0.01 * (zc * zc - zvar)
        # calibration
        if cnt > warm_up:
            if calib == "tail":
                rate += calib_alpha * ((1.0 if u > tau else 0.0) - rate)
                if u > tau:
                    y = min(u - tau, excess_cap * excess)
                    excess += tail_alpha * (y - excess)
            elif calib == "lik2":
                ubar = (1 - lik_short) * ubar + lik_short * u
                ub = min(ubar, M + l2_cap * math.sqrt(V))
                d = ub - M
                M += lik_long * d
                V = (1 - lik_long) * (V + lik_long * d * d)
                V = max(V, 1e-6)
            elif calib == "likelihood":
                lshort = (1 - lik_short) * lshort + lik_short * u
                uu = min(u, lik_cap)
                d = uu - lmean
                lmean += lik_long * d
                lvar = (1 - lik_long) * (lvar + lik_long * d * d)
    return out


def state_f64(params):
    """count of 8-byte fields a Rust port needs for a `surprise` variant."""
    k = 1 + 2 + 1              # cnt, level, scale, variance
    if params.get("floor", "learned") == "learned":
        k += 3                 # slow_mad, res_q, x_prev
    calib = params.get("calib", "tail")
    if calib == "tail":
        k += 2
    elif calib in ("likelihood", "lik2"):
        k += 3
    if params.get("slow", 0.0) > 0:
        k += 2
    if params.get("reanchor", 0):
        k += 2
    if params.get("seasonal", False):
        k += 24 + 2
    return k


# ---------------------------------------------------------------------------
# candidate family v2: clean structure

def surprise2(values, t, kind, *,
              alpha=0.02,          # level / scale EWMA weight
              warm_up=10,
              clip=4.0,            # winsorise residuals fed to level & scale at clip * scale
              transform="log",     # measures: 'none' | 'log' (log(x + c) when warm-up is all >= 0)
              count_model="nb",    # counts: 'nb' | 'poisson' | 'gauss'
              mag=True,            # magnitude path: short average of surprise vs its long-run Gamma fit
              short=0.1,           # weight of the short-term averages
              long=0.001,          # weight of the long-run statistics of the averages
              cap=4.0,             # winsorise a short-term average at M + cap*sqrt(V) in the long-run update
              chart=True,          # signed path: EWMA of clipped z vs its long-run variance
              chart_short=None,    # weight of the signed average (default = short)
              point=False,         # also score the single window (u alone, tail calibrated)
              seasonal=False, season_gamma=0.05,
              floor_q=0.5,         # measures: scale floor = floor_q * resolution (typical nonzero step)
              slow_floor=0.0,      # measures: scale floor also >= slow_floor * slow EW mean |resid| (weight alpha/10)
              long_init="prior",   # 'prior' | 'avg' (long-run weight max(1/k, long))
              u_cap=math.inf,      # cap on the single-window surprise fed to the magnitude average
              tailcal=False,       # calibrate u by the series' own exceedance rate & mean excess first
              tau=1.0, tail_rate_w=0.005, tail_exc_w=0.05, exc_cap=4.0,
              zero_run=False,      # measures: run of exact zeros scored by the learned zero frequency
              trend=0.0,           # Holt trend weight (0: none)
              nu=math.inf,         # measures: Student-t degrees of freedom for the single-window surprise
              sided="two",         # 'two' | 'up' | 'down'
              chart2=0.0,          # >0: a second, slower signed chart with this weight
              nu_count=math.inf,   # counts: same Student-style compression of the deviance z
              rel_floor=0.0,       # measures: scale floor also >= rel_floor * |level|
              u_soft=math.inf,     # soft cap of u in the short average: U ln(1 + u/U)
              zclip=4.0,           # z is clipped at +-zclip in the signed chart
              zr_decay=0.0,        # zero-run surprise is discounted by (1 - zr_decay) per window
              floor_f=0.0,         # long-run stats floored at floor_f * their calibrated (iid) prior values
              ):
    cs = short if chart_short is None else chart_short
    n = len(values)
    out = np.full(n, np.nan)
    is_count = kind == "count"
    cnt = 0
    m = 0.0; s = 0.0; v = 0.0
    res_q = 0.0; y_prev = 0.0
    c_log = None        # log offset (None: linear)
    wsum = 0.0; wneg = False
    ubar = 1.0 / LN10
    M = 1.0 / LN10
    V = M * M * short / (2.0 - short)
    zbar = 0.0
    W = cs / (2.0 - cs)
    M0, V0, W0 = M, V, W
    prof = [1.0 if is_count else 0.0] * 24
    err_s = 0.0; err_n = 0.0
    half_alpha = 0.5 * alpha
    smad = 0.0
    k_long = 0
    t_rate = 10.0 ** (-tau)
    t_exc = 1.0 / LN10
    p0 = 0.0
    zr = 0.0
    zbar2 = 0.0
    W2 = chart2 / (2.0 - chart2) if chart2 > 0 else 1.0
    b = 0.0
    for i in range(n):
        x = float(values[i])
        # ---- transform (measures)
        if not is_count and transform == "log":
            if cnt < warm_up:
                wsum += x
                wneg = wneg or x < 0.0
                y = x
            else:
                if cnt == warm_up:
                    pass
                y = math.log(max(x, 0.0) + c_log) if c_log is not None else x
        else:
            y = x
        h = int((t[i] % 86400) // 3600) if seasonal else 0
        use_season = seasonal and cnt >= warm_up and err_s < err_n
        if is_count:
            mu = max(m + b, 0.0) * (prof[h] if use_season else 1.0)
        else:
            mu = m + b + (prof[h] if use_season else 0.0)
        z = 0.0
        if cnt >= warm_up:
            if is_count and count_model != "gauss":
                mu_c = max(mu, half_alpha)
                if count_model == "poisson":
                    r = math.inf
                else:
                    over = v - mu_c
                    r = mu_c * mu_c / over if over > 1e-9 * mu_c else math.inf
                z = nb_deviance_z(y, mu_c, r)
            else:
                sd = 1.2533 * s
                fl = max(floor_q * res_q, slow_floor * 1.2533 * smad, rel_floor * abs(m))
                if is_count:
                    fl = max(fl, math.sqrt(max(mu, half_alpha)))
                sd = max(sd, fl, 1e-12)
                z = (y - mu) / sd
            if nu != math.inf and not is_count:
                za = math.sqrt(nu * math.log1p(z * z / nu))
            elif nu_count != math.inf and is_count:
                za = math.sqrt(nu_count * math.log1p(z * z / nu_count))
            else:
                za = abs(z)
            if sided == "two":
                u_raw = max(log10_sf(za) - 0.30103, 0.0)
            elif (z > 0) == (sided == "up"):
                u_raw = log10_sf(za)
            else:
                u_raw = 0.0
            if tailcal:
                if u_raw > tau:
                    u = -math.log10(t_rate) + (u_raw - tau) / (t_exc * LN10)
                else:
                    u = u_raw * (-math.log10(t_rate)) / tau
            else:
                u = u_raw
            u = min(u, u_cap)
            if u_soft != math.inf:
                u = u_soft * math.log1p(u / u_soft)
            sc = -math.inf
            if mag:
                ubar_new = (1 - short) * ubar + short * u
                sc = log10_gamma_sf(ubar_new, M, V)
            if chart:
                zc = max(-zclip, min(zclip, z))
                zbar_new = (1 - cs) * zbar + cs * zc
                zs = zbar_new / math.sqrt(W)
                if sided == "two":
                    sc2 = max(log10_sf(abs(zs)) - 0.30103, 0.0)
                else:
                    sc2 = log10_sf(zs if sided == "up" else -zs)
                sc = max(sc, sc2)
            if chart2 > 0.0:
                zc = max(-zclip, min(zclip, z))
                zs = ((1 - chart2) * zbar2 + chart2 * zc) / math.sqrt(W2)
                if sided == "two":
                    sc2 = max(log10_sf(abs(zs)) - 0.30103, 0.0)
                else:
                    sc2 = log10_sf(zs if sided == "up" else -zs)
                sc = max(sc, sc2)
            if point:
                sc = max(sc, u)
            if zero_run and not is_count and sided != "up":
                if x == 0.0:
                    zr_new = (1 - zr_decay) * zr - math.log10(max(p0, half_alpha))
                    sc = max(sc, zr_new - 0.30103)
            out[i] = sc
        # ---- update
        cnt += 1
        if cnt == warm_up and not is_count and transform == "log" and not wneg:
            # switch to log scale: offset = 10 % of the warm-up mean (or 1 if all zero)
            mean_w = wsum / warm_up
            c_log = 0.1 * mean_w if mean_w > 0 else 1.0
            # re-express the warm-up level/scale on the log scale
            m = math.log(max(m, 0.0) + c_log)
            s = 0.0
            res_q = 0.0
            y_prev = m
            continue
        resid = y - mu
        if cnt <= warm_up:
            a = 1.0 / cnt
        else:
            a = alpha
        if cnt > warm_up and clip:
            if is_count:
                lim = clip * math.sqrt(max(v, mu, half_alpha))
            else:
                lim = clip * max(1.2533 * s, floor_q * res_q, slow_floor * 1.2533 * smad, rel_floor * abs(m))
            rc = max(-lim, min(lim, resid)) if lim > 0 else resid
        else:
            rc = resid
        if is_count:
            f = prof[h] if use_season else 1.0
            if f > 1e-9:
                m += b + a * rc / f
            else:
                m += b
            if m < 0.0:
                m = 0.0
            if trend and cnt > warm_up and f > 1e-9:
                b += a * trend * rc / f
        else:
            m += b + a * rc
            if trend and cnt > warm_up:
                b += a * trend * rc
        if zero_run:
            if cnt > warm_up:
                if x == 0.0:
                    zr = (1 - zr_decay) * zr - math.log10(max(p0, half_alpha))
                else:
                    zr = 0.0
            p0 += (1.0 / cnt if cnt <= warm_up else 0.5 * alpha) * ((1.0 if x == 0.0 else 0.0) - p0)
        if cnt <= warm_up:
            a_s = 1.0 / (cnt - 1) if cnt > 1 else 0.0
            a_slow = a_s
        else:
            a_s = a
            a_slow = 0.1 * alpha
        s += a_s * (abs(rc) - s)
        v += a_s * (rc * rc - v)
        smad += a_slow * (abs(rc) - smad)
        dy = abs(y - y_prev) if cnt > 1 else 0.0
        if dy > 0.0:
            res_q = dy if res_q == 0.0 else res_q + 0.02 * (dy - res_q)
        y_prev = y
        if seasonal:
            if is_count:
                if m > 1e-9:
                    prof[h] += season_gamma * (y / m - prof[h])
                pred_s = m * prof[h]
            else:
                prof[h] += season_gamma * ((y - m) - prof[h])
                pred_s = m + prof[h]
            err_s += 0.01 * (abs(y - pred_s) - err_s)
            err_n += 0.01 * (abs(y - m) - err_n)
        if cnt > warm_up:
            k_long += 1
            lg = max(1.0 / k_long, long) if long_init == "avg" else long
            if tailcal:
                t_rate += tail_rate_w * ((1.0 if u_raw > tau else 0.0) - t_rate)
                if u_raw > tau:
                    t_exc += tail_exc_w * (min(u_raw - tau, exc_cap * t_exc) - t_exc)
            if mag:
                ubar = (1 - short) * ubar + short * u
                ub = min(ubar, M + cap * math.sqrt(V))
                d = ub - M
                M += lg * d
                V = (1 - lg) * (V + lg * d * d)
                V = max(V, 1e-8)
                if floor_f:
                    M = max(M, floor_f * M0)
                    V = max(V, floor_f * V0)
            if chart:
                zc = max(-zclip, min(zclip, z))
                zbar = (1 - cs) * zbar + cs * zc
                zb = max(-cap * math.sqrt(W), min(cap * math.sqrt(W), zbar))
                W += lg * (zb * zb - W)
                W = max(W, 1e-8)
                if floor_f:
                    W = max(W, floor_f * W0)
            if chart2 > 0.0:
                zc = max(-zclip, min(zclip, z))
                zbar2 = (1 - chart2) * zbar2 + chart2 * zc
                zb = max(-cap * math.sqrt(W2), min(cap * math.sqrt(W2), zbar2))
                W2 += lg * (zb * zb - W2)
                W2 = max(W2, 1e-8)
    return out


# ---------------------------------------------------------------------------
# RECOMMENDED DETECTOR, written the way it would be ported to Rust.

RECOMMENDED = dict(transform="none", slow_floor=1.0, zero_run=True, nu=10.0, floor_q=0.0,
                   rel_floor=0.01, u_soft=50.0, alpha=0.02, warm_up=10, clip=4.0,
                   count_model="nb", mag=True, short=0.1, long=0.001, cap=4.0, chart=True,
                   zr_decay=0.1, floor_f=0.5)


class Surprise:
    """Per-series state: 1 u64 + 11 f64 (+ 1 u64 for the quiet period) = 104 bytes."""
    ALPHA = 0.02        # level / scale EWMA weight
    WARM_UP = 10        # windows folded in (equal weights) before the first score
    CLIP = 4.0          # residuals fed to the baseline are winsorised at CLIP * scale
    SLOW = 0.002        # weight of the slow scale floor (ALPHA / 10)
    REL_FLOOR = 0.01    # measures: scale >= 1 % of |level|
    NU = 10.0           # measures: Student-like compression of z (heavy tails)
    RATE_FLOOR = 0.01   # counts: expected rate >= ALPHA / 2; measures: zero frequency >= ALPHA / 2
    ZERO_W = 0.01       # weight of the zero-frequency EWMA (ALPHA / 2)
    U_SOFT = 50.0       # soft cap of a window's surprise in the short average
    SHORT = 0.1         # weight of the short-term averages (about 10 windows)
    LONG = 0.001        # weight of their long-run statistics (about 1000 windows)
    CAP = 4.0           # short averages enter the long-run statistics winsorised at CAP sd
    QUIET = 50          # windows without a second alarm after an alarm
    LOG10_2 = math.log10(2.0)
    UM0 = 1.0 / LN10                     # mean of -log10 p under a calibrated model
    UV0 = UM0 * UM0 * SHORT / (2 - SHORT)  # variance of its SHORT-average (independent windows)
    ZV0 = SHORT / (2 - SHORT)            # variance of the SHORT-average of N(0,1) z
    FLOOR_F = 0.5                        # long-run statistics never below half these values

    def __init__(self, is_count):
        self.is_count = is_count
        self.n = 0
        self.level = 0.0
        self.mad = 0.0        # EW mean |clipped residual|
        self.msq = 0.0        # EW mean clipped residual^2 (counts: NB dispersion)
        self.slow_mad = 0.0   # slow EW mean |clipped residual| (scale floor)
        self.ubar = self.UM0
        self.um = self.UM0    # long-run mean of ubar
        self.uv = self.UV0    # long-run variance of ubar
        self.zbar = 0.0
        self.zv = self.ZV0    # long-run E[zbar^2]
        self.p0 = 0.0         # EW frequency of exact zeros (measures)
        self.zrun = 0.0       # -log10 P of the current run of zeros (measures)
        self.last_alarm = None

    def observe(self, x, threshold=3.0):
        """returns (score or None, anomalous)"""
        score = None
        scored = self.n >= self.WARM_UP
        mu = self.level
        if scored:
            if self.is_count:
                mu_c = max(mu, self.RATE_FLOOR)
                over = self.msq - mu_c
                r = mu_c * mu_c / over if over > 1e-9 * mu_c else math.inf
                z = nb_deviance_z(x, mu_c, r)
                za = abs(z)
            else:
                sd = max(1.2533 * self.mad, 1.2533 * self.slow_mad,
                         self.REL_FLOOR * abs(mu), 1e-12)
                z = (x - mu) / sd
                za = math.sqrt(self.NU * math.log1p(z * z / self.NU))
            u = max(log10_sf(za) - self.LOG10_2, 0.0)
            u = self.U_SOFT * math.log1p(u / self.U_SOFT)
            ubar = (1 - self.SHORT) * self.ubar + self.SHORT * u
            s_mag = log10_gamma_sf(ubar, self.um, self.uv)
            zc = max(-self.CLIP, min(self.CLIP, z))
            zbar = (1 - self.SHORT) * self.zbar + self.SHORT * zc
            s_chart = max(log10_sf(abs(zbar) / math.sqrt(self.zv)) - self.LOG10_2, 0.0)
            score = max(s_mag, s_chart)
            zrun = 0.0
            if not self.is_count and x == 0.0:
                zrun = (1 - self.SHORT) * self.zrun - math.log10(max(self.p0, self.RATE_FLOOR))
                score = max(score, zrun - self.LOG10_2)
        # ---- fold the window in
        self.n += 1
        resid = x - mu
        if self.n <= self.WARM_UP:
            a = 1.0 / self.n
            rc = resid
        else:
            a = self.ALPHA
            if self.is_count:
                lim = self.CLIP * math.sqrt(max(self.msq, mu, self.RATE_FLOOR))
            else:
                lim = self.CLIP * max(1.2533 * self.mad, 1.2533 * self.slow_mad,
                                      self.REL_FLOOR * abs(mu))
            rc = max(-lim, min(lim, resid)) if lim > 0 else resid
        self.level += a * rc
        if self.is_count and self.level < 0.0:
            self.level = 0.0
        if self.n <= self.WARM_UP:
            # the first window has no baseline to deviate from: scale weights 1/(n-1)
            a_s = 1.0 / (self.n - 1) if self.n > 1 else 0.0
            a_slow = a_s
        else:
            a_s = a
            a_slow = self.SLOW
        self.mad += a_s * (abs(rc) - self.mad)
        self.msq += a_s * (rc * rc - self.msq)
        self.slow_mad += a_slow * (abs(rc) - self.slow_mad)
        if scored:
            self.ubar = ubar
            d = min(ubar, self.um + self.CAP * math.sqrt(self.uv)) - self.um
            self.um = max(self.um + self.LONG * d, self.FLOOR_F * self.UM0)
            self.uv = max((1 - self.LONG) * (self.uv + self.LONG * d * d), self.FLOOR_F * self.UV0)
            self.zbar = zbar
            lim = self.CAP * math.sqrt(self.zv)
            zb = max(-lim, min(lim, zbar))
            self.zv = max(self.zv + self.LONG * (zb * zb - self.zv), self.FLOOR_F * self.ZV0)
            if not self.is_count:
                self.zrun = zrun
        if not self.is_count:
            w = 1.0 / self.n if self.n <= self.WARM_UP else self.ZERO_W
            self.p0 += w * ((1.0 if x == 0.0 else 0.0) - self.p0)
        anomalous = False
        if score is not None and score >= threshold:
            if self.last_alarm is None or self.n - self.last_alarm > self.QUIET:
                anomalous = True
                self.last_alarm = self.n
        return score, anomalous


def recommended(values, t=None, kind="count"):
    d = Surprise(kind == "count")
    out = np.full(len(values), np.nan)
    for i, x in enumerate(values):
        sc, _ = d.observe(float(x))
        if sc is not None:
            out[i] = sc
    return out
