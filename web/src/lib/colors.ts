// A stable colour per person: the same login gets the same colour in every tab and session.
const PALETTE = [
  "#d6336c", "#1c7ed6", "#2b8a3e", "#e8590c", "#7048e8",
  "#0c8599", "#c2255c", "#5c940d", "#1971c2", "#9c36b5",
];

export function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

/** The person's colour, and a light version for their selections. */
export function personColor(key: string): { color: string; light: string } {
  const color = PALETTE[hash(key) % PALETTE.length] ?? "#1c7ed6";
  return { color, light: color + "33" };
}
