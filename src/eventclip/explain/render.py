"""Explanation -> PNG: the event frame, the relevance overlay and the top prompts with their scores."""

from __future__ import annotations

from pathlib import Path

from eventclip.explain.explain import Explanation


def render_png(exp: Explanation, path: str | Path, title: str | None = None, dpi: int = 80) -> Path:
    """Three panels side by side (matplotlib, Agg backend); returns the written path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.4), dpi=dpi, gridspec_kw={"width_ratios": [1, 1, 1.3]})
    axes[0].imshow(exp.frame, cmap="gray", interpolation="nearest")
    axes[0].set_title("event frame", fontsize=9)
    axes[1].imshow(exp.frame, cmap="gray", interpolation="nearest")
    axes[1].imshow(exp.relevance, cmap="jet", alpha=0.5, vmin=0.0, vmax=1.0, interpolation="bilinear")
    axes[1].set_title(f"relevance for '{exp.target}'\n(cos {exp.score:+.3f})", fontsize=9)
    for ax in axes[:2]:
        ax.set_xticks([])
        ax.set_yticks([])
    names = [lab for lab, _ in exp.labels][::-1]
    probs = [p for _, p in exp.labels][::-1]
    bars = axes[2].barh(range(len(names)), probs,
                        color=["tab:orange" if n == exp.target else "tab:blue" for n in names])
    axes[2].set_yticks(range(len(names)), names, fontsize=8)
    axes[2].set_xlim(0, max(1e-6, max(probs)) * 1.25)
    axes[2].set_xlabel("zero-shot probability", fontsize=8)
    axes[2].bar_label(bars, fmt="%.3f", fontsize=7)
    axes[2].set_title("top prompts", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
