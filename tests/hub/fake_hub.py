"""A minimal Hugging Face Hub look-alike on 127.0.0.1 for end-to-end tests with the real client.

It serves what ``huggingface_hub`` requests for downloads (``HEAD``/``GET /{repo}/resolve/{rev}/{file}``
with ``X-Repo-Commit``, ``ETag``, ``Content-Length`` and ``Range``; ``/api/models/{repo}[/revision/{rev}]``)
and for uploads (``/api/repos/create``, ``/api/validate-yaml``, ``/preupload``, ``/commit``, ``/branch``).
Faults can be injected per file: a connection closed mid-body (``"truncate"``), a body shorter than the
advertised size (``"short"``), or served bytes rewritten by a hook (tampering).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


@dataclass
class FakeRepo:
    private: bool = False
    refs: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)


def _commit_sha(files: dict[str, bytes], parent: str | None) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update((parent or "").encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


class FakeHub:
    """State of the fake Hub plus its HTTP server (``start``/``stop``)."""

    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[tuple[str, str]] = []
        self.faults: dict[str, str] = {}  # filename -> "truncate" | "short"
        self.serve_hook: Callable[[str, bytes], bytes] | None = None  # (filename, content) -> served content
        self.file_gets: dict[str, int] = {}
        self.uploads: list[dict] = []
        self.validated_yaml: list[str] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    # ----- state -----
    def add_commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        repo = self.repos.setdefault(repo_id, FakeRepo())
        parent = repo.refs.get(branch)
        merged = {**(repo.commits[parent] if parent else {}), **files}
        sha = _commit_sha(merged, parent)
        repo.commits[sha] = merged
        repo.refs[branch] = sha
        return sha

    def resolve(self, repo_id: str, revision: str) -> str | None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return None
        if revision in repo.commits:
            return revision
        return repo.refs.get(revision)

    # ----- server -----
    def start(self) -> str:
        hub = self

        class Handler(_Handler):
            state = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.endpoint = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


class _Handler(BaseHTTPRequestHandler):
    state: FakeHub
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:  # silence the default stderr log
        return

    # ----- helpers -----
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    def _not_found(self, code: str, commit: str | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": code}
        if commit:
            headers["X-Repo-Commit"] = commit
        self._json(404, {"error": code}, headers)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    # ----- routes -----
    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        path = urlsplit(self.path).path
        self.state.requests.append((self.command, path))
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo_id = f"{parts[2]}/{parts[3]}"
            rest = parts[4:]
            if self.command == "GET" and (not rest or rest[0] == "revision"):
                return self._model_info(repo_id, rest[1] if len(rest) > 1 else "main")
            if self.command == "POST" and rest and rest[0] == "preupload":
                return self._preupload()
            if self.command == "POST" and rest and rest[0] == "commit":
                return self._commit(repo_id, rest[1] if len(rest) > 1 else "main")
            if self.command == "POST" and rest and rest[0] == "branch":
                return self._branch(repo_id, rest[1])
        if path == "/api/repos/create" and self.command == "POST":
            return self._create_repo()
        if path == "/api/validate-yaml" and self.command == "POST":
            self.state.validated_yaml.append(json.loads(self._body())["content"])
            return self._json(200, {"errors": [], "warnings": []})
        return self._json(404, {"error": f"no route for {self.command} {path}"})

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        if repo_id not in self.state.repos:
            return self._not_found("RepoNotFound")
        commit = self.state.resolve(repo_id, revision)
        if commit is None:
            return self._not_found("RevisionNotFound")
        files = self.state.repos[repo_id].commits[commit]
        if filename not in files:
            return self._not_found("EntryNotFound", commit)
        content = files[filename]
        if self.state.serve_hook is not None:
            content = self.state.serve_hook(filename, content)
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{hashlib.sha256(content).hexdigest()}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if self.command == "HEAD":
            return self._send(200, content, {**headers, "Content-Length": str(len(content))})
        self.state.file_gets[filename] = self.state.file_gets.get(filename, 0) + 1
        fault = self.state.faults.get(filename)
        start = 0
        range_header = self.headers.get("Range")
        if range_header and range_header.startswith("bytes="):
            start = int(range_header[len("bytes=") :].split("-")[0])
        body = content[start:]
        status = 206 if start else 200
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        if fault == "truncate":
            # Advertise the full body, send (at most) half of it, then drop the connection.
            self.send_response(status)
            for key, value in {**headers, "Content-Length": str(len(body))}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if not start else b"")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return None
        if fault == "short":
            body = body[: len(body) // 2]
        return self._send(status, body, headers)

    def _model_info(self, repo_id: str, revision: str) -> None:
        commit = self.state.resolve(repo_id, revision)
        if commit is None:
            return self._not_found("RepoNotFound" if repo_id not in self.state.repos else "RevisionNotFound")
        files = self.state.repos[repo_id].commits[commit]
        siblings = [{"rfilename": name, "size": len(data)} for name, data in sorted(files.items())]
        return self._json(200, {"id": repo_id, "modelId": repo_id, "sha": commit, "siblings": siblings})

    def _create_repo(self) -> None:
        payload = json.loads(self._body())
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in self.state.repos:
            return self._json(409, {"error": "You already created this model repo"})
        self.state.repos[repo_id] = FakeRepo(private=payload.get("visibility") == "private" or payload.get("private"))
        return self._json(200, {"url": f"{self.state.endpoint}/{repo_id}"})

    def _preupload(self) -> None:
        payload = json.loads(self._body())
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in payload["files"]]
        return self._json(200, {"files": files, "commitOid": None})

    def _branch(self, repo_id: str, branch: str) -> None:
        self._body()
        repo = self.state.repos[repo_id]
        if branch in repo.refs:
            return self._json(409, {"error": "Reference already exists"})
        if "main" in repo.refs:
            repo.refs[branch] = repo.refs["main"]
        else:
            repo.refs[branch] = self.state.add_commit(repo_id, {".gitattributes": b""}, branch)
        return self._json(200, {})

    def _commit(self, repo_id: str, revision: str) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        files = {}
        for line in lines:
            if line["key"] == "file":
                files[line["value"]["path"]] = base64.b64decode(line["value"]["content"])
            elif line["key"] != "header":
                return self._json(400, {"error": f"unsupported commit operation {line['key']}"})
        sha = self.state.add_commit(repo_id, files, branch=revision)
        self.state.uploads.append({"repo_id": repo_id, "revision": revision, "files": files, "commit": sha})
        return self._json(200, {"commitUrl": f"{self.state.endpoint}/{repo_id}/commit/{sha}", "commitOid": sha})
