#!/usr/bin/env bash
# Creates, or updates in place, the one pull-request comment holding the report: the comment
# is found by a hidden marker on its first line, so a push updates it instead of adding one.
#
# $1: the report (Markdown). $2: the pull request's number. GITHUB_TOKEN, GITHUB_REPOSITORY and
# GITHUB_API_URL as GitHub Actions sets them.
set -euo pipefail

report="$1"
pr="$2"
api="${GITHUB_API_URL:-https://api.github.com}"
marker='<!-- mesh-gitops check -->'
# GitHub refuses a comment over 65,536 characters; a long report is cut with a note.
limit=60000

auth=(
  -H "Authorization: Bearer ${GITHUB_TOKEN:?}"
  -H "Accept: application/vnd.github+json"
  -H "X-GitHub-Api-Version: 2022-11-28"
)
call() { curl --fail --silent --show-error --retry 3 "${auth[@]}" "$@"; }

body=$(jq --raw-input --slurp --arg m "$marker" --argjson n "$limit" '
  { body: ($m + "\n" + (if length > $n
      then .[0:$n] + "\n\n_(cut: the whole report is in the job summary and the HTML artifact)_"
      else . end)) }' < "$report")

# Comments come 100 a page; the marker is looked for on every page.
id=""
page=1
while :; do
  comments=$(call "$api/repos/$GITHUB_REPOSITORY/issues/$pr/comments?per_page=100&page=$page")
  id=$(jq -r --arg m "$marker" \
    'map(select((.body // "") | startswith($m))) | first | .id // empty' <<<"$comments")
  if [ -n "$id" ] || [ "$(jq length <<<"$comments")" -lt 100 ]; then
    break
  fi
  page=$((page + 1))
done

if [ -n "$id" ]; then
  call -X PATCH "$api/repos/$GITHUB_REPOSITORY/issues/comments/$id" --data "$body" >/dev/null
  echo "updated the report comment ($id)"
else
  call -X POST "$api/repos/$GITHUB_REPOSITORY/issues/$pr/comments" --data "$body" >/dev/null
  echo "created the report comment"
fi
