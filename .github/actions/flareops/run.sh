#!/usr/bin/env bash
# Runs `flareops COMMAND` for the action (action.yml) and writes its outputs.
#
# Inputs (environment): FLAREOPS_COMMAND (plan | apply | drift),
# FLAREOPS_ENVIRONMENTS (space- or comma-separated; empty: every
# environments/*.yaml), FLAREOPS_FORMAT (markdown | text | json),
# FLAREOPS_ARGS (extra arguments, split on spaces), RUNNER_TEMP, GITHUB_OUTPUT.
# Outputs: exit-code, report (the report's path), body (the report when it is
# markdown, or apply's log). apply runs with --yes and has no --format. The step itself succeeds whatever flareops exits with: the
# caller decides from exit-code (drift exits 2 when it finds drift).
set -euo pipefail

command="${FLAREOPS_COMMAND:?command is required (plan, apply or drift)}"
format="${FLAREOPS_FORMAT:-markdown}"
case "$command" in plan|apply|drift) ;; *) echo "::error::command must be plan, apply or drift: got '$command'"; exit 1 ;; esac
case "$format" in markdown|text|json) ;; *) echo "::error::format must be markdown, text or json: got '$format'"; exit 1 ;; esac

environments="${FLAREOPS_ENVIRONMENTS:-}"
read -r -a envs <<< "${environments//,/ }"
if [ "${#envs[@]}" -eq 0 ]; then
  shopt -s nullglob
  for f in environments/*.yaml; do envs+=("$(basename "$f" .yaml)"); done
  shopt -u nullglob
fi
[ "${#envs[@]}" -gt 0 ] || { echo "::error::no environments given and no environments/*.yaml"; exit 1; }
read -r -a extra <<< "${FLAREOPS_ARGS:-}"

# A secret that is not set arrives as an empty string: unset it, so flareops
# sees it missing.
[ -n "${CLOUDFLARE_API_TOKEN:-}" ] || unset CLOUDFLARE_API_TOKEN

ext=md; [ "$format" = json ] && ext=json; [ "$format" = text ] && ext=txt
# apply prints a log, not a report: it has no --format.
[ "$command" = apply ] && ext=txt
out="$RUNNER_TEMP/flareops-out"
mkdir -p "$out"
report="$out/$command.$ext"

status=0
if [ "$command" = plan ]; then
  env_flags=()
  for e in "${envs[@]}"; do env_flags+=(--env "$e"); done
  flareops plan "${env_flags[@]}" --format "$format" "${extra[@]}" > "$report" || status=$?
else
  # apply and drift take one environment at a time; the highest exit wins.
  # apply runs unattended (--yes): the plan was reviewed on the pull request.
  : > "$report"
  for e in "${envs[@]}"; do
    s=0
    if [ "$command" = apply ]; then
      flareops apply --env "$e" --yes "${extra[@]}" 2>&1 | tee -a "$report" || s=$?
    else
      flareops drift --env "$e" --format "$format" "${extra[@]}" >> "$report" || s=$?
    fi
    [ "$s" -le "$status" ] || status=$s
  done
fi
echo "flareops $command (${envs[*]}): exit $status"

{
  echo "exit-code=$status"
  echo "report=$report"
  if [ "$format" = markdown ] || [ "$command" = apply ]; then
    delim="FLAREOPS_BODY_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    echo "body<<$delim"
    cat "$report"
    echo "$delim"
  fi
} >> "$GITHUB_OUTPUT"
if [ "$format" = markdown ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  cat "$report" >> "$GITHUB_STEP_SUMMARY" || true
fi
