"""The official Java client (kafka-clients 3.9.x) against the broker, through
tests/java/RoundTrip.java (compiled by scripts/test-all.sh)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LIBS = REPO / ".cache" / "java-libs"
BUILD = REPO / "tests" / "java" / "build"
JARS = ["kafka-clients", "slf4j-api", "lz4-java", "snappy-java", "zstd-jni"]
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 3000


def _check_prereqs():
    missing = [j for j in JARS if not (LIBS / f"{j}.jar").is_file()]
    assert not missing, (f"Java client jars missing from {LIBS}: {missing}. "
                         "Run ./scripts/test-all.sh (it downloads and unpacks them).")
    assert (BUILD / "RoundTrip.class").is_file(), (
        f"{BUILD}/RoundTrip.class missing: compile tests/java/RoundTrip.java "
        "(./scripts/test-all.sh does it)")
    java = shutil.which("java")
    assert java, "java not found on PATH"
    return java


@pytest.mark.timeout(300)
def test_java_client_roundtrip(broker):
    java = _check_prereqs()
    cp = os.pathsep.join([str(BUILD)] + [str(LIBS / f"{j}.jar") for j in JARS])
    cmd = [java, "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", cp,
           "RoundTrip", broker.bootstrap, str(N), *CODECS]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=270)
    out = res.stdout
    assert res.returncode == 0, (f"RoundTrip exited {res.returncode}\nstdout:\n{out[-4000:]}\n"
                                 f"stderr:\n{res.stderr[-6000:]}")
    ok_lines = [line for line in out.splitlines() if line.startswith("OK ")]
    assert ok_lines == [f"OK {c} {N}" for c in CODECS] + [f"OK {N * len(CODECS)}"], out
    assert broker.is_running()


@pytest.mark.timeout(180)
def test_java_client_transactions(broker):
    """tests/java/TxnRoundTrip.java: one committed transaction of 1,000 records and one
    aborted of 500; read_committed reads exactly the 1,000, read_uncommitted all 1,500."""
    java = _check_prereqs()
    assert (BUILD / "TxnRoundTrip.class").is_file(), (
        f"{BUILD}/TxnRoundTrip.class missing: compile tests/java/TxnRoundTrip.java "
        "(./scripts/test-all.sh does it)")
    cp = os.pathsep.join([str(BUILD)] + [str(LIBS / f"{j}.jar") for j in JARS])
    cmd = [java, "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", cp,
           "TxnRoundTrip", broker.bootstrap, "1000", "500"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=170)
    out = res.stdout
    assert res.returncode == 0, (f"TxnRoundTrip exited {res.returncode}\nstdout:\n{out[-4000:]}\n"
                                 f"stderr:\n{res.stderr[-6000:]}")
    ok_lines = [line for line in out.splitlines() if line.startswith("OK ")]
    assert ok_lines == ["OK 1000"], out
    assert broker.is_running()
