"""The downloader against a real HTTP server on 127.0.0.1 serving files the test makes."""

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from vitlens.data import DataError
from vitlens.data.download import Manifest, RemoteFile, download


class Server:
    def __init__(self, files: dict[str, bytes]):
        self.files, self.failures, self.requests = files, {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                outer.requests.append(name)
                if outer.failures.get(name, 0) > 0:
                    outer.failures[name] -= 1
                    self.send_error(503)
                    return
                body = outer.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server():
    files = {"a.bin": b"alpha" * 1000, "b.bin": b"beta" * 333}
    s = Server(files)
    yield s
    s.close()


def manifest_for(files: dict[str, bytes]) -> Manifest:
    return Manifest("http://unused.invalid/", tuple(
        RemoteFile(name, len(body), hashlib.sha256(body).hexdigest()) for name, body in files.items()))


def test_download_verifies_and_skips_present_files(server, tmp_path):
    manifest = manifest_for(server.files)
    paths = download("test", tmp_path, base_url=server.url, manifest=manifest, progress=False, backoff=0)
    assert [p.read_bytes() for p in paths] == list(server.files.values())
    server.requests.clear()
    download("test", tmp_path, base_url=server.url, manifest=manifest, progress=False, backoff=0)
    assert server.requests == []  # already there with the right sha256


def test_download_retries_after_server_errors(server, tmp_path):
    server.failures["a.bin"] = 2
    download("test", tmp_path, base_url=server.url, manifest=manifest_for(server.files), progress=False, backoff=0)
    assert server.requests.count("a.bin") == 3
    assert (tmp_path / "a.bin").read_bytes() == server.files["a.bin"]


def test_bad_checksum_leaves_nothing_behind(server, tmp_path):
    manifest = manifest_for(server.files)
    wrong = Manifest(manifest.base_url, (RemoteFile("a.bin", len(server.files["a.bin"]), "0" * 64),))
    with pytest.raises(DataError, match=r"after 2 tries: .*sha256"):
        download("test", tmp_path, base_url=server.url, manifest=wrong, retries=2, progress=False, backoff=0)
    assert list(Path(tmp_path).iterdir()) == []


def test_wrong_size_and_missing_file(server, tmp_path):
    short = Manifest("", (RemoteFile("b.bin", 10, "0" * 64),))
    with pytest.raises(DataError, match="more than the expected 10 bytes"):
        download("test", tmp_path, base_url=server.url, manifest=short, retries=1, progress=False)
    missing = Manifest("", (RemoteFile("c.bin", 3, "0" * 64),))
    with pytest.raises(DataError, match="404"):
        download("test", tmp_path, base_url=server.url, manifest=missing, retries=1, progress=False)
    assert list(Path(tmp_path).iterdir()) == []


def test_unknown_name():
    with pytest.raises(DataError, match="downloadable are mnist, fashion-mnist, cifar10"):
        download("imagenet", "/tmp/x")
