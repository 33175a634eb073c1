"""Keep the code quoted in docs/*.md identical to minicnn's source.

A page quotes a function, method or class by a marker pair around a code block:

    <!-- code: minicnn/functions/dense.py dense_forward -->
    ```python
    ...   (written by this script, never by hand)
    ```
    <!-- /code -->

``python docs/sync.py`` rewrites every such block from the current source;
``python docs/sync.py --check`` only reports the blocks that drifted (exit status 1),
which is what tests/test_docs.py runs.
"""
import ast
import os
import re
import sys

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)

MARKER = re.compile(r"<!-- code: (?P<path>\S+) (?P<name>[\w.]+) -->\n(?P<body>.*?)<!-- /code -->",
                    re.DOTALL)


def pages():
    """Every Markdown page of the docs, in name order."""
    return sorted(os.path.join(DOCS, name) for name in os.listdir(DOCS) if name.endswith(".md"))


def definition_source(path, qualname, root=ROOT):
    """The source lines of ``qualname`` ('dense_forward', 'Tensor.backward') in ``path``,
    decorators included, exactly as they stand in the file (indentation kept)."""
    with open(os.path.join(root, path), encoding="utf-8") as f:
        text = f.read()
    body = ast.parse(text).body
    node = None
    for part in qualname.split("."):
        matches = [n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part]
        if not matches:
            raise LookupError(f"{path}: no function or class named {qualname!r}")
        node = matches[0]
        body = node.body
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = text.splitlines()[first - 1:node.end_lineno]
    indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return "\n".join(l[indent:] for l in lines)


def render(match, root=ROOT):
    """The marker pair with the code block as the source has it now."""
    path, name = match["path"], match["name"]
    code = definition_source(path, name, root)
    return (f"<!-- code: {path} {name} -->\n```python\n# {path}: {name}\n{code}\n```\n<!-- /code -->")


def synced(text, root=ROOT):
    """``text`` with every quoted block replaced by the current source."""
    return MARKER.sub(lambda m: render(m, root), text)


def drifted(text, root=ROOT):
    """The 'path name' of every block in ``text`` that differs from the source."""
    return [f"{m['path']} {m['name']}" for m in MARKER.finditer(text) if m.group(0) != render(m, root)]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    check = "--check" in argv
    stale = []
    for page in pages():
        with open(page, encoding="utf-8") as f:
            text = f.read()
        if check:
            stale += [f"{os.path.relpath(page, ROOT)}: {what}" for what in drifted(text)]
        else:
            new = synced(text)
            if new != text:
                with open(page, "w", encoding="utf-8") as f:
                    f.write(new)
                print(f"updated {os.path.relpath(page, ROOT)}")
    if stale:
        print("code quoted in the docs no longer matches the source; run python docs/sync.py:\n  "
              + "\n  ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
