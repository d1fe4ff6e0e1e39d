#!/usr/bin/env bash
# bench/run.sh — horust against its peers, side by side, in one run.
#
#   sudo bench/run.sh            full run (~20 min): writes docs/benchmarks.md (the generated summary),
#                                docs/benchmark-tables.md and docs/benchmarks.png
#   sudo bench/run.sh --smoke    quick check of the whole matrix (< 3 min): writes only to the results directory
#
# It installs the peers from Debian packages (tini dumb-init s6 runit supervisor), builds horust
# from this checkout and the measuring tool (bench/tool, its own Go module), runs every scenario
# for every supervisor that can express it REPS times, then bench/health when it exists, then the
# Go micro-benchmarks, and writes the report. Knobs (environment) are listed in bench/README.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

SMOKE=0
for a in "$@"; do
	case $a in
	--smoke) SMOKE=1 ;;
	-h | --help)
		sed -n '2,10p' "$0"
		exit 0
		;;
	*)
		echo "unknown argument: $a (try --help)" >&2
		exit 2
		;;
	esac
done
if ((SMOKE)); then
	# every scenario and supervisor, tiny sizes, one repetition
	: "${REPS:=1}" "${IDLE_NS:=1 10}" "${IDLE_SECS:=2}" "${RESTART_SECS:=2}" "${STARTUP_NS:=20}"
	: "${PEER_STARTUP_NS:=20}" "${SHUTDOWN_N:=20}" "${CHAIN_N:=20}" "${REAP_N:=200}"
	: "${LOG_BYTES:=100000000}" "${ONESHOT_N:=20}" "${MICRO:=0}" "${HEALTH:=0}" "${WRITE_DOCS:=0}"
fi
: "${MICRO:=1}" "${MICRO_COUNT:=1}" "${HEALTH:=1}" "${WRITE_DOCS:=1}"
export REPS IDLE_NS IDLE_SECS RESTART_SECS STARTUP_NS PEER_STARTUP_NS SHUTDOWN_N CHAIN_N REAP_N \
	LOG_BYTES LOG_CHUNK LOG_ROTATE_MB LOG_DIR LOG_MODES ONESHOT_N SCENARIOS SUPERVISORS

if [[ $(id -u) != 0 ]]; then
	echo "bench/run.sh needs root (apt-get, unshare --pid, runit, the kernel's process events)" >&2
	exit 1
fi

OUT=${BENCH_OUT:-/tmp/horust-bench/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT/bin"
echo "results in $OUT" >&2

# ---- peers
need=
for b in tini dumb-init s6-svscan runsvdir supervisord unshare; do
	command -v "$b" >/dev/null 2>&1 || need=1
done
if [[ -n $need ]]; then
	echo "installing the peers from Debian packages" >&2
	apt-get update -qq
	# runit's postinst only enables a systemd unit: nothing gets started here
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q tini dumb-init s6 runit supervisor util-linux >/dev/null
fi

# ---- builds
VERSION=$(git -C "$ROOT" describe --always --dirty --tags 2>/dev/null || echo unknown)
echo "building horust $VERSION and bench/tool" >&2
# built as the Dockerfile ships it: static, stripped
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$OUT/bin/horust" ./cmd/horust
(cd bench/tool && "$GO" build -o "$OUT/bin/hbench" .)
# the Go floor of the one-shot scenario, built like horust
CGO_ENABLED=0 "$GO" build -trimpath -ldflags "-s -w" -o "$OUT/bin/oneshotfloor" ./bench/oneshotfloor

# ---- versions and machine
dpkgv() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }
{
	echo "horust: $VERSION (git describe), built with $("$GO" version | awk '{print $3}'), CGO_ENABLED=0 -trimpath -ldflags '-s -w'"
	echo "tini: $(tini --version 2>&1 | head -1) (Debian $(dpkgv tini))"
	echo "dumb-init: $(dumb-init --version 2>&1 | head -1) (Debian $(dpkgv dumb-init))"
	echo "s6: Debian package $(dpkgv s6)"
	echo "runit: Debian package $(dpkgv runit)"
	echo "supervisor: $(supervisord --version 2>/dev/null) (Debian $(dpkgv supervisor))"
	echo "kernel: $(uname -r)"
	echo "CPU: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), nproc $(nproc)"
	echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
	echo "OS: $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "uptime at start: $(uptime)"
} >"$OUT/versions.txt"

# ---- the matrix
HORUST="$OUT/bin/horust" GOFLOOR="$OUT/bin/oneshotfloor" "$OUT/bin/hbench" run -out "$OUT"

# ---- bench/health (a colleague's): its RESULT lines go into the report
if ((!HEALTH)); then
	:
elif [[ -x bench/health/run.sh ]]; then
	echo "running bench/health/run.sh" >&2
	HORUST="$OUT/bin/horust" timeout 300 bench/health/run.sh 2>"$OUT/health.err" | grep '^RESULT health ' >"$OUT/health.txt" || true
elif compgen -G 'bench/health/*.go' >/dev/null; then
	echo "running go run ./bench/health" >&2
	HORUST="$OUT/bin/horust" timeout 300 "$GO" run ./bench/health 2>"$OUT/health.err" | grep '^RESULT health ' >"$OUT/health.txt" || true
fi

# ---- Go micro-benchmarks of the hot paths
if ((MICRO)); then
	echo "go micro-benchmarks" >&2
	"$GO" test -run '^$' -bench . -benchmem -count "$MICRO_COUNT" \
		./internal/supervisor ./internal/config ./internal/logs >"$OUT/micro.txt" 2>"$OUT/micro.err" ||
		echo "micro-benchmarks failed: see $OUT/micro.err" >&2
fi

echo "uptime at end: $(uptime)" >>"$OUT/versions.txt"

# ---- report
if ((WRITE_DOCS)); then
	"$OUT/bin/hbench" report -out "$OUT" -md docs/benchmarks.md -tables docs/benchmark-tables.md -png docs/benchmarks.png
	echo "wrote docs/benchmarks.md (summary), docs/benchmark-tables.md and docs/benchmarks.png" >&2
else
	[[ -f $OUT/benchmarks.md ]] || cp docs/benchmarks.md "$OUT/benchmarks.md" 2>/dev/null || true
	"$OUT/bin/hbench" report -out "$OUT" -md "$OUT/benchmarks.md" -tables "$OUT/benchmark-tables.md" -png "$OUT/benchmarks.png"
	echo "wrote $OUT/benchmarks.md (summary), $OUT/benchmark-tables.md and $OUT/benchmarks.png" >&2
fi
