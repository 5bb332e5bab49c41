// What the developer CLIs share (scripts/keys.ts, scripts/usage.ts): a DynamoDB client for a stage,
// and one way to end: usage errors exit 2 with the usage text, everything else exits 1 with a line.
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { HttpError } from "#shared/errors.ts";

/** A mistake in the command line: printed with the usage text, exit code 2. */
export class UsageError extends Error {}

/**
 * The stage's DynamoDB: `local` is the local stack's store on 127.0.0.1 (GATEHOUSE_DYNAMODB_PORT,
 * default 8000) with fake credentials; any other stage is AWS with your usual credentials.
 */
export function stageDynamoClient(stage: string, region?: string): DynamoDBClient {
  return new DynamoDBClient({
    region: region ?? process.env.AWS_REGION ?? "us-east-1",
    maxAttempts: 2,
    ...(stage === "local"
      ? {
          endpoint: `http://127.0.0.1:${process.env.GATEHOUSE_DYNAMODB_PORT ?? "8000"}`,
          credentials: { accessKeyId: "local", secretAccessKey: "local" },
        }
      : {}),
  });
}

/** Runs a CLI's main, turns its failures into a message and an exit code, and closes the client. */
export function runCli(
  main: () => Promise<void>,
  { usage, stage, client }: { usage: string; stage: string; client: DynamoDBClient },
): void {
  main()
    .catch((error: unknown) => {
      if (error instanceof UsageError) {
        console.error(`${error.message}\n\n${usage}`);
        process.exitCode = 2;
      } else if (error instanceof HttpError && error.expose) {
        console.error(error.message);
        process.exitCode = 1;
      } else {
        const name = error instanceof Error ? error.name : "";
        console.error(
          stage === "local" && /ECONNREFUSED|TimeoutError/.test(`${name} ${String(error)}`)
            ? "cannot reach the local stack's store: is `npm start` running?"
            : `failed: ${error instanceof Error ? error.message : String(error)}`,
        );
        process.exitCode = 1;
      }
    })
    .finally(() => client.destroy());
}
