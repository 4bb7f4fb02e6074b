"""Run checkov over the rendered manifests and the Dockerfile, and hold it
to checkov-skips.yaml.

    python deploy/helm/tests/run_checkov.py RENDERED_DIR

RENDERED_DIR is what rendering.py wrote (one directory per scenario). The
run fails on any failed check that checkov-skips.yaml does not accept for
that resource and scenario (the Dockerfile counts as scenario "Dockerfile"),
and on any accepted finding that no longer occurs, so the skip list stays
the exact list of open findings.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

SKIPS = Path(__file__).resolve().parent / "checkov-skips.yaml"
DOCKERFILE = Path(__file__).resolve().parents[3] / "Dockerfile"


def run_checkov(target: list[str], framework: str) -> dict:
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
    cmd = [
        sys.executable, "-m", "checkov.main",
        *target,
        "--framework", framework,
        "--skip-download",
        "--quiet",
        "--output", "json",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1) or not done.stdout.strip():
        sys.stderr.write(done.stderr)
        raise SystemExit(f"checkov did not run (exit {done.returncode})")
    report = json.loads(done.stdout)
    # One framework gives one report; several give a list of them.
    return report[0] if isinstance(report, list) else report


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    reports = [
        run_checkov(["--directory", argv[1]], "kubernetes"),
        run_checkov(["--file", str(DOCKERFILE)], "dockerfile"),
    ]
    skips = yaml.safe_load(SKIPS.read_text())
    accepted = {
        (s["check"], resource, scenario)
        for s in skips
        for resource in s["resources"]
        for scenario in s["scenarios"]
    }
    found = set()
    unexplained = []
    failures = [f for r in reports for f in r["results"]["failed_checks"]]
    for failure in failures:
        path = Path(failure["file_path"])
        scenario = "Dockerfile" if path.name == "Dockerfile" else path.parts[1]
        key = (failure["check_id"], failure["resource"], scenario)
        found.add(key)
        if key not in accepted:
            unexplained.append(key)
    stale = sorted(accepted - found)
    summary = {k: sum(r["summary"][k] for r in reports) for k in ("passed", "failed", "parsing_errors")}
    print(
        f"checkov {reports[0]['summary']['checkov_version']} (manifests and Dockerfile): "
        f"{summary['passed']} passed, {summary['failed']} failed "
        f"({len(found) - len(unexplained)} accepted in {SKIPS.name}), "
        f"{summary['parsing_errors']} parsing errors"
    )
    for check, resource, scenario in sorted(unexplained):
        print(f"  NOT ACCEPTED: {check} {resource} [{scenario}]")
    for check, resource, scenario in stale:
        print(f"  STALE SKIP: {check} {resource} [{scenario}] no longer fails: remove it")
    ok = not unexplained and not stale and summary["parsing_errors"] == 0
    ok = ok and all(r["summary"]["passed"] > 0 for r in reports)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
