"""The architecture's import boundaries, read from the source with `ast` (every `import` and
`from ... import`, including those inside functions, so lazy imports count too):

- nqm/ imports no torch, matplotlib, click or empirical; only kernel modules (nqm/_kernels.py,
  nqm/_*_kernels.py) import numba;
- empirical/ imports from nqm only `nqm.critical`, `nqm.threads` and `nqm.files` (a
  dependency-free thread count and JSON writer), `nqm.spectrum`, `nqm.slow_row`, `nqm.path` and
  `nqm.errors` only in empirical/adapter.py, the one adapter to the NQM, and the
  calibration (`nqm.calibrate`, `nqm.sweep_data`) only in empirical/demo.py, which runs the
  whole loop;
- matplotlib only in figures/.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nqm", "empirical", "figures")
EMPIRICAL_MAY_USE = {"nqm.critical", "nqm.threads", "nqm.files"}
ADAPTER = "empirical/adapter.py"
ADAPTER_MAY_USE = {"nqm.spectrum", "nqm.slow_row", "nqm.path", "nqm.errors"}
DEMO = "empirical/demo.py"


def modules() -> list[str]:
    """Every module checked, as a path relative to the repository root."""
    out = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    return out + ["cli.py"]


def imported(path: str, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute name) of every import in the file: `import a.b` yields a.b and
    `from a import b` yields a.b (b may be a submodule or a name in a); relative imports are
    resolved."""
    tree = ast.parse((root / path).read_text(), filename=path)
    package = path.removesuffix(".py").replace("/", ".").rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def top(name: str) -> str:
    """The top-level package of a module name."""
    return name.split(".")[0]


def violations(path: str, root: Path = ROOT) -> list[str]:
    """'path:line imports name (rule)' for every import that breaks a rule."""
    pkg = path.split("/")[0] if "/" in path else ""
    out = []
    for line, name in imported(path, root):
        def bad(rule, line=line, name=name):
            out.append(f"{path}:{line} imports {name} ({rule})")
        if pkg == "nqm":
            if top(name) in ("torch", "matplotlib", "click", "empirical"):
                bad("nqm imports no torch, matplotlib, click or empirical")
        if top(name) == "numba" and not (path == "nqm/_kernels.py" or (
                path.startswith("nqm/_") and path.endswith("_kernels.py"))):
            bad("only kernel modules import numba")
        if top(name) == "matplotlib" and pkg != "figures":
            bad("matplotlib only in figures/")
        if pkg == "empirical" and top(name) == "nqm":
            allowed = EMPIRICAL_MAY_USE | (ADAPTER_MAY_USE if path == ADAPTER else set()) | (
                {"nqm.calibrate", "nqm.sweep_data"} if path == DEMO else set())
            # nqm.x.y (`from nqm.x import y`) is judged by its module nqm.x
            if name == "nqm" or ".".join(name.split(".")[:2]) not in allowed:
                bad("empirical imports from nqm only nqm.critical, nqm.threads, nqm.files, in "
                    "empirical/adapter.py nqm.spectrum, nqm.slow_row, nqm.path, nqm.errors, in "
                    "empirical/demo.py the calibration")
    return out


@pytest.mark.parametrize("path", modules())
def test_module_keeps_the_import_boundaries(path):
    assert violations(path) == []


def test_the_checker_sees_lazy_and_forbidden_imports(tmp_path):
    # the rules must be able to fail: imports inside a function break them too
    (tmp_path / "empirical").mkdir()
    (tmp_path / "empirical" / "probe.py").write_text(
        "def f():\n    import nqm\n    from nqm.tuning import tune\n    import matplotlib\n"
        "    from nqm.critical import estimate\n    from nqm import threads\n")
    found = violations("empirical/probe.py", tmp_path)
    assert [v.split(" (")[0] for v in found] == [
        "empirical/probe.py:2 imports nqm", "empirical/probe.py:3 imports nqm.tuning.tune",
        "empirical/probe.py:4 imports matplotlib"], found
    (tmp_path / "nqm").mkdir()
    (tmp_path / "nqm" / "probe.py").write_text("from . import _kernels\nimport numba\n"
                                               "from empirical.adapter import to_spectrum\n")
    found = violations("nqm/probe.py", tmp_path)
    assert len(found) == 2 and "numba" in found[0] and "empirical" in found[1], found


def test_only_the_adapter_reads_the_nqm_spectrum():
    users = [m for m in modules() if m.startswith("empirical/")
             and any(n.startswith("nqm.spectrum") for _, n in imported(m))]
    assert users == [ADAPTER]
