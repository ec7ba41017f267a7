"""Roofline plot for ``fastconv bench --plot FILE.png`` (needs matplotlib)."""


def plot(rows, path, peak_gflops=None, bandwidth_gbps=None, title=None):
    """Draw arithmetic intensity vs achieved GFLOP/s, one marker per layer x implementation.

    Parameters
    ----------
    rows : list of dict
        Rows from the bench (``intensity``, ``gflops``, ``impl``, ``pass``, ``layer``).
    path : str
        Output image file (PNG).
    peak_gflops, bandwidth_gbps : float, optional
        Machine FMA peak and copy bandwidth: the roof and the slanted line.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError("--plot needs matplotlib: pip install 'fastconv[plot]'") from e

    pts = [r for r in rows if r.get("gflops") and r.get("intensity")]
    impls = sorted({r["impl"] for r in pts}, key=lambda s: (not s.startswith("fastconv"), s))
    # fastconv algorithms in blues/purples, the peers in fixed contrasting colours
    own = ["#1f77b4", "#9467bd", "#17becf", "#2ca02c", "#8c564b", "#e377c2"]
    fixed = {"torch": "#ff7f0e", "numpy": "#7f7f7f"}
    colors, k = {}, 0
    for impl in impls:
        if impl in fixed:
            colors[impl] = fixed[impl]
        else:
            colors[impl] = own[k % len(own)]
            k += 1
    markers = {"fwd": "o", "bwd": "^"}

    fig, ax = plt.subplots(figsize=(10, 6.5), dpi=120)
    xs = [r["intensity"] for r in pts] or [1.0]
    ys = [r["gflops"] for r in pts] or [1.0]
    xmin, xmax = min(xs) / 2, max(xs) * 3     # room on the right for labels
    if bandwidth_gbps:
        xmin = min(xmin, 0.05)
    if peak_gflops and bandwidth_gbps:
        xmax = max(xmax, 4 * peak_gflops / bandwidth_gbps)
    ymin = min(ys) / 2
    ymax = max(max(ys), peak_gflops or 0) * 2

    if peak_gflops or bandwidth_gbps:
        import numpy as np
        x = np.geomspace(xmin, xmax, 200)
        roof = np.full_like(x, np.inf)
        if peak_gflops:
            roof = np.minimum(roof, peak_gflops)
            ax.axhline(peak_gflops, color="0.55", ls="--", lw=1)
            xr = peak_gflops / bandwidth_gbps * 1.15 if bandwidth_gbps else xmin * 1.5
            ax.text(xr, peak_gflops * 1.08, f"FMA peak {peak_gflops:.0f} GFLOP/s",
                    ha="left", va="bottom", fontsize=9, color="0.3")
        if bandwidth_gbps:
            roof = np.minimum(roof, bandwidth_gbps * x)
            bw = bandwidth_gbps * x
            keep = bw <= ymax
            ax.plot(x[keep], bw[keep], color="0.55", ls=":", lw=1)
            xt = xmin * 1.5
            ax.text(xt, bandwidth_gbps * xt * 1.15, f"copy bandwidth {bandwidth_gbps:.0f} GB/s",
                    rotation=0, fontsize=9, color="0.3", ha="left", va="bottom")
        ax.plot(x, roof, color="black", lw=1.6, label="roofline")
        ymin = min(ymin, (bandwidth_gbps or ymin) * xmin)

    seen = set()
    for r in pts:
        key = (r["impl"], r["pass"])
        label = f"{r['impl']} ({r['pass']})" if key not in seen else None
        seen.add(key)
        ax.scatter(r["intensity"], r["gflops"], color=colors[r["impl"]],
                   marker=markers.get(r["pass"], "s"), s=42, alpha=0.85,
                   edgecolors="black", linewidths=0.4, label=label, zorder=3)
    # Label each layer once, next to its fastest marker, so the plot stays readable.
    best = {}
    for r in pts:
        k = (r["suite"], r["layer"], r["pass"])
        if k not in best or r["gflops"] > best[k]["gflops"]:
            best[k] = r
    if len(best) <= 40:
        import math
        placed = []     # label anchors in log10 data space, to avoid stacking labels
        lx = math.log10(xmax / xmin)
        ly = math.log10(ymax / max(ymin, 1e-3))
        suites_of = {}
        for (suite, layer, _) in best:
            suites_of.setdefault(layer, set()).add(suite)
        for (suite, layer, pas), r in sorted(best.items(), key=lambda kv: -kv[1]["gflops"]):
            name = f"{suite}/{layer}" if len(suites_of[layer]) > 1 else layer
            x0, y0 = math.log10(r["intensity"]), math.log10(r["gflops"])
            dy = 0
            while any(abs(x0 - px) < 0.12 * lx and abs(y0 + dy - py) < 0.03 * ly for px, py in placed):
                dy -= 0.03 * ly
            placed.append((x0, y0 + dy))
            ax.annotate(f"{name} {pas}", (r["intensity"], r["gflops"]),
                        xytext=(4, 3 + dy / ly * fig.get_figheight() * 72 * 0.8),
                        textcoords="offset points", fontsize=7, color="0.25",
                        arrowprops=dict(arrowstyle="-", color="0.7", lw=0.5) if dy else None)

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(max(ymin, 1e-3), ymax)
    ax.set_xlabel("arithmetic intensity (flop / byte of input + weight + output)")
    ax.set_ylabel("achieved GFLOP/s")
    ax.set_title(title or "fastconv bench: roofline")
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    ax.legend(fontsize=8, loc="lower right", framealpha=0.9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
