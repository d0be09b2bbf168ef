# Source this (bash) to use the Metavision SDK (OpenEB) beside the project for the tests marked `sdk` and for
# benchmarks/bench_io.py:   source .ci/openeb.sh
# .ci/run sources it before the README's test command. It never fails and prints one line saying whether the
# SDK tests will run or why they will skip. With OpenEB at ../shared/openeb (or $EVENTCLIP_OPENEB) it
#   1. installs the Debian libraries the build links against, once (its install-runtime.sh, output kept quiet),
#   2. sources its env.sh (LD_LIBRARY_PATH, PYTHONPATH, MV_HAL_PLUGIN_PATH, HDF5_PLUGIN_PATH), so every
#      process started afterwards (pytest, the daemons the tests start) finds the SDK,
#   3. repairs a copy whose versioned .so links were stored as small text files naming their target (the
#      loader then fails with "file too short"): real links are made in a temporary folder put first on
#      LD_LIBRARY_PATH. A copy with real links (or real files) is left as it is.

_eventclip_openeb_stub() {  # the link a small non-ELF file in OpenEB's lib folder stands for, if it is one
    [ -f "$1" ] && [ ! -L "$1" ] && [ "$(stat -c %s "$1")" -lt 256 ] && [ "$(head -c 4 "$1")" != $'\177ELF' ] \
        && head -n 1 "$1"
}

_eventclip_openeb() {
    local root openeb log links lib target hops
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    openeb=${EVENTCLIP_OPENEB:-$root/../shared/openeb}
    if [ ! -f "$openeb/env.sh" ]; then
        echo "openeb: no OpenEB at $openeb (set EVENTCLIP_OPENEB): the Metavision SDK tests will skip"
        return 0
    fi
    openeb=$(cd "$openeb" && pwd)
    log=$(mktemp)
    if ! "$openeb/install-runtime.sh" >"$log" 2>&1; then
        echo "openeb: $openeb/install-runtime.sh failed ($(tail -n 1 "$log")); the SDK may not load"
    fi
    # shellcheck disable=SC1091
    source "$openeb/env.sh"
    links="${TMPDIR:-/tmp}/eventclip-openeb-links-$(id -u)"
    for lib in "$openeb"/install/lib/*.so*; do
        target=$(_eventclip_openeb_stub "$lib") || continue
        for hops in 1 2 3; do  # libX.so -> libX.so.5 -> libX.so.5.1.1: follow stubs to the real file
            [ -n "$target" ] || break
            [ -n "$(_eventclip_openeb_stub "$openeb/install/lib/$target")" ] || break
            target=$(_eventclip_openeb_stub "$openeb/install/lib/$target")
        done
        if [ -n "$target" ] && [ -f "$openeb/install/lib/$target" ]; then
            mkdir -p "$links"
            ln -sfn "$openeb/install/lib/$target" "$links/$(basename "$lib")"
        fi
    done
    if [ -d "$links" ]; then
        export LD_LIBRARY_PATH="$links:$LD_LIBRARY_PATH"
    fi
    if python3.11 -c "import metavision_sdk_stream, metavision_core.event_io" >/dev/null 2>"$log"; then
        echo "openeb: the Metavision SDK at $openeb imports: the SDK tests will run"
    else
        echo "openeb: the Metavision SDK at $openeb does not import ($(tail -n 1 "$log")): the SDK tests will skip"
    fi
    rm -f "$log"
    return 0
}
_eventclip_openeb
unset -f _eventclip_openeb _eventclip_openeb_stub
