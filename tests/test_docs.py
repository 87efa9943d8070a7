"""Documentation that cannot drift.

* ``docs/walkthrough.py`` is imported and every value it defines is checked
  against ``jax`` (the same function written with ``jax.numpy``);
* every ```python block of ``README.md`` and of every page of the site (``docs/**/*.md``)
  runs, the blocks of one page in order and in one namespace, in a fresh directory.
  The convention for output: a ```python block, then a paragraph that is only the word
  "prints", then a ```text block: that block is the exact standard output of the python
  block. Blocks that cannot run in a test (shell commands, output, configuration) are
  fenced ```bash, ```text, ```yaml and so on, never ```python;
* every page is in the site's navigation (``mkdocs.yml``), and every repository path and
  ``fungrad.<module>.<NAME> = <value>`` constant the pages quote still exists and holds;
* every docstring example (``>>>``) in every ``fungrad`` module runs as a doctest,
  and every module is imported (none is skipped).

``docs/contributing.md`` says the same for people writing pages.
"""
from __future__ import annotations

import doctest
import importlib
import importlib.util
import pathlib
import re

import jax
import jax.numpy as jnp_ref
import numpy as np
import pytest
import yaml

import fungrad
from harness import GRAD_TOL, assert_same, package_modules

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDES = ("transformations.md", "jit.md", "random.md", "training.md", "getting_started.md",
          "jax_users.md", "pytrees.md")
