#!/usr/bin/env bash
# The one test command: builds vltava, runs the Rust tests, then the integration
# suite (tests/integration) that drives the real binary with real Kafka clients
# (confluent-kafka/librdkafka, kafka-python, kcat, the Java kafka-clients).
#
# Idempotent and non-interactive (CI=true, no stdin, root on Debian is fine).
# Extra arguments are passed to pytest, e.g.  ./scripts/test-all.sh -k kcat -x
# VLTAVA_SKIP_CARGO=1 skips `cargo build`/`cargo test` (uses the existing binary).
# A skipped test fails the run (nothing may be left out silently) unless
# VLTAVA_ALLOW_SKIPS=1, e.g. on a machine without network namespaces; the
# summary counts the skips either way.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore PIP_NO_INPUT=1
LOGDIR="$ROOT/target/test-logs"
mkdir -p "$LOGDIR"

declare -a SUMMARY=()
step_start=0
note() { printf '\n==> %s\n' "$*"; }
begin() { note "$1"; step_start=$SECONDS; }
done_step() { SUMMARY+=("$(printf '%-28s %-6s %4ss' "$1" "$2" $((SECONDS - step_start)))"); }

print_summary() {
    local rc=$?
    echo
    echo "================ test-all summary ================"
    local s
    for s in "${SUMMARY[@]+"${SUMMARY[@]}"}"; do echo "  $s"; done
    if [[ $rc -eq 0 ]]; then echo "test-all: OK"; else echo "test-all: FAILED (exit $rc)"; fi
    if [[ -n "${TOTALS:-}" ]]; then echo "$TOTALS"; fi
}
trap print_summary EXIT

APT_UPDATED=0
apt_install() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    apt-get install -y -qq --no-install-recommends "$@"
}

# ---------------------------------------------------------------- system tools
begin "system packages"
command -v kcat >/dev/null 2>&1 || apt_install kcat
# strace: test_restart.py counts the broker's fsyncs (log.flush.on.acks.all).
command -v strace >/dev/null 2>&1 || apt_install strace
# ip: test_cluster.py cuts nodes off in network namespaces.
command -v ip >/dev/null 2>&1 || apt_install iproute2
# No cmake and no libcurl headers: the rdkafka crate builds the bundled
# librdkafka with its own configure script and make (see the build step).
command -v g++ >/dev/null 2>&1 || apt_install g++
command -v javac >/dev/null 2>&1 || apt_install default-jdk-headless
# openssl: test_tls.py makes its certificates with the openssl CLI.
command -v openssl >/dev/null 2>&1 || apt_install openssl
command -v python3 >/dev/null 2>&1 || apt_install python3
# chromium + chromedriver: the console's tests drive a real headless browser
# (Selenium; nothing is downloaded at test time).
{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } \
    || apt_install chromium chromium-driver
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || apt_install python3-venv
# postgresql: the Connect tests run the JDBC connectors against a real server (tests/integration/pg.py).
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || apt_install postgresql
done_step "system packages" ok

# ---------------------------------------------------------------- python venv
begin "python venv"
if ! .venv/bin/python -c 'import sys' >/dev/null 2>&1; then
    rm -rf .venv
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q -r tests/requirements.txt
done_step "python venv" ok

# ---------------------------------------------------------------- java client
begin "java client"
JAVA_LIBS=.cache/java-libs
JARS=(kafka-clients slf4j-api lz4-java snappy-java zstd-jni jackson-databind jackson-core jackson-annotations)
need_jars=0
for j in "${JARS[@]}"; do [[ -f "$JAVA_LIBS/$j.jar" ]] || need_jars=1; done
if [[ $need_jars -eq 1 ]]; then
    mkdir -p .cache/dl "$JAVA_LIBS"
    # The Apache Flink libraries wheel ships kafka-clients 3.9.1 and its codecs.
    if ! ls .cache/dl/shigawire_apache_flink_libraries-2.0.0.post1-*.whl >/dev/null 2>&1; then
        .venv/bin/python -m pip download -q --no-deps \
            'shigawire-apache-flink-libraries==2.0.0.post1' -d .cache/dl
    fi
    .venv/bin/python - "$JAVA_LIBS" "${JARS[@]}" <<'PY'
