import type { AddressInfo } from "node:net";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { type DynamoDBDocumentClient, GetCommand } from "@aws-sdk/lib-dynamodb";
import { createDocumentClient } from "#shared/clients/dynamodb.ts";
import { createTables, startStore, stopStore } from "../../plugins/local-stack.mjs";
import { resolvedService } from "./serverless.ts";

export interface TestStore {
  endpoint: string;
  client: DynamoDBDocumentClient;
  /** Table names by logical id, as serverless.yml declares them for the stage. */
  tables: Record<string, string>;
  stop(): Promise<void>;
}

const CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" };

/** A real dynalite on a free port with the tables of serverless.yml (resolved for `stage`). */
export async function startTestStore(stage = "test"): Promise<TestStore> {
  const server = await startStore({ port: 0 });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const raw = new DynamoDBClient({ endpoint, region: "us-east-1", credentials: CREDENTIALS });
  const resources = (await resolvedService(stage)).resources.Resources as Record<
    string,
    { Type: string; Properties: { TableName: string } }
  >;
  await createTables(raw, resources);
  const tables = Object.fromEntries(
    Object.entries(resources)
      .filter(([, resource]) => resource.Type === "AWS::DynamoDB::Table")
      .map(([logicalId, resource]) => [logicalId, resource.Properties.TableName]),
  );
  return {
    endpoint,
    client: createDocumentClient(raw),
    tables,
    async stop() {
      raw.destroy();
      await stopStore(server);
    },
  };
}

/** A document client whose endpoint refuses connections: DynamoDB "down", through the real SDK. */
export function unreachableClient(): DynamoDBDocumentClient {
  return createDocumentClient(
    new DynamoDBClient({
      endpoint: "http://127.0.0.1:9", // discard port: nothing listens, connections are refused at once
      region: "us-east-1",
      credentials: CREDENTIALS,
      maxAttempts: 2,
      requestHandler: { connectionTimeout: 500, requestTimeout: 1_000 },
    }),
  );
}

export async function getItem(
  client: DynamoDBDocumentClient,
  tableName: string,
  key: Record<string, unknown>,
) {
  const { Item } = await client.send(
    new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true }),
  );
  return Item;
}

/**
 * Fault injection around a real SDK client: `fault(input)` runs before each command is sent and
 * may wait (a slow store), throw (a throttled item, a refused connection) or let it through.
 * `commandName` is the SDK's (`UpdateItemCommand`, `GetItemCommand`, …).
 */
export function faultyClient(
  endpoint: string,
  fault: (command: { commandName: string; input: Record<string, unknown> }) => Promise<void> | void,
): DynamoDBDocumentClient {
  const raw = new DynamoDBClient({ endpoint, region: "us-east-1", credentials: CREDENTIALS, maxAttempts: 1 });
  raw.middlewareStack.add(
    (next, context) => async (args) => {
      await fault({ commandName: String(context.commandName), input: args.input as Record<string, unknown> });
      return next(args);
    },
    { step: "initialize", name: "faultInjection" },
  );
  return createDocumentClient(raw);
}

/** Waits `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The error the SDK raises when DynamoDB throttles an item (the real exception class). */
export async function throttlingError(): Promise<Error> {
  const { ProvisionedThroughputExceededException } = await import("@aws-sdk/client-dynamodb");
  return new ProvisionedThroughputExceededException({
    message: "The level of configured provisioned throughput for the table was exceeded",
    $metadata: { httpStatusCode: 400 },
  });
}

/** The error Node raises when nothing listens (a store that is down), as the SDK passes it on. */
export function connectionRefused(): Error {
  return Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8000"), {
    code: "ECONNREFUSED",
    name: "Error",
  });
}
