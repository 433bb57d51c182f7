"""A Hugging Face Hub stand-in on 127.0.0.1 for the tests: it serves files the test makes at
the Hub's download URLs (`/<owner>/<name>/resolve/<revision>/<file>`), with the headers
huggingface_hub reads (commit, the LFS file's sha256 as its ETag, size), and counts the
downloads. Point `HF_ENDPOINT` at `hub.url`."""

import hashlib
import http.server
import threading


class FakeHub:
    def __init__(self):
        self.files = {}  # "owner/name/file" -> (content, reported sha256, commit)
        self.downloads = []  # the paths of every GET
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self, body):
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) < 5 or parts[2] != "resolve":
                    self.send_error(404)
                    return
                key = "/".join(parts[:2] + parts[4:])
                if key not in hub.files:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.end_headers()
                    return
                content, digest, commit = hub.files[key]
                self.send_response(200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("X-Linked-Etag", f'"{digest}"')
                self.send_header("ETag", f'"{digest}"')
                self.send_header("X-Linked-Size", str(len(content)))
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                if body:
                    hub.downloads.append(key)
                    self.wfile.write(content)

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def put(self, repo, filename, content, digest=None):
        """Serve `content`; `digest` is what the Hub reports (default: its true sha256)."""
        digest = digest or hashlib.sha256(content).hexdigest()
        commit = hashlib.sha1(repo.encode() + content).hexdigest()
        self.files[f"{repo}/{filename}"] = (content, digest, commit)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
