import { describe, expect, it } from "vitest";

import { countdown, nextAt, suggestedTime } from "./time";

describe("nextAt", () => {
  const now = new Date(2026, 11, 4, 21, 15, 30);

  it("is today when the time is still ahead", () => {
    expect(nextAt("22:30", now)).toEqual(new Date(2026, 11, 4, 22, 30, 0));
  });

  it("is tomorrow when the time has passed (or is now)", () => {
    expect(nextAt("07:05", now)).toEqual(new Date(2026, 11, 5, 7, 5, 0));
    expect(nextAt("21:15", new Date(2026, 11, 4, 21, 15, 0))).toEqual(new Date(2026, 11, 5, 21, 15, 0));
  });

  it("refuses what is not a time", () => {
    expect(nextAt("24:00", now)).toBeNull();
    expect(nextAt("7:05", now)).toBeNull();
    expect(nextAt("", now)).toBeNull();
  });
});

describe("countdown", () => {
  it("shows hours and minutes, minutes and seconds, or seconds", () => {
    expect(countdown(3_900_000)).toBe("1 h 05 min");
    expect(countdown(249_000)).toBe("4 min 09 s");
    expect(countdown(9_000)).toBe("9 s");
  });

  it("rounds a part second up and never goes below zero", () => {
    expect(countdown(8_001)).toBe("9 s");
    expect(countdown(-5_000)).toBe("0 s");
  });
});

describe("suggestedTime", () => {
  it("is an hour ahead, on the next five minutes", () => {
    expect(suggestedTime(new Date(2026, 11, 4, 21, 12, 40))).toBe("22:15");
    expect(suggestedTime(new Date(2026, 11, 4, 23, 58, 0), 30)).toBe("00:30");
  });
});
