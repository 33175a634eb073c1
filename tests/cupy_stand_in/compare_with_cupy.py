"""Which names the GPU path reached through the stand-in does the real CuPy lack, and which
of its calls would CuPy's signatures refuse (too many positional arguments, a keyword CuPy's
function or array method does not take)?

    CUPY_STAND_IN_RECORD=/tmp/reached PYTHONPATH=tests/cupy_stand_in python -m pytest --device-half gpu tests
    python tests/cupy_stand_in/compare_with_cupy.py /tmp/reached    # with the real CuPy importable

The stand-in offers every NumPy function and array method; CuPy has most, not all. Real CuPy
imports without a GPU (`pip install cupy-cuda13x`), so this runs on any machine. A call is
checked where CuPy's signature can be read (its Python functions; its array methods' first
docstring line); ufuncs and other compiled functions are not. Exit status 1 if a name is
missing or a call is refused, with the list."""
import inspect
import os
import re
import sys


def missing(lines, cupy):
    gaps = []
    for line in sorted(set(lines)):
        kind, name = line.split()
        if kind in ("kernel", "call"):  # a kernel call (compile_with_cupy.py's); a call, refused()
            continue
        target = cupy.ndarray if kind == "ndarray" else cupy
        for part in name.split("."):
            if not hasattr(target, part):
                gaps.append(line)
                break
            target = getattr(target, part)
    return gaps


def signature_of(target, is_method):
    """inspect's signature of a CuPy function, or of an array method from its docstring's
    first line ("_ndarray_base.sum(self, axis=None, ...) -> ..."); None where neither is readable."""
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        if not is_method:
            return None
    first = (target.__doc__ or "").splitlines()[0] if target.__doc__ else ""
    match = re.match(r"[\w.]*?(\w+)\((.*)\)", first.split(" -> ")[0])
    if not match:
        return None
    params = ", ".join(p.split()[-1] if "=" not in p else p for p in match.group(2).split(", "))
    namespace = {}
    try:
        exec(f"def {match.group(1)}({params}): pass", namespace)  # a docstring of CuPy's, parsed
    except SyntaxError:
        return None
    return inspect.signature(namespace[match.group(1)])


def refused(lines, cupy, checked=None):
    """The recorded calls ("call WHERE|POSITIONAL|KEYWORDS") CuPy's signatures would not bind;
    checked, a list, gets each call whose signature could be read."""
    bad = []
    for line in sorted(set(lines)):
        if not line.startswith("call "):
            continue
        where, count, keywords = line.split(None, 1)[1].split("|")
        owner, name = where.split(".", 1)
        is_method = owner == "ndarray"
        target = cupy.ndarray if is_method else cupy
        for part in name.split("."):
            target = getattr(target, part, None)
        signature = None if target is None else signature_of(target, is_method)
        if signature is None:
            continue  # a ufunc or compiled function: not readable here
        if checked is not None:
            checked.append(line)
        positional = [None] * (int(count) + is_method)
        try:
            signature.bind(*positional, **{k: None for k in keywords.split(",") if k})
        except TypeError as error:
            bad.append(f"{where}({count} positional{', ' + keywords if keywords else ''}): {error}")
    return bad


def main(path):
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]  # not the stand-in beside it
    import cupy
    if getattr(cupy, "STAND_IN", False):
        sys.exit("this needs the real CuPy: run it without tests/cupy_stand_in on PYTHONPATH")
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    checked = []
    gaps = missing(lines, cupy) + refused(lines, cupy, checked)
    names = {line for line in lines if line.split()[0] not in ("kernel", "call")}
    calls = {line for line in lines if line.startswith("call ")}
    print(f"{len(names)} names reached, {len(calls)} kinds of call ({len(checked)} with a readable signature); CuPy {cupy.__version__} lacks or refuses {len(gaps)}"
          + "".join(f"\n  {gap}" for gap in gaps))
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
