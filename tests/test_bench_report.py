"""The --report page opened in a real headless Chromium: the charts are drawn, not just written.

Chromium comes from the distribution (`apt-get install -y chromium`; .ci/run installs it). Without
it the test is skipped, except in CI (CI=true), where a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from tests.cliutil import env_for, text_reply
from tests.helpers import run_acs

CHART_BLUE = (0x1F, 0x77, 0xB4)


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it with apt-get install -y chromium")
        pytest.skip("chromium is not installed: apt-get install -y chromium")
    return path


def browse(page: Path, tmp_path: Path, *action: str) -> bytes:
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400", *action, page.as_uri()]
    r = subprocess.run(argv, capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    return r.stdout


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB or RGBA PNG, unfiltered."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8 and colour in (2, 6)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 255
            elif kind == 2:
                line[i] = (line[i] + b) & 255
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def test_the_report_renders_its_charts_in_chromium(server, tmp_path: Path) -> None:
    server.route("POST", "/v1/completions", text_reply([f"t{i}" for i in range(6)], delay=0.003))
    page = tmp_path / "report.html"
    r = run_acs(["bench", "-c", "1,2", "-n", "12", "--report", str(page), "--slo", "ttft=1s"], env=env_for(server), timeout=120)
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    assert "http://" not in html.replace(server.base_url, "") and "<script src" not in html and "<link" not in html  # nothing to fetch
    dom = browse(page, tmp_path, "--dump-dom").decode()
    charts = re.findall(r'<svg class="chart"[^>]*data-rendered="(\d+)x(\d+):(\d+)"', dom)
    # two against load, then five per level: TTFT, ITL, E2EL, latency and throughput over time
    assert re.search(r'<body data-charts="12"', dom), dom[:500]
    assert len(charts) == 12 and all(int(w) > 100 and int(h) > 100 and int(n) > 0 for w, h, n in charts), charts
    assert "saturation" in dom
    shot = tmp_path / "shot.png"
    browse(page, tmp_path, f"--screenshot={shot}")
    width, height, rows = png_pixels(shot.read_bytes())
    bpp = len(rows[0]) // width
    blue = sum(1 for row in rows for x in range(0, len(row), bpp) if tuple(row[x : x + 3]) == CHART_BLUE)
    assert blue > 2000, f"{blue} pixels of the charts' blue in a {width}x{height} screenshot"
