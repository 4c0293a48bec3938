#!/usr/bin/env bash
# Fuzzes Grove with cargo-fuzz (libFuzzer + AddressSanitizer): path parsing and key
# encodings (`path`), everything decoded from disk or peers (`decode`), and the state
# machine's apply with its invariants checked after every entry (`apply`).
#
# Each target runs FUZZ_SECONDS (default 30) from the corpus kept in fuzz/corpus/<target>.
# New inputs go to a scratch directory, so the committed corpus changes only when someone
# chooses to (`scripts/fuzz.sh --merge` folds the scratch finds in, minimized). A crash
# fails the script; the input that caused it is in fuzz/artifacts/<target>/.
#
# cargo-fuzz is installed into .tools/ if missing. It needs a nightly compiler: the
# toolchain's nightly if there is one, otherwise the stable compiler with RUSTC_BOOTSTRAP
# (it ships the sanitizer runtimes too).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-30}"
targets=(path decode apply)

if [ ! -x .tools/bin/cargo-fuzz ]; then
    cargo install cargo-fuzz --locked --version 0.13.2 --root .tools
fi
export PATH="$PWD/.tools/bin:$PATH"
if cargo +nightly --version >/dev/null 2>&1; then
    toolchain=(+nightly)
else
    toolchain=()
    export RUSTC_BOOTSTRAP=1
fi

cargo "${toolchain[@]}" fuzz build

scratch=fuzz/target/scratch-corpus
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target" "$scratch/$target"
    case "$target" in
        apply) opts=(-max_len=4096 -len_control=20) ;;
        *) opts=(-max_len=1024) ;;
    esac
    echo "fuzzing $target for ${seconds}s"
    cargo "${toolchain[@]}" fuzz run "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 "${opts[@]}" 2>&1 |
        grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done|==|SUMMARY|thread)|panicked|ERROR' || true
    if [ -n "$(ls -A "fuzz/artifacts/$target" 2>/dev/null)" ]; then
        echo "fuzz target $target crashed; inputs in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    if [ "${1:-}" = "--merge" ]; then
        cp -n "$scratch/$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
        cargo "${toolchain[@]}" fuzz cmin "$target" "fuzz/corpus/$target" -- "${opts[@]}"
    fi
done
