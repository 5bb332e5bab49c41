import { BatchGetCommand, type DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { queryAll } from "../clients/dynamodb.ts";
import { isoDay } from "./windows.ts";

/**
 * Usage metering for billing: per subject, per route, per UTC day, the admitted requests, their cost
 * units, how many ended 4XX and 5XX, and how many were refused by a limit (not admitted, so not in
 * `requests`). One small item per subject, day and route (`pk = usage#<subject>`, `sk = <day>#<route>`),
 * updated with `ADD` after the answer: one write per request, never read-then-write. The `byDay`
 * index (`day`, `subjectRoute`) serves the admin export for a date range; it holds keys only, so
 * a count does not write to it (only a day's first request for a route does), and the export
 * reads the items themselves in batches.
 */

export interface UsageRecord {
  subject: string;
  day: string;
  route: string;
  requests: number;
  units: number;
  status4xx: number;
  status5xx: number;
  limited: number;
}

export interface MeteringOptions {
  client: DynamoDBDocumentClient;
  tableName: string;
  /** Days a usage item is kept (DynamoDB TTL); default 400, so a year of invoices can be re-run. */
  retentionDays?: number;
  now?: () => number;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

const COUNTERS = ["requests", "units", "status4xx", "status5xx", "limited"] as const;
type Counts = Record<(typeof COUNTERS)[number], number>;
interface Delta {
  subject: string;
  day: string;
  route: string;
  counts: Counts;
}
/** Failed metering writes kept per container (distinct subject, day and route items). */
const MAX_PENDING = 10_000;

export function createMetering({ client, tableName, retentionDays = 400, now = Date.now }: MeteringOptions) {
  const stats = { writes: 0, dropped: 0 };

  /** The items behind index keys, 100 at a time, retrying what DynamoDB leaves unprocessed. */
  async function itemsOf(keys: Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    for (let i = 0; i < keys.length; i += 100) {
      let pending: Record<string, unknown>[] = keys.slice(i, i + 100);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0)
          await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 50 * 2 ** attempt)));
        if (attempt > 8) throw new Error("the usage table kept batch reads unprocessed");
        const batch = await client.send(
          new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending, ConsistentRead: true } } }),
        );
        items.push(...(batch.Responses?.[tableName] ?? []));
        pending = (batch.UnprocessedKeys?.[tableName]?.Keys ?? []) as Record<string, unknown>[];
      }
    }
    return items;
  }
  /** Counts waiting to be written (a failed write's), by subject, day and route. */
  const pending = new Map<string, Delta>();
  const keep = (delta: Delta) => {
    const key = `${delta.subject}|${delta.day}|${delta.route}`;
    const held = pending.get(key);
    if (held) {
      for (const name of COUNTERS) held.counts[name] += delta.counts[name];
    } else if (pending.size < MAX_PENDING) {
      pending.set(key, { ...delta, counts: { ...delta.counts } });
    } else {
      stats.dropped++;
    }
  };

  /** One `ADD` of a delta to its subject, day and route item. */
  async function write(delta: Delta, nowMs: number, signal: AbortSignal | undefined): Promise<void> {
    const counted = COUNTERS.filter((name) => delta.counts[name] > 0);
    const adds = counted.map((_, i) => `#c${i} :c${i}`);
    stats.writes++;
    await client.send(
      new UpdateCommand({
        TableName: tableName,
        Key: { pk: `usage#${delta.subject}`, sk: `${delta.day}#${delta.route}` },
        UpdateExpression: `SET #day = :day, #sr = :sr, #subject = :subject, #route = :route, #exp = :exp ADD ${adds.join(", ")}`,
        // Attribute names through placeholders: several are DynamoDB reserved words.
        ExpressionAttributeNames: {
          "#day": "day",
          "#route": "route",
          "#sr": "subjectRoute",
          "#subject": "subject",
          "#exp": "expiresAt",
          ...Object.fromEntries(counted.map((name, i) => [`#c${i}`, name])),
        },
        ExpressionAttributeValues: {
          ":day": delta.day,
          ":sr": `${delta.subject}#${delta.route}`,
          ":subject": delta.subject,
          ":route": delta.route,
          ":exp": Math.ceil(nowMs / 1000) + retentionDays * 86_400,
          ...Object.fromEntries(counted.map((name, i) => [`:c${i}`, delta.counts[name]])),
        },
      }),
      signal ? { abortSignal: signal } : undefined,
    );
  }

  return {
    stats,

    /** Records kept after a failed write, waiting to be written with the next one. */
    get pending(): number {
      return pending.size;
    },

    /**
     * Meters one answered request: admitted (with its status) or refused by a limit. A write that
     * fails is kept in this container (merged per subject, day and route; at most `MAX_PENDING`) and
     * written after the next write that succeeds, so a table outage loses no counts while the
     * container lives. The error is still thrown, for the caller to log.
     */
    async record(
      entry: { subject: string; route: string; cost: number; status: number; admitted: boolean },
      signal?: AbortSignal,
    ): Promise<void> {
      const nowMs = now();
      const counts: Counts = entry.admitted
        ? {
            requests: 1,
            units: entry.cost,
            status4xx: entry.status >= 400 && entry.status < 500 ? 1 : 0,
            status5xx: entry.status >= 500 ? 1 : 0,
            limited: 0,
          }
        : { requests: 0, units: 0, status4xx: 0, status5xx: 0, limited: 1 };
      const delta = { subject: entry.subject, route: entry.route, day: isoDay(nowMs), counts };
      try {
        await write(delta, nowMs, signal);
      } catch (error) {
        keep(delta);
        throw error;
      }
      for (const [key, held] of [...pending]) {
        pending.delete(key);
        try {
          await write(held, nowMs, signal);
        } catch {
          keep(held);
          break;
        }
      }
    },

    /** One subject's usage from `from` to `to` (UTC days, inclusive), by day and route. */
    async forSubject(subject: string, from: string, to: string): Promise<UsageRecord[]> {
      checkRange(from, to);
      const items = await queryAll(client, {
        TableName: tableName,
        KeyConditionExpression: "pk = :pk AND sk BETWEEN :from AND :to",
        ExpressionAttributeValues: { ":pk": `usage#${subject}`, ":from": `${from}#`, ":to": `${to}#\uffff` },
      });
      return items.map(toRecord);
    },

    /** Everyone's usage from `from` to `to` (UTC days, inclusive), day by day through the `byDay` index. */
    async forRange(from: string, to: string): Promise<UsageRecord[]> {
      checkRange(from, to);
      const records: UsageRecord[] = [];
      for (let day = from; day <= to; day = nextDay(day)) {
        const keys = await queryAll(client, {
          TableName: tableName,
          IndexName: "byDay",
          KeyConditionExpression: "#day = :day",
          ExpressionAttributeNames: { "#day": "day" },
          ExpressionAttributeValues: { ":day": day },
        });
        records.push(...(await itemsOf(keys.map(({ pk, sk }) => ({ pk, sk })))).map(toRecord));
      }
      // Batch reads come back in any order: by day, subject and route, as the index lists them.
      return records.sort(
        (a, b) =>
          a.day.localeCompare(b.day) || a.subject.localeCompare(b.subject) || a.route.localeCompare(b.route),
      );
    },
  };
}

