#!/usr/bin/env python3
"""Pushes one image of an OCI layout to a plain-http registry byte for byte
(skopeo would compress uncompressed layers on the way).

    regpush.py OCIDIR REF HOST:PORT REPO TAG
"""
import json
import sys
import urllib.request


def main():
    oci, ref, host, repo, tag = sys.argv[1:]
    base = "http://%s/v2/%s" % (host, repo)
    index = json.load(open(oci + "/index.json"))
    desc = next(d for d in index["manifests"]
                if d.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref)

    def blob(digest):
        return open("%s/blobs/sha256/%s" % (oci, digest.split(":", 1)[1]), "rb").read()

    manifest = blob(desc["digest"])
    m = json.loads(manifest)
    for d in [m["config"]] + m["layers"]:
        r = urllib.request.urlopen(urllib.request.Request(base + "/blobs/uploads/", method="POST"))
        loc = r.headers["Location"]
        if not loc.startswith("http"):
            loc = "http://" + host + loc
        loc += ("&" if "?" in loc else "?") + "digest=" + d["digest"]
        urllib.request.urlopen(urllib.request.Request(
            loc, data=blob(d["digest"]), method="PUT",
            headers={"Content-Type": "application/octet-stream"}))
    urllib.request.urlopen(urllib.request.Request(
        base + "/manifests/" + tag, data=manifest, method="PUT",
        headers={"Content-Type": desc["mediaType"]}))


if __name__ == "__main__":
    sys.exit(main())
