#!/bin/sh
# Fuzzes the request parser (fuzz_resp.c) with libFuzzer, ASan and UBSan:
#   tests/fuzz/run.sh [seconds]      (default 60; needs clang)
# Crashes land in tests/fuzz/crash-* with the input that caused them.
set -eu
cd "$(dirname "$0")"
src=../../src
out=${TMPDIR:-/tmp}/dq-fuzz
mkdir -p "$out/corpus"
clang -g -O1 -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -I"$src" -I../.. \
    fuzz_resp.c "$src/resp.c" "$src/buf.c" "$src/alloc.c" "$src/util.c" \
    -lm -o "$out/fuzz_resp"
# Seeds: a few valid and broken frames.
printf '\000*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n' >"$out/corpus/multibulk"
printf '\003\001\002\005SADD q "a b\\x41" \x27c\\\x27d\x27 0\r\nPING\n' \
    >"$out/corpus/inline"
printf '\001\007*3\r\n$-1\r\n*0\r\n$3\r\nab\r\n' >"$out/corpus/broken"
"$out/fuzz_resp" -max_total_time="${1:-60}" -max_len=4096 \
    -artifact_prefix=./ "$out/corpus"
