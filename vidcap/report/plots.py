"""The report's plots: matplotlib figures as base64 SVG data URIs (drawn from aggregates, so their size
does not grow with the table; byte-identical for identical data)."""
from __future__ import annotations

import base64
import io

from vidcap.stages.report import Plot


def _svg_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})   # no build time: same data, same bytes
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    # heavy: matplotlib, only when a plot is drawn
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.add_subplot()


def _rc():
    # heavy: matplotlib, only when a plot is drawn
    import matplotlib

    # parse_math off: a tag or label with '$' is text, not mathtext; svg text stays text (small);
    # a fixed hash salt gives byte-identical SVGs for identical data.
    return matplotlib.rc_context({"text.parse_math": False, "svg.fonttype": "none", "svg.hashsalt": "vidcap",
                                  "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})


COLOR = "#3b6ea8"


def bar_plot(pairs, title: str, xlabel: str = "rows") -> str | None:
    """Horizontal bars of ``[[label, count], ...]`` (largest on top); None when empty."""
    # heavy: matplotlib, only when a plot is drawn
    from matplotlib.ticker import MaxNLocator

    pairs = [(str(k)[:40], int(n)) for k, n in (pairs or [])][:40]
    if not pairs:
        return None
    with _rc():
        fig, ax = _figure(5.2, 0.6 + 0.24 * len(pairs))
        labels = [k for k, _ in pairs][::-1]
        values = [n for _, n in pairs][::-1]
        bars = ax.barh(range(len(pairs)), values, color=COLOR)
        ax.set_yticks(range(len(pairs)), labels)
        ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=2, fontsize=7)
        ax.set_xlabel(xlabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, loc="left")
        ax.margins(x=0.12)
        return _svg_uri(fig)


def hist_plot(stats: dict | None, title: str, xlabel: str) -> str | None:
    """Bars of a ``{"histogram": [[lo, hi, n], ...], ...}`` summary with p50/p90 marked."""
    # heavy: matplotlib, only when a plot is drawn
    from matplotlib.ticker import MaxNLocator

    if not stats or not stats.get("histogram"):
        return None
    hist = stats["histogram"]
    with _rc():
        fig, ax = _figure(5.2, 2.6)
        lo = [float(a) for a, _, _ in hist]
        width = [max(float(b) - float(a), 1e-9) for a, b, _ in hist]
        ax.bar(lo, [int(n) for _, _, n in hist], width=width, align="edge", color=COLOR, edgecolor="white",
               linewidth=0.5)
        for q, style in (("p50", "-"), ("p90", "--")):
            if stats.get(q) is not None:
                ax.axvline(float(stats[q]), color="#c0392b", linestyle=style, linewidth=1,
                           label=f"{q} {float(stats[q]):.3g}")
        ax.legend(frameon=False, fontsize=7, loc="upper right", bbox_to_anchor=(1.0, 1.18), ncols=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("rows")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title, loc="left")
        return _svg_uri(fig)


def throughput_plot(shards: list[dict]) -> str | None:
    """videos/s of every shard job, one series per stage."""
    series: dict[str, list[tuple[int, float]]] = {}
    for r in shards:
        if r.get("videos_per_s") is not None:
            series.setdefault(r["stage"], []).append((r["index"], r["videos_per_s"]))
    if not series:
        return None
    # heavy: matplotlib, only when a plot is drawn
    from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

    with _rc():
        fig, ax = _figure(5.2, 2.6)
        for stage, pts in series.items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, linewidth=1, label=stage)
        ax.set_xlabel("shard")
        ax.set_ylabel("videos/s (one job)")
        values = [p[1] for pts in series.values() for p in pts if p[1] > 0]
        if values and max(values) / min(values) > 50:  # stages differ by orders of magnitude
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(frameon=False, fontsize=7)
        ax.set_title("Throughput per shard job", loc="left")
        return _svg_uri(fig)


def draw(plot: Plot) -> str | None:
    """A stage's ``Plot`` (``vidcap.stages.report``) as an SVG data URI; None when it has no data."""
    if plot.kind == "hist":
        return hist_plot(plot.data, plot.heading or plot.title, plot.xlabel)
    return bar_plot(plot.data, plot.heading or plot.title, plot.xlabel)
