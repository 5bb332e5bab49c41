/**
 * The one place that reads `process.env`. Each value is read on first use and then kept, so a
 * handler pays for it once per container; a missing required variable throws with its name.
 */

/** Thrown when the deployment is misconfigured; it becomes a generic 500 and a log line. */
class ConfigError extends Error {
  override readonly name = "ConfigError";
}

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new ConfigError(`Environment variable ${name} is not set; it is declared in serverless.yml`);
  }
  return value;
}

function optional(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === "" ? undefined : value;
}

const cache = new Map<string, string | undefined>();
function once(name: string, read: (name: string) => string | undefined): string | undefined {
  if (!cache.has(name)) cache.set(name, read(name));
  return cache.get(name);
}
const req = (name: string) => once(name, required) as string;
const opt = (name: string) => once(name, optional);

export const env = {
  /** Deployment stage (`dev`, `prod`, `local`, ...). */
  get stage(): string {
    return req("GATEHOUSE_STAGE");
  },
  /**
   * The `service` of every log line and metric: `<service>-<stage>` on a deployed stage
   * (serverless.yml), so two stages in one account never add up in one metric; `gatehouse` elsewhere.
   */
  get serviceName(): string {
    return opt("POWERTOOLS_SERVICE_NAME") ?? "gatehouse";
  },
  /** Release version, from package.json at deploy time. */
  get version(): string {
    return opt("GATEHOUSE_VERSION") ?? "0.0.0";
  },
  get connectionsTable(): string {
    return req("CONNECTIONS_TABLE");
  },
  get apiKeysTable(): string {
    return req("API_KEYS_TABLE");
  },
  /** Usage counters and metering. */
  get usageTable(): string {
    return req("USAGE_TABLE");
  },
  /** The response cache's shared tier (set by plugins/gateway-wiring.mjs when a route caches). */
  get cacheTable(): string {
    return req("CACHE_TABLE");
  },
  /** The local stack's development issuer (`none` on deployed stages). */
  get devIssuerUrl(): string | undefined {
    const value = opt("GATEHOUSE_DEV_ISSUER_URL");
    return value === "none" ? undefined : value;
  },
  /** The CA file of the local dev issuer's TLS certificate (`none` on deployed stages). */
  get devIssuerCaFile(): string | undefined {
    const value = opt("GATEHOUSE_DEV_ISSUER_CA_FILE");
    return value === "none" ? undefined : value;
  },
  /** The local stack's demo upstream services (`none` on deployed stages). */
  get demoServicesUrl(): string | undefined {
    const value = opt("GATEHOUSE_DEMO_SERVICES_URL");
    return value === "none" ? undefined : value;
  },
  /** `<service>-<stage>-`: turns a serverless.yml function key into the deployed function name. */
  get functionPrefix(): string {
    return req("GATEHOUSE_FUNCTION_PREFIX");
  },
  get roomMembersTable(): string {
    return req("ROOM_MEMBERS_TABLE");
  },
  get messagesTable(): string {
    return req("MESSAGES_TABLE");
  },
  /**
   * The WebSocket API's management endpoint, for PostToConnection, when it is given outright: the
   * local stack's (serverless-offline's WebSocket port, no stage). Deployed stages say `none` and
   * the endpoint is built from the API's id (`websocketManagementEndpoint`).
   */
  get websocketEndpoint(): string | undefined {
    const value = opt("GATEHOUSE_WS_ENDPOINT");
    return value === "none" ? undefined : value;
  },
  /** The WebSocket API's id, for functions whose events come from the HTTP API (the bridge). */
  get websocketApiId(): string | undefined {
    const value = opt("GATEHOUSE_WS_API_ID");
    return value === "none" ? undefined : value;
  },
  /** The Region the function runs in (Lambda sets it; the local stack too). */
  get region(): string {
    return req("AWS_REGION");
  },
  /**
   * Whether this function traces to X-Ray: it runs in Lambda (`AWS_EXECUTION_ENV`, which neither
   * serverless-offline nor `invoke local` sets) and `POWERTOOLS_TRACE_ENABLED` is not `false`; never
   * under SAM local. Powertools Tracer's own rule, read here so that, off, the tracer is never loaded.
   */
  get tracing(): boolean {
    return (
      opt("AWS_EXECUTION_ENV") !== undefined &&
      opt("POWERTOOLS_TRACE_ENABLED")?.toLowerCase() !== "false" &&
      opt("AWS_SAM_LOCAL") === undefined
    );
  },
  /** True under serverless-offline (the local stack). */
  get isOffline(): boolean {
    return opt("IS_OFFLINE") === "true";
  },
};

/** Tests only: forget the values read so far, after changing `process.env`. */
export function resetEnvCache(): void {
  cache.clear();
}
