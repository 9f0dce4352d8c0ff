"""The paper's INR experiment (Sec. 5.3, Table 2), offline on scikit-learn's sample photos.

An implicit neural representation maps a pixel's coordinates to its colour. Coordinates are
encoded with Fourier features (2 raw coordinates + 16 sin/cos pairs = 34 inputs, as in the
paper), the network is the paper's MLP ``[34 -> 128 -> 128 -> 128 -> 128 -> 3]``, and the
image is split into regions by KMeans on colour and position (the paper uses ADE20K's
semantic regions, which we do not have offline). RTL gets one ticket per region
(``routing="groups"``); the baseline is the single ticket (``n_clusters=1``). Both are
scored by PSNR over the whole image at 25 / 50 / 75 % sparsity.

Run ``python experiments/inr.py`` (about 10 minutes on 2 idle CPU cores) or ``--quick``.
Writes ``docs/figures/inr_*.png`` and prints the table used in ``docs/inr.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_sample_image

from sklearn_rtl import RTLRegressor

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures"
PAPER = {  # Table 2, mean PSNR over 10 ADE20K images
    "RTL": {0.25: 18.86, 0.5: 17.25, 0.75: 14.87},
    "single": {0.25: 15.94, 0.5: 14.72, 0.75: 12.69},
}


def fourier_features(coords, n_frequencies=16, scale=6.0, seed=0):
    """``[x, y, sin(2 pi B xy), cos(2 pi B xy)]`` with Gaussian frequencies ``B``."""
    rng = np.random.default_rng(seed)
    frequencies = rng.normal(scale=scale, size=(2, n_frequencies))
    projected = 2 * np.pi * coords @ frequencies
    return np.hstack([coords, np.sin(projected), np.cos(projected)]).astype(np.float32)


def load_image(name, height):
    image = load_sample_image(name).astype(np.float32) / 255.0
    step = max(1, image.shape[0] // height)
    return image[::step, ::step][:height]


def image_task(image, n_regions, seed=0):
    """Features, RGB targets and region ids of every pixel."""
    h, w, _ = image.shape
    rows, cols = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    coords = np.stack([rows.ravel(), cols.ravel()], axis=1)
    rgb = image.reshape(-1, 3)
    # regions: colour dominates, position keeps them compact
    segmentation_input = np.hstack([rgb * 2.0, coords * 0.5])
    regions = KMeans(n_regions, n_init=4, random_state=seed).fit_predict(segmentation_input)
    return fourier_features(coords, seed=seed), rgb, regions


def psnr(reference, estimate):
    mse = np.mean((np.clip(estimate, 0, 1) - reference) ** 2)
    return float(10 * np.log10(1.0 / mse))


def run(images, sparsities, n_regions, height, max_epochs, n_prune_rounds, seed=0, save=True):
    rows = []
    for name in images:
        image = load_image(name, height)
        X, y, regions = image_task(image, n_regions, seed)
        reconstructions = {}
        for sparsity in sparsities:
            for method, params in (
                ("RTL", {"routing": "groups"}),
                ("single", {"routing": "kmeans", "n_clusters": 1}),
            ):
                model = RTLRegressor(
                    hidden_layer_sizes=(128, 128, 128, 128),
                    sparsity=sparsity,
                    n_prune_rounds=n_prune_rounds,
                    max_epochs=max_epochs,
                    lr=1e-3,
                    batch_size=256,
                    random_state=seed,
                    **params,
                )
                start = time.perf_counter()
                model.fit(X, y, groups=regions)
                seconds = time.perf_counter() - start
                estimate = model.predict(X, groups=regions)
                rows.append(
                    {
                        "image": name,
                        "method": method,
                        "sparsity": sparsity,
                        "psnr": psnr(y, estimate),
                        "n_params": model.n_params_,
                        "n_tickets": model.n_tickets_,
                        "collapse_score": model.collapse_score_,
                        "seconds": seconds,
                    }
                )
                reconstructions[(method, sparsity)] = np.clip(estimate, 0, 1).reshape(image.shape)
                print(
                    f"{name:>10} {method:>6} s={sparsity:.2f} PSNR {rows[-1]['psnr']:6.2f} dB "
                    f"params {model.n_params_:>6d} ({seconds:.0f}s)",
                    flush=True,
                )
        if save:
            save_figure(name, image, regions, reconstructions, sparsities)
    return rows


def save_figure(name, image, regions, reconstructions, sparsities):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1 + len(sparsities)
    fig, axes = plt.subplots(2, columns, figsize=(2.6 * columns, 4.6))
    axes[0, 0].imshow(image)
    axes[0, 0].set_title("original")
    axes[1, 0].imshow(regions.reshape(image.shape[:2]), cmap="tab10")
    axes[1, 0].set_title(f"{regions.max() + 1} regions")
    for column, sparsity in enumerate(sparsities, start=1):
        for row, method in enumerate(("RTL", "single")):
            estimate = reconstructions[(method, sparsity)]
            axes[row, column].imshow(estimate)
            axes[row, column].set_title(
                f"{method} {int(sparsity * 100)}%: {psnr(image, estimate):.1f} dB", fontsize=9
            )
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    FIGURES.mkdir(parents=True, exist_ok=True)
    fig.savefig(FIGURES / f"inr_{Path(name).stem}.png", dpi=90)
    plt.close(fig)


def summarize(rows, sparsities):
    lines = [
        "| method | "
        + " | ".join(f"PSNR {int(s * 100)}%" for s in sparsities)
        + " | "
        + " | ".join(f"params {int(s * 100)}%" for s in sparsities)
        + " |",
        "|---" * (1 + 2 * len(sparsities)) + "|",
    ]
    for method in ("RTL", "single"):
        psnrs = [
            np.mean([r["psnr"] for r in rows if r["method"] == method and r["sparsity"] == s])
            for s in sparsities
        ]
        params = [
            np.mean([r["n_params"] for r in rows if r["method"] == method and r["sparsity"] == s])
            for s in sparsities
        ]
        lines.append(
            f"| {method} (ours) | "
            + " | ".join(f"{p:.2f}" for p in psnrs)
            + " | "
            + " | ".join(f"{p / 1000:.1f}K" for p in params)
            + " |"
        )
    for method in ("RTL", "single"):
        paper = [PAPER[method].get(s) for s in sparsities]
        lines.append(
            f"| {method} (paper, ADE20K) | "
            + " | ".join("-" if p is None else f"{p:.2f}" for p in paper)
            + " | "
            + " | ".join("-" for _ in sparsities)
            + " |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (seconds)")
    args = parser.parse_args(argv)
    if args.quick:
        config = dict(
            images=["china.jpg"],
            sparsities=[0.5],
            n_regions=3,
            height=16,
            max_epochs=2,
            n_prune_rounds=1,
            save=False,
        )
    else:
        config = dict(
            images=["china.jpg", "flower.jpg"],
            sparsities=[0.25, 0.5, 0.75],
            n_regions=4,
            height=48,
            max_epochs=40,
            n_prune_rounds=2,
        )
    rows = run(**config)
    table = summarize(rows, config["sparsities"])
    print(table)
    return rows, table


if __name__ == "__main__":
    main()
