import { render } from "preact";
import { describe, expect, it } from "vitest";
import type { Session, User } from "../api/client";
import { personColor } from "../lib/colors";
import { cursorUser } from "./doc";
import { People } from "./People";
import { RoomController } from "./room";

const me: User = { id: "u1", github_login: "octocat", avatar_url: "a1" } as User;

/** The controller's handling of the events socket's close codes (private: reached by name). */
type Closing = { onEventsClose(code: number): string };

describe("RoomController", () => {
  it("after the session ended and its events socket closed, People lists only yourself", () => {
    const room = new RoomController("s1", me);
    room.session.value = { id: "s1", title: "T", status: "ended" } as Session;
    room.presence.value = new Map([
      ["c1", { connection_id: "c1", user_id: "u2" }],
      ["c2", { connection_id: "c2", user_id: "u1" }],
    ]);
    expect(room.people.value.map((p) => p.id)).toEqual(["u1", "u2"]);
    expect((room as unknown as Closing).onEventsClose(4410)).toBe("stop");
    expect(room.eventsDone.value).toBe(true);
    expect(room.people.value.map((p) => [p.login, p.me])).toEqual([["octocat", true]]);

    const host = document.createElement("div");
    render(<People room={room} />, host);
    expect(host.textContent).toContain("Live presence ended with the session.");
    expect([...host.querySelectorAll("li")].map((li) => li.textContent)).toEqual(["octocat (you)"]);
    render(null, host);
  });

  it("colours a person by their GitHub login, the same on every deployment", () => {
    const colour = personColor("octocat").color;
    for (const id of ["u1", "3f1c0d2e-0000-4000-8000-000000000001"]) {
      const room = new RoomController("s1", { ...me, id, avatar_url: "" });
      const host = document.createElement("div");
      render(<People room={room} />, host);
      const avatar = host.querySelector<HTMLElement>(".avatar");
      expect(avatar?.style.borderColor).toBe(colour);
      render(null, host);
    }
    expect(cursorUser("octocat")).toEqual({ name: "octocat", color: colour, colorLight: colour + "33" });
  });
});
