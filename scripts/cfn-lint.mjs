// Lints the CloudFormation template that `serverless package` wrote (.serverless/) with cfn-lint.
// Fails on any error or warning except W3005 (a DependsOn that the framework itself generates next to
// a Ref/GetAtt: redundant, harmless, and not ours to change). If cfn-lint is missing it says how to
// install it and fails: a deploy check that silently passes is worse than none.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const template = ".serverless/cloudformation-template-update-stack.json";
if (!existsSync(template)) {
  console.error(`${template} not found: run \`npx serverless package --stage prod\` first.`);
  process.exit(1);
}
const probe = spawnSync("cfn-lint", ["--version"], { encoding: "utf8" });
if (probe.error || probe.status !== 0) {
  console.error(
    "cfn-lint is not installed. It is a Python tool: `pip install cfn-lint` (or `pipx install cfn-lint`), then run again.",
  );
  process.exit(1);
}
const { status } = spawnSync("cfn-lint", ["--ignore-checks", "W3005", "--", template], { stdio: "inherit" });
if (status === 0) console.log(`cfn-lint (${probe.stdout.trim()}): ${template} has no errors or warnings`);
process.exit(status ?? 1);
