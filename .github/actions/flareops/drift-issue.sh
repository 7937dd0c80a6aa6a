#!/usr/bin/env bash
# Opens, updates or closes the drift issue of one environment (the lifecycle
# drift.yml had): exit 2 -> open or update the issue whose body starts with
# `<!-- flareops-drift:ENV -->`; exit 0 -> comment and close it.
# Inputs (environment): GH_TOKEN, REPO, STATUS (flareops drift's exit),
# FLAREOPS_ENV, REPORT (the markdown report), DRIFT_LABEL, and the runner's
# GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_RUN_ID, GITHUB_SHA, RUNNER_TEMP.
set -euo pipefail
: "${REPO:?}" "${STATUS:?}" "${FLAREOPS_ENV:?}" "${REPORT:?}" "${DRIFT_LABEL:=flareops-drift}"
case "$STATUS" in 0|2) ;; *) echo "flareops drift exited $STATUS: the issue is left as it is"; exit 0 ;; esac

marker="<!-- flareops-drift:$FLAREOPS_ENV -->"
run_url="$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID"

if ! gh api "repos/$REPO/labels/$DRIFT_LABEL" --silent 2>/dev/null; then
  gh api -X POST "repos/$REPO/labels" -f name="$DRIFT_LABEL" -f color=d93f0b \
    -f description="flareops: a Cloudflare account no longer matches git" --silent \
    || echo "::warning::could not create the label $DRIFT_LABEL"
fi

numbers=$(gh api --paginate -X GET "repos/$REPO/issues" \
    -f state=open -f labels="$DRIFT_LABEL" -f per_page=100 \
  | jq -rs --arg m "$marker" '.[][]
      | select(.pull_request == null)
      | select((.body // "") | startswith($m))
      | .number')

if [ "$STATUS" = 2 ]; then
  [ "$(head -n 1 "$REPORT")" = "$marker" ] \
    || { echo "::error::the drift report does not start with $marker"; exit 1; }
  footer=$(printf '\n\n---\n<sub>Last checked by %s at %s (commit %s). This issue is updated while the drift lasts and closed when it is gone.</sub>\n' \
    "$run_url" "$(date -u '+%Y-%m-%d %H:%M UTC')" "${GITHUB_SHA:0:7}")
  title="Drift in $FLAREOPS_ENV: the Cloudflare account no longer matches git"
  jq -Rs --arg footer "$footer" --arg title "$title" --arg lbl "$DRIFT_LABEL" \
    '{title: $title, labels: [$lbl], body: (. + $footer)}' < "$REPORT" > "$RUNNER_TEMP/flareops-issue.json"
  first=$(printf '%s\n' "$numbers" | sed -n '1p')
  if [ -n "$first" ]; then
    jq '{body}' "$RUNNER_TEMP/flareops-issue.json" \
      | gh api -X PATCH "repos/$REPO/issues/$first" --input - --silent
    echo "updated drift issue #$first"
  else
    gh api -X POST "repos/$REPO/issues" --input "$RUNNER_TEMP/flareops-issue.json" --jq '"opened drift issue #\(.number)"'
  fi
else
  for n in $numbers; do
    jq -n --arg body "No drift in **$FLAREOPS_ENV** any more: the account matches git again (checked by $run_url). Closing." \
      '{body: $body}' | gh api -X POST "repos/$REPO/issues/$n/comments" --input - --silent
    gh api -X PATCH "repos/$REPO/issues/$n" -f state=closed -f state_reason=completed --silent
    echo "closed drift issue #$n"
  done
fi
