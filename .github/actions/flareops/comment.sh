#!/usr/bin/env bash
# Creates or updates the sticky plan comment on a pull request: the comment
# whose body starts with `<!-- flareops-plan -->`. Needs a token that can
# write to pull requests (a pull request from a fork has none: use the
# two-workflow split of plan.yml + plan-comment.yml, see docs/ci.md).
# Inputs (environment): GH_TOKEN, REPO, PR_NUMBER, REPORT.
set -euo pipefail
: "${REPO:?}" "${PR_NUMBER:?}" "${REPORT:?}"
marker='<!-- flareops-plan -->'
limit=65536
[[ "$PR_NUMBER" =~ ^[1-9][0-9]{0,9}$ ]] || { echo "::error::not a pull request number: $PR_NUMBER"; exit 1; }
[ "$(head -n 1 "$REPORT")" = "$marker" ] || { echo "::error::the plan does not start with $marker (format must be markdown)"; exit 1; }
[ "$(wc -m < "$REPORT")" -le "$limit" ] || { echo "::error::the plan comment is longer than $limit characters"; exit 1; }
id=$(gh api --paginate "repos/$REPO/issues/$PR_NUMBER/comments" \
  | jq -rs --arg m "$marker" '[.[][] | select((.body // "") | startswith($m))][0].id // empty')
if [ -n "$id" ]; then
  jq -Rs '{body: .}' < "$REPORT" | gh api -X PATCH "repos/$REPO/issues/comments/$id" --input - --silent
  echo "updated the plan comment $id"
else
  jq -Rs '{body: .}' < "$REPORT" | gh api -X POST "repos/$REPO/issues/$PR_NUMBER/comments" --input - --silent
  echo "created the plan comment"
fi
