import { signal } from "@preact/signals";

/** One AI finding shown as a diagnostic in a review file's diff. */
export interface DiffFinding {
  /** First line (1-based, in the file at the pull request's head). */
  line: number;
  /** Last line (inclusive). */
  endLine: number;
  severity: "info" | "warning" | "error";
  message: string;
  suggestion?: string | null;
  category: string;
}

/** Key of {@link findingsSlot}: a review's file. */
export function findingsKey(reviewId: string, path: string): string {
  return `${reviewId}:${path}`;
}

/**
 * AI findings per review file, keyed by `${reviewId}:${path}`. The AI panel writes into it
 * (replacing the map, not mutating it); the review diff renders it.
 */
export const findingsSlot = signal<ReadonlyMap<string, readonly DiffFinding[]>>(new Map());
