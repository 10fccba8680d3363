"""The manual: it builds strictly, its API reference lists every public name, and every
example in it runs.

- The site (`mkdocs.yml`, pages under docs/) builds with `mkdocs build --strict`: a broken
  link or anchor, a missing cross-reference or a docstring that does not parse fails.
- Every ```python block of README.md and of the pages under docs/ runs, the blocks of one
  page in order in one namespace, in a scratch folder where `docs` and `scripts` lead to
  the repository's (so a block reads committed results and writes only scratch files). A
  block whose first line is `# not run: <why>` is not run; it is reported as a skipped
  test with that reason.
- ```bash blocks are commands (installs, experiments that train for minutes) and are not
  run; every `python scripts/<name>.py ...` and `pascanu-jax <command> ...` line in them
  is parsed by that command's own `parse_args`, so a renamed or mistyped flag fails.
- Every docstring example (`>>>`) of the package runs as a doctest, in a scratch folder
  where `docs` leads to the repository's, with `pj`, `jax`, `jnp`, `np` and `optax`
  already imported; ELLIPSIS and NORMALIZE_WHITESPACE are on. An
  example marked `# doctest: +SKIP` needs a line `>>> # not run: <why>` in its
  docstring, and is reported as a skipped test with that reason.
- Every public function has such an example.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import os
import pathlib
import pkgutil
import re
import shlex
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pascanu_jax as pj

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(p for p in DOCS.rglob("*.md") if "results" not in p.parts)]
NOT_RUN = re.compile(r"^\s*(?:>>> )?# not run: (.+)$", re.M)
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)
API_PAGES = sorted((DOCS / "api").glob("*.md"))
# The public modules whose names the API reference lists: the package's top level
# (`pj.*`), the experiments, the natural problems and the analyses.
PUBLIC_MODULES = [
    "pascanu_jax.experiments.engine",
    "pascanu_jax.experiments.runner",
    "pascanu_jax.experiments.sweep",
    "pascanu_jax.experiments.generalization",
    "pascanu_jax.experiments.watch",
    "pascanu_jax.natural",
    "pascanu_jax.analysis.dynamics",
    "pascanu_jax.analysis.error_surface",
    "pascanu_jax.analysis.gradient_flow",
]


def blocks(page: pathlib.Path) -> list[tuple[str, str]]:
    """(info string, code) of every fenced block that starts at the margin."""
    return [(m[1].strip(), m[2]) for m in FENCE.finditer(page.read_text())]


def python_pages() -> list[pathlib.Path]:
    return [p for p in PAGES if any(info == "python" for info, _ in blocks(p))]


def _rel(p: pathlib.Path) -> str:
    return str(p.relative_to(ROOT))


def test_every_python_block_is_seen():
    """No ```python fence hides inside a list or a quote, where the runner would miss it."""
    for page in PAGES:
        indented = re.findall(r"^[ \t>]+```\s*python", page.read_text(), re.M)
        assert not indented, f"{_rel(page)}: put ```python blocks at the margin"


def not_run_blocks() -> list[tuple[str, str]]:
    """(page and block, why) of every ```python block marked `# not run: <why>`."""
    found = []
    for page in PAGES:
        for i, (info, code) in enumerate(blocks(page)):
            if info == "python" and (m := NOT_RUN.match(code.splitlines()[0])):
                found.append((f"{_rel(page)}, block {i + 1}", m[1]))
    return found


