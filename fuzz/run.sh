#!/usr/bin/env bash
# Builds and runs the libFuzzer target over the workers' request parsing (fuzz/FuzzRequest.swift).
#
#   fuzz/run.sh [SECONDS]        build, then fuzz for SECONDS (default $FUZZ_SECONDS or 60)
#   fuzz/run.sh --build-only     build only (fuzz/.out/fuzz-request)
#   fuzz/run.sh --replay FILE..  run the target once on each FILE (a crash reproducer)
#   fuzz/run.sh --merge          add to fuzz/corpus the inputs of fuzz/.out/corpus (grown by
#                                earlier runs) that reach new coverage
#
# SwiftPM cannot link a libFuzzer executable (it renames `main`), so the target is compiled
# with swiftc directly: -sanitize=fuzzer,address -parse-as-library, the fuzz entry point
# (@_cdecl("LLVMFuzzerTestOneInput")), *every source of Sources/TradingAPI* (instrumented, so
# the fuzzer sees their coverage), including the FastCGI → APIRequest adaptation and the
# request-id sanitising (`APIRequest(cgiParameter:)`, fed from a stand-in of libfcgi's
# parameter lookup). The dependencies (swift-crypto, swift-log, the
# Postgres and Memcached wrappers) are linked from a SwiftPM debug build, not instrumented.
#
# Environment:
#   FUZZ_BUILD_DIR   SwiftPM build products (default .build/debug; `swift build` is run when
#                    they are missing)      FUZZ_SECONDS  fuzzing time (default 60)
#   FUZZ_JOBS        parallel fuzzing processes (default 1)
#   FUZZ_OUT         work directory (default fuzz/.out: binary, generated source, corpus
#                    grown during the run, crash artifacts)
# The seed corpus is fuzz/corpus/ (read only here; `-merge=1` new finds into it by hand).
# Exit status: 0 when the time ran out without a finding; 1 with the crashing input's path,
# its bytes (hex) and the stack on stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
command -v swiftc >/dev/null 2>&1 || PATH="/opt/swift/usr/bin:$PATH"

