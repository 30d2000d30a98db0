import { describe, expect, it } from "vitest";
import createClient from "openapi-fetch";
import type { paths } from "./schema";
import { call, errorFrom, networkError, newId } from "./client";

describe("errorFrom", () => {
  it("reads the standard error body", async () => {
    const body = { error: { code: "invalid_argument", message: "title is required",
      details: [{ field: "title", message: "required" }], request_id: "r" } };
    const error = await errorFrom(new Response(JSON.stringify(body), { status: 400 }));
    expect(error.status).toBe(400);
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toBe("title is required");
    expect(error.forField("title")).toBe("required");
    expect(error.forField("language")).toBeUndefined();
  });

  it("keeps Retry-After of a 429", async () => {
    const body = { error: { code: "rate_limited", message: "slow down" } };
    const error = await errorFrom(new Response(JSON.stringify(body), { status: 429, headers: { "Retry-After": "3" } }));
    expect(error.retryAfter).toBe(3);
  });

  it("explains a body that is not the API's", async () => {
    const error = await errorFrom(new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    expect(error.code).toBe("http_502");
    expect(error.message).toContain("502");
  });
});

describe("networkError", () => {
  it("tells the person to check their connection", () => {
    expect(networkError(new TypeError("Failed to fetch")).message).toContain("check your connection");
  });
});

describe("newId", () => {
  it("makes RFC 4122 version 4 UUIDs without randomUUID (insecure contexts)", () => {
    const noRandomUUID = { getRandomValues: (a: Uint8Array) => crypto.getRandomValues(a) } as unknown as Crypto;
    const ids = new Set(Array.from({ length: 50 }, () => newId(noRandomUUID)));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});

describe("call", () => {
  it("keeps the API's own words when openapi-fetch has read the failed body", async () => {
    const body = { error: { code: "not_found", message: "repository nobody/nothing not found", request_id: "r" } };
    const client = createClient<paths>({
      baseUrl: "http://tandem.test",
      fetch: () => Promise.resolve(new Response(JSON.stringify(body), {
        status: 404, headers: { "Content-Type": "application/json" } })),
    });
    const failed = call(client.GET("/api/v1/me", {}));
    await expect(failed).rejects.toMatchObject({ status: 404, code: "not_found", message: "repository nobody/nothing not found" });
  });
});