import glob, os, sys, zipfile
dest, jars = sys.argv[1], sys.argv[2:]
whl = sorted(glob.glob(".cache/dl/shigawire_apache_flink_libraries-2.0.0.post1-*.whl"))[-1]
with zipfile.ZipFile(whl) as z:
    for j in jars:
        data = z.read(f"pyflink/lib/{j}.jar")
        tmp = os.path.join(dest, f".{j}.jar.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(dest, f"{j}.jar"))
print("unpacked", ", ".join(jars), "from", os.path.basename(whl))
PY
fi
need_javac=0
for src in tests/java/*.java; do
    cls="tests/java/build/$(basename "$src" .java).class"
    if [[ ! -f "$cls" || "$src" -nt "$cls" ]]; then need_javac=1; fi
done
if [[ $need_javac -eq 1 ]]; then
    mkdir -p tests/java/build
    javac -nowarn -d tests/java/build -cp "$JAVA_LIBS/*" tests/java/*.java
fi
done_step "java client" ok

# ---------------------------------------------------------------- node client
# @platformatic/kafka (a KIP-848 consumer) for test_kip848.py; it needs Node.js
# >= 20.19.4 (Debian 12's nodejs is 18: a machine without a newer one fails here).
begin "node client"
command -v node >/dev/null 2>&1 || apt_install nodejs npm
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' || {
    echo "error: Node.js >= 20.19.4 is needed for @platformatic/kafka (found $(node --version))" >&2
    exit 1
}
if [[ ! -d tests/node/node_modules/@platformatic/kafka || tests/node/package-lock.json -nt tests/node/node_modules ]]; then
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
done_step "node client" ok

# ---------------------------------------------------------------- rust
RC=0
CARGO_PASSED=0
CARGO_FAILED=0
CARGO_IGNORED=0
if [[ "${VLTAVA_SKIP_CARGO:-0}" != "1" ]]; then
    begin "cargo build --release"
    # The README's first command must build on a fresh machine, which has no
    # cmake: a `cmake` that fails sits first on PATH for this build, so a
    # dependency that starts needing it breaks here, not on a user's machine.
    NO_CMAKE="$ROOT/target/no-cmake"
    mkdir -p "$NO_CMAKE"
    printf '#!/bin/sh\necho "cmake must not be needed to build vltava" >&2\nexit 1\n' >"$NO_CMAKE/cmake"
    chmod +x "$NO_CMAKE/cmake"
    # --examples: the streams tests run the vltava-streams example applications
    PATH="$NO_CMAKE:$PATH" cargo build --release --workspace --bins --examples
    done_step "cargo build --release" ok

    begin "cargo test --release"
    # Rust tests that need a broker start this build's binary; --no-fail-fast:
    # one failing test binary must not hide the results of the others
    export VLTAVA_BIN="$ROOT/target/release/vltava"
    if cargo test --release --workspace --no-fail-fast 2>&1 | tee "$LOGDIR/cargo-test.log"; then
        done_step "cargo test --release" ok
    else
        RC=1
        done_step "cargo test --release" FAILED
    fi
    read -r CARGO_PASSED CARGO_FAILED CARGO_IGNORED < <(
        sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1 \2 \3/p' \
            "$LOGDIR/cargo-test.log" | awk '{p+=$1; f+=$2; i+=$3} END {print p+0, f+0, i+0}')
    if [[ $CARGO_IGNORED -gt 0 && "${VLTAVA_ALLOW_SKIPS:-0}" != "1" ]]; then
        echo "error: $CARGO_IGNORED Rust test(s) ignored; set VLTAVA_ALLOW_SKIPS=1 to allow skips" >&2
        RC=1
    fi
fi

# ---------------------------------------------------------------- integration
begin "pytest tests/integration"
export VLTAVA_BIN="$ROOT/target/release/vltava"
if [[ ! -x "$VLTAVA_BIN" ]]; then
    echo "error: $VLTAVA_BIN was not built" >&2
    exit 1
fi
# The test files run in parallel, each whole on one of $VLTAVA_TEST_WORKERS pytest-xdist
# workers (default 4; most tests wait on brokers and the network, not the CPU), the
# longest first (tests/integration/conftest.py orders them). `-n 0` among the
# arguments runs serially, e.g. to debug:  ./scripts/test-all.sh -n 0 -k torn
WORKERS="${VLTAVA_TEST_WORKERS:-4}"
set +e
.venv/bin/pytest -q tests/integration -n "$WORKERS" --dist loadfile --no-loadscope-reorder \
    --junitxml="$LOGDIR/pytest.xml" "$@"
PYTEST_RC=$?
set -e
if [[ $PYTEST_RC -eq 0 ]]; then
    done_step "pytest tests/integration" ok
else
    RC=1
    done_step "pytest tests/integration" "FAILED"
fi

read -r PY_PASSED PY_FAILED PY_SKIPPED < <(.venv/bin/python - "$LOGDIR/pytest.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1, 0)
    raise SystemExit
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f, sk)
PY
)
if [[ $PY_SKIPPED -gt 0 && "${VLTAVA_ALLOW_SKIPS:-0}" != "1" ]]; then
    echo "error: $PY_SKIPPED integration test(s) skipped; set VLTAVA_ALLOW_SKIPS=1 to allow skips" >&2
    RC=1
fi
if [[ $((PY_PASSED + PY_FAILED)) -eq 0 ]]; then
    echo "error: pytest ran no test" >&2
    RC=1
fi
TOTAL_PASSED=$((CARGO_PASSED + PY_PASSED))
TOTAL_FAILED=$((CARGO_FAILED + PY_FAILED))
SUMMARY+=("cargo tests: $CARGO_PASSED passed, $CARGO_FAILED failed, $CARGO_IGNORED ignored")
SUMMARY+=("integration: $PY_PASSED passed, $PY_FAILED failed, $PY_SKIPPED skipped")
TOTALS="total: $TOTAL_PASSED passed, $TOTAL_FAILED failed, $((PY_SKIPPED + CARGO_IGNORED)) skipped"
exit $RC
