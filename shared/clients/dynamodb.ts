import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from "@aws-sdk/lib-dynamodb";

/**
 * DynamoDB clients are made once per container. Timeouts are set so a slow or unreachable table
 * fails the call in about a second instead of hanging until the Lambda timeout; the endpoint comes
 * from the SDK's own `AWS_ENDPOINT_URL_DYNAMODB` (the local stack sets it), so nothing here changes
 * between local and AWS.
 */
export function createDocumentClient(
  client = new DynamoDBClient({
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 1_000, requestTimeout: 2_000 },
  }),
): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

let shared: DynamoDBDocumentClient | undefined;

/** The container's document client, created on first use. */
export function documentClient(): DynamoDBDocumentClient {
  shared ??= createDocumentClient();
  return shared;
}

let limiterShared: DynamoDBDocumentClient | undefined;

/**
 * The usage limiter's client: it sits on the request path before the upstream call, so it gives up
 * sooner (the limiter's own time budget, `limits.timeoutMs`, aborts it earlier still) and retries once.
 */
export function limiterDocumentClient(): DynamoDBDocumentClient {
  limiterShared ??= createDocumentClient(
    new DynamoDBClient({ maxAttempts: 2, requestHandler: { connectionTimeout: 250, requestTimeout: 500 } }),
  );
  return limiterShared;
}

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
