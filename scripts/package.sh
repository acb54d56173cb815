#!/usr/bin/env bash
# Builds routeproof for Linux x86-64 and assembles the Azure Functions zip-deploy package:
#
#   dist/app/                    the app root (wwwroot), runnable with `func start`
#     host.json                  at the root, as zip deploy requires
#     routeproof                 the custom handler (mode 755; the zip keeps the bit)
#     config/default.toml        the config `routeproof serve` reads by default
#     probe/ scheduled/ health/  one folder per function, each with function.json
#   dist/routeproof-app.zip      the same tree, host.json at the zip root
#
# The binary is a static musl build when the musl target and a musl C compiler are
# available (installed here when possible); otherwise glibc linked in statically
# (scripts/release-build.sh). Either way it needs no shared library and runs on every
# Functions Linux image. `--glibc` picks the second.
#
# Usage: scripts/package.sh [--config FILE] [--glibc] [--out DIR]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/dist"
config="$root/config/default.toml"
want_musl=1

while [[ $# -gt 0 ]]; do
    case "$1" in
        --config) config="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; shift 2 ;;
        --glibc) want_musl=0; shift ;;
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package.sh: unknown argument: $1" >&2; exit 2 ;;
    esac
done

say() { printf 'package.sh: %s\n' "$*" >&2; }

[[ -f "$config" ]] || { say "no config at $config"; exit 2; }

musl_ready() {
    rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl &&
        { command -v x86_64-linux-musl-gcc >/dev/null || command -v musl-gcc >/dev/null; }
}

target=x86_64-unknown-linux-gnu
if [[ $want_musl == 1 ]]; then
    if ! musl_ready; then
        say "preparing the musl target (rustup target add, apt-get install musl-tools)"
        rustup target add x86_64-unknown-linux-musl >&2 || true
        if ! command -v x86_64-linux-musl-gcc >/dev/null && ! command -v musl-gcc >/dev/null &&
            command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
            apt-get install -y -qq musl-tools >&2 || true
        fi
    fi
    if musl_ready; then
        target=x86_64-unknown-linux-musl
    else
        say "musl target or musl C compiler unavailable: building for glibc instead"
    fi
fi

if [[ $target == x86_64-unknown-linux-musl ]]; then
    say "cargo build --release --locked --target $target"
    (cd "$root" && cargo build --release --locked --target "$target" --bin routeproof >&2)
    bin="$root/target/$target/release/routeproof"
else
    say "scripts/release-build.sh (glibc, static, non-PIE)"
    bin="$("$root/scripts/release-build.sh")"
fi

# What the binary needs from the image: nothing (static) or a glibc version floor.
if readelf -d "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
    floor="$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -t. -k1,1 -k2,2n -k3,3n -u | tail -n1)"
    linkage="dynamic, needs ${floor:-an unknown glibc} (Debian 12 has GLIBC_2.36, Debian 11 GLIBC_2.31)"
else
    linkage="static (no shared libraries needed)"
fi

app="$out/app"
zip_path="$out/routeproof-app.zip"
rm -rf "$app" "$zip_path"
mkdir -p "$app/config"
cp "$root/host.json" "$app/host.json"
for dir in "$root"/function_app/*/; do
    name="$(basename "$dir")"
    [[ -f "$dir/function.json" ]] || continue
    mkdir -p "$app/$name"
    cp "$dir/function.json" "$app/$name/function.json"
done
install -m 755 "$bin" "$app/routeproof"
cp "$config" "$app/config/default.toml"

# The shipped config must load; `check` parses it and sends nothing.
"$app/routeproof" check --config "$app/config/default.toml" >/dev/null

# -X: no extra attributes; Info-ZIP keeps the Unix mode, so routeproof stays executable.
(cd "$app" && zip -q -X -r "$zip_path" .)

say "target:  $target, $linkage"
say "binary:  $(stat -c %s "$app/routeproof") bytes"
say "zip:     $zip_path, $(stat -c %s "$zip_path") bytes"
say "layout:"
unzip -Z1 "$zip_path" | sed 's/^/  /' >&2
