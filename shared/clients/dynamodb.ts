import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
} from "@aws-sdk/lib-dynamodb";
import { traceClient } from "../observability/tracer.ts";

/**
 * A DynamoDB document client; a handler makes one at module scope, so once per container, and passes
 * it to what needs it (nothing in shared/ makes its own). Timeouts are set so a slow or unreachable table
 * fails the call in about a second instead of hanging until the Lambda timeout; the endpoint comes
 * from the SDK's own `AWS_ENDPOINT_URL_DYNAMODB` (the local stack sets it), so nothing here changes
 * between local and AWS. Under X-Ray each call is a `DynamoDB` subsegment (`traceClient`).
 */
export function createDocumentClient(
  client = new DynamoDBClient({
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 },
  }),
): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(traceClient(client), {
    marshallOptions: { removeUndefinedValues: true },
  });
}

/**
 * A client for the usage limiter. A limit check runs under its own time budget (`limits.timeoutMs`, an
 * abort signal), so this client sets no request timeout of its own: a slow answer must surface as
 * the budget running out (refused, 503), never as a store failure (which `onStoreFailure: open` would
 * admit in memory). A connection that cannot be made within a second is the store being unreachable.
 * No SDK retries: a throttled counter is a refusal at once, and a retried conditional write could
 * count twice. Make it once per container, in the handler.
 */
export function createLimiterDocumentClient(): DynamoDBDocumentClient {
  return createDocumentClient(
    new DynamoDBClient({ maxAttempts: 1, requestHandler: { connectionTimeout: 1_000 } }),
  );
}

/**
 * A client for the response cache's shared tier. A table read sits in front of the upstream call, so
 * it must fail fast: a read or write the table does not answer in a second is a miss (the cache logs
 * it and calls the upstream), never a wait as long as the upstream's. Make it once per container.
 */
export function createCacheDocumentClient(): DynamoDBDocumentClient {
  return createDocumentClient(
    new DynamoDBClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 500, requestTimeout: 1_000 } }),
  );
}

/** Whether a DynamoDB call failed only because its condition did not hold (the SDK's error name). */
export const isConditionFailure = (error: unknown): boolean =>
  (error as Error | undefined)?.name === "ConditionalCheckFailedException";

/** Every item a query matches, following `LastEvaluatedKey` page after page. */
export async function queryAll(
  client: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, "ExclusiveStartKey">,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(new QueryCommand({ ...input, ExclusiveStartKey }));
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
}

/**
 * Deletes the items with these keys, 25 per `BatchWriteItem` (DynamoDB's most), retrying a batch's
 * unprocessed items up to 4 times with backoff; throws if some are still unprocessed, naming `what`.
 * Example: `await deleteAll(client, tableName, [{ pk: "a" }, { pk: "b" }], "cache entries")`.
 */
export async function deleteAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  what: string,
): Promise<void> {
  const deletes = keys.map((key) => ({ DeleteRequest: { Key: key } }));
  for (let start = 0; start < deletes.length; start += 25) {
    let requests: typeof deletes | undefined = deletes.slice(start, start + 25);
    for (let attempt = 0; requests && requests.length > 0 && attempt < 5; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 20 * 2 ** attempt));
      const { UnprocessedItems } = await client.send(
        new BatchWriteCommand({ RequestItems: { [tableName]: requests } }),
      );
      requests = UnprocessedItems?.[tableName] as typeof deletes | undefined;
    }
    if (requests && requests.length > 0) throw new Error(`${requests.length} ${what} deletes unprocessed`);
  }
}
