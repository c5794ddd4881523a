#!/bin/sh
# CI step for a zones repository: no broken zone reaches the servers, and the
# job log shows what the change does to the answers.
#
#   1. `seawall check` on the zones of the commit under test (both formats:
#      RFC 1035 files and octoDNS YAML); any error fails the job (exit 1).
#   2. `seawall diff` from the merge base with the target branch to this commit:
#      the RRsets added, removed and changed, per zone, for the reviewer. The
#      merge base is checked out with `git worktree` into a temporary folder.
#
# Settings (environment):
#   ZONES     the zones folder in the repository          (default: zones)
#   BASE      the branch the change merges into           (default: origin/main,
#             or origin/$GITHUB_BASE_REF on a GitHub pull request)
#   SEAWALL   the seawall command                         (default: seawall)
#   DIFF_OUT  also write the diff to this file (e.g. for a review comment)
#
# Exit status: 0 zones good, 1 a zone has errors, 2 cannot run (no merge base:
# a shallow clone needs the history, e.g. actions/checkout with fetch-depth: 0).
#
# GitHub Actions:
#   - uses: actions/checkout@v4
#     with: {fetch-depth: 0}
#   - run: pip install seawall
#   - run: sh contrib/ci-check-zones.sh
# GitLab CI:
#   check-zones:
#     script: [pip install seawall, BASE=origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME sh contrib/ci-check-zones.sh]
set -eu

ZONES=${ZONES:-zones}
SEAWALL=${SEAWALL:-seawall}
if ! command -v "${SEAWALL%% *}" >/dev/null 2>&1; then
    echo "$(basename "$0"): no seawall command (${SEAWALL%% *}): pip install seawall, or set SEAWALL" >&2
    exit 2
fi
if [ -z "${BASE:-}" ]; then
    if [ -n "${GITHUB_BASE_REF:-}" ]; then BASE="origin/$GITHUB_BASE_REF"; else BASE=origin/main; fi
fi

top=$(git rev-parse --show-toplevel) || exit 2
cd "$top"
if [ ! -d "$ZONES" ]; then
    echo "ci-check-zones: no zones folder $ZONES in $top" >&2
    exit 2
fi

echo "== seawall check $ZONES"
if ! $SEAWALL check "$ZONES"; then
    echo "ci-check-zones: $ZONES has errors (file:line: message above); nothing is deployed" >&2
    exit 1
fi

if ! base=$(git merge-base HEAD "$BASE" 2>/dev/null); then
    echo "ci-check-zones: no merge base between HEAD and $BASE (a shallow clone? fetch the history)" >&2
    exit 2
fi

tmp=$(mktemp -d)
cleanup() {
    git worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
git worktree add --quiet --detach "$tmp/base" "$base"
old="$tmp/base/$ZONES"
if [ ! -d "$old" ]; then
    old="$tmp/empty/$ZONES"   # the zones folder is new: everything is added
    mkdir -p "$old"
fi

echo "== seawall diff $(git rev-parse --short "$base") $ZONES"
status=0
if [ -n "${DIFF_OUT:-}" ]; then
    $SEAWALL diff "$old" "$ZONES" >"$DIFF_OUT" || status=$?
    cat "$DIFF_OUT"
else
    $SEAWALL diff "$old" "$ZONES" || status=$?
fi
case $status in
    0) echo "no change to the answers" ;;
    1) ;;  # differences, shown above: what the reviewer reads
    *) echo "ci-check-zones: warning: the merge base's zones do not all load; the diff is partial" >&2 ;;
esac
exit 0
