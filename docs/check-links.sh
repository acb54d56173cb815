#!/usr/bin/env bash
# Checks every relative Markdown link in README.md and docs/*.md: the target file must exist and,
# when the link has a #fragment, the target must have a heading with that GitHub-style anchor.
# Usage: docs/check-links.sh   (from anywhere; exit 1 on the first report of broken links)
set -euo pipefail
cd "$(dirname "$0")/.."

# GitHub's anchor for a heading: lower case, drop everything but letters, digits, spaces, '-' and '_',
# spaces become '-'.
anchors() {
    grep -E '^#{1,6} ' "$1" | sed -E 's/^#{1,6} +//; s/[[:space:]]+$//' |
        tr '[:upper:]' '[:lower:]' | sed -E 's/[^a-z0-9 _-]//g; s/ /-/g'
}

bad=0
checked=0
for f in README.md docs/*.md; do
    dir=$(dirname "$f")
    # ](target) links that are not absolute URLs or mailto:
    while IFS= read -r link; do
        target=${link#](}
        target=${target%)}
        case "$target" in http://* | https://* | mailto:*) continue ;; esac
        path=${target%%#*}
        frag=""
        [[ "$target" == *#* ]] && frag=${target#*#}
        if [[ -z "$path" ]]; then
            file=$f
        else
            file="$dir/$path"
        fi
        checked=$((checked + 1))
        if [[ ! -e "$file" ]]; then
            echo "$f: broken link ($target): no file $file"
            bad=$((bad + 1))
            continue
        fi
        if [[ -n "$frag" && "$file" == *.md ]] && ! anchors "$file" | grep -qxF -- "$frag"; then
            echo "$f: broken link ($target): no heading #$frag in $file"
            bad=$((bad + 1))
        fi
    done < <(grep -oE '\]\([^) ]+\)' "$f" || true)
done
echo "check-links: $checked relative links checked, $bad broken"
[[ $bad -eq 0 ]]
