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

    layers = []                       # (suite, layer) in bench order
    for r in pts:
        if (r["suite"], r["layer"]) not in layers:
            layers.append((r["suite"], r["layer"]))
    numbered = len(layers) > 12       # many layers: number the markers, list names at the side
    if numbered:
        fig = plt.figure(figsize=(13, 7), dpi=120)
        gs = fig.add_gridspec(1, 2, width_ratios=[4, 1.25], wspace=0.02)
        ax = fig.add_subplot(gs[0])
        side = fig.add_subplot(gs[1])
        side.axis("off")
    else:
        fig, ax = plt.subplots(figsize=(10, 6.5), dpi=120)
    xs = [r["intensity"] for r in pts] or [1.0]
    ys = [r["gflops"] for r in pts] or [1.0]
    xmin, xmax = min(xs) / 2, max(xs) * 3     # room on the right for labels
    if bandwidth_gbps:     # show the slanted roof well left of the ridge point
        xmin = min(xmin, (peak_gflops / bandwidth_gbps / 30) if peak_gflops else 0.05)
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
    # Label each layer once per pass, next to its fastest marker, so the plot stays readable.
    best = {}
    for r in pts:
        k = (r["suite"], r["layer"], r["pass"])
        if k not in best or r["gflops"] > best[k]["gflops"]:
            best[k] = r
    suites_of = {}
    for suite, layer in layers:
        suites_of.setdefault(layer, set()).add(suite)

    def name(suite, layer):
        return f"{suite}/{layer}" if len(suites_of[layer]) > 1 or numbered else layer
    if len(layers) <= 60:
        import math
        placed = []     # label anchors in log10 data space, to avoid stacking labels
        lx = math.log10(xmax / xmin)
        ly = math.log10(ymax / max(ymin, 1e-3))
        order = sorted(best.items(), key=lambda kv: -kv[1]["gflops"])
        for (suite, layer, _), r in order:
            x0, y0 = math.log10(r["intensity"]), math.log10(r["gflops"])
            text = str(layers.index((suite, layer)) + 1) if numbered else name(suite, layer)
            wx = (0.02 + 0.008 * len(text)) * lx
            dy = 0
            while any(abs(x0 - px) < wx and abs(y0 + dy - py) < 0.03 * ly for px, py in placed):
                dy -= 0.03 * ly
            placed.append((x0, y0 + dy))
            ax.annotate(text, (r["intensity"], r["gflops"]),
                        xytext=(4, 3 + dy / ly * fig.get_figheight() * 72 * 0.8),
                        textcoords="offset points", fontsize=7 if not numbered else 7.5,
                        color="0.2", fontweight="bold" if numbered else "normal",
                        arrowprops=dict(arrowstyle="-", color="0.7", lw=0.5) if dy else None)
        if numbered:
            lines = [f"{i + 1:>2}  {name(s_, l_)}" for i, (s_, l_) in enumerate(layers)]
            side.text(0.02, 1.0, "layers (label at the fastest\nmarker of each pass)\n\n" + "\n".join(lines),
                      va="top", ha="left", family="monospace", fontsize=7 if len(lines) <= 40 else 6,
                      transform=side.transAxes)

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
    if not numbered:
        fig.tight_layout()
    else:
        fig.subplots_adjust(left=0.06, right=0.99, top=0.94, bottom=0.08)
    fig.savefig(path)
    plt.close(fig)
    return path