OUT=${FUZZ_OUT:-$ROOT/fuzz/.out}
BIN="$OUT/fuzz-request"
SECONDS_TO_RUN=${FUZZ_SECONDS:-60}
MODE=run
case "${1:-}" in
    --build-only) MODE=build ;;
    --replay) MODE=replay; shift ;;
    --merge) MODE=merge ;;
    "") ;;
    *) [[ $1 =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [SECONDS|--build-only|--replay FILE..|--merge]" >&2; exit 2; }
       SECONDS_TO_RUN=$1 ;;
esac

log() { printf '[fuzz] %s\n' "$*" >&2; }

# A trap in Swift code (precondition, overflow, ...) is reported by libFuzzer as a deadly
# signal; the Swift runtime's own backtracer would run under ASan and muddle the report.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}

build() {
    local build_dir=${FUZZ_BUILD_DIR:-$ROOT/.build/debug}
    if [ ! -f "$build_dir/trading-api.product/Objects.LinkFileList" ] || \
       [ ! -f "$build_dir/Modules/Crypto.swiftmodule" ]; then
        log "no SwiftPM debug build in $build_dir: swift build"
        swift build --product trading-api
    fi
    build_dir=$(cd "$build_dir" && pwd -P)
    local scratch
    scratch=$(dirname "$(dirname "$build_dir")")          # .build/<triple>/debug -> .build
    local crypto="$scratch/checkouts/swift-crypto/Sources"
    [ -d "$crypto" ] || { log "swift-crypto checkout not found under $scratch/checkouts"; exit 1; }

    mkdir -p "$OUT"
    # Everything the executable links, minus what is compiled here or not needed.
    local objects="$OUT/objects.txt"
    grep -v -e '/TradingAPI\.build/' -e '/trading_api\.build/' -e '/FastCGI\.build/' \
            "$build_dir/trading-api.product/Objects.LinkFileList" >"$objects"

    local -a sources
    mapfile -t sources < <(find Sources/TradingAPI -name '*.swift' | sort)
    local -a xcc=()
    local inc
    for inc in CXKCPShims CXKCP CCryptoBoringSSLShims CCryptoBoringSSL; do
        xcc+=(-Xcc "-fmodule-map-file=$crypto/$inc/include/module.modulemap" -Xcc -I -Xcc "$crypto/$inc/include")
    done
    # swift-prometheus's dependency swift-atomics has a C shim module too.
    local atomics="$scratch/checkouts/swift-atomics/Sources/_AtomicsShims/include"
    xcc+=(-Xcc "-fmodule-map-file=$atomics/module.modulemap" -Xcc -I -Xcc "$atomics")
    local pq_cflags
    pq_cflags=$(pkg-config --cflags-only-I libpq 2>/dev/null || echo -I/usr/include/postgresql)

    log "swiftc -sanitize=fuzzer,address: ${#sources[@]} TradingAPI sources + fuzz/FuzzRequest.swift"
    # shellcheck disable=SC2086
    swiftc -sanitize=fuzzer,address -parse-as-library -Onone -g \
        -module-name TradingAPIFuzz -swift-version 6 \
        -module-cache-path "$OUT/ModuleCache" \
        -I "$build_dir/Modules" \
        -Xcc "-fmodule-map-file=$ROOT/Sources/CLibPQ/module.modulemap" $pq_cflags \
        -Xcc "-fmodule-map-file=$ROOT/Sources/CMemcached/module.modulemap" \
        -Xcc "-fmodule-map-file=$ROOT/Sources/CCurl/module.modulemap" \
        "${xcc[@]}" \
        "${sources[@]}" fuzz/FuzzRequest.swift \
        "@$objects" \
        -L/usr/lib/x86_64-linux-gnu -lpq -lmemcached -lmemcachedutil -lsasl2 -lcurl -lstdc++ \
        -o "$BIN" 2> >(grep -v "Cannot export local symbol '__asan" >&2)
    log "built $BIN"
}

build
[ "$MODE" = build ] && exit 0

if [ "$MODE" = replay ]; then
    exec "$BIN" "$@"
fi

if [ "$MODE" = merge ]; then
    [ -d "$OUT/corpus" ] || { log "nothing to merge: $OUT/corpus does not exist (run the fuzzer first)"; exit 1; }
    before=$(find fuzz/corpus -type f | wc -l)
    "$BIN" -merge=1 -max_len=8192 fuzz/corpus "$OUT/corpus" 2>"$OUT/merge.log" || { tail -n 20 "$OUT/merge.log" >&2; exit 1; }
    log "fuzz/corpus: $before -> $(find fuzz/corpus -type f | wc -l) inputs"
    exit 0
fi

corpus="$OUT/corpus"
mkdir -p "$corpus"
log "fuzzing for ${SECONDS_TO_RUN}s (seed corpus fuzz/corpus, $(find fuzz/corpus -type f | wc -l) inputs; new ones in $corpus)"
jobs=()
if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS"); fi
set +e
"$BIN" "$corpus" fuzz/corpus "${jobs[@]}" \
    -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=4096 -max_len=8192 \
    -dict=fuzz/request.dict -artifact_prefix="$OUT/" -print_final_stats=1 2>"$OUT/fuzz.log"
rc=$?
set -e
tail -n 25 "$OUT/fuzz.log" >&2
if [ $rc -ne 0 ]; then
    for f in "$OUT"/crash-* "$OUT"/leak-* "$OUT"/timeout-* "$OUT"/oom-*; do
        [ -e "$f" ] || continue
        log "finding: $f"
        od -An -tx1 -v "$f" | head -n 40 >&2
    done
    log "FAILED (exit $rc): reproduce with fuzz/run.sh --replay <file>; full log $OUT/fuzz.log"
    exit 1
fi
log "no findings in ${SECONDS_TO_RUN}s"
