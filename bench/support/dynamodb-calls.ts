/**
 * Counting DynamoDB calls as they go on the wire, and sizing items as DynamoDB bills them; for bench
 * cases that report calls and request units per request without taking the code's word for it.
 *
 * `countDynamoCalls(client)` adds a middleware to the client's stack (a document client shares the
 * stack of the client it wraps) at the `deserialize` step, which runs once per HTTP attempt (SDK
 * retries included, as DynamoDB bills them). Each call is counted by its operation (`x-amz-target`)
 * and by the kind of item it addresses (the key's `pk` up to its first `#`, e.g. `limit#`), and its
 * outcome: answered, a failed condition, or another error.
 */
import {
  type AttributeValue,
  DescribeTableCommand,
  ScanCommand,
  type TableDescription,
} from "@aws-sdk/client-dynamodb";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

/** Calls by `<Operation> <pk prefix>`, e.g. `UpdateItem limit#`, and their outcomes. */
export interface CallCounts {
  byKind: Record<string, number>;
  /** Calls whose condition failed (ConditionalCheckFailedException): billed, but not applied. */
  failedConditions: number;
  /** Calls that failed for any other reason (throttling, validation, network). */
  errors: number;
  /** Those failed calls by kind: an attempt the SDK retried is on the wire twice, in the code once. */
  erroredByKind: Record<string, number>;
}

export interface CallCounter {
  /** A copy of the counts so far. */
  snapshot(): CallCounts;
  /** The counts since `before` (a snapshot). */
  since(before: CallCounts): CallCounts;
}

export const emptyCounts = (): CallCounts => ({
  byKind: {},
  failedConditions: 0,
  errors: 0,
  erroredByKind: {},
});

/** The calls counted under `key` (e.g. `UpdateItem limit#`), 0 if none. */
export function calls(counts: CallCounts, key: string): number {
  return counts.byKind[key] ?? 0;
}

const utf8 = new TextDecoder();

export function countDynamoCalls(client: DynamoDBDocumentClient): CallCounter {
  const counts = emptyCounts();
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string>; body?: unknown };
      const target = request.headers?.["x-amz-target"] ?? "";
      const operation = target.slice(target.indexOf(".") + 1) || "unknown";
      // The SDK's JSON body is a Uint8Array that warns when used as a string: decode its bytes.
      const body =
        typeof request.body === "string"
          ? request.body
          : request.body instanceof Uint8Array
            ? utf8.decode(request.body)
            : "";
      let prefix = "";
      try {
        const input = JSON.parse(body || "{}") as {
          Key?: { pk?: { S?: string } };
          Item?: { pk?: { S?: string } };
        };
        const pk = input.Key?.pk?.S ?? input.Item?.pk?.S ?? "";
        prefix = pk.includes("#") ? pk.slice(0, pk.indexOf("#") + 1) : pk === "" ? "(no key)" : pk;
      } catch {
        prefix = "(unreadable)";
      }
      const key = `${operation} ${prefix}`;
      counts.byKind[key] = (counts.byKind[key] ?? 0) + 1;
      try {
        return await next(args);
      } catch (error) {
        if ((error as Error)?.name === "ConditionalCheckFailedException") counts.failedConditions++;
        else {
          counts.errors++;
          counts.erroredByKind[key] = (counts.erroredByKind[key] ?? 0) + 1;
        }
        throw error;
      }
    },
    { step: "deserialize", name: "benchDynamoCallCounter", priority: "high" },
  );
  return {
    snapshot: () => addCounts(emptyCounts(), counts),
    since: (before) => addCounts(addCounts(emptyCounts(), counts), before, -1),
  };
}

/** Adds `b` (times `sign`) into `a`, dropping kinds that come to 0; returns `a`. */
export function addCounts(a: CallCounts, b: CallCounts, sign = 1): CallCounts {
  for (const field of ["byKind", "erroredByKind"] as const) {
    for (const [key, value] of Object.entries(b[field])) {
      const sum = (a[field][key] ?? 0) + sign * value;
      if (sum === 0) delete a[field][key];
      else a[field][key] = sum;
    }
  }
  a.failedConditions += sign * b.failedConditions;
  a.errors += sign * b.errors;
  return a;
}

/**
 * An item's size as DynamoDB counts it for request units ("Item sizes and formats", DynamoDB
 * Developer Guide): the UTF-8 length of each attribute name plus its value's size. Strings: UTF-8
 * bytes; numbers: about one byte per two significant digits plus one; binary: its bytes; null and
 * booleans: one byte; lists and maps: three bytes plus one per element, plus the elements.
 */
export function dynamoItemSize(item: Record<string, AttributeValue>): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) size += Buffer.byteLength(name) + valueSize(value);
  return size;
}

function numberSize(text: string): number {
  const mantissa = text.replace(/^[-+]/, "").replace(/[eE].*$/, "");
  const digits = mantissa.replace(".", "").replace(/^0+/, "").replace(/0+$/, "");
  return Math.ceil(digits.length / 2) + 1;
}

function valueSize(value: AttributeValue): number {
  if (value.S !== undefined) return Buffer.byteLength(value.S);
  if (value.N !== undefined) return numberSize(value.N);
  if (value.B !== undefined) return value.B.byteLength;
  if (value.BOOL !== undefined || value.NULL !== undefined) return 1;
  if (value.SS !== undefined) return value.SS.reduce((sum, s) => sum + Buffer.byteLength(s), 0);
  if (value.NS !== undefined) return value.NS.reduce((sum, n) => sum + numberSize(n), 0);
  if (value.BS !== undefined) return value.BS.reduce((sum, b) => sum + b.byteLength, 0);
  if (value.L !== undefined) return 3 + value.L.reduce((sum, v) => sum + 1 + valueSize(v), 0);
  if (value.M !== undefined) {
    const entries = Object.values(value.M);
    return 3 + entries.length + dynamoItemSize(value.M);
  }
  throw new Error(`an attribute value of an unknown type: ${JSON.stringify(value)}`);
}

/**
 * The calls counted, by operation alone (`GetItem`, `PutItem`, …): for tables whose keys have no
 * prefix to tell kinds of item apart (the cache table's `pk` is a hash, one `byKind` entry each).
 */
export function byOperation(counts: CallCounts): Record<string, number> {
  const operations: Record<string, number> = {};
  for (const [key, n] of Object.entries(counts.byKind)) {
    const operation = key.slice(0, key.indexOf(" ") === -1 ? key.length : key.indexOf(" "));
    operations[operation] = (operations[operation] ?? 0) + n;
  }
  return operations;
}

/** A table's description and every item in it, as DynamoDB JSON (for sizing; read after the counting). */
export async function readTable(
  client: DynamoDBDocumentClient,
  tableName: string,
): Promise<{ table: TableDescription; items: Record<string, AttributeValue>[] }> {
  const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
  if (!Table) throw new Error(`no table ${tableName}`);
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: tableName, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return { table: Table, items };
}
