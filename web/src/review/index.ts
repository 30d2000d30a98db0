// The review UI: the side panel's "Review" section, the main area's diff, and the slot the
// AI panel fills with findings to show in the diff.
export { ReviewPanel } from "./ReviewPanel";
export { ReviewMain } from "./ReviewMain";
export { findingsSlot, findingsKey, type DiffFinding } from "./findings";
export { reviewStore } from "./store";