export type Metering = ReturnType<typeof createMetering>;

/** Usage records as CSV (RFC 4180), a header line first. */
export function usageCsv(records: readonly UsageRecord[]): string {
  const columns = [
    "day",
    "subject",
    "route",
    "requests",
    "units",
    "status4xx",
    "status5xx",
    "limited",
  ] as const;
  const cell = (value: string | number) => {
    const text = String(value);
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return `${[columns.join(","), ...records.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\r\n")}\r\n`;
}

/** Longest range one export may cover. */
const MAX_RANGE_DAYS = 366;

export class UsageRangeError extends Error {}

function checkRange(from: string, to: string): void {
  if (!DAY.test(from) || !DAY.test(to) || Number.isNaN(Date.parse(from)) || Number.isNaN(Date.parse(to))) {
    throw new UsageRangeError("from and to are days such as 2026-11-01");
  }
  if (from > to) throw new UsageRangeError("from is after to");
  if ((Date.parse(to) - Date.parse(from)) / 86_400_000 >= MAX_RANGE_DAYS) {
    throw new UsageRangeError(`a range covers at most ${MAX_RANGE_DAYS} days`);
  }
}

function nextDay(day: string): string {
  return isoDay(Date.parse(day) + 86_400_000);
}

function toRecord(item: Record<string, unknown>): UsageRecord {
  const count = (name: string) => (typeof item[name] === "number" ? (item[name] as number) : 0);
  return {
    subject: String(item.subject ?? ""),
    day: String(item.day ?? ""),
    route: String(item.route ?? ""),
    requests: count("requests"),
    units: count("units"),
    status4xx: count("status4xx"),
    status5xx: count("status5xx"),
    limited: count("limited"),
  };
}
