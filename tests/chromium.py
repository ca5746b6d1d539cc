"""Headless Chromium driven over the DevTools protocol on a pipe, with the standard library.

`load(url)` opens a page in a fresh headless Chromium and returns what a test needs to judge
it: PNG screenshots of the whole page (as on screen and as printed), every console message,
uncaught exception and log entry (where Chromium reports a resource it could not load), and
every request the page made. The DevTools protocol rather than `--enable-logging=stderr`:
Chromium 156 logs `console.log` and `console.error` alike there (`INFO:CONSOLE`) and does not
log a resource that failed to load at all. `png_pixels` decodes a screenshot (zlib and the
PNG filters) so a test can tell a blank page from a drawn one.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",  # tests run as root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-pipe",
)


def find_chromium() -> str | None:
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@dataclass
class PageLoad:
    screenshot: bytes  # PNG, the whole page as on screen
    print_screenshot: bytes  # PNG, the whole page under `@media print`
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    exceptions: list[str] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)  # (level, text)
    requests: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """Console errors and assertions, uncaught exceptions and error log entries."""
        return (
            [text for kind, text in self.console if kind in ("error", "assert")]
            + self.exceptions
            + [text for level, text in self.log if level == "error"]
        )


class DevTools:
    """One Chromium process and its DevTools pipe (JSON messages ending in a NUL byte)."""

    def __init__(self, chromium: str, profile: str) -> None:
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()
        # Chromium reads fd 3 and writes fd 4; bash moves our ends there (from fds of 10
        # and more, which POSIX sh need not handle, so that moving one cannot overwrite
        # the other).
        child_in = fcntl.fcntl(to_browser_read, fcntl.F_DUPFD, 10)
        child_out = fcntl.fcntl(from_browser_write, fcntl.F_DUPFD, 10)
        for fd in (to_browser_read, from_browser_write):
            os.close(fd)
        self.process = subprocess.Popen(
            [
                "bash",
                "-c",
                f'exec "$0" "$@" 3<&{child_in} 4>&{child_out} {child_in}<&- {child_out}>&-',
                chromium,
                *FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            pass_fds=(child_in, child_out),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_browser], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("Chromium's DevTools pipe said nothing in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=30
    ) -> dict:
        """Call `method`; events that arrive meanwhile are kept in `events`."""
        self._next_id += 1
        request = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        os.write(self._to_browser, json.dumps(request).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        for message in self.events:
            if message.get("method") == event:
                return message
        while True:
            message = self._read_message(deadline)
            self.events.append(message)
            if message.get("method") == event:
                return message

    def close(self) -> None:
        with contextlib.suppress(TimeoutError, ConnectionError, OSError, RuntimeError):
            self.send("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def _whole_page(tools: DevTools, session: str, width: int, scale: float) -> bytes:
    metrics = tools.send("Page.getLayoutMetrics", session=session)
    height = int(metrics["cssContentSize"]["height"]) + 1
    shot = tools.send(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": scale},
        },
        session=session,
    )
    return base64.b64decode(shot["data"])


def load(
    url: str, chromium: str, width: int = 1280, height: int = 900, scale: float = 1
) -> PageLoad:
    """Load `url`, wait for its load event and a moment more, and take it all in; the
    screenshots are scaled by `scale` (a quarter decodes 16 times faster)."""
    with tempfile.TemporaryDirectory(prefix="report-chromium-") as profile:
        tools = DevTools(chromium, profile)
        try:
            [page] = [
                t for t in tools.send("Target.getTargets")["targetInfos"] if t["type"] == "page"
            ]
            session = tools.send(
                "Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}
            )["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                tools.send(f"{domain}.enable", session=session)
            tools.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            tools.events.clear()
            tools.send("Page.navigate", {"url": url}, session=session)
            tools.wait_for("Page.loadEventFired")
            time.sleep(0.3)  # late console messages and requests
            screen = _whole_page(tools, session, width, scale)
            tools.send("Emulation.setEmulatedMedia", {"media": "print"}, session=session)
            printed = _whole_page(tools, session, width, scale)
            events = list(tools.events)
        finally:
            tools.close()
    result = PageLoad(screen, printed)
    for event in events:
        params = event.get("params", {})
        match event.get("method"):
            case "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                result.console.append((params["type"], text))
            case "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                result.exceptions.append(
                    details.get("exception", {}).get("description", details["text"])
                )
            case "Log.entryAdded":
                entry = params["entry"]
                result.log.append((entry["level"], f"{entry['text']} {entry.get('url', '')}"))
            case "Network.requestWillBeSent":
                result.requests.append(params["request"]["url"])
    return result


def png_pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, pixels as bytes) of an 8-bit, non-interlaced RGB or RGBA PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat, header = 8, b"", None
    while position < len(png):
        (length,) = struct.unpack(">I", png[position : position + 4])
        kind = png[position + 4 : position + 8]
        data = png[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        position += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and not interlace, header
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    previous = bytearray(stride)
    pixels = []
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, row, previous, bpp)
        pixels.extend(bytes(row[i : i + bpp]) for i in range(0, stride, bpp))
        previous = row
    return width, height, pixels


def _unfilter(kind: int, row: bytearray, previous: bytearray, bpp: int) -> None:
    if kind == 0:
        return
    for i in range(len(row)):
        left = row[i - bpp] if i >= bpp else 0
        up = previous[i]
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 2:
            row[i] = (row[i] + up) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up) // 2) & 0xFF
        else:
            upper_left = previous[i - bpp] if i >= bpp else 0
            estimate = left + up - upper_left
            distances = (abs(estimate - left), abs(estimate - up), abs(estimate - upper_left))
            nearest = (left, up, upper_left)[distances.index(min(distances))]
            row[i] = (row[i] + nearest) & 0xFF


def drawn_share(png: bytes) -> tuple[int, float]:
    """(distinct colours, share of pixels that are not the top-left pixel's colour)."""
    _, _, pixels = png_pixels(png)
    background = pixels[0]
    return len(set(pixels)), sum(p != background for p in pixels) / len(pixels)
