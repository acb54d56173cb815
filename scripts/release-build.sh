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
# RUSTFLAGS go with an explicit --target, so build scripts and proc macros stay
# ordinary host builds; the output is target/x86_64-unknown-linux-gnu/release/routeproof.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=x86_64-unknown-linux-gnu
(
    cd "$root"
    AWS_LC_SYS_CFLAGS_x86_64_unknown_linux_gnu="-DMY_ASSEMBLER_IS_TOO_OLD_FOR_512AVX=1" \
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
        cargo rustc --release --locked --target "$target" --bin routeproof -- \
        -C link-arg=-Wl,--icf=all >&2
)
echo "$root/target/$target/release/routeproof"
