// The REST client: typed from the gateway's own OpenAPI document (schema.d.ts is generated
// by `make web-api` from openapi.json, which the gateway dumps; both are checked for drift).
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Session = Schemas["SessionOut"];
export type Member = Schemas["MemberOut"];
export type User = Schemas["UserOut"];
export type Message = Schemas["MessageOut"];
export type Invitation = Schemas["InvitationOut"];

/** An error answered by the API, in its standard body, or a network failure (status 0). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: { field: string; message: string }[];
  readonly retryAfter: number | null;

  constructor(status: number, code: string, message: string,
              details: { field: string; message: string }[] = [], retryAfter: number | null = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }

  /** The message for a form field, when the API named that field. */
  forField(field: string): string | undefined {
    return this.details.find((d) => d.field === field)?.message;
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string; details?: { field: string; message: string }[] };
}

/** Reads the standard error body of a failed response (or says what the status means).
 * `parsed` is the body when something has read it already (openapi-fetch reads a failed
 * answer's body into `error`, after which the response's own body cannot be read again). */
export async function errorFrom(response: Response, parsed?: unknown): Promise<ApiError> {
  let body: ErrorBody = {};
  if (typeof parsed === "object" && parsed !== null) {
    body = parsed;
  } else {
    try {
      body = (await response.clone().json()) as ErrorBody;
    } catch {
      // Not JSON (a proxy's page, say), or read already: fall back to the status.
    }
  }
  const retry = response.headers.get("Retry-After");
  return new ApiError(
    response.status,
    body.error?.code ?? "http_" + String(response.status),
    body.error?.message ?? `the server answered ${String(response.status)} ${response.statusText}`,
    body.error?.details ?? [],
    retry === null ? null : Number(retry),
  );
}

export function networkError(cause: unknown): ApiError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new ApiError(0, "network", `could not reach Tandem (${reason}); check your connection`);
}

type TokenSource = () => Promise<string | null>;
let tokenSource: TokenSource = () => Promise.resolve(null);

/** Where the client gets its access token (the auth module installs itself here). */
export function useTokenSource(source: TokenSource): void {
  tokenSource = source;
}

const bearer: Middleware = {
  async onRequest({ request }) {
    if (request.url.includes("/api/v1/auth/")) return request;
    const token = await tokenSource();
    if (token !== null) request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: location.origin, credentials: "same-origin" });
api.use(bearer);

/** Unwraps an openapi-fetch answer: the data, or an ApiError with the API's own words. */
export async function call<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: { data?: T; error?: unknown; response: Response };
  try {
    result = await pending;
  } catch (cause) {
    throw networkError(cause);
  }
  if (!result.response.ok) throw await errorFrom(result.response, result.error);
  return result.data as T;
}

/** A fresh id for idempotent sends (chat client_id, Idempotency-Key): a random UUID v4.
 * `crypto.randomUUID` exists only in secure contexts (https, localhost), so a page opened
 * as http://<address> builds one from `getRandomValues`, which exists everywhere. */
export function newId(random: Crypto = crypto): string {
  if (typeof random.randomUUID === "function" && globalThis.isSecureContext) return random.randomUUID();
  const bytes = random.getRandomValues(new Uint8Array(16));
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
