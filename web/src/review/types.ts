// The review API's shapes as this client reads them (from the generated OpenAPI types, plus
// fields the gateway may add before the types are regenerated).
import type { Schemas } from "../api/client";

export type ReviewFile = Schemas["ReviewFileOut"];
export type Verdict = Schemas["VerdictOut"];
export type Thread = Schemas["ThreadOut"];
export type Comment = Schemas["CommentOut"];
export type FileDiff = Schemas["FileOut"];
export type Hunk = Schemas["HunkOut"];
export type HunkLine = Schemas["HunkLineOut"];
export type Published = Schemas["PublishOut"];
export type VerdictState = Verdict["state"];
export type Side = "LEFT" | "RIGHT";

/** One reviewer's current verdict (the review answer's `verdicts`). */
export type CurrentVerdict = Schemas["CurrentVerdictOut"];

/** A review; `verdicts` may be missing from a shortened event. */
export type Review = Omit<Schemas["ReviewOut"], "verdicts"> & { verdicts?: CurrentVerdict[] | null };
