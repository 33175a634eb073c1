"""Draw the pictures in docs/images/ from minicnn's own functions.

    python docs/make_figures.py [OUT_DIR]      (default: docs/images)

im2col.png: a 4x4 one-channel image, its 3x3 patches as rows of the patch matrix
(computed by minicnn.functions.conv.im2col, not drawn by hand), and the GEMM with
the flattened kernel that gives the 2x2 output.
"""
import os
import sys

import numpy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minicnn.functions.conv import im2col  # noqa: E402

# one colour per output position (per patch)
COLOURS = ["#e6550d", "#3182bd", "#31a354", "#756bb1"]


def _grid(ax, values, title, colours=None, fmt="{:g}"):
    """Draw a 2-D array as labelled cells; ``colours[i][j]`` fills a cell (or None)."""
    rows, cols = values.shape
    for i in range(rows):
        for j in range(cols):
            face = colours[i][j] if colours is not None and colours[i][j] else "white"
            ax.add_patch(_rect(j, rows - 1 - i, face))
            ax.text(j + 0.5, rows - 0.5 - i, fmt.format(values[i, j]), ha="center", va="center",
                    fontsize=10)
    ax.set_xlim(-0.1, cols + 0.1)
    ax.set_ylim(-0.1, rows + 0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title, fontsize=10)


def _rect(x, y, face):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), 1, 1, facecolor=face, edgecolor="black", linewidth=0.8, alpha=0.55
                     if face != "white" else 1)


def im2col_figure(path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    x = numpy.arange(1, 17, dtype=numpy.float32).reshape(1, 4, 4, 1)  # (N, H, W, C)
    kernel = numpy.array([[1, 0, 0], [0, 1, 0], [0, 0, 2]], dtype=numpy.float32).reshape(3, 3, 1, 1)  # (kh, kw, C, F)
    col = im2col(x, 3, 3, 1, 1, ((0, 0), (0, 0)))  # (1, 2, 2, 3, 3, 1)
    patches = col.reshape(4, 9)  # one row per output position
    y = patches @ kernel.reshape(9, 1)  # (4, 1)

    fig, axes = plt.subplots(1, 5, figsize=(14, 3.6),
                             gridspec_kw={"width_ratios": [4, 9, 1.2, 1.2, 2.2]})
    ax = axes[0]
    _grid(ax, x[0, :, :, 0], "input x (4x4, one channel)")
    for k, colour in enumerate(COLOURS):  # the 4 windows, each outlined in its colour
        r, c = divmod(k, 2)
        inset = 0.06 * (k + 1)
        ax.add_patch(Rectangle((c + inset, 4 - 3 - r + inset), 3 - 2 * inset, 3 - 2 * inset,
                               fill=False, edgecolor=colour, linewidth=2.5))
    _grid(axes[1], patches, "patch matrix = im2col(x)  (4 positions x 9 taps)",
          colours=[[COLOURS[r]] * 9 for r in range(4)])
    axes[1].text(4.5, -0.5, "row r = the 3x3 window of output position r, read row by row",
                 ha="center", va="top", fontsize=8)
    _grid(axes[2], kernel.reshape(9, 1), "kernel\n(9 x 1)")
    axes[2].text(-0.6, 4.5, "@", ha="center", va="center", fontsize=16)
    _grid(axes[3], y, "= y\n(4 x 1)", colours=[[c] for c in COLOURS])
    _grid(axes[4], y.reshape(2, 2), "y reshaped\nto 2x2", colours=[COLOURS[:2], COLOURS[2:]])
    fig.suptitle("Convolution as one matrix multiply: y = im2col(x) @ kernel", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out = argv[0] if argv else os.path.join(os.path.dirname(os.path.abspath(__file__)), "images")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "im2col.png")
    im2col_figure(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
