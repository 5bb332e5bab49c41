import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

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
