#!/usr/bin/env python3
"""Checks the layout rules of the Rust crates (issue #10), run by scripts/test.sh:

1. No source file over 600 lines, tests aside: a file's trailing `#[cfg(test)]` module
   and files that are test modules themselves (`tests.rs`, `tests/...`) do not count.
2. No import cycles between modules. Every file is a module; a module depends on the
   module that *defines* each item it names (`use` declarations and inline `crate::`,
   `super::` and `self::` paths, resolved through `pub use` re-exports). A module may use
   its own ancestors (its parts are the parent's implementation: `impl Node` in
   node/forward.rs), so child-to-ancestor references are not dependencies; every other
   cycle — between siblings, or through other subtrees — fails the check, with the
   modules and the references that close it.

Usage: scripts/check-structure.py [crate_src_dir ...]  (default: server/src client/src)
"""

import os
import re
import sys
from collections import defaultdict

MAX_LINES = 600


def module_of(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


def strip_comments(text):
    """The code without comments, string and char literals (which may mention paths)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j == -1 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j == -1 else j + 2
        elif c == "r" and re.match(r'r#*"', text[i:]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            j = text.find('"' + hashes, i + len(hashes) + 2)
            i = n if j == -1 else j + 1 + len(hashes)
            out.append('""')
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.[^']*|[^\\'])'", text[i:]):
            i += re.match(r"'(\\.[^']*|[^\\'])'", text[i:]).end()
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def code_lines(text):
    """Lines before the file's `#[cfg(test)]` module."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("#[cfg(test)]"):
            return i
    return len(lines)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> [a::b, a::c::d, a::c::e] (aliases and globs kept)."""
    tree = re.sub(r"\s+", "", tree)
    out = []

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix, s):
        i = s.find("{")
        if i == -1:
            out.append(prefix + s)
            return
        head, body = s[:i], s[i + 1 : s.rfind("}")]
        for part in split_top(body):
            walk(prefix + head, part)

    walk("", tree)
    return out


def resolve(current, path, modules):
    """The module a path names, or the module defining the item it names."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    base = list(current)
    if segs[0] == "crate":
        base, segs = [], segs[1:]
    elif segs[0] == "self":
        segs = segs[1:]
    elif segs[0] == "super":
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
    else:
        # A path through a child declared here (`use proposer::Proposer` in node/mod.rs).
        if tuple(base + [segs[0]]) not in modules:
            return None
    mod = tuple(base)
    rest = []
    for i, s in enumerate(segs):
        if tuple(list(mod) + [s]) in modules:
            mod = tuple(list(mod) + [s])
        else:
            rest = segs[i:]
            break
    return mod, rest


def main():
    roots = sys.argv[1:] or ["server/src", "client/src"]
    failures = []
    for root in roots:
        files = {}
        for d, _, names in os.walk(root):
            for n in names:
                if n.endswith(".rs"):
                    p = os.path.join(d, n)
                    files[module_of(root, p)] = p
        # Binaries under src/bin are crates of their own.
        crates = defaultdict(dict)
        for mod, p in files.items():
            key = mod[:2] if mod[:1] == ("bin",) else ()
            crates[key][mod[len(key):]] = p
        for key, mods in crates.items():
            failures += check_crate(root, key, mods)
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print("structure: no file over", MAX_LINES, "lines, no import cycles")


def check_crate(root, key, mods):
    failures = []
    # Dependencies of the code itself: a file's trailing test module may use anything.
    texts = {}
    for m, p in mods.items():
        raw = open(p).read().split("\n")
        texts[m] = strip_comments("\n".join(raw[: code_lines("\n".join(raw))]))
    for m, p in mods.items():
        is_test = m[-1:] == ("tests",) or "/tests/" in p
        n = code_lines(open(p).read())
        if not is_test and n > MAX_LINES:
            failures.append(f"{p}: {n} lines (tests aside), more than {MAX_LINES}")
    modules = set(mods)
    # Re-exports: module -> name -> full path.
    reexports = defaultdict(dict)
    for m, t in texts.items():
        for tree in re.findall(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", t):
            for path in expand_use(tree):
                name = path.split("::")[-1]
                if " as " in path or "as" in name:
                    continue
                reexports[m][name] = path

    def target(current, path, depth=0):
        r = resolve(current, path, modules)
        if r is None:
            return None
        mod, rest = r
        if rest and depth < 5 and rest[0] in reexports.get(mod, {}):
            inner = target(mod, reexports[mod][rest[0]], depth + 1)
            if inner is not None:
                return inner
        return mod

    edges = defaultdict(dict)
    for m, t in texts.items():
        paths = []
        for tree in re.findall(r"\buse\s+([^;]+);", t):
            paths += [p.split(" as ")[0] for p in expand_use(tree)]
        paths += re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", t)
        for path in paths:
            if path.endswith("::*"):
                path = path[:-3]
            dep = target(m, path)
            if dep is None or dep == m or m[: len(dep)] == dep:
                continue  # itself, or one of its ancestors
            edges[m].setdefault(dep, path)
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            strong(v)
    name = lambda m: "::".join(("crate",) + tuple(key) + m) if m else "crate"
    for comp in sccs:
        members = set(comp)
        refs = [f"    {name(a)} -> {name(b)} ({edges[a][b]})" for a in sorted(comp) for b in edges[a] if b in members]
        failures.append(f"{root}: import cycle among {', '.join(name(m) for m in sorted(comp))}:\n" + "\n".join(refs))
    return failures


if __name__ == "__main__":
    main()
