import { describe, expect, it } from "vitest";
import { personColor } from "./colors";

describe("personColor", () => {
  it("gives one person the same colour every time", () => {
    expect(personColor("user-1")).toEqual(personColor("user-1"));
  });

  it("spreads people over the palette", () => {
    const colours = new Set(Array.from({ length: 40 }, (_, i) => personColor(`user-${String(i)}`).color));
    expect(colours.size).toBeGreaterThan(5);
  });

  it("derives a translucent selection colour", () => {
    const { color, light } = personColor("x");
    expect(light).toBe(color + "33");
  });
});
