#!/usr/bin/env python3
"""Sum meson test logs, counting TAP subtests.

usage: tap-summary.py [--fail WHAT]... [--pass WHAT]... [LABEL=]PATH...

PATH is a meson testlog*.json (one JSON object per line, as written by
`meson test`) or a meson-logs directory (every testlog*.json in it). LABEL
names the run in messages (default: the file name). --fail adds one failure
that happened outside meson (e.g. "build"), --pass one success (e.g. a fuzz
target's run).

Counting, per test:
  * TAP output (a "1..N" plan line, or "ok N"/"not ok N" lines, in stdout): every "ok" line is a pass,
    "not ok" a failure; a "# SKIP" directive (any case) makes either a skip,
    "not ok ... # TODO" a skip. A plan "1..0 # SKIP why" is one skip. A test
    meson calls FAIL/ERROR/TIMEOUT with no "not ok" line is one more failure
    (crash, bail out, plan mismatch, timeout).
  * otherwise: OK/EXPECTEDFAIL one pass, SKIP (exit 77) one skip whose reason
    is the last line of stderr (or stdout), anything else one failure.

Prints the failures, then the skips with their reasons, then as the very last
line "N passed, N failed, N skipped". Exit status 0 iff nothing failed.
With LBX_REQUIRE_ALL=1 skips are listed loudly (they still count as skips).
"""

import glob
import json
import os
import re
import sys

TAP_LINE = re.compile(r"^(not )?ok\b\s*(\d+)?\s*-?\s*([^#]*?)\s*(?:#\s*(.*))?$")
PLAN = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
TAP_START = re.compile(r"^(not )?ok(\s+\d+|\s+-|\s*$)")
FAILED_RESULTS = {"FAIL", "ERROR", "TIMEOUT", "UNEXPECTEDPASS", "INTERRUPT"}


def last_line(*texts):
    for t in texts:
        lines = [l.strip() for l in (t or "").splitlines()
                 if l.strip() and not l.startswith("(test program exited")]
        if lines:
            return lines[-1]
    return "(no reason given)"


def tail(text, n=5):
    lines = [l for l in (text or "").splitlines()
             if l.strip() and not l.startswith("(test program exited")]
    return lines[-n:]


class Summary:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures = []
        self.skips = []

    def fail(self, what, detail=()):
        self.failed += 1
        self.failures.append((what, list(detail)))

    def skip(self, what, reason):
        self.skipped += 1
        self.skips.append((what, reason))

    def test(self, label, t):
        name = f"[{label}] {t.get('name', '?')}"
        result = t.get("result", "?")
        out, err = t.get("stdout") or "", t.get("stderr") or ""
        lines = out.splitlines()
        plan = [m for m in (PLAN.match(l.strip()) for l in lines) if m]
        if plan or any(TAP_START.match(l) for l in lines):
            self.tap(name, result, lines, plan[0] if plan else None, out, err, t.get("returncode"))
            return
        if result in ("OK", "EXPECTEDFAIL"):
            self.passed += 1
        elif result == "SKIP":
            self.skip(name, last_line(err, out))
        else:
            self.fail(f"{name} ({result}, exit {t.get('returncode')})", tail(err or out))

    def tap(self, name, result, lines, plan, out, err, rc=None):
        if plan and plan.group(1) == "0" and not any(TAP_LINE.match(l) for l in lines):
            if result in FAILED_RESULTS:
                self.fail(f"{name} ({result})", tail(err or out))
            else:
                why = re.sub(r"(?i)^skip\w*\s*", "", plan.group(2) or "")
                self.skip(name, why or last_line(err, out))
            return
        not_ok = 0
        bail = None
        for l in lines:
            if l.startswith("Bail out!"):
                bail = l
            m = TAP_LINE.match(l.rstrip())
            if not m:
                continue
            directive = (m.group(4) or "").strip()
            desc = m.group(3) or f"#{m.group(2)}"
            word = directive.split(None, 1)[0].lower() if directive else ""
            reason = directive.split(None, 1)[1] if " " in directive else directive
            if word.startswith("skip"):
                self.skip(f"{name}: {desc}", reason or "(no reason given)")
            elif m.group(1) and word == "todo":
                self.skip(f"{name}: {desc}", "TODO " + reason)
            elif m.group(1):
                not_ok += 1
                self.fail(f"{name}: {desc}", self.diagnostics(lines, l))
            else:
                self.passed += 1
        if result in FAILED_RESULTS and not_ok == 0:
            why = bail or f"{result}, exit {rc}, no failing subtest"
            self.fail(f"{name} ({why})", tail(err or out))

    @staticmethod
    def diagnostics(lines, at):
        """The '#' lines right after a 'not ok' line (bats, tap.h put details there)."""
        i = lines.index(at) + 1
        diag = []
        while i < len(lines) and lines[i].startswith("#") and len(diag) < 8:
            diag.append(lines[i])
            i += 1
        return diag


def inputs(args):
    for a in args:
        label, sep, path = a.partition("=")
        if not sep:
            label, path = None, a
        files = sorted(glob.glob(os.path.join(path, "testlog*.json"))) if os.path.isdir(path) else [path]
        for f in files:
            yield label or os.path.basename(f)[:-len(".json")], f


def main(argv):
    s = Summary()
    paths = []
    it = iter(argv)
    for a in it:
        if a == "--fail":
            s.fail(next(it, "unknown"))
        elif a == "--pass":
            next(it, None)
            s.passed += 1
        else:
            paths.append(a)
    seen = 0
    for label, f in inputs(paths):
        try:
            fh = open(f, encoding="utf-8", errors="replace")
        except OSError as e:
            s.fail(f"[{label}] no test log: {e}")
            continue
        with fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    t = json.loads(line)
                except ValueError:
                    s.fail(f"[{label}] unreadable line in {f}")
                    continue
                seen += 1
                s.test(label, t)
    if seen == 0 and not s.failures:
        s.fail("no test results found")

    if s.failures:
        print(f"FAILED ({len(s.failures)}):")
        for what, detail in s.failures:
            print(f"  FAIL {what}")
            for d in detail:
                print(f"       {d}")
    if s.skips:
        loud = os.environ.get("LBX_REQUIRE_ALL") == "1"
        if loud:
            print("!" * 72)
            print(f"!!! LBX_REQUIRE_ALL=1 but {len(s.skips)} test(s) were SKIPPED:")
        else:
            print(f"SKIPPED ({len(s.skips)}):")
        for what, reason in s.skips:
            print(f"  {'!!! ' if loud else ''}SKIP {what}: {reason}")
        if loud:
            print("!" * 72)
    print(f"{s.passed} passed, {s.failed} failed, {s.skipped} skipped")
    return 0 if s.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
