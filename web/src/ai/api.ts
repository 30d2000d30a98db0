// The REST calls of the AI panel, behind an interface so the controller is testable. Every
// call throws an ApiError with the API's own words.
import { api, call, errorFrom, networkError, type Schemas } from "../api/client";
import { getToken } from "../auth/session";
import type { Job } from "./jobs";

export type Review = Schemas["ReviewOut"];

export interface ThreadRequest {
  path: string;
  line: number;
  side: "RIGHT";
  start_line?: number;
  body: string;
}

export interface AiApi {
  listReviews(sessionId: string): Promise<Review[]>;
  /** The session's jobs, newest first (every kind); [] where the server has no such list. */
  listJobs(sessionId: string): Promise<Job[]>;
  getJob(jobId: string): Promise<Job>;
  /** Answers the new job's id. */
  startReview(reviewId: string, paths: readonly string[] | null): Promise<string>;
  startDocument(sessionId: string): Promise<string>;
  cancel(jobId: string): Promise<Job>;
  createThread(reviewId: string, thread: ThreadRequest): Promise<void>;
}

/** GET of a route the generated types do not have yet (the job lists). */
async function getJson<T>(path: string): Promise<T> {
  const token = await getToken();
  let response: Response;
  try {
    response = await fetch(location.origin + path, {
      credentials: "same-origin",
      headers: token === null ? {} : { Authorization: `Bearer ${token}` },
    });
  } catch (cause) {
    throw networkError(cause);
  }
  if (!response.ok) throw await errorFrom(response);
  return (await response.json()) as T;
}

export const restApi: AiApi = {
  async listReviews(sessionId) {
    const page = await call(api.GET("/api/v1/sessions/{id}/reviews", {
      params: { path: { id: sessionId }, query: { limit: 100 } },
    }));
    return page.items;
  },
  async listJobs(sessionId) {
    try {
      const page = await getJson<{ items: Job[] }>(`/api/v1/sessions/${encodeURIComponent(sessionId)}/ai?limit=20`);
      return page.items;
    } catch (error) {
      // A gateway without job lists: the page shows the jobs it sees live. (The session's own
      // 404 is the room's business: it leaves.)
      const status = (error as { status?: number }).status;
      if (status === 404 || status === 405) return [];
      throw error;
    }
  },
  getJob(jobId) {
    return call(api.GET("/api/v1/ai/jobs/{job_id}", { params: { path: { job_id: jobId } } }));
  },
  async startReview(reviewId, paths) {
    const accepted = await call(api.POST("/api/v1/reviews/{id}/ai", {
      params: { path: { id: reviewId } },
      body: paths === null || paths.length === 0 ? {} : { paths: [...paths] },
    }));
    return accepted.job_id;
  },
  async startDocument(sessionId) {
    const accepted = await call(api.POST("/api/v1/sessions/{id}/ai", {
      params: { path: { id: sessionId } },
      body: {},
    }));
    return accepted.job_id;
  },
  cancel(jobId) {
    return call(api.POST("/api/v1/ai/jobs/{job_id}/cancel", { params: { path: { job_id: jobId } } }));
  },
  async createThread(reviewId, thread) {
    await call(api.POST("/api/v1/reviews/{id}/threads", {
      params: { path: { id: reviewId } },
      body: thread,
    }));
  },
};
