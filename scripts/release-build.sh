#!/usr/bin/env bash
# The release binary as it ships and as the benchmarks measure it: glibc linked in
# statically and not position-independent, so the kernel maps it and it runs, with no
# dynamic loader, no shared libraries and no start-up relocations (docs/benchmarks.md,
# "Cold start"). It runs on every Functions Linux image whatever its glibc. Host names are
# resolved by hickory in-process (Cargo.toml: reqwest's hickory-dns), never by glibc's
# NSS, which a static glibc cannot load.
#
#   scripts/release-build.sh            builds it and prints its path
#
# aws-lc is built without its AVX-512 AES-GCM, GHASH and RSA kernels
# (MY_ASSEMBLER_IS_TOO_OLD_FOR_512AVX, the switch aws-lc itself offers for small builds):
# 0.7 MB of unrolled assembly for bulk encryption a probe never does; AES-GCM runs on
# the AVX2/AES-NI code instead (docs/benchmarks.md, "Binary size").
#
# The linker folds identical functions (`--icf=all`: Rust promises no distinct addresses for
# distinct functions, so nothing may rely on them); given to the final link only, through
# `cargo rustc`, so the dependencies' builds stay as they are.
#
# getrandom 0.3/0.4 (rand's seeding, for opentelemetry and hickory) find libc's getrandom
# with dlsym, which a static glibc cannot do, and fall back to opening /dev/random, polling
# it and reading /dev/urandom: five system calls at start-up instead of one. The
# `linux_getrandom` backend, the crate's own switch for this, calls libc's getrandom
# directly (glibc has had it since 2.25; Linux since 3.17).
#
# RUSTFLAGS go with an explicit --target, so build scripts and proc macros stay
# ordinary host builds; the output is target/x86_64-unknown-linux-gnu/release/routeproof.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=x86_64-unknown-linux-gnu
# The code a `serve` start runs, laid out together (scripts/startup-order.sh wrote the list;
# docs/benchmarks.md, "Cold start"); ROUTEPROOF_NO_ORDER=1 links without it.
order=()
if [ -z "${ROUTEPROOF_NO_ORDER:-}" ] && [ -f "$root/scripts/startup.order" ]; then
    # shellcheck disable=SC2054 # the commas belong to the linker arguments
    order=(-C "link-arg=-Wl,--symbol-ordering-file=$root/scripts/startup.order"
        -C link-arg=-Wl,--no-warn-symbol-ordering)
fi
# lld's link map, mangled names, for startup-order.sh and the check below.
mapfile="$root/target/$target/release/routeproof.map"
# shellcheck disable=SC2054
map=(-C "link-arg=-Wl,-Map=$mapfile" -C link-arg=-Wl,--no-demangle)
(
    cd "$root"
    AWS_LC_SYS_CFLAGS_x86_64_unknown_linux_gnu="-DMY_ASSEMBLER_IS_TOO_OLD_FOR_512AVX=1" \
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static --cfg getrandom_backend=\"linux_getrandom\"" \
        cargo rustc --release --locked --target "$target" --bin routeproof -- \
        -C link-arg=-Wl,--icf=all "${order[@]}" "${map[@]}" >&2
)
if [ ${#order[@]} -gt 0 ] && [ -f "$mapfile" ]; then
    # Symbols of the order file this build no longer has (renamed, inlined, gone): many
    # means the file is stale and start-up code is spread out again.
    python3 - "$root/scripts/startup.order" "$mapfile" >&2 <<'PY'
import sys
want = [l.strip() for l in open(sys.argv[1]) if l.strip()]
have = set()
for line in open(sys.argv[2]):
    parts = line.split()
    if len(parts) == 5 and ":(" not in parts[4]:
        have.add(parts[4])
missing = sum(1 for w in want if w not in have)
print(f"release-build: startup.order: {len(want) - missing} of {len(want)} symbols placed"
      + (" (rerun scripts/startup-order.sh)" if missing * 10 > len(want) else ""))
PY
fi
echo "$root/target/$target/release/routeproof"
