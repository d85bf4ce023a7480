#!/usr/bin/env python3
"""A registry token server for tests (Docker token auth, on loopback only).

GET /token?service=S&scope=repository:NAME:ACTIONS issues a JWT (RS256,
signed with `openssl dgst`, the certificate in the x5c header) that
docker-registry's `auth: token:` accepts when its rootcertbundle holds CERT.
Basic credentials listed with --user are granted every action asked for;
anonymous requests get "pull" on repositories under public/ and nothing
else; wrong credentials get 401. Every request is appended to --log.

    tokenserver.py --cert C --key K --issuer I --service S --user U:P \
        --port-file F --log L
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(key, data):
    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, f.name],
                              check=True, capture_output=True).stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--service", required=True)
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    a = p.parse_args()
    users = dict(u.split(":", 1) for u in a.user)
    with open(a.cert) as f:
        pem = "".join(l for l in f if not l.startswith("-----"))
    der = base64.b64decode(pem)

    class H(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            u = urlparse(self.path)
            q = parse_qs(u.query)
            user = None
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                name, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
                if users.get(name) != pw:
                    with open(a.log, "a") as f:
                        f.write("denied %s\n" % name)
                    self.send_response(401)
                    self.end_headers()
                    return
                user = name
            access = []
            for scope in q.get("scope", []):
                parts = scope.split(":")
                if len(parts) != 3 or parts[0] != "repository":
                    continue
                wanted = parts[2].split(",")
                if user:
                    granted = wanted
                elif parts[1].startswith("public/"):
                    granted = [x for x in wanted if x == "pull"]
                else:
                    granted = []
                access.append({"type": "repository", "name": parts[1], "actions": granted})
            with open(a.log, "a") as f:
                f.write("token user=%s scope=%s service=%s\n" %
                        (user or "-", ",".join(q.get("scope", [])), ",".join(q.get("service", []))))
            now = int(time.time())
            header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
            claims = {"iss": a.issuer, "sub": user or "", "aud": a.service, "exp": now + 600,
                      "nbf": now - 60, "iat": now, "jti": os.urandom(8).hex(), "access": access}
            signing_input = (b64url(json.dumps(header).encode()) + "." +
                             b64url(json.dumps(claims).encode())).encode()
            token = signing_input.decode() + "." + b64url(sign(a.key, signing_input))
            body = json.dumps({"token": token, "expires_in": 600}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
