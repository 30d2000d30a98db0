// The REST calls of the AI panel, behind an interface so the controller is testable. Every
// call throws an ApiError with the API's own words.
import { api, call, type Schemas } from "../api/client";
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
  /** The session's latest jobs (document and pull request ones). */
  listJobs(sessionId: string): Promise<Job[]>;
  getJob(jobId: string): Promise<Job>;
  /** Answers the new job's id. */
  startReview(reviewId: string, paths: readonly string[] | null): Promise<string>;
  startDocument(sessionId: string): Promise<string>;
  cancel(jobId: string): Promise<Job>;
  createThread(reviewId: string, thread: ThreadRequest): Promise<void>;
}

export const restApi: AiApi = {
  async listReviews(sessionId) {
    const page = await call(api.GET("/api/v1/sessions/{id}/reviews", {
      params: { path: { id: sessionId }, query: { limit: 100 } },
    }));
    return page.items;
  },
  async listJobs(sessionId) {
    // The newest document jobs apart: many pull request jobs must not hide the one whose
    // findings are the editor's diagnostics.
    const page = (kind: "document" | "review", limit: number) => call(api.GET("/api/v1/sessions/{id}/ai", {
      params: { path: { id: sessionId }, query: { kind, limit } },
    }));
    const [documents, reviews] = await Promise.all([page("document", 5), page("review", 20)]);
    return [...documents.items, ...reviews.items];
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