@pytest.mark.parametrize("page", python_pages(), ids=_rel)
def test_examples_of_the_page_run(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    for name in ("docs", "scripts"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for i, (info, code) in enumerate(blocks(page)):
        if info != "python" or NOT_RUN.match(code.splitlines()[0]):
            continue  # reported by test_example_not_run
        compiled = compile(code, f"{_rel(page)}, block {i + 1}", "exec")
        exec(compiled, namespace)


def _commands() -> list[tuple[str, str, list[str]]]:
    """(where, command module, argv) of every experiment command in a ```bash block."""
    scripts = {p.stem: p for p in (ROOT / "scripts").glob("*.py")}
    found = []
    for page in PAGES:
        for i, (info, code) in enumerate(blocks(page)):
            if info != "bash":
                continue
            for line in code.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                for stop in ("&", "&&", "|", ";"):
                    words = words[: words.index(stop)] if stop in words else words
                where = f"{_rel(page)}, block {i + 1}: {line.strip()}"
                if words[:1] == ["python"] and words[1:2] and words[1].startswith("scripts/"):
                    name = pathlib.Path(words[1]).stem
                    assert name in scripts, f"{where}: no such script"
                    source = scripts[name].read_text()
                    module = re.search(r'run_command\("(\w+)"\)', source)[1]
                    found.append((where, module, words[2:]))
                elif words[:1] == ["pascanu-jax"] and words[1:2]:
                    from pascanu_jax.cli import COMMANDS

                    assert words[1] in COMMANDS, f"{where}: no such command"
                    found.append((where, COMMANDS[words[1]][0], words[2:]))
    return found


def test_commands_of_the_pages_parse(monkeypatch):
    """Every experiment command shown in a page is accepted by its command's parser."""
    monkeypatch.chdir(ROOT)  # the commands name the repository's paths
    failures = []
    for where, module, argv in _commands():
        command = importlib.import_module(f"pascanu_jax.cli.{module}")
        parse_args = getattr(command, "parse_args", None)
        if parse_args is None or "--help" in argv or "-h" in argv:
            continue  # report's arguments are read by its main; --help prints and exits
        try:
            parse_args(argv)
        except SystemExit as e:
            failures.append(f"{where} (exit {e.code})")
    assert failures == [], "commands that their parser refuses (its message above)"


def _modules() -> list:
    names = [
        m.name
        for m in pkgutil.walk_packages(pj.__path__, "pascanu_jax.")
        if not m.name.startswith(("pascanu_jax.cli", "pascanu_jax.__main__"))
    ]
    return [importlib.import_module(n) for n in ["pascanu_jax", *sorted(names)]]


def _doctests():
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = []
    for module in _modules():
        tests += [t for t in finder.find(module) if t.examples]
    return sorted({t.name: t for t in tests}.values(), key=lambda t: t.name)


def _not_run_examples() -> list[tuple[str, str]]:
    """(docstring, why) of every docstring example marked `# doctest: +SKIP`."""
    found = []
    for test in _doctests():
        if any(e.options.get(doctest.SKIP) for e in test.examples):
            reasons = NOT_RUN.findall(test.docstring or "")
            found += [(test.name, r) for r in reasons] or [(test.name, "")]
    return found


@pytest.mark.parametrize("test", _doctests(), ids=lambda t: t.name)
def test_docstring_examples(test, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    (tmp_path / "docs").symlink_to(DOCS)  # examples read committed results
    monkeypatch.chdir(tmp_path)
    test.globs.update(pj=pj, jax=jax, jnp=jnp, np=np, optax=optax)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    runner.run(test, out=lambda s: print(s, end=""))
    assert runner.failures == 0, f"{test.name}: {runner.failures} failed (output above)"


@pytest.mark.parametrize(
    ("where", "why"), not_run_blocks() + _not_run_examples(), ids=lambda x: str(x)[:60]
)
def test_example_not_run(where, why):
    """Examples that are shown but not run, each with its reason, listed as skipped."""
    assert why, f"{where}: an example marked +SKIP needs a line `>>> # not run: <why>`"
    pytest.skip(f"{where}: not run: {why}")


def _public_objects() -> dict[str, object]:
    """Every public name: pj.*, and what the public modules define (not import)."""
    objects = {f"pj.{n}": getattr(pj, n) for n in pj.__all__}
    for name in PUBLIC_MODULES:
        module = importlib.import_module(name)
        for n, obj in vars(module).items():
            defined_here = getattr(obj, "__module__", None) == name
            public = not n.startswith("_") and (inspect.isfunction(obj) or inspect.isclass(obj))
            if public and defined_here:
                objects[f"{name}.{n}"] = obj
        for n in getattr(module, "__all__", ()):
            objects[f"{name}.{n}"] = getattr(module, n)
    return objects


def test_every_public_function_has_an_example():
    lacking = sorted(
        name
        for name, obj in _public_objects().items()
        if inspect.isfunction(obj) and ">>>" not in (obj.__doc__ or "")
    )
    assert lacking == [], "public functions without a docstring example"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_site_builds_strictly(site):
    assert (site / "index.html").is_file()
    assert (site / "api" / "clipping" / "index.html").is_file()


def test_api_reference_lists_every_public_name(site):
    html = "".join(p.read_text() for p in (site / "api").rglob("*.html"))
    anchors = set(re.findall(r'id="(pascanu_jax[\w.]*)"', html))
    missing = []
    for name, obj in _public_objects().items():
        short = name.rsplit(".", 1)[1]
        if inspect.isfunction(obj) or inspect.isclass(obj):
            found = f"{obj.__module__}.{obj.__qualname__}" in anchors
        else:  # a constant or an alias: documented where it is assigned
            found = any(a.endswith(f".{short}") for a in anchors)
        if not found:
            missing.append(name)
    assert missing == [], "public names without an entry in the API reference"
    index = (DOCS / "api" / "index.md").read_text()
    assert [n for n in pj.__all__ if f"pj.{n}" not in index] == [], "names missing in api/index"


def test_readme_links_every_manual_page():
    readme = (ROOT / "README.md").read_text()
    links = set(re.findall(r"\]\(([^)#\s]+)", readme))
    for link in links:
        if "://" not in link:
            assert (ROOT / link).exists(), f"README.md links a missing file: {link}"
    pages = {_rel(p) for p in DOCS.glob("*.md")} | {_rel(p) for p in DOCS.glob("*/*.md")}
    pages -= {_rel(p) for p in API_PAGES if p.name != "index.md"}
    assert sorted(pages - links) == [], "manual pages that README.md does not link"


def test_ci_runs_the_commands_of_readme():
    """.ci/run installs and tests with README's two commands, so CI builds what README says."""
    commands = {
        line.strip()
        for info, code in blocks(ROOT / "README.md")
        if info == "bash"
        for line in code.splitlines()
    }
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    steps = [
        ci[i + 1].strip()
        for i, line in enumerate(ci)
        if line.startswith("# ") and "(README" in line
    ]
    assert len(steps) == 2, "the install and test steps of .ci/run, each after its comment"
    assert set(steps) <= commands, "README's install and test commands differ from .ci/run's"
