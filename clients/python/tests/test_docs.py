"""The ten-line example of clients/python/README.md and docs/clients.md runs as written (only the
servers' addresses change)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from harness import REPO, Groved

EXAMPLE_HOSTS = "127.0.0.1:7181,127.0.0.1:7182,127.0.0.1:7183/app"


def ten_lines(doc: Path) -> str:
    text = doc.read_text()
    section = text[text.index("Ten lines"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.mark.parametrize("doc", ["clients/python/README.md", "docs/clients.md"])
def test_the_ten_line_example_runs(doc: str, server: Groved) -> None:
    code = ten_lines(REPO / doc)
    assert len(code.strip().splitlines()) == 10 and EXAMPLE_HOSTS in code
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.replace(EXAMPLE_HOSTS, f"{server.client}/{doc.replace('/', '_')}"), doc, "exec"), {})
    printed = out.getvalue()
    # The listener was added once connected: it hears the transitions after that.
    assert "config is b'v1'" in printed and printed.endswith("session CLOSED\n")
    assert re.search(r"deployed under fencing token \d+", printed)
