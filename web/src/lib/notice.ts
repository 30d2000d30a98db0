// A message for the next page to show (why the person was sent back to the list, say).
import { signal } from "@preact/signals";

export const notice = signal<string | null>(null);
