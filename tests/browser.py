"""Open a page in real headless Chromium (Debian's package) over the DevTools protocol: collect
errors, inspect the images, take a full-page screenshot."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import urllib.request
from itertools import count
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1200,900",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def inspect_page(url: str, screenshot: Path) -> dict[str, Any]:
    binary = chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory(prefix="runner-chromium-") as profile:
        proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            port = None
            for line in proc.stderr:
                if "DevTools listening on ws://" in line:
                    port = int(line.split("ws://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
                    break
            assert port is not None, "Chromium did not start its DevTools endpoint"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                pages = [t for t in json.loads(response.read()) if t["type"] == "page"]
            return asyncio.run(_drive(pages[0]["webSocketDebuggerUrl"], url, screenshot))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def _drive(ws_url: str, url: str, screenshot: Path) -> dict[str, Any]:
    import aiohttp

    ids = count(1)
    errors: list[str] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, max_msg_size=0) as ws:
        loaded = asyncio.Event()
        replies: dict[int, asyncio.Future[dict[str, Any]]] = {}

        async def listen() -> None:
            async for message in ws:
                data = json.loads(message.data)
                if "id" in data and data["id"] in replies:
                    replies.pop(data["id"]).set_result(data)
                elif data.get("method") == "Page.loadEventFired":
                    loaded.set()
                elif data.get("method") == "Runtime.exceptionThrown":
                    errors.append(str(data["params"]["exceptionDetails"].get("text")))
                elif data.get("method") == "Runtime.consoleAPICalled" and data["params"]["type"] == "error":
                    errors.append(json.dumps(data["params"]["args"]))
                elif data.get("method") == "Log.entryAdded" and data["params"]["entry"]["level"] == "error":
                    errors.append(data["params"]["entry"]["text"])

        async def call(method: str, **params: Any) -> dict[str, Any]:
            call_id = next(ids)
            replies[call_id] = asyncio.get_running_loop().create_future()
            await ws.send_json({"id": call_id, "method": method, "params": params})
            reply = await asyncio.wait_for(replies[call_id], 30)
            assert "error" not in reply, reply
            result: dict[str, Any] = reply["result"]
            return result

        listener = asyncio.create_task(listen())
        for domain in ("Page", "Runtime", "Log"):
            await call(f"{domain}.enable")
        await call("Page.navigate", url=url)
        await asyncio.wait_for(loaded.wait(), 30)
        images = await call(
            "Runtime.evaluate",
            returnByValue=True,
            expression=(
                "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, "
                "width: i.naturalWidth, height: i.naturalHeight}))"
            ),
        )
        shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        listener.cancel()
    return {"errors": errors, "images": images["result"]["value"]}
