"""Which names the GPU path reached through the stand-in does the real CuPy lack?

    CUPY_STAND_IN_RECORD=/tmp/reached PYTHONPATH=tests/cupy_stand_in python -m pytest --device-half gpu tests
    python tests/cupy_stand_in/compare_with_cupy.py /tmp/reached    # with the real CuPy importable

The stand-in offers every NumPy function and array method; CuPy has most, not all. Real CuPy
imports without a GPU (`pip install cupy-cuda13x`), so this runs on any machine. Exit status 1
if a name is missing, with the list."""
import os
import sys


def missing(lines, cupy):
    gaps = []
    for line in sorted(set(lines)):
        kind, name = line.split()
        if kind == "kernel":  # a kernel call: compile_with_cupy.py's
            continue
        target = cupy.ndarray if kind == "ndarray" else cupy
        for part in name.split("."):
            if not hasattr(target, part):
                gaps.append(line)
                break
            target = getattr(target, part)
    return gaps


def main(path):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # not the stand-in beside it
    import cupy
    if getattr(cupy, "STAND_IN", False):
        sys.exit("this needs the real CuPy: run it without tests/cupy_stand_in on PYTHONPATH")
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    gaps = missing(lines, cupy)
    names = {line for line in lines if not line.startswith("kernel ")}
    print(f"{len(names)} names reached; CuPy {cupy.__version__} lacks {len(gaps)}"
          + "".join(f"\n  {gap}" for gap in gaps))
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
