import { describe, expect, it } from "vitest";
import { errorFrom, networkError } from "./client";

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
