import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { devToken } from "../../plugins/dev-issuer.mjs";
import { type LocalStack, startLocalStackOnFreePorts } from "../support/local-stack.ts";
import { ROOT, serverless } from "../support/serverless.ts";

/** The project's files: those git knows (tracked or new, not ignored), as they are on disk now. */
function projectFiles(): string[] {
  return execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: ROOT,
    encoding: "utf8",
  })
    .split("\0")
    .filter((file) => file && existsSync(join(ROOT, file)));
}

/** A copy of the project, node_modules linked, so a test can edit its gateway.config.ts and nothing else. */
function copyProject(): string {
  const copy = mkdtempSync(join(tmpdir(), "gatehouse-copy-"));
  for (const file of projectFiles()) {
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(join(ROOT, file), join(copy, file));
  }
  symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"), "dir");
  return copy;
}

/** Replaces one exact passage of a file, failing if it is not there exactly once. */
function edit(file: string, find: string, replace: string) {
  const text = readFileSync(file, "utf8");
  assert.equal(text.split(find).length, 2, `${file} holds "${find}" once`);
  writeFileSync(file, text.replace(find, replace));
}

type Template = {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown>; DependsOn?: unknown }>;
};

describe("one edit of gateway.config.ts adds routes, an HTTP upstream, Lambda upstreams and a plan", () => {
  let copy: string;
  let config: string;
  let stack: LocalStack | undefined;

  before(() => {
    // Prepare: the edits a team makes, in gateway.config.ts only.
    copy = copyProject();
    config = join(copy, "gateway.config.ts");
    edit(
      config,
      "  upstreams: {\n",
      `  upstreams: {
    // Added: a new HTTP service (the demo's products locally), a Lambda upstream on a function
    // serverless.yml has, and one on a new function whose code the upstream gives.
    warehouse: { targets: [{ url: serviceUrl(stage, "warehouse") }], timeoutMs: 2_000, retries: 1 },
    status: { kind: "lambda", function: "health", timeoutMs: 2_000, retries: 0 },
    shelf: { kind: "lambda", function: "shelf", code: "handlers/services/catalog.handler", timeoutMs: 2_000, retries: 0 },
`,
    );
    edit(
      config,
      "    plans: {\n",
      `    plans: {
      // Added: a plan for inventory partners.
      partner: { rate: { perSecond: 20, burst: 40 }, quota: { limit: 100, period: "day" } },
`,
    );
    edit(
      config,
      "  routes: {\n",
      `  routes: {
    // Added: a proxied route on the new upstream, and one on each Lambda upstream.
    "GET /v1/warehouse/{sku}": {
      auth: { apiKey: {} },
      limit: {},
      proxy: { upstream: "warehouse", path: "/products/{sku}" },
    },
    "GET /v1/status": { auth: { apiKey: {} }, proxy: { upstream: "status", path: "/health" } },
    "GET /v1/shelf/{id}": { auth: { apiKey: {} }, proxy: { upstream: "shelf", path: "/products/{id}" } },
`,
    );
  });

  after(async () => {
    await stack?.stop();
    if (copy) rmSync(copy, { recursive: true, force: true });
  });

  it("differs from the project in gateway.config.ts only", () => {
    const changed = projectFiles().filter(
      (file) => !readFileSync(join(ROOT, file)).equals(readFileSync(join(copy, file))),
    );
    assert.deepEqual(changed, ["gateway.config.ts"]);
  });

  it("serverless package emits their API Gateway routes, the new function and the gateway's invoke grant", async () => {
    // Act
    const out = join(copy, ".serverless-test");
    const packaged = await serverless(["package", "--stage", "prod", "--package", out], {}, copy);
    // Assess
    assert.equal(packaged.code, 0, packaged.stderr + packaged.stdout);
    const template = JSON.parse(
      readFileSync(join(out, "cloudformation-template-update-stack.json"), "utf8"),
    ) as Template;
    const routes = Object.values(template.Resources)
      .filter((resource) => resource.Type === "AWS::ApiGatewayV2::Route")
      .map((resource) => resource.Properties);
    const route = (key: string) => routes.find((properties) => properties.RouteKey === key);
    assert.equal(route("GET /v1/warehouse/{sku}")?.AuthorizationType, "CUSTOM");
    assert.equal(route("GET /v1/status")?.AuthorizationType, "CUSTOM");
    assert.equal(route("GET /v1/shelf/{id}")?.AuthorizationType, "CUSTOM");
    const shelf = template.Resources.ShelfLambdaFunction;
    assert.equal(shelf?.Type, "AWS::Lambda::Function");
    assert.equal(shelf?.Properties.FunctionName, "gatehouse-prod-shelf");
    assert.deepEqual(shelf?.Properties.Role, { "Fn::GetAtt": ["HttpSystemRole", "Arn"] });
    const policies = template.Resources.GatewayRole?.Properties.Policies as {
      PolicyName: string;
      PolicyDocument: { Statement: { Action: string[]; Resource: unknown[] }[] };
    }[];
    const invoke = policies.find((policy) => policy.PolicyName === "invoke-lambda-upstreams");
    assert.deepEqual(invoke?.PolicyDocument.Statement, [
      {
        Effect: "Allow",
        Action: ["lambda:InvokeFunction"],
        Resource: [
          { "Fn::GetAtt": ["HealthLambdaFunction", "Arn"] },
          { "Fn::GetAtt": ["ShelfLambdaFunction", "Arn"] },
          { "Fn::GetAtt": ["CatalogLambdaFunction", "Arn"] },
        ],
      },
    ]);
  });

  it("the local stack serves the new routes through the new upstreams to a key of the new plan", async () => {
    // Prepare
    stack = await startLocalStackOnFreePorts({ cwd: copy });
    const token = await devToken(copy, { port: stack.ports.issuer, sub: "ops", scope: "gatehouse:admin" });
    const created = await fetch(`${stack.httpUrl}/admin/keys`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ owner: "partner-co", plan: "partner" }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const { key } = (await created.json()) as { key: string };

    // Act
    const product = await fetch(`${stack.httpUrl}/v1/warehouse/p-2`, { headers: { "x-api-key": key } });
    const status = await fetch(`${stack.httpUrl}/v1/status`, { headers: { "x-api-key": key } });
    const shelved = await fetch(`${stack.httpUrl}/v1/shelf/p-3`, { headers: { "x-api-key": key } });
    const usage = await fetch(`${stack.httpUrl}/usage`, { headers: { "x-api-key": key } });

    // Assess
    assert.equal(product.status, 200, await product.clone().text());
    assert.deepEqual(await product.json(), { id: "p-2", name: "Difference Engine", price: 1822 });
    assert.equal(status.status, 200, await status.clone().text());
    assert.equal(((await status.json()) as { status: string }).status, "ok");
    assert.equal(shelved.status, 200, await shelved.clone().text());
    const shelf = (await shelved.json()) as { id: string; name: string; servedBy: string };
    assert.deepEqual([shelf.id, shelf.name, shelf.servedBy], ["p-3", "Bombe", "lambda"]);
    assert.equal(usage.status, 200, await usage.clone().text());
    // The new route is limited and counted against the new plan's quota (the status route is not limited).
    const body = (await usage.json()) as { plan: string; quota: { limit: number; used: number } | null };
    assert.equal(body.plan, "partner");
    assert.deepEqual({ limit: body.quota?.limit, used: body.quota?.used }, { limit: 100, used: 1 });
  });

  it("a Lambda upstream naming a function serverless.yml lacks fails the build, naming the field", async () => {
    // Prepare
    edit(config, 'function: "health"', 'function: "healthz"');
    // Act
    const printed = await serverless(["print", "--stage", "prod"], {}, copy);
    // Assess
    assert.notEqual(printed.code, 0);
    assert.match(
      printed.stderr + printed.stdout,
      /upstreams\.status\.function: "healthz" is not a function of serverless\.yml/,
    );
  });
});
