"""The view-model as one self-contained HTML file: Jinja2 template, inline assets, strict CSP.

Nothing in the file refers to anything outside it: the chart library (plotly.js, shipped inside
the `plotly` PyPI package) and the report's own script and style are inlined, the data is one
JSON block. Evidence strings reach the page only as JSON data (with `<`, `>`, `&` escaped, so
`</script>` cannot end the block) or through Jinja2's autoescaping, and the script inserts them
with `textContent`, never as markup. The Content-Security-Policy allows exactly the two inline
scripts (by hash), no network at all, and inline styles (plotly.js sets style attributes at
run time; with every fetch forbidden a style cannot send anything anywhere).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

from ..stores import collector_paused

EXTRA = "report"
STATIC = Path(__file__).resolve().parent / "static"
TEMPLATES = Path(__file__).resolve().parent / "templates"


class MissingExtra(RuntimeError):
    """The optional dependencies of the HTML report are not installed."""

    def __init__(self, package: str) -> None:
        super().__init__(f"the HTML report needs the optional extra '{EXTRA}' ({package} is not installed): "
                         f"pip install 'bitsdb[{EXTRA}]'")


def _plotly_path() -> Path:
    """Where the installed `plotly` package keeps plotly.min.js (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtra("plotly")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise MissingExtra("plotly (its bundled plotly.min.js)")
    return path


def plotly_js() -> tuple[str, str]:
    """(plotly.min.js text, its version) from the installed `plotly` package."""
    text = _plotly_path().read_text(encoding="utf-8")
    version = "unknown"
    head = text[:300]
    if "plotly.js v" in head:
        version = head.split("plotly.js v", 1)[1].split()[0]
    return text, version


def _jinja():
    try:
        import jinja2
    except ImportError:
        raise MissingExtra("jinja2") from None
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True)


def _bitsdb_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bitsdb")
    except PackageNotFoundError:
        return "(not installed)"


def check_dependencies() -> None:
    """Raise MissingExtra before any evidence is read when the report cannot be written."""
    _jinja()
    _plotly_path()              # the 4.8 MB library itself is read once, when the page is rendered


# --------------------------------------------------------------------------- data block


class _Packer:
    """Compact JSON for many similar records (hash-consing): every distinct value — string, list or
    dict — is stored once in a table and referred to by its index; a dict is [-(shape + 1), refs…]
    with its key tuple stored once among the shapes, a list is [refs…]. null and booleans stay
    inline. Hosts of one fleet share updaters, rule hits, reasons and paths, so a job costs little
    more than what is its own. Values are strings, None, booleans, lists and dicts only (the
    view-model formats numbers as text).

    Table entries 0 and 1 are never referred to: in Python True == 1 and False == 0, so with them
    unused a boolean in an interning key can never be mistaken for a reference."""

    def __init__(self) -> None:
        self.table: list = [0, 0]
        self.strings: dict[str, int] = {}
        self.lists: dict[tuple, int] = {}
        self.dicts: dict[tuple, int] = {}
        self.shapes: dict[tuple[str, ...], int] = {}

    def pack(self, value: Any) -> Any:
        kind = value.__class__
        if kind is str:
            ref = self.strings.get(value)
            if ref is None:
                ref = self.strings[value] = len(self.table)
                self.table.append(value)
            return ref
        if value is None or kind is bool:
            return value
        pack = self.pack
        if kind is dict:
            keys = tuple(value)
            shape = self.shapes.get(keys)
            if shape is None:
                shape = self.shapes[keys] = len(self.shapes)
            key = (shape, *[pack(item) for item in value.values()])
            index, entry = self.dicts, [-(shape + 1), *key[1:]]
        elif kind is list or kind is tuple:
            key = tuple([pack(item) for item in value])
            index, entry = self.lists, list(key)
        else:
            raise TypeError(f"report data holds a {kind.__name__}; the view-model gives text")
        ref = index.get(key)
        if ref is None:
            ref = index[key] = len(self.table)
            self.table.append(entry)
        return ref


def unpack(table: list, shapes: list[list[str]], ref: Any) -> Any:
    """The inverse of _Packer.pack (the report's script does the same in JavaScript)."""
    if ref is None or isinstance(ref, bool):
        return ref
    entry = table[ref]
    if isinstance(entry, str):
        return entry
    if entry and isinstance(entry[0], int) and not isinstance(entry[0], bool) and entry[0] < 0:
        keys = shapes[-entry[0] - 1]
        return {k: unpack(table, shapes, r) for k, r in zip(keys, entry[1:])}
    return [unpack(table, shapes, r) for r in entry]


_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def data_block(view: dict[str, Any]) -> str:
    """The JSON text embedded in the page: ASCII only, no `<`, `>` or `&` (safe inside <script>)."""
    packer = _Packer()
    jobs = [packer.pack(job) for job in view["jobs"]]
    payload = {
        "overview": view["overview"], "levels": view["levels"], "hosts": view["hosts"],
        "table": packer.table, "shapes": [list(keys) for keys in packer.shapes], "jobs": jobs,
    }
    text = json.dumps(payload, ensure_ascii=True, separators=(",", ":"), sort_keys=False)
    return text.translate(_SCRIPT_SAFE)


def read_data_block(text: str) -> dict[str, Any]:
    """The view-model back from a data block (tests; the browser does this in report.js)."""
    payload = json.loads(text)
    jobs = [unpack(payload["table"], payload["shapes"], job) for job in payload["jobs"]]
    return {"overview": payload["overview"], "levels": payload["levels"], "hosts": payload["hosts"], "jobs": jobs}


# --------------------------------------------------------------------------- page


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def _printable(text: str) -> str:
    """Lone surrogates (undecodable bytes in evidence file names) as visible escapes, so the page is UTF-8."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def content_security_policy(scripts: list[str]) -> str:
    return ("default-src 'none'; script-src " + " ".join(_csp_hash(s) for s in scripts)
            + "; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'")


def render_report(view: dict[str, Any]) -> str:
    """The whole HTML page (deterministic: the same view gives the same bytes)."""
    with collector_paused():
        return _render(view)


def _render(view: dict[str, Any]) -> str:
    env = _jinja()
    library, library_version = plotly_js()
    app = (STATIC / "report.js").read_text(encoding="utf-8")
    style = (STATIC / "report.css").read_text(encoding="utf-8")
    scripts = [library, app]
    for script in scripts:      # verbatim inline scripts must not be able to end their own element
        if "</script" in script.lower() or "<!--" in script:
            raise ValueError("an inline script contains '</script' or '<!--'")
    page = env.get_template("report.html.j2").render(
        csp=content_security_policy(scripts), style=style, library=library, app=app,
        library_version=library_version, version=_bitsdb_version(), data=data_block(view),
        overview=_clean(view["overview"]), levels=view["levels"],
        worst=[_clean({"name": h["name"], "worst": h["worst"]}) for h in view["hosts"][:10]])
    return page


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _printable(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def write_report(view: dict[str, Any], path: str | Path) -> int:
    """Write the page to `path`; returns its size in bytes."""
    data = render_report(view).encode("utf-8")
    Path(path).write_bytes(data)
    return len(data)