PAGES = sorted(str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md")) + ["README.md"]


# --------------------------------------------------------------------------- the walkthrough

@pytest.fixture(scope="module")
def walkthrough():
    spec = importlib.util.spec_from_file_location("fungrad_docs_walkthrough",
                                                  DOCS / "walkthrough.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def jax_cube(x):
    return jax.lax.integer_pow(x, 3)


def jax_loss(v, w):
    return jnp_ref.sum(jax_cube(jnp_ref.roll(v, 1)) * w)


def test_walkthrough_cube_values_and_derivatives(walkthrough):
    w = walkthrough
    x = w.X
    assert_same(w.CUBE_X, jax_cube(x))
    assert_same((w.JVP_PRIMAL, w.JVP_TANGENT), jax.jvp(jax_cube, (x,), (1.0,)))
    assert_same(w.GRAD_X, jax.grad(jax_cube)(x))
    assert_same(w.GRAD2_X, jax.grad(jax.grad(jax_cube))(x))
    assert_same(w.LIN_AT_2, jax.linearize(jax_cube, x)[1](2.0))
    xs = np.asarray(w.XS)
    assert_same(w.VMAP_CUBE, jax.vmap(jax_cube)(xs))
    assert_same(w.PER_EXAMPLE_GRADS, jax.vmap(jax.grad(jax_cube))(xs), table=GRAD_TOL)
    assert_same(w.JIT_GRAD_VMAP, jax.jit(jax.vmap(jax.grad(lambda x: jax_cube(x) * 2.0)))(xs),
                table=GRAD_TOL)


def test_walkthrough_roll_is_linear_and_batches(walkthrough):
    w = walkthrough
    v = np.asarray(w.V)
    assert_same(w.ROLL_V, jnp_ref.roll(v, 1))
    assert_same(w.JACFWD_ROLL, jax.jacfwd(lambda v: jnp_ref.roll(v, 1))(v))
    assert_same(w.JACREV_ROLL, jax.jacrev(lambda v: jnp_ref.roll(v, 1))(v))
    m = np.asarray(w.M)
    assert_same(w.VMAP_ROLL, jax.vmap(lambda m: jnp_ref.roll(m, 1, axis=-1), in_axes=1)(m))
    assert_same(w.LOSS_GRAD, jax.grad(jax_loss)(v * np.float32(0.1), np.asarray(w.W)),
                table=GRAD_TOL)
    assert_same(w.JIT_OUT, jax.jit(lambda v: jax_cube(jnp_ref.roll(v, 1)) + 1.0)(v))
    with pytest.raises(ValueError, match="roll: axis 3 out of range"):
        w.roll(w.V, 1, axis=3)
    with pytest.raises(TypeError, match="cube: expected a floating-point operand"):
        fungrad.make_jaxpr(w.cube)(np.int32(2))


def test_walkthrough_printouts(walkthrough):
    w = walkthrough
    assert w.JAXPR_TEXT == ("{ lambda ; a:f32[]. let\n"
                            "    b:f32[] = sin a\n"
                            "    c:f32[] = cube b\n"
                            "    d:f32[] = mul c 2.0:f32[]\n"
                            "  in (d,) }")
    assert "cube a" in w.GRAD_JAXPR_TEXT and "mul 3.0:f32[]" in w.GRAD_JAXPR_TEXT
    assert "roll[axis=0, shift=1] a" in w.OPTIMISED_TEXT
    assert "_cube(" in w.GENERATED_SOURCE and "_roll(" in w.GENERATED_SOURCE


def test_walkthrough_interpreters(walkthrough):
    w = walkthrough
    x = np.float32(w.X)
    assert_same(np.asarray(w.INTERPRETED), jax_cube(jnp_ref.sin(x)) * 2.0)
    assert_same(w.JAXPR(x)[0], jax_cube(jnp_ref.sin(x)) * 2.0)
    assert_same(w.COUNTED_GRAD, jax.grad(jax_cube)(w.X))
    assert w.GRAD_COUNTS["cube"] == 1 and w.GRAD_COUNTS["mul"] >= 2


# --------------------------------------------------------------------------- the guides

def python_blocks(path: pathlib.Path) -> list[tuple[int, str, str | None]]:
    """(line number, source, expected output) of every ```python block of a Markdown file.

    A ```text block that follows a python block with only the word "prints" between
    them is that block's expected standard output; other ```text blocks are not checked.
    """
    text = path.read_text()
    fences = list(re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M))
    blocks = []
    for i, m in enumerate(fences):
        if m.group(1) != "python":
            continue
        expected = None
        nxt = fences[i + 1] if i + 1 < len(fences) else None
        if nxt is not None and nxt.group(1) == "text" and \
                text[m.end():nxt.start()].strip() == "prints":
            expected = nxt.group(2)
        blocks.append((text.count("\n", 0, m.start()) + 2, m.group(2), expected))
    return blocks


def test_every_guide_is_checked():
    md = sorted(p.name for p in DOCS.glob("*.md"))
    assert set(GUIDES) <= set(md), md
    for name in GUIDES:
        assert python_blocks(DOCS / name), f"{name} has no ```python block"


@pytest.mark.parametrize("name", PAGES)
def test_markdown_code_blocks_run(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # snippets that write files write them here
    namespace: dict = {"__name__": f"docs_{pathlib.Path(name).stem}"}
    for line, source, expected in python_blocks(ROOT / name):
        capsys.readouterr()
        # dont_inherit: run as a user would, without this file's ``from __future__`` imports
        code = compile(source, f"{ROOT / name}:{line}", "exec", dont_inherit=True)
        exec(code, namespace)  # noqa: S102
        if expected is not None:
            assert capsys.readouterr().out == expected, f"output of the block at {name}:{line}"


def test_fences_are_closed_and_named():
    """An unclosed fence or an unnamed one would silently hide a block from the test."""
    for name in PAGES:
        fences = re.findall(r"^```(\S*)", (ROOT / name).read_text(), re.M)
        assert len(fences) % 2 == 0, f"{name}: an unclosed ``` fence"
        openings = fences[::2]
        assert all(openings), f"{name}: a ``` fence without a language (python, bash, text, ...)"
        assert all(closing == "" for closing in fences[1::2]), f"{name}: fences out of step"


def test_every_page_is_in_the_site_navigation():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(node):
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [p for v in node.values() for p in pages(v)]
        return [p for v in node for p in pages(v)]

    in_nav = pages(config["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(in_nav) == on_disk
    assert config["theme"]["font"] is False, "the site must build and render without network"


# --------------------------------------------------------------------------- facts in prose

def _doc_texts() -> list[tuple[str, str]]:
    return [(name, (ROOT / name).read_text()) for name in PAGES]


def test_paths_named_in_the_docs_exist():
    root = DOCS.parent
    named = {(name, m) for name, text in _doc_texts() for m in re.findall(
        r"`((?:fungrad|tests|docs|benchmarks|examples)/[\w./-]+)`", text)}
    assert len(named) > 30
    missing = sorted(f"{name}: {path}" for name, path in named if not (root / path).exists())
    assert not missing, missing


def _resolve(dotted: str):
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ImportError:
            continue
        for attr in parts[k:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_constants_quoted_in_the_docs_are_current():
    quoted = [(name, m) for name, text in _doc_texts()
              for m in re.findall(r"`(fungrad(?:\.\w+)+) = ([^`]+)`", text)]
    assert len(quoted) >= 6
    for name, (dotted, value) in quoted:
        assert _resolve(dotted) == eval(value), f"{name}: {dotted} is no longer {value}"  # noqa: S307


# --------------------------------------------------------------------------- doctests

MODULES = package_modules()
FINDER = doctest.DocTestFinder(exclude_empty=True)


def _doctests(module_name: str) -> list[doctest.DocTest]:
    module = importlib.import_module(module_name)
    return [t for t in FINDER.find(module, module_name) if t.examples]


WITH_EXAMPLES = [m for m in MODULES if _doctests(m)]


def test_modules_are_collected_and_have_examples():
    assert len(MODULES) > 50 and "fungrad.transforms.api" in MODULES
    assert {"fungrad.transforms.api", "fungrad.transforms.jit", "fungrad.random._keys",
            "fungrad.lax.control_flow.loops"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("module_name", WITH_EXAMPLES)
def test_docstring_examples(module_name):
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in _doctests(module_name):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} doctest failures in {module_name} (see output)"
