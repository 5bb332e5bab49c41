/**
 * The public AWS prices the bench cases turn counted calls into dollars with: one table, each price
 * with the page it is published on and when and how it was last checked. US East (N. Virginia), on
 * demand, without free tiers, savings plans or the volume tiers past the first. Never fetched at run
 * time (the bench machine has no network): re-check them on the pages named before quoting figures,
 * and change `checked` when you do.
 *
 * Unit rules the cases apply (DynamoDB Developer Guide, "Read/write capacity mode" and "Item sizes
 * and formats"): one WRU writes an item of up to 1 KB (a replacing PutItem or an UpdateItem: the
 * larger of the item before and after); a write whose condition fails still consumes the WRUs of the
 * item's size; a write that changes an item a global secondary index holds also writes the index (the
 * projected item's size; two writes when the index key changes). One RRU is a strongly consistent
 * read of up to 4 KB; an eventually consistent read is half that, and a read that finds no item
 * still consumes the minimum. Storage, backups, streams and data transfer are not counted anywhere.
 */

export interface Price {
  /** US dollars per `unit`. */
  usd: number;
  unit: string;
  what: string;
  /** The page that publishes the price. */
  source: string;
  /** When the figure was last checked (YYYY-MM-DD)… */
  checked: string;
  /** …and against what (no network from the bench machine: stored copies of public pages). */
  basis: string;
}

const CHECKED = "2026-11-30";

export const AWS_PRICES = {
  apiGatewayHttp: {
    what: "API Gateway HTTP API requests",
    usd: 1.0,
    unit: "per million requests (first 300 million a month; $0.90 after)",
    source: "https://aws.amazon.com/api-gateway/pricing/",
    checked: CHECKED,
    basis:
      'stored copies of the AWS whitepaper "Best Practices for Designing Amazon API Gateway Private APIs", table 4, and the pricing page\'s worked example',
  },
  apiGatewayRest: {
    what: "API Gateway REST API requests",
    usd: 3.5,
    unit: "per million requests (first 333 million a month; $2.80 the next 667 million)",
    source: "https://aws.amazon.com/api-gateway/pricing/",
    checked: CHECKED,
    basis: "as above",
  },
  apiGatewayRestCache05: {
    what: "API Gateway REST API cache, 0.5 GB (the smallest)",
    usd: 0.02,
    unit: "per hour the stage's cache exists, used or not (no free tier)",
    source: "https://aws.amazon.com/api-gateway/pricing/",
    checked: CHECKED,
    basis:
      'stored secondary pages (the live rate table renders from a script): "$0.02/hour for 0.5 GB" (awsforengineers.com, 2025-05), "$14.60 a month" (tmmr.uk)',
  },
  apiGatewayRestCache16: {
    what: "API Gateway REST API cache, 1.6 GB",
    usd: 0.038,
    unit: "per hour the stage's cache exists, used or not",
    source: "https://aws.amazon.com/api-gateway/pricing/",
    checked: CHECKED,
    basis: "the pricing page's worked example as transcribed on 2026-09-20",
  },
  lambdaInvocations: {
    what: "Lambda invocations",
    usd: 0.2,
    unit: "per million invocations",
    source: "https://aws.amazon.com/lambda/pricing/",
    checked: CHECKED,
    basis: "stored secondary pages (cloudchipr.com 2024; a Lambda cost note)",
  },
  lambdaArmGbSecond: {
    what: "Lambda duration, arm64",
    usd: 0.0000133334,
    unit: "per GB-second (first 7.5 billion GB-s a month), billed by the 1 ms",
    source: "https://aws.amazon.com/lambda/pricing/",
    checked: CHECKED,
    basis: "as above",
  },
  dynamodbWru: {
    what: "DynamoDB on-demand writes, Standard table class",
    usd: 0.625,
    unit: "per million write request units",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    checked: CHECKED,
    basis:
      "stored secondary pages (airbyte.com 2025-07: the prices since AWS halved on-demand prices on 2024-11-01)",
  },
  dynamodbRru: {
    what: "DynamoDB on-demand reads, Standard table class",
    usd: 0.125,
    unit: "per million read request units",
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    checked: CHECKED,
    basis: "as above",
  },
} as const satisfies Record<string, Price>;

/** Bytes one write request unit covers. */
export const WRU_BYTES = 1_024;
/** Bytes one (strongly consistent) read request unit covers. */
export const RRU_BYTES = 4_096;
/** Hours in a month as AWS prices hourly resources (365 × 24 / 12). */
export const HOURS_PER_MONTH = 730;
