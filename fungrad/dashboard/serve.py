"""Serve the dashboard on localhost while runs train (``http.server``, no dependencies).

``/`` is the page, made to poll; ``/data.json`` is the runs' config and metrics, read
from their directories at every request, so the charts follow the runs as they log.
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fungrad.dashboard.render import page_data, render_html
from fungrad.dashboard.runs import load_runs

__all__ = ["DATA_PATH", "make_server", "serve"]

DATA_PATH = "/data.json"


def make_server(run_dirs: Sequence[str | os.PathLike], host: str = "127.0.0.1", port: int = 6060,
                interval_s: float = 5.0) -> ThreadingHTTPServer:
    """An HTTP server for the dashboard of ``run_dirs`` (not yet serving: call its
    ``serve_forever``); ``port=0`` picks a free port (``server.server_address`` tells which).
    The page refreshes its charts every ``interval_s`` seconds."""
    runs = load_runs(run_dirs)  # a missing directory fails now, not at the first request
    page = render_html(runs, poll=DATA_PATH.lstrip("/"), interval_s=interval_s).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = self.path.split("?", 1)[0]
            if route in ("/", "/index.html"):
                self._send(page, "text/html; charset=utf-8")
            elif route == DATA_PATH:
                try:
                    data = json.dumps(page_data(load_runs(run_dirs)), allow_nan=False).encode()
                except (OSError, ValueError) as e:  # a run directory removed or a config mid-write
                    self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, explain=str(e))
                else:
                    self._send(data, "application/json")
            else:
                self.send_error(HTTPStatus.NOT_FOUND,
                                explain=f"the page is / and its data {DATA_PATH}")

        def _send(self, body: bytes, content_type: str) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:
            pass  # a poll every few seconds would fill the terminal

    return ThreadingHTTPServer((host, port), Handler)


def serve(run_dirs: Sequence[str | os.PathLike], host: str = "127.0.0.1", port: int = 6060,
          interval_s: float = 5.0) -> None:
    """Serve the dashboard of ``run_dirs`` at ``http://host:port/`` until interrupted."""
    with make_server(run_dirs, host, port, interval_s) as server:
        print(f"fungrad dashboard at http://{host}:{server.server_address[1]}/ (Ctrl-C stops it)",
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
