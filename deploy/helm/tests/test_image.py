"""The Dockerfile builds what the chart runs: three binaries, one uid."""

from __future__ import annotations

import re

import rendering
from conftest import SERVICE_PORTS, pod_spec

DOCKERFILE = rendering.REPO_ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def test_multi_stage_build_of_the_three_binaries():
    froms = [args for word, args in instructions() if word == "FROM"]
    assert froms == ["rust:1-bookworm AS build", "debian:bookworm-slim"]
    runs = " ".join(args for word, args in instructions() if word == "RUN")
    packages = " ".join(f"-p meshflow-{c}" for c in ("producer", "consumer", "exporter"))
    assert f"cargo build --release --locked {packages}" in runs
    for dev in ("cmake", "libssl-dev", "zlib1g-dev"):
        assert dev in runs
    copies = [args for word, args in instructions() if word == "COPY" and "--from=build" in args]
    assert copies == ["--from=build /out/ /usr/local/bin/"]


def test_image_user_matches_the_chart(default):
    (user,) = [args for word, args in instructions() if word == "USER"]
    uid, gid = (int(x) for x in user.split(":"))
    for component in SERVICE_PORTS:
        spec = pod_spec(default.get("Deployment", f"meshflow-{component}"))
        assert spec["securityContext"]["runAsUser"] == uid
        assert spec["securityContext"]["runAsGroup"] == gid
        (c,) = spec["containers"]
        assert c["command"][0] == f"/usr/local/bin/meshflow-{component}"


def test_image_exposes_the_contract_ports():
    (exposed,) = [args for word, args in instructions() if word == "EXPOSE"]
    assert sorted(int(p) for p in exposed.split()) == sorted(SERVICE_PORTS.values())
